import { InputError } from '../errors.js';
import type { Graph, HostTensor } from '../model/graph.js';
import type { SegmentationMetadata } from '../model/metadata.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../preprocess/input-tensor.js';
import { resampleBilinear } from '../preprocess/resample.js';
import type { RgbaImage } from '../vis/rgba.js';

/**
 * What a model is fed: its image input's name, size and normalisation, each
 * with where it came from, so that a user can see why a map looks as it
 * does (an ImageNet default on a model trained otherwise, say).
 */
export interface ModelInput {
  /** The graph input the image goes to. */
  name: string;
  /** [height, width] */
  size: [number, number];
  /** The caller's option, the model's declared static shape, its metadata_props 'input_size', or the DeepLab repos' evaluation size. */
  sizeFrom: 'option' | 'model' | 'metadata' | 'default (513x513)';
  /** Per-channel RGB mean and std on the 0..1 scale, as torchvision's Normalize takes them. */
  mean: [number, number, number];
  meanFrom: NormalizationOrigin;
  std: [number, number, number];
  stdFrom: NormalizationOrigin;
}

export type NormalizationOrigin = 'option' | 'metadata' | 'default (ImageNet)';

/** The DeepLab repos' evaluation size, for models whose input size is symbolic and unstated. */
export const DEFAULT_INPUT: [number, number] = [513, 513];

/** The model's one RGB image input, sized and normalised by the options, else the model, else the defaults. */
export function modelInput(
  graph: Graph,
  meta: SegmentationMetadata,
  o: { inputSize?: readonly [number, number]; mean?: readonly number[]; std?: readonly number[] },
): ModelInput {
  if (graph.inputs.length !== 1)
    throw new InputError(`${graph.source || 'model'}: vis needs a model with one image input, this one has ${graph.inputs.length}`);
  const input = graph.inputs[0]!;
  const declared = input.dims ?? [];
  const channels = typeof declared[1] === 'number' && declared[1] > 0 ? declared[1] : 3;
  if (channels !== 3) throw new InputError(`${graph.source || 'model'}: input '${input.name}' has ${channels} channels; vis feeds RGB images (3)`);
  const concrete = declared.length === 4 && declared.every((d) => typeof d === 'number' && d > 0);
  const [size, sizeFrom] = o.inputSize
    ? [o.inputSize, 'option' as const]
    : concrete
      ? [[declared[2] as number, declared[3] as number], 'model' as const]
      : meta.inputSize
        ? [meta.inputSize, 'metadata' as const]
        : [DEFAULT_INPUT, 'default (513x513)' as const];
  const [mean, meanFrom] = normalization(o.mean, meta.mean, IMAGENET_MEAN);
  const [std, stdFrom] = normalization(o.std, meta.std, IMAGENET_STD);
  return { name: input.name, size: [size[0], size[1]], sizeFrom, mean, meanFrom, std, stdFrom };
}

function normalization(
  option: readonly number[] | undefined,
  metadata: readonly number[] | undefined,
  imagenet: readonly number[],
): [[number, number, number], NormalizationOrigin] {
  const [value, from] = option ? [option, 'option' as const] : metadata ? [metadata, 'metadata' as const] : [imagenet, 'default (ImageNet)' as const];
  return [[value[0]!, value[1]!, value[2]!], from];
}

/**
 * The model input as a picture, resampled to `size`: the fitted image,
 * un-normalised (the padding is the mean colour), opaque RGBA.
 */
export function fittedPicture(tensor: HostTensor, size: readonly [number, number], mean: readonly number[], std: readonly number[]): RgbaImage {
  const [, , H, W] = tensor.dims as [number, number, number, number];
  const plane = H * W;
  const rgb = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < plane; p++) rgb[p * 3 + c] = ((tensor.data[c * plane + p] as number) * std[c]! + mean[c]!) * 255;
  }
  const [height, width] = size;
  const out = height === H && width === W ? rgb : resampleBilinear(rgb, H, W, 3, height, width);
  const rgba = new Uint8Array(height * width * 4).fill(255);
  for (let i = 0, j = 0; i < out.length; i += 3, j += 4) {
    for (let c = 0; c < 3; c++) rgba[j + c] = Math.min(255, Math.max(0, Math.round(out[i + c]!)));
  }
  return { width, height, rgba };
}
