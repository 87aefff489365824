import { InputError } from '../errors.js';
import type { Graph } from '../model/graph.js';
import type { SegmentationMetadata } from '../model/metadata.js';
import { palette as namedPalette, paletteClassNames } from '../vis/colormap.js';

/** The model's class prediction: what its logits are and how they are drawn. */
export interface Prediction {
  /** The logits: the model's first output, [N,K,H,W]. */
  tensor: string;
  /** K, the number of classes. */
  classes: number;
  /** RGB, 3 bytes a class: the model's own (metadata_props 'palette'), else PASCAL VOC's, the DeepLab repos' default. */
  palette: Uint8Array;
  /** The model's own (metadata_props 'classes'), else VOC's names when K is 21. */
  names?: readonly string[];
}

/** The prediction of a model whose first output has `shape`; undefined unless that is [N,K,H,W] logits with K > 1. */
export function predictionOf(graph: Graph, meta: SegmentationMetadata, shape: readonly number[] | undefined): Prediction | undefined {
  const tensor = graph.outputs[0]?.name;
  const K = tensor && shape?.length === 4 && shape[1]! > 1 ? shape[1]! : 0;
  if (!K) return undefined;
  const model = graph.source || 'model';
  const palette = predictionPalette(meta.palette, K, model);
  const names = meta.classes ?? (K === 21 ? paletteClassNames('voc') : undefined);
  if (names && names.length !== K) throw new InputError(`${model}: metadata names ${names.length} classes, the logits have ${K}`);
  return { tensor: tensor!, classes: K, palette, ...(names ? { names } : {}) };
}

function predictionPalette(own: Uint8Array | undefined, K: number, model: string): Uint8Array {
  if (own) {
    if (own.length / 3 < K) throw new InputError(`${model}: metadata palette has ${own.length / 3} colours, the logits have ${K} classes`);
    return own;
  }
  if (K > 256) throw new InputError(`${model}: ${K} classes and no palette in the metadata; the VOC palette has 256 colours`);
  return namedPalette('voc', K);
}
