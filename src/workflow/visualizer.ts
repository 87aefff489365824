import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { Graph, HostTensor } from '../model/graph.js';
import { segmentationMetadata } from '../model/metadata.js';
import type { Precision } from '../model/precision.js';
import { ConfusionMatrix } from '../metrics/confusion.js';
import type { Fit, FitGeometry } from '../preprocess/fit.js';
import { toInputTensor, type Pixels } from '../preprocess/input-tensor.js';
import type { CapturedTensor } from '../runtime/captured.js';
import { Session } from '../runtime/session.js';
import { ignoreColor } from '../vis/colormap.js';
import { uploadImage } from '../vis/compose.js';
import type { GpuImages, RgbaImage } from '../vis/rgba.js';
import { readTensor, type GpuTensor } from '../vis/tensor.js';
import type { SegmentationImage } from '../vis/segmentation.js';
import { checkDrawable, drawLayer, type DrawOptions, type LayerPictures } from './draw.js';
import { fittedPicture, modelInput, type ModelInput } from './input.js';
import { colourLabel, fitLabel, resizeLabel, type LabelMap } from './labels.js';
import { drawPrediction, predictionOf, type Prediction } from './prediction.js';
import { dequantizedLayers, quantizationInputs } from './quantized-layers.js';

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

export interface VisRunOptions {
  /** Ground truth, the image's size, as class indices: the prediction is scored against it. */
  label?: LabelMap;
  /** The layers to capture in this run (default: the Visualizer's `layers`). */
  layers?: readonly string[];
}

export class Visualizer {
  /** Scores of every labelled image so far, when the model predicts classes. */
  private readonly total?: ConfusionMatrix;
  /** Runs take turns: a run's captured tensors are only valid until the next run. */
  private turn: Promise<unknown> = Promise.resolve();
  /** The latest run, whose captured tensors are the valid ones. */
  private latest?: VisRun;

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
      const layers = resolveLayers(session, options.layers);
      for (const layer of layers) for (const t of layer.tensors) checkDrawable(options, t.shape[1]!, `layer '${layer.pattern}' ('${t.name}')`);
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

  /** The tensors layer patterns select, with their shapes; InputError when one selects nothing or a tensor that is not [N,C,H,W]. */
  resolve(patterns: readonly string[]): VisLayer[] {
    return resolveLayers(this.session, patterns);
  }

  /**
   * Runs the model on one image (RGB or RGBA pixels: readImage's, or a
   * canvas's ImageData) and draws it. `label` is its ground truth, the
   * image's size, as class indices (decodeLabel, or readLabel in Node): the
   * prediction is scored against it, and counts in scores().
   */
  async image(pixels: Pixels, options: { label?: LabelMap } = {}): Promise<ImageVis> {
    return this.inTurn(async () => {
      const run = await this.runNow(pixels, { label: options.label, layers: undefined });
      const layers: LayerPictures[] = [];
      for (const layer of run.layers) layers.push(await run.drawNow(layer, this.o));
      const { input, geometry, prediction, probability, label, scores } = run;
      if (scores) this.total!.merge(run.confusion!);
      return {
        input,
        geometry,
        layers,
        ...(prediction ? { prediction } : {}),
        ...(probability ? { probability } : {}),
        ...(label ? { label } : {}),
        ...(scores ? { metrics: { pixelAccuracy: scores.pixelAccuracy, meanIoU: scores.meanIoU } } : {}),
      };
    });
  }

  /**
   * Runs the model on one image, capturing `layers` (default: the
   * Visualizer's), and returns the run: its prediction, and the captured
   * tensors, which draw as often as asked with any DrawOptions without
   * running the model again (an interactive explorer changes the colormap,
   * say). A run is valid until the next one starts. A labelled image is
   * scored for the run alone, not in scores().
   */
  run(pixels: Pixels, options: VisRunOptions = {}): Promise<VisRun> {
    return this.inTurn(() => this.runNow(pixels, options));
  }

  /** The scores over every labelled image that image() drew; undefined before one has a labelled pixel. */
  scores(): VisScores | undefined {
    return this.total && scoresOf(this.total);
  }

  /** Frees the compiled model's GPU memory; the Gpu stays the caller's. */
  destroy(): void {
    this.latest?.dispose();
    this.session.destroy();
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.turn.then(work);
    this.turn = result.catch(() => undefined);
    return result;
  }

  private async runNow(pixels: Pixels, options: VisRunOptions): Promise<VisRun> {
    const { o, mapSize: size, prediction } = this;
    const label = options.label;
    if (label && !prediction) {
      throw new InputError(
        `${this.session.typed.graph.source || 'model'}: a label was given, but the model's output is neither [N,K,H,W] class logits nor a binary [N,1,H,W] output, so there is no prediction to score`,
      );
    }
    const layers = options.layers ? this.resolve(options.layers) : this.layers;
    const { size: inputSize, mean, std } = this.input;
    const { tensor, geometry } = toInputTensor(pixels, { size: inputSize, fit: o.fit, mean, std });
    // Before the run: a label that does not fit its image fails fast.
    const fittedLabel = label && fitLabel(label, geometry);
    this.latest?.dispose();
    this.latest = undefined;
    const names = layers.flatMap((l) => l.tensors.map((t) => t.name));
    const started = performance.now();
    const capture = [...names, ...quantizationInputs(this.session.typed, names), ...(prediction ? [prediction.tensor] : [])];
    const { captured } = await this.session.run(tensor, { outputs: [], capture });
    const dequantized = await dequantizedLayers(this.gpu, this.session.typed, captured, names);
    const drawn = prediction && (await drawPrediction(this.gpu, prediction, captured.get(prediction.tensor)!));
    const ms = performance.now() - started;
    const input = fittedPicture(tensor, size, mean, std);
    const run = new VisRun((work) => this.inTurn(work), this.gpu, captured, dequantized, size, input, geometry, layers, ms);
    this.latest = run;
    if (!prediction || !drawn) return run;
    const output = captured.get(prediction.tensor)!;
    run.prediction = { ...drawn.mask, tensor: prediction.tensor, shape: [...output.dims] };
    if (drawn.probability) run.probability = drawn.probability;
    if (!fittedLabel) return run;
    // Scored at the prediction's size, shown at the maps'.
    const { mask } = drawn;
    const truth = resizeLabel(fittedLabel, [mask.height, mask.width]);
    run.confusion = new ConfusionMatrix(prediction.classes).add(truth.data, mask.classes);
    run.scores = scoresOf(run.confusion);
    run.label = { width: size[1], height: size[0], rgba: colourLabel(resizeLabel(truth, size), prediction.palette, ignoreColor('voc')) };
    return run;
  }
}

/**
 * One run of a Visualizer on one image: the fitted input, the prediction,
 * and the captured layers, drawn on demand from the tensors still on the
 * GPU. Valid until the Visualizer runs again; drawing after that is an
 * InputError.
 */
export class VisRun {
  /** The predicted mask in the prediction's palette, and the class index of every pixel. */
  prediction?: SegmentationImage & { tensor: string; shape: number[] };
  /** For a binary prediction: p in grey. */
  probability?: RgbaImage;
  /** With a label: the ground truth at the map size, fitted like the image. */
  label?: RgbaImage;
  /** With a label: this image's prediction scored against it (null IoU for a class absent from both). */
  scores?: VisScores;
  /** @internal the counts behind `scores`, which Visualizer.image adds to its total. */
  confusion?: ConfusionMatrix;
  /** The fitted input on the GPU, uploaded at the first overlay. */
  private base?: GpuImages;
  /** Set when the Visualizer runs again: the captured buffers then hold the next run's tensors. */
  private disposed = false;
  private readonly hostCopies = new Map<string, Promise<HostTensor>>();

  constructor(
    /** Queues work behind the Visualizer's runs: a draw never interleaves with the next run overwriting its tensors. */
    private readonly inTurn: <T>(work: () => Promise<T>) => Promise<T>,
    private readonly gpu: Gpu,
    private readonly captured: ReadonlyMap<string, CapturedTensor>,
    /** The real values of the integer layers (a quantized model's), owned by the run. */
    private readonly dequantized: ReadonlyMap<string, GpuTensor>,
    private readonly size: readonly [number, number],
    /** The model input as a picture at the map size (the fitted image; padding in the mean colour). */
    readonly input: RgbaImage,
    /** Where the image lies in the model input. */
    readonly geometry: FitGeometry,
    /** The layers captured, in the order asked. */
    readonly layers: readonly VisLayer[],
    /** Wall time of the run on the GPU, the prediction's mask included, in milliseconds. */
    readonly ms: number,
  ) {}

  /** Whether the Visualizer has run again since: drawing or reading this run is then an InputError. */
  get overwritten(): boolean {
    return this.disposed;
  }

  /**
   * Draws a captured layer (one of `layers`) with `options`, blended over
   * the fitted input when `options.overlay` is set. It waits for a run in
   * flight, and draws only if this run is still the latest. InputError when
   * a reduction or the grid does not fit its channels.
   */
  draw(layer: VisLayer, options: DrawOptions & { overlay?: number }): Promise<LayerPictures> {
    return this.inTurn(() => this.drawNow(layer, options));
  }

  /** A captured tensor on the host (read back once per run), for reading values under a cursor. */
  read(name: string): Promise<HostTensor> {
    let copy = this.hostCopies.get(name);
    if (!copy) {
      copy = this.inTurn(async () => {
        const t = this.tensor(name);
        return 'toHost' in t ? t.toHost() : { type: 'float32', dims: [...t.dims], data: await readTensor(this.gpu, t) };
      });
      this.hostCopies.set(name, copy);
    }
    return copy;
  }

  /** @internal draw(), for a caller already in the Visualizer's turn. */
  async drawNow(layer: VisLayer, options: DrawOptions & { overlay?: number }): Promise<LayerPictures> {
    for (const t of layer.tensors) checkDrawable(options, t.shape[1]!, `layer '${layer.pattern}' ('${t.name}')`);
    const tensors = layer.tensors.map(({ name }) => ({ name, value: this.tensor(name) }));
    if (options.overlay !== undefined) this.base ??= uploadImage(this.gpu, this.input.rgba, this.input.width, this.input.height);
    const overlay = options.overlay === undefined ? undefined : { base: this.base!, alpha: options.overlay };
    return drawLayer(this.gpu, layer.pattern, tensors, options, this.size, overlay);
  }

  /** @internal Frees what the run uploaded; its Visualizer calls it when the next run starts. */
  dispose(): void {
    this.disposed = true;
    this.base?.buffer.destroy();
    this.base = undefined;
    for (const t of this.dequantized.values()) t.buffer.destroy();
  }

  /** A layer's tensor as the stages read it: captured, or dequantized for an integer layer. */
  private tensor(name: string): CapturedTensor | GpuTensor {
    if (this.disposed) throw new InputError(`this run's tensors were overwritten by a later run of its Visualizer: draw and read a run before running again`);
    const t = this.dequantized.get(name) ?? this.captured.get(name);
    if (!t) throw new InputError(`tensor '${name}' was not captured in this run (captured: ${[...this.captured.keys()].join(', ')})`);
    return t;
  }
}

function scoresOf(c: ConfusionMatrix): VisScores | undefined {
  if (!c.counts.some((n) => n > 0)) return undefined;
  return { pixelAccuracy: c.pixelAccuracy(), meanIoU: c.meanIoU(), perClassIoU: c.iou() };
}

/**
 * The tensors layer patterns select, with their shapes at the session's
 * input size; each must be [N,C,H,W] (`needs` says for what, in the error).
 * Visualizer draws them; Explainer (explainer.ts) explains them.
 */
export function resolveLayers(
  session: { resolve(patterns: readonly string[]): string[]; typeOf(name: string): { dims: readonly number[] } | undefined },
  patterns: readonly string[],
  needs = 'vis draws [N,C,H,W] feature maps',
): VisLayer[] {
  return patterns.map((pattern) => ({
    pattern,
    tensors: session.resolve([pattern]).map((name) => {
      const shape = [...(session.typeOf(name)?.dims ?? [])];
      if (shape.length !== 4) throw new InputError(`layer '${pattern}': tensor '${name}' has shape [${shape.join(',')}]; ${needs}`);
      return { name, shape };
    }),
  }));
}

/** The output a prediction is drawn from: `output` (which must be one of the graph's), else the first. */
function predictedOutput(graph: Graph, output: string | undefined): string | undefined {
  if (output === undefined) return graph.outputs[0]?.name;
  if (graph.outputs.some((o) => o.name === output)) return output;
  const names = graph.outputs.map((o) => `'${o.name}'`).join(', ');
  throw new InputError(`output '${output}' is not an output of ${graph.source || 'the model'}; its outputs are ${names}`);
}
