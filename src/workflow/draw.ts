import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { ColormapName } from '../vis/colormap.js';
import { featureMaps, type ReductionOrder } from '../vis/feature-map.js';
import { channelGrid } from '../vis/grid.js';
import type { Normalization } from '../vis/normalize.js';
import { parseReduction, type Reduction } from '../vis/reduce.js';
import type { GpuImages, RgbaImage } from '../vis/rgba.js';
import type { TensorLike } from '../vis/tensor.js';

/**
 * One layer's pictures: the recipe's coloured maps (one per tensor,
 * reduction and batch index) and channel grids, in memory. Captured tensors
 * (Visualizer) and saved ones (`segscope vis --tensor`) are drawn by the
 * same code.
 */

/** How every map is drawn: the options that do not depend on the image. */
export interface DrawOptions {
  /** Channel reductions, one picture each: max, mean, sum, min, std, l2, absmax, channel:K (default max and mean, the recipe's pair). */
  reductions?: readonly string[];
  /** Default 'reduce-first' (fast); 'upsample-first' is the recipe's exact order. */
  order?: ReductionOrder;
  /** Default 'jet', OpenCV's COLORMAP_JET. */
  colormap?: ColormapName;
  /** Default 'minmax'. */
  normalize?: Normalization;
  /** One value range across every tensor of a layer (and batch index), so that a glob's maps are comparable. */
  shareRange?: boolean;
  /** Also a montage of the `grid` channels with the largest mean, per tensor. */
  grid?: number;
}

/**
 * The normalisations by the names `segscope vis --normalize` and the
 * explorer give them: a method, and whether one range spans every tensor a
 * layer pattern selects.
 */
export const NORMALIZATION_MODES = {
  minmax: { method: 'minmax', shared: false },
  'p1-99': { method: { percentile: [1, 99] }, shared: false },
  shared: { method: 'minmax', shared: true },
} as const satisfies Record<string, { method: Normalization; shared: boolean }>;
export type NormalizationMode = keyof typeof NORMALIZATION_MODES;

const DEFAULT_REDUCTIONS: readonly string[] = ['max', 'mean'];

/** A tensor's picture: which layer, tensor and batch index it shows. */
interface Shows {
  /** The layer pattern as given ('' for a tensor drawn on its own). */
  layer: string;
  /** The tensor's name. */
  tensor: string;
  /** Its shape, [N,C,H,W]. */
  shape: number[];
  /** Which of its N pictures this is. */
  batchIndex: number;
}

/** A coloured feature map. */
export interface MapPicture extends RgbaImage, Shows {
  /** 'max', 'mean', 'channel:3', … */
  reduce: string;
  /** The value range the colormap spans. */
  range: [number, number];
}

/** A montage of channels. */
export interface GridPicture extends RgbaImage, Shows {
  /** The channel of each tile, row by row. */
  channels: number[];
}

export interface LayerPictures {
  /** The layer pattern as given ('' for a tensor drawn on its own). */
  layer: string;
  /** The tensors the layer pattern selected. */
  tensors: { name: string; shape: number[] }[];
  /** By reduction, then tensor, then batch index. */
  maps: MapPicture[];
  /** With `grid`: by tensor, then batch index. */
  grids: GridPicture[];
}

/** Checks the reductions and the grid against a tensor of `channels` channels; an error starts with `what`. */
export function checkDrawable(o: DrawOptions, channels: number, what: string): void {
  for (const r of o.reductions ?? DEFAULT_REDUCTIONS) {
    try {
      parseReduction(r, channels);
    } catch (e) {
      throw new InputError(`${what}: ${(e as Error).message}`);
    }
  }
  if (o.grid === undefined) return;
  if (!(Number.isSafeInteger(o.grid) && o.grid >= 1)) throw new InputError(`grid ${o.grid}: expected a positive whole number of channels`);
  if (o.grid > channels) throw new InputError(`${what}: grid ${o.grid}: the tensor has only ${channels} channels`);
}

/**
 * Draws one layer's tensors [N,C,H,W] at `size`: a map per tensor,
 * reduction and batch index (blended over `overlay.base` with opacity
 * `overlay.alpha` when given), plus the grids.
 */
export async function drawLayer(
  gpu: Gpu,
  layer: string,
  tensors: readonly { name: string; value: TensorLike }[],
  o: DrawOptions,
  size: readonly [number, number],
  overlay?: { base: GpuImages; alpha: number },
): Promise<LayerPictures> {
  const described = tensors.map((t) => ({ name: t.name, shape: [...t.value.dims] }));
  const shows = (k: number, batchIndex: number): Shows => ({ layer, tensor: described[k]!.name, shape: described[k]!.shape, batchIndex });
  const maps: MapPicture[] = [];
  for (const reduce of o.reductions ?? DEFAULT_REDUCTIONS) {
    const drawn = await featureMaps(
      gpu,
      tensors.map((t) => t.value),
      {
        reduce: reduce as Reduction,
        order: o.order,
        size,
        normalize: o.normalize,
        shareRange: o.shareRange,
        colormap: o.colormap,
        ...(overlay ? { overlay } : {}),
      },
    );
    for (const [k, pictures] of drawn.entries()) {
      for (const [n, { width, height, rgba, range }] of pictures.entries()) maps.push({ ...shows(k, n), reduce, range, width, height, rgba });
    }
  }
  const grids: GridPicture[] = [];
  if (o.grid !== undefined) {
    for (const [k, t] of tensors.entries()) {
      const pictures = await channelGrid(gpu, t.value, { channels: { top: o.grid }, colormap: o.colormap, labels: true });
      for (const [n, { width, height, rgba, channels }] of pictures.entries()) grids.push({ ...shows(k, n), channels, width, height, rgba });
    }
  }
  return { layer, tensors: described, maps, grids };
}
