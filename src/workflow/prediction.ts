import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { type Graph, opKey, producers } from '../model/graph.js';
import type { SegmentationMetadata } from '../model/metadata.js';
import { registry } from '../ops/registry.js';
import { binarySegmentation, type BinaryValues } from '../vis/binary.js';
import { palette as namedPalette, paletteClassNames } from '../vis/colormap.js';
import type { RgbaImage } from '../vis/rgba.js';
import { segmentation, type SegmentationImage } from '../vis/segmentation.js';
import type { TensorLike } from '../vis/tensor.js';

/**
 * What the prediction is drawn from: a graph output, either K-class logits
 * [N,K,H,W] (the argmax is drawn) or one channel [N,1,H,W] (binary: the
 * foreground where p >= 0.5, vis/binary.ts). This is what --json and the
 * report state.
 */
export type PredictionSource = {
  /** The graph output. */
  tensor: string;
  /** K; 2 for a binary output (background, foreground). */
  classes: number;
} & (
  | { kind: 'classes' }
  | {
      kind: 'binary';
      /** 'probability' when a Sigmoid produces the output (directly or through alias ops: Reshape, Identity…), else 'logit'. */
      values: BinaryValues;
    }
);

/** The model's prediction: what it is drawn from and in which colours. */
export type Prediction = PredictionSource & {
  /** RGB, 3 bytes a class: the model's own (metadata_props 'palette'), else VOC's (K classes) or black and white (binary). */
  palette: Uint8Array;
  /** The model's own (metadata_props 'classes'), else VOC's names when K is 21, 'background' and 'foreground' for a binary output. */
  names?: readonly string[];
};

/**
 * A binary prediction's colours without a two-colour palette in the
 * metadata: black and white, as salient-object datasets store their masks
 * (0/255), so that a predicted mask reads as one of theirs.
 */
const BINARY_PALETTE = Uint8Array.of(0, 0, 0, 255, 255, 255);
const BINARY_NAMES = ['background', 'foreground'];

/**
 * The prediction of a model from its output `tensor` of `shape`: [N,K,H,W]
 * logits with K > 1, or a binary [N,1,H,W] output; undefined for any other
 * shape (or no tensor). InputError when the metadata's classes or palette do
 * not fit.
 */
export function predictionOf(
  graph: Graph,
  meta: SegmentationMetadata,
  tensor: string | undefined,
  shape: readonly number[] | undefined,
): Prediction | undefined {
  if (!tensor || shape?.length !== 4 || !(shape[1]! >= 1)) return undefined;
  const model = graph.source || 'model';
  const K = shape[1]!;
  if (K === 1) {
    const names = meta.classes ?? BINARY_NAMES;
    if (names.length !== 2)
      throw new InputError(`${model}: metadata names ${names.length} classes, the output '${tensor}' is binary (2: background, foreground)`);
    const palette = meta.palette?.length === 6 ? meta.palette : BINARY_PALETTE;
    return { tensor, kind: 'binary', values: sigmoidMade(graph, tensor) ? 'probability' : 'logit', classes: 2, palette, names };
  }
  const palette = predictionPalette(meta.palette, K, model);
  const names = meta.classes ?? (K === 21 ? paletteClassNames('voc') : undefined);
  if (names && names.length !== K) throw new InputError(`${model}: metadata names ${names.length} classes, the logits have ${K}`);
  return { tensor, kind: 'classes', classes: K, palette, ...(names ? { names } : {}) };
}

/** The prediction without its colours, as --json and the report state it. */
export function predictionSource(p: Prediction): PredictionSource {
  const { tensor, classes } = p;
  return p.kind === 'binary' ? { tensor, classes, kind: p.kind, values: p.values } : { tensor, classes, kind: p.kind };
}

/** Whether a Sigmoid node makes `tensor`, directly or through alias ops (which only reshape their input 0). */
function sigmoidMade(graph: Graph, tensor: string): boolean {
  const producer = producers(graph.nodes);
  let node = producer.get(tensor);
  while (node && registry.get(opKey(node))?.alias) node = producer.get(node.inputs[0]!);
  return node?.opType === 'Sigmoid';
}

function predictionPalette(own: Uint8Array | undefined, K: number, model: string): Uint8Array {
  if (own) {
    if (own.length / 3 < K) throw new InputError(`${model}: metadata palette has ${own.length / 3} colours, the logits have ${K} classes`);
    return own;
  }
  if (K > 256) throw new InputError(`${model}: ${K} classes and no palette in the metadata; the VOC palette has 256 colours`);
  return namedPalette('voc', K);
}

/**
 * The prediction drawn from its captured tensor, first batch index: the
 * coloured mask with its class map, and for a binary output p in grey.
 */
export async function drawPrediction(gpu: Gpu, p: Prediction, value: TensorLike): Promise<{ mask: SegmentationImage; probability?: RgbaImage }> {
  if (p.kind === 'classes') {
    const [mask] = await segmentation(gpu, value, { palette: p.palette });
    return { mask: mask! };
  }
  const [binary] = await binarySegmentation(gpu, value, { palette: p.palette, values: p.values });
  const { probability, ...mask } = binary!;
  return { mask, probability };
}

/**
 * The class a user names, by index or by name: `text` is an index in 0..K-1,
 * or one of `names` (the model's metadata classes, VOC's for 21 classes).
 * InputError listing the classes otherwise.
 */
export function classIndex(text: string, classes: number, names: readonly string[] | undefined, what = 'class'): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const k = Number(trimmed);
    if (k < classes) return k;
    throw new InputError(`${what} ${k}: the output has classes 0..${classes - 1}${names ? ` (${names.join(', ')})` : ''}`);
  }
  const k = names?.indexOf(trimmed) ?? -1;
  if (k >= 0 && k < classes) return k;
  throw new InputError(
    names
      ? `${what} '${trimmed}' is not one of the model's classes: ${names.map((n, i) => `${i} ${n}`).join(', ')}`
      : `${what} '${trimmed}': the model names no classes (metadata 'classes'); give an index 0..${classes - 1}`,
  );
}

/** The report's class legend: each named class with its colour (nothing for a model without class names). */
export function legend(p: Prediction): { classes?: { name: string; color: [number, number, number] }[] } {
  if (!p.names) return {};
  return { classes: p.names.map((name, k) => ({ name, color: [p.palette[3 * k]!, p.palette[3 * k + 1]!, p.palette[3 * k + 2]!] })) };
}
