/**
 * The library's main job, without files (docs/design.md: src/workflow):
 * Visualizer compiles a model once and turns images into feature maps, the
 * prediction, the ground truth and scores, in memory. The CLI's vis and demo
 * read and write the files around it.
 */
export {
  Visualizer,
  VisRun,
  type ImageVis,
  type VisLayer,
  type VisProgress,
  type VisRunOptions,
  type VisScores,
  type VisualizerOptions,
} from './visualizer.js';
export type { DrawOptions, GridPicture, LayerPictures, MapPicture } from './draw.js';
export type { ModelInput, NormalizationOrigin } from './input.js';
export type { Prediction, PredictionSource } from './prediction.js';
export { decodeLabel, type LabelMap, type LabelPixels } from './labels.js';
export { Explainer, type CamResult, type ExplainerOptions, type ExplainRequest, type ImageExplanation } from './explainer.js';
export { classIndex } from './prediction.js';
