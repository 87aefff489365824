import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { Graph } from '../model/graph.js';
import { segmentationMetadata } from '../model/metadata.js';
import type { Precision } from '../model/precision.js';
import { ConfusionMatrix } from '../metrics/confusion.js';
import type { Fit, FitGeometry } from '../preprocess/fit.js';
import { toInputTensor, type Pixels } from '../preprocess/input-tensor.js';
import { Session } from '../runtime/session.js';
import { ignoreColor } from '../vis/colormap.js';
import { uploadImage } from '../vis/compose.js';
import type { RgbaImage } from '../vis/rgba.js';
import type { SegmentationImage } from '../vis/segmentation.js';
import { checkDrawable, drawLayer, type DrawOptions, type LayerPictures } from './draw.js';
import { fittedPicture, modelInput, type ModelInput } from './input.js';
import { colourLabel, fitLabel, resizeLabel, type LabelMap } from './labels.js';
import { drawPrediction, predictionOf, type Prediction } from './prediction.js';

/**
 * The main job, without files: a segmentation model and images in, feature
 * maps, the prediction, the ground truth and scores out, all in memory. The
 * model is compiled once; images go through one at a time. `segscope vis`
 * reads and writes the files around it; a browser feeds it a canvas's pixels.
 */

export interface VisualizerOptions extends DrawOptions {
  /**
   * The layers to draw: tensor or node names, PyTorch module paths
   * ('classifier.aspp.project'), globs, or regular expressions written /…/
   * (runtime/select.ts). A pattern may select several tensors; each must be
   * [N,C,H,W].
   */
  layers: readonly string[];
  /** The model input [height, width] (default: the model's static shape, else its metadata 'input_size', else 513x513). */
  inputSize?: readonly [number, number];
  /** The pictures' [height, width] (default: the input size). */
  mapSize?: readonly [number, number];
  /** Input normalisation, RGB on the 0..1 scale (default: the model's metadata 'mean'/'std', else ImageNet's). */
  mean?: readonly number[];
  std?: readonly number[];
  /** How an image is fitted to the input: 'resize' (default), 'pad' or 'crop' (preprocess/fit.ts). */
  fit?: Fit;
  /** Blend every map over the fitted input with this opacity in [0, 1]. */
  overlay?: number;
  /**
   * The graph output the prediction is drawn from (default: the first):
   * [N,K,H,W] class logits, or a binary [N,1,H,W] output.
   */
  output?: string;
  /** Storage of the activations (default 'f32'). */
  precision?: Precision;
  /** Compilation progress: shaders compiled of total. */
  onProgress?: (progress: VisProgress) => void;
}

export interface VisProgress {
  phase: 'compile';
  /** The input size being compiled for, [height, width]. */
  inputSize: [number, number];
  done: number;
  total: number;
}

/** A layer pattern and the tensors it selects, with their shapes at the input size. */
export interface VisLayer {
  pattern: string;
  tensors: { name: string; shape: number[] }[];
}

/** Everything drawn for one image. */
export interface ImageVis {
  /** The model input as a picture at the map size (the fitted image; padding in the mean colour). */
  input: RgbaImage;
  /** Where the image lies in the model input. */
  geometry: FitGeometry;
  /** Per layer, in the order of `layers`. */
  layers: LayerPictures[];
  /** The predicted mask in the prediction's palette, and the class index of every pixel (when the output is drawable, see Prediction). */
  prediction?: SegmentationImage & { tensor: string; shape: number[] };
  /** For a binary prediction: p in grey. */
  probability?: RgbaImage;
  /** With a label: the ground truth at the map size, as the model sees it (fitted like the image). */
  label?: RgbaImage;
  /** With a label: this image's prediction scored against it. */
  metrics?: { pixelAccuracy: number; meanIoU: number };
}

/** The scores over every labelled image so far. */
export interface VisScores {
  pixelAccuracy: number;
  meanIoU: number;
  /** Per class; null for a class absent from both the labels and the predictions. */
  perClassIoU: (number | null)[];
}

export class Visualizer {
  /** Scores of every labelled image, when the model predicts classes. */
  private readonly total?: ConfusionMatrix;
  /** image() calls take turns: a run's captured tensors are only valid until the next run. */
  private turn: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly gpu: Gpu,
    private readonly session: Session,
    private readonly o: VisualizerOptions,
    /** What the model is fed, and where each setting came from. */
    readonly input: ModelInput,
    /** The pictures' [height, width]. */
    readonly mapSize: [number, number],
    readonly layers: VisLayer[],
    /** Undefined when the output (option `output`, else the first) is neither [N,K,H,W] class logits nor a binary [N,1,H,W] output. */
    readonly prediction: Prediction | undefined,
  ) {
    if (prediction) this.total = new ConfusionMatrix(prediction.classes);
  }

  /**
   * Compiles `graph` at its input size, capturing the layers and the
   * prediction's output. InputError when the model has no single RGB input,
   * `output` is not one of its outputs or not drawable, a layer pattern
   * selects nothing or a tensor that is not [N,C,H,W], a reduction or the
   * grid does not fit a tensor's channels, or the metadata's classes or
   * palette do not fit the output.
   */
  static async create(gpu: Gpu, graph: Graph, options: VisualizerOptions): Promise<Visualizer> {
    const meta = segmentationMetadata(graph);
    const input = modelInput(graph, meta, options);
    const mapSize: [number, number] = options.mapSize ? [options.mapSize[0], options.mapSize[1]] : input.size;
    const output = predictedOutput(graph, options.output);
    const session = await Session.create(gpu, graph, {
      precision: options.precision,
      inputShapes: { [input.name]: [1, 3, ...input.size] },
      // The output is captured too, so the mask is drawn from the GPU copy instead of uploading it again.
      capture: output ? [...options.layers, output] : options.layers,
      onCompile: (done, total) => options.onProgress?.({ phase: 'compile', inputSize: input.size, done, total }),
    });
    try {
      const layers = options.layers.map((pattern) => ({
        pattern,
        tensors: session.resolve([pattern]).map((name) => {
          const shape = [...(session.typeOf(name)?.dims ?? [])];
          if (shape.length !== 4) throw new InputError(`layer '${pattern}': tensor '${name}' has shape [${shape.join(',')}]; vis draws [N,C,H,W] feature maps`);
          checkDrawable(options, shape[1]!, `layer '${pattern}' ('${name}')`);
          return { name, shape };
        }),
      }));
      const shape = output ? session.typeOf(output)?.dims : undefined;
      const prediction = predictionOf(graph, meta, output, shape);
      if (options.output !== undefined && !prediction) {
        throw new InputError(
          `output '${options.output}' has shape [${shape?.join(',') ?? '?'}]: a prediction is drawn from [N,K,H,W] class logits or a binary [N,1,H,W] output`,
        );
      }
      return new Visualizer(gpu, session, { ...options }, input, mapSize, layers, prediction);
    } catch (e) {
      session.destroy();
      throw e;
    }
  }

  /**
   * Runs the model on one image (RGB or RGBA pixels: readImage's, or a
   * canvas's ImageData) and draws it. `label` is its ground truth, the
   * image's size, as class indices (decodeLabel, or readLabel in Node): the
   * prediction is scored against it.
   */
  image(pixels: Pixels, options: { label?: LabelMap } = {}): Promise<ImageVis> {
    const result = this.turn.then(() => this.draw(pixels, options.label));
    this.turn = result.catch(() => undefined);
    return result;
  }

  /** The scores over every labelled image so far; undefined before one has a labelled pixel. */
  scores(): VisScores | undefined {
    const t = this.total;
    if (!t?.counts.some((c) => c > 0)) return undefined;
    return { pixelAccuracy: t.pixelAccuracy(), meanIoU: t.meanIoU(), perClassIoU: t.iou() };
  }

  /** Frees the compiled model's GPU memory; the Gpu stays the caller's. */
  destroy(): void {
    this.session.destroy();
  }

  private async draw(pixels: Pixels, label: LabelMap | undefined): Promise<ImageVis> {
    const { gpu, o, mapSize: size, prediction } = this;
    if (label && !prediction) {
      throw new InputError(
        `${this.session.typed.graph.source || 'model'}: a label was given, but the model's output is neither [N,K,H,W] class logits nor a binary [N,1,H,W] output, so there is no prediction to score`,
      );
    }
    const { size: inputSize, mean, std } = this.input;
    const { tensor, geometry } = toInputTensor(pixels, { size: inputSize, fit: o.fit, mean, std });
    // Before the run: a label that does not fit its image fails fast.
    const fittedLabel = label && fitLabel(label, geometry);
    const { captured } = await this.session.run(tensor, { outputs: [] });
    const input = fittedPicture(tensor, size, mean, std);
    // The fitted image goes to the GPU once, under every map that is blended over it.
    const base = o.overlay === undefined ? undefined : uploadImage(gpu, input.rgba, input.width, input.height);
    try {
      const layers: LayerPictures[] = [];
      for (const layer of this.layers) {
        const tensors = layer.tensors.map(({ name }) => ({ name, value: captured.get(name)! }));
        layers.push(await drawLayer(gpu, layer.pattern, tensors, o, size, base && { base, alpha: o.overlay! }));
      }
      if (!prediction) return { input, geometry, layers };
      const output = captured.get(prediction.tensor)!;
      const { mask, probability } = await drawPrediction(gpu, prediction, output);
      const drawn = { prediction: { ...mask, tensor: prediction.tensor, shape: [...output.dims] }, ...(probability ? { probability } : {}) };
      if (!fittedLabel) return { input, geometry, layers, ...drawn };
      // Scored at the prediction's size, shown at the maps'.
      const truth = resizeLabel(fittedLabel, [mask.height, mask.width]);
      const scores = new ConfusionMatrix(prediction.classes).add(truth.data, mask.classes);
      this.total!.merge(scores);
      return {
        input,
        geometry,
        layers,
        ...drawn,
        label: { width: size[1], height: size[0], rgba: colourLabel(resizeLabel(truth, size), prediction.palette, ignoreColor('voc')) },
        metrics: { pixelAccuracy: scores.pixelAccuracy(), meanIoU: scores.meanIoU() },
      };
    } finally {
      base?.buffer.destroy();
    }
  }
}

/** The output a prediction is drawn from: `output` (which must be one of the graph's), else the first. */
function predictedOutput(graph: Graph, output: string | undefined): string | undefined {
  if (output === undefined) return graph.outputs[0]?.name;
  if (graph.outputs.some((o) => o.name === output)) return output;
  const names = graph.outputs.map((o) => `'${o.name}'`).join(', ');
  throw new InputError(`output '${output}' is not an output of ${graph.source || 'the model'}; its outputs are ${names}`);
}
