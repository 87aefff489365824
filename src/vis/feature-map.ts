import { InputError } from '../errors.js';
import { checked, type Gpu } from '../gpu/device.js';
import { colormap, type ColormapName } from './colormap.js';
import { combineRanges, normalize, valueRange, type GpuRange, type Normalization } from './normalize.js';
import { reduceChannels, type Reduction } from './reduce.js';
import { reduceResized } from './reduce-resized.js';
import { resize, resizeGeometry, type ResizeMode } from './resize.js';
import { overlay } from './compose.js';
import { toRGBA, type GpuImages, type RgbaImage } from './rgba.js';
import { CommandBatch, nchw, type GpuTensor, type TensorLike } from './tensor.js';

/** The recipe's two orders: reduce then upsample (fast, default), or upsample then reduce (exact, fused). */
export type ReductionOrder = 'reduce-first' | 'upsample-first';

export interface FeatureMapOptions {
  /** Channel reduction (default 'max'). */
  reduce?: Reduction;
  /** Default 'reduce-first'. */
  order?: ReductionOrder;
  /** Output [height, width], e.g. the input image's size (default: the tensor's own size, no resize). */
  size?: readonly [number, number];
  /** Default 'bilinear'. */
  mode?: ResizeMode;
  /** Bilinear only (default false, PyTorch's default). */
  alignCorners?: boolean;
  /** Default 'minmax' (the recipe's). */
  normalize?: Normalization;
  /** One range for every batch index (and, in featureMaps, every tensor), so the pictures are comparable. */
  shareRange?: boolean;
  /** A colormap by name (colormap.ts: 'jet' = OpenCV's COLORMAP_JET, 'viridis', 'gray', '<name>_r'…). Default 'jet', the recipe's. */
  colormap?: ColormapName;
  /** Or a 256-entry RGB (768 bytes) or RGBA (1024 bytes) colour table of your own. */
  lut?: Uint8Array;
  /** Also return the normalised map (float32 in [0, 1], height x width) of each image. */
  keepNormalized?: boolean;
  /**
   * Blend the coloured maps over `base` (one image, or one per batch index)
   * with weight `alpha`, as compose.ts overlay does, in the same submit: the
   * pictures returned are the blends.
   */
  overlay?: { base: GpuImages; alpha: number };
}

export interface FeatureMapImage extends RgbaImage {
  /** The value range that mapped to 0 and 1 (the map's own, or the shared one). */
  range: [number, number];
  normalized?: Float32Array;
}

/** The reduced, resized [N,1,H,W] map of `t` (recorded into `batch`; the caller owns it). */
function reducedMap(gpu: Gpu, t: TensorLike, o: FeatureMapOptions, batch: CommandBatch): GpuTensor {
  const order = o.order ?? 'reduce-first';
  if (order !== 'reduce-first' && order !== 'upsample-first')
    throw new InputError(`featureMap: unknown order '${String(order)}' (use 'reduce-first' or 'upsample-first')`);
  // Reducing first reads a tensor larger than one binding in runs of channels; the fused upsample-first kernel cannot.
  const splits = order === 'reduce-first';
  const what = splits ? 'featureMap' : "featureMap (order 'upsample-first' reads the whole tensor at once; 'reduce-first' reads it in runs of channels)";
  const [, , h, w] = nchw(gpu, t, what, splits);
  const reduction = o.reduce ?? 'max';
  const size = o.size ?? [h, w];
  const resizing = { size, mode: o.mode, alignCorners: o.alignCorners };
  resizeGeometry([h, w], resizing); // checks the options
  // Resizing to the same size copies, in PyTorch too.
  if (size[0] === h && size[1] === w) return reduceChannels(gpu, t, reduction, { batch });
  if (order === 'upsample-first') return reduceResized(gpu, t, reduction, resizing, { batch });
  const reduced = batch.adopt(reduceChannels(gpu, t, reduction, { batch }).buffer);
  return resize(gpu, { buffer: reduced, dims: [t.dims[0]!, 1, h, w] }, resizing, { batch });
}

/** Records the whole recipe for every tensor; every buffer it makes is a temporary of `batch`. */
function recordRecipe(gpu: Gpu, tensors: readonly TensorLike[], options: FeatureMapOptions, lut: Uint8Array, batch: CommandBatch) {
  const normalization = options.normalize ?? 'minmax';
  const adopt = <T extends { buffer: GPUBuffer }>(t: T): T => {
    batch.adopt(t.buffer);
    return t;
  };
  const maps = tensors.map((t) => adopt(reducedMap(gpu, t, options, batch)));
  const own = maps.map((m) => adopt(valueRange(gpu, m, normalization, { batch })));
  const shared = options.shareRange ? adopt(combineRanges(gpu, own, { batch })) : undefined;
  const ranges: GpuRange[] = maps.map((_, k) => shared ?? own[k]!);
  const normalized = maps.map((m, k) => adopt(normalize(gpu, m, ranges[k]!, { batch })));
  const coloured = normalized.map((m) => adopt(toRGBA(gpu, m, lut, { batch })));
  const on = options.overlay;
  const images = on ? coloured.map((im) => adopt(overlay(gpu, on.base, im, on.alpha, { batch }))) : coloured;
  const reads = maps.flatMap((m, k) => {
    const pixels = m.dims[0]! * m.dims[2]! * m.dims[3]!;
    return [
      { buffer: images[k]!.buffer, bytes: pixels * 4 },
      { buffer: ranges[k]!.buffer, bytes: ranges[k]!.count * 8 },
      ...(options.keepNormalized ? [{ buffer: normalized[k]!.buffer, bytes: pixels * 4 }] : []),
    ];
  });
  return { maps, ranges, reads };
}

/**
 * The recipe on several captured tensors at once: reduce over channels,
 * resize, normalise, colour. One command encoder and one submit for all of
 * it; the only read-back is the pictures and their ranges (and the
 * normalised maps if asked). Returns, per tensor, one image per batch index.
 */
export async function featureMaps(gpu: Gpu, tensors: readonly TensorLike[], options: FeatureMapOptions = {}): Promise<FeatureMapImage[][]> {
  if (options.lut && options.colormap) throw new InputError('featureMap: give colormap or lut, not both');
  const lut = options.lut ?? colormap(options.colormap ?? 'jet');
  return checked(gpu, 'featureMap', async () => {
    const batch = new CommandBatch(gpu);
    let recorded: ReturnType<typeof recordRecipe>;
    try {
      recorded = recordRecipe(gpu, tensors, options, lut, batch);
    } catch (e) {
      batch.discard();
      throw e;
    }
    const { maps, ranges, reads } = recorded;
    const raw = await batch.readAfterSubmit(reads);
    const per = options.keepNormalized ? 3 : 2;
    return maps.map((m, k) => {
      const [N, , H, W] = m.dims as [number, number, number, number];
      const rgba = new Uint8Array(raw[k * per]!);
      const range = new Float32Array(raw[k * per + 1]!);
      const values = options.keepNormalized ? new Float32Array(raw[k * per + 2]!) : undefined;
      return Array.from({ length: N }, (_, n): FeatureMapImage => {
        const r = ranges[k]!.count === 1 ? 0 : n;
        return {
          width: W,
          height: H,
          rgba: rgba.subarray(n * H * W * 4, (n + 1) * H * W * 4),
          range: [range[r * 2]!, range[r * 2 + 1]!],
          ...(values ? { normalized: values.subarray(n * H * W, (n + 1) * H * W) } : {}),
        };
      });
    });
  });
}

/**
 * The recipe on one captured tensor ([N,C,h,w], e.g. ASPP's [1,256,33,33]):
 * one picture per batch index, e.g.
 * `featureMap(gpu, aspp, { reduce: 'mean', size: [513, 513], colormap: 'jet' })`.
 */
export async function featureMap(gpu: Gpu, tensor: TensorLike, options: FeatureMapOptions = {}): Promise<FeatureMapImage[]> {
  return (await featureMaps(gpu, [tensor], options))[0]!;
}
