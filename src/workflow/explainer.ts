import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { Graph, HostTensor } from '../model/graph.js';
import { segmentationMetadata } from '../model/metadata.js';
import type { Precision } from '../model/precision.js';
import { type Fit, type FitGeometry, fitGeometry } from '../preprocess/fit.js';
import { toInputTensor, type Pixels } from '../preprocess/input-tensor.js';
import { GradientSession } from '../runtime/gradients.js';
import { cam, camPicture, type CamMethod } from '../vis/cam.js';
import { ignoreColor } from '../vis/colormap.js';
import { uploadImage } from '../vis/compose.js';
import { readRGBA, type RgbaImage } from '../vis/rgba.js';
import type { SegmentationImage } from '../vis/segmentation.js';
import { readTensor, uploadTensor } from '../vis/tensor.js';
import { fittedPicture, modelInput, type ModelInput } from './input.js';
import { colourLabel, fitLabel, resizeLabel, type LabelMap } from './labels.js';
import { drawPrediction, predictionOf, type Prediction } from './prediction.js';
import { resolveLayers, type VisLayer } from './visualizer.js';

/**
 * Class activation maps, without files: a segmentation model, images and
 * the classes to explain in; for each layer, class and CAM method, the map
 * and pytorch-grad-cam's overlay out. The model is differentiated and
 * compiled once (GradientSession); each class of each image is one run of
 * the forward and backward passes. `segscope cam` writes the files around it.
 */

export interface ExplainerOptions {
  /** The layers to explain: patterns as Visualizer's; each tensor they select must be [N,C,H,W]. */
  layers: readonly string[];
  inputSize?: readonly [number, number];
  mean?: readonly number[];
  std?: readonly number[];
  fit?: Fit;
  /** The output the target reads (default the first): [N,K,H,W] class logits. */
  output?: string;
  precision?: Precision;
  onProgress?: (progress: { phase: 'compile'; inputSize: [number, number]; done: number; total: number }) => void;
}

export interface ExplainRequest {
  /** Class indices (see classIndex for names). */
  classes: readonly number[];
  methods: readonly CamMethod[];
  /** The pixels whose scores are summed: predicted as the class (default), every pixel, or the label's pixels of the class. */
  mask?: 'pred' | 'all' | 'label';
  /** Ground truth, the image's size, as class indices: drawn, and the mask for mask 'label'. */
  label?: LabelMap;
  /** show_cam_on_image's image_weight (default 0.5). */
  imageWeight?: number;
}

/** One class activation map of one layer tensor. */
export interface CamResult {
  /** The layer pattern and the tensor it selected. */
  layer: string;
  tensor: string;
  /** The tensor's shape [N,C,h,w]. */
  shape: number[];
  classIndex: number;
  /** The model's name for the class, when it has names. */
  className?: string;
  method: CamMethod;
  /** The map after the method's ReLU, at the layer's resolution, unscaled: [1,1,h,w]. */
  map: HostTensor;
  /** pytorch-grad-cam's overlay on the fitted input, at the input size. */
  picture: RgbaImage;
  /** The target: the class's logits summed over the mask, and the mask's pixels. */
  score: number;
  pixels: number;
}

export interface ImageExplanation {
  /** The fitted input at the input size (the overlays' base). */
  input: RgbaImage;
  geometry: FitGeometry;
  prediction: SegmentationImage;
  /** With a label: the ground truth at the input size. */
  label?: RgbaImage;
  /** By class, then layer tensor, then method. */
  cams: CamResult[];
}

export class Explainer {
  private turn: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly gpu: Gpu,
    private readonly session: GradientSession,
    private readonly o: ExplainerOptions,
    readonly input: ModelInput,
    readonly layers: VisLayer[],
    /** The output's classes, names and palette. */
    readonly prediction: Prediction,
  ) {}

  /**
   * Differentiates and compiles `graph` for the layers at its input size.
   * InputError when the model has no single RGB input, the output is not
   * [N,K,H,W] class logits, or a layer selects nothing, a tensor that is
   * not [N,C,H,W] or one that does not reach the output; UnsupportedOpError
   * when an op between a layer and the output has no backward rule.
   */
  static async create(gpu: Gpu, graph: Graph, options: ExplainerOptions): Promise<Explainer> {
    if (!options.layers.length) throw new InputError('no layer to explain: give at least one layer pattern');
    const meta = segmentationMetadata(graph);
    const input = modelInput(graph, meta, options);
    const session = await GradientSession.create(gpu, graph, {
      inputShapes: { [input.name]: [1, 3, ...input.size] },
      wrt: options.layers,
      output: options.output,
      precision: options.precision,
      onCompile: (done, total) => options.onProgress?.({ phase: 'compile', inputSize: input.size, done, total }),
    });
    try {
      const shape = session.typeOf(session.output)!.dims;
      const prediction = predictionOf(graph, meta, session.output, shape);
      if (prediction?.kind !== 'classes') {
        throw new InputError(`output '${session.output}' has shape [${shape.join(',')}]: class activation maps explain [N,K,H,W] class logits (K > 1)`);
      }
      const layers = resolveLayers(session, options.layers, 'a CAM needs [N,C,H,W] activations');
      return new Explainer(gpu, session, { ...options }, input, layers, prediction);
    } catch (e) {
      session.destroy();
      throw e;
    }
  }

  /**
   * Explains one image (RGB or RGBA pixels), or a ready input tensor
   * [1,3,H,W] at the input size (already normalised: `segscope cam --input`),
   * for every class, layer tensor and method of `request`.
   */
  explain(pixels: Pixels | { tensor: HostTensor }, request: ExplainRequest): Promise<ImageExplanation> {
    const result = this.turn.then(() => this.explainNow(pixels, request));
    this.turn = result.catch(() => undefined);
    return result;
  }

  destroy(): void {
    this.session.destroy();
  }

  private async explainNow(pixels: Pixels | { tensor: HostTensor }, request: ExplainRequest): Promise<ImageExplanation> {
    const { gpu, prediction } = this;
    const mask = request.mask ?? 'pred';
    if (mask === 'label' && !request.label) throw new InputError("mask 'label' needs the image's label: give its ground truth");
    const { size, mean, std } = this.input;
    const { tensor, geometry } = 'tensor' in pixels ? readyInput(pixels.tensor, size) : toInputTensor(pixels, { size, fit: this.o.fit, mean, std });
    const fittedLabel = request.label && fitLabel(request.label, geometry);
    const input = fittedPicture(tensor, size, mean, std);
    const base = uploadImage(gpu, input.rgba, input.width, input.height);
    const cams: CamResult[] = [];
    let output: HostTensor | undefined;
    try {
      for (const k of request.classes) {
        const outDims = this.session.typeOf(this.session.output)!.dims;
        const target = mask === 'label' ? labelMask(fittedLabel!, k, outDims) : mask;
        const result = await this.session.run(tensor, { classIndex: k, mask: target });
        output = result.output;
        for (const layer of this.layers) {
          for (const t of layer.tensors) {
            const { activation, gradient } = result.tensors.get(t.name)!;
            for (const method of request.methods) {
              const map = await cam(gpu, activation, gradient, method);
              const drawn = camPicture(gpu, map, { size, image: base, imageWeight: request.imageWeight });
              try {
                const [picture] = await readRGBA(gpu, drawn.images);
                const values = await readTensor(gpu, map);
                cams.push({
                  layer: layer.pattern,
                  tensor: t.name,
                  shape: t.shape,
                  classIndex: k,
                  ...(prediction.names?.[k] ? { className: prediction.names[k] } : {}),
                  method,
                  map: { type: 'float32', dims: [...map.dims], data: values },
                  picture: picture!,
                  score: result.score,
                  pixels: result.pixels,
                });
              } finally {
                map.buffer.destroy();
                drawn.scaled.buffer.destroy();
                drawn.images.buffer.destroy();
              }
            }
          }
        }
      }
    } finally {
      base.buffer.destroy();
    }
    if (!output) throw new InputError('no class to explain: give at least one class');
    const uploaded = uploadTensor(gpu, output.dims, output.data);
    try {
      const { mask: predicted } = await drawPrediction(gpu, prediction, uploaded);
      const label = fittedLabel && {
        width: size[1],
        height: size[0],
        rgba: colourLabel(resizeLabel(fittedLabel, size), prediction.palette, ignoreColor('voc')),
      };
      return { input, geometry, prediction: predicted, ...(label ? { label } : {}), cams };
    } finally {
      uploaded.buffer.destroy();
    }
  }
}

/** A ready input tensor, checked against the input size, with the geometry of an image that fills it. */
function readyInput(tensor: HostTensor, size: [number, number]): { tensor: HostTensor; geometry: FitGeometry } {
  if (tensor.dims.join() !== [1, 3, ...size].join()) {
    throw new InputError(`input tensor [${tensor.dims.join(',')}]: the model is compiled for [1,3,${size.join(',')}]`);
  }
  return { tensor, geometry: fitGeometry(size, size, 'resize') };
}

/** A label's pixels of class `k` as the target's mask, at the output's size. */
function labelMask(label: LabelMap, k: number, outDims: readonly number[]): HostTensor {
  const [N, , H, W] = outDims as [number, number, number, number];
  const resized = resizeLabel(label, [H, W]);
  const plane = Float32Array.from(resized.data, (c) => (c === k ? 1 : 0));
  const data = new Float32Array(N * H * W);
  for (let n = 0; n < N; n++) data.set(plane, n * H * W);
  return { type: 'float32', dims: [N, 1, H, W], data };
}
