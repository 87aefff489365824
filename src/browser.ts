/**
 * segscope's library entry for browsers and bundlers (`segscope/browser`):
 * the engine, vis stages, metrics, preprocessing, the workflow (Visualizer)
 * and the report's renderer, none of which uses a Node API
 * (test/layering.test.ts), and nothing else: no Dawn, no sharp, no files
 * (test/browser-entry.test.ts bundles it to check). Models come as
 * bytes (modelFromBytes), images as RGBA pixels (ImageData), the device
 * from `navigator.gpu` (requestGpu). The Node entry (index.ts) adds files,
 * decoding and Dawn on top of this one.
 */
export * from './errors.js';
export { openDevice, requestGpu, type Gpu } from './gpu/device.js';
export { modelFromBytes, type ExternalData } from './model/from-bytes.js';
export type { ElemType, Graph, HostTensor } from './model/graph.js';
export { segmentationMetadata, type SegmentationMetadata } from './model/metadata.js';
export { PRECISIONS, type Precision } from './model/precision.js';
export { fitGeometry, imageToInput, inputToImage, type Box, type Fit, type FitGeometry } from './preprocess/fit.js';
export { IMAGENET_MEAN, IMAGENET_STD, toInputTensor, type InputTensor, type InputTensorOptions, type Pixels } from './preprocess/input-tensor.js';
export { resampleBilinear } from './preprocess/resample.js';
export { Session, type RunOptions, type RunResult, type SessionOptions } from './runtime/session.js';
export { CapturedTensor } from './runtime/captured.js';
export { GradientSession, type GradientOptions, type GradientResult, type SegmentationTarget } from './runtime/gradients.js';
export type { TensorPattern } from './runtime/select.js';
export * from './vis/index.js';
export { argmaxAgreement, relativeL2 } from './metrics/agreement.js';
export { ConfusionMatrix } from './metrics/confusion.js';
export * from './workflow/index.js';
export { escapeHtml, renderReport, type ImageResult, type OutputFile, type ReportData } from './report/render.js';
