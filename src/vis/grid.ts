import { InputError } from '../errors.js';
import { checked, type Gpu } from '../gpu/device.js';
import { flatMain, grid, storage } from '../kernels/wgsl.js';
import { colormap, type ColormapName } from './colormap.js';
import { LABEL_WGSL } from './digits.js';
import { normalize, type Normalization } from './normalize.js';
import { resize, resizeGeometry, type ResizeMode } from './resize.js';
import { packLut, type GpuImages, type RgbaImage } from './rgba.js';
import { binding, CommandBatch, nchw, record, type GpuTensor, type StageOptions, type TensorLike } from './tensor.js';

/**
 * Channel montages (`grid`): tiles of single channels of an [N,C,h,w]
 * feature map, each normalised and coloured, laid out row by row with a gap
 * between tiles, each labelled with its channel index in its top-left
 * corner (white digits on a black box, drawn by the kernel from a built-in
 * 3x5 font, digits.ts). One picture per batch index.
 */

/** Which channels: an inclusive range [from, to] (`channels:0-15` is [0, 15]), or the K with the largest mean activation. */
export type GridChannels = readonly [number, number] | { readonly top: number };

export interface MontageOptions {
  /** Each tile's [height, width] (default: the map's own size; otherwise resized like `resize`). */
  tileSize?: readonly [number, number];
  /** Resize mode for tileSize (default 'bilinear'). */
  mode?: ResizeMode;
  /** Bilinear only (default false, PyTorch's default). */
  alignCorners?: boolean;
  /** Tiles per row (default ceil(sqrt(tiles)); at most the number of tiles). */
  columns?: number;
  /** 'tile' (default): every tile its own range; 'shared': one range for all tiles of a picture (per batch index). */
  normalize?: 'tile' | 'shared';
  /** How that range is found (default 'minmax'; percentile or fixed ranges as in normalize.ts). */
  method?: Normalization;
  /** A colormap by name (default 'jet'), or `lut`: a 256-entry RGB or RGBA table. */
  colormap?: ColormapName;
  lut?: Uint8Array;
  /** Pixels between tiles (default 2). */
  gap?: number;
  /** Draw each tile's channel index (default true). */
  labels?: boolean;
  /** Pixels per font unit of the labels (default max(1, floor(min(tile h, tile w) / 48))). */
  labelScale?: number;
  /** RGBA of the gaps and empty cells (default opaque black). */
  background?: readonly [number, number, number, number];
}

export interface ChannelGridOptions extends MontageOptions {
  channels: GridChannels;
}

/** Where the tiles lie in a montage. */
export interface GridLayout {
  tiles: number;
  columns: number;
  rows: number;
  tileSize: [number, number];
  gap: number;
  /** The montage's [height, width]. */
  size: [number, number];
  labelScale: number;
}

/** The montage images on the GPU, with their layout and each picture's channel list. */
export interface GpuGrid extends GpuImages {
  layout: GridLayout;
  channels: number[][];
}

export interface ChannelGridImage extends RgbaImage {
  /** The channel of each tile, in tile order (row by row). */
  channels: number[];
  layout: GridLayout;
  /** With `{ top: K }`: every channel's mean activation for this batch index (C values). */
  means?: Float32Array;
}

/** The top-left pixel [y, x] of tile k. */
export function tileOrigin(layout: GridLayout, k: number): [number, number] {
  const [th, tw] = layout.tileSize;
  return [Math.floor(k / layout.columns) * (th + layout.gap), (k % layout.columns) * (tw + layout.gap)];
}

const isCount = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/** The montage geometry of `tiles` tiles of a [h, w] map (options checked). */
export function gridLayout(tiles: number, [h, w]: readonly [number, number], o: MontageOptions = {}): GridLayout {
  const tileSize = o.tileSize ?? [h, w];
  resizeGeometry([h, w], { size: tileSize, mode: o.mode, alignCorners: o.alignCorners });
  if (o.columns !== undefined && !isCount(o.columns, 1)) throw new InputError(`grid: columns must be a positive integer, got ${o.columns}`);
  const gap = o.gap ?? 2;
  if (!isCount(gap, 0)) throw new InputError(`grid: gap must be a non-negative integer of pixels, got ${gap}`);
  if (o.labelScale !== undefined && !isCount(o.labelScale, 1)) throw new InputError(`grid: labelScale must be a positive integer, got ${o.labelScale}`);
  const columns = Math.min(o.columns ?? Math.ceil(Math.sqrt(tiles)), tiles);
  const rows = Math.ceil(tiles / columns);
  const [th, tw] = tileSize;
  return {
    tiles,
    columns,
    rows,
    tileSize: [th, tw],
    gap,
    size: [rows * th + (rows - 1) * gap, columns * tw + (columns - 1) * gap],
    labelScale: o.labelScale ?? Math.max(1, Math.floor(Math.min(th, tw) / 48)),
  };
}

/** The channels of an inclusive range, checked against C. */
export function channelRange(range: readonly [number, number], channels: number): number[] {
  const [from, to] = range;
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to < from || to >= channels) {
    throw new InputError(
      `grid: channels [${from}, ${to}] are out of range: the tensor has C=${channels} channels (0..${channels - 1}); give integers 0 <= from <= to < C`,
    );
  }
  return Array.from({ length: to - from + 1 }, (_, k) => from + k);
}

const THREADS = 256;

/**
 * The mean activation of every channel of [N,C,H,W] over H x W: a new
 * [N,C] tensor (one workgroup per channel, a tree sum in f32).
 */
export function channelMeans(gpu: Gpu, t: TensorLike, options: StageOptions = {}): GpuTensor {
  const [N, C, H, W] = nchw(gpu, t, 'channelMeans');
  const HW = H * W;
  const rows = N * C;
  const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'f32', 'read_write')}
var<workgroup> s: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) l: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= ${rows}u) { return; }
  var acc = 0.0f;
  for (var e = l; e < ${HW}u; e += ${THREADS}u) { acc += X[row * ${HW}u + e]; }
  s[l] = acc;
  for (var k = ${THREADS / 2}u; k > 0u; k >>= 1u) {
    workgroupBarrier();
    if (l < k) { s[l] += s[l + k]; }
  }
  if (l == 0u) { Y[row] = s[0] / ${HW}.0f; }
}`;
  return record(gpu, options, (batch) => {
    const out = batch.buffer(rows * 4, 'channel means');
    batch.dispatch({ label: `channel_means_${C}x${HW}`, wgsl: code, workgroups: grid(rows * THREADS, THREADS) }, [binding(t), out]);
    return { buffer: out, dims: [N, C] };
  });
}

/**
 * The K channels with the largest mean activation per batch index, largest
 * first (equal means: lower channel first; NaN means last). Reads back only
 * the N x C means.
 */
export async function topChannels(gpu: Gpu, t: TensorLike, k: number): Promise<{ channels: number[][]; means: Float32Array[] }> {
  const [N, C] = nchw(gpu, t, 'topChannels');
  if (!isCount(k, 1) || k > C) throw new InputError(`grid: top K=${k} needs an integer 1 <= K <= C: the tensor has C=${C} channels`);
  const batch = new CommandBatch(gpu);
  const means = channelMeans(gpu, t, { batch });
  let raw: ArrayBuffer;
  try {
    [raw] = (await batch.readAfterSubmit([{ buffer: means.buffer, bytes: N * C * 4 }])) as [ArrayBuffer];
  } finally {
    means.buffer.destroy();
  }
  const all = new Float32Array(raw);
  const key = (v: number) => (Number.isNaN(v) ? -Infinity : v);
  const perImage = Array.from({ length: N }, (_, n) => all.slice(n * C, (n + 1) * C));
  const channels = perImage.map((m) =>
    Array.from({ length: C }, (_, c) => c)
      .sort((a, b) => key(m[b]!) - key(m[a]!) || (Number.isNaN(m[a]!) ? 1 : 0) - (Number.isNaN(m[b]!) ? 1 : 0) || a - b)
      .slice(0, k),
  );
  return { channels, means: perImage };
}

const packColour = (rgba: readonly number[], what: string): number => {
  if (rgba.length !== 4 || rgba.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) {
    throw new InputError(`grid: ${what} must be [r, g, b, a] with integers 0..255, got ${JSON.stringify(rgba)}`);
  }
  return (rgba[0]! | (rgba[1]! << 8) | (rgba[2]! << 16) | (rgba[3]! << 24)) >>> 0;
};

/**
 * Records the montage of the given channels of [N,C,h,w]: `channels[n]` is
 * batch index n's tile list (or one list for all), all lists of one length.
 * Gathers the channels, resizes them to the tile size, normalises them
 * (per tile or shared), then one kernel colours and lays out the tiles and
 * draws the labels. The caller owns the returned buffer.
 */
export function channelMontage(
  gpu: Gpu,
  t: TensorLike,
  channels: readonly (readonly number[])[],
  options: MontageOptions = {},
  stage: StageOptions = {},
): GpuGrid {
  const [N, C, h, w] = nchw(gpu, t, 'grid');
  if (options.lut && options.colormap) throw new InputError('grid: give colormap or lut, not both');
  const lists = channels.length === 1 ? Array.from({ length: N }, () => [...channels[0]!]) : channels.map((l) => [...l]);
  const K = lists[0]?.length ?? 0;
  if (lists.length !== N || K === 0 || lists.some((l) => l.length !== K)) {
    throw new InputError(
      `grid: expected 1 or N=${N} non-empty channel lists of one length, got ${channels.length} lists of lengths ${channels.map((l) => l.length).join(', ')}`,
    );
  }
  const bad = lists.flat().filter((c) => !Number.isSafeInteger(c) || c < 0 || c >= C);
  if (bad.length) throw new InputError(`grid: channels ${[...new Set(bad)].join(', ')} are out of range: the tensor has C=${C} channels (0..${C - 1})`);
  const mode = options.normalize ?? 'tile';
  if (mode !== 'tile' && mode !== 'shared') throw new InputError(`grid: normalize must be 'tile' or 'shared', got '${String(mode)}'`);
  const layout = gridLayout(K, [h, w], options);
  const lut = packLut(options.lut ?? colormap(options.colormap ?? 'jet'));
  const background = packColour(options.background ?? [0, 0, 0, 255], 'background');
  const [th, tw] = layout.tileSize;
  const [H, W] = layout.size;
  const total = N * H * W;
  const gather = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'f32', 'read_write')}
${storage(2, 'CH', 'u32', 'read')}
${flatMain(
  THREADS,
  `  if (i >= ${N * K * h * w}u) { return; }
  let tile = i / ${h * w}u;
  Y[i] = X[((tile / ${K}u) * ${C}u + CH[tile]) * ${h * w}u + i % ${h * w}u];`,
)}`;
  const compose = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'u32', 'read_write')}
${storage(2, 'CH', 'u32', 'read')}
${storage(3, 'LUT', 'u32', 'read')}
${LABEL_WGSL}
${flatMain(
  THREADS,
  `  if (i >= ${total}u) { return; }
  let n = i / ${H * W}u;
  let p = i % ${H * W}u;
  let y = p / ${W}u;
  let x = p % ${W}u;
  let ly = y % ${th + layout.gap}u;
  let lx = x % ${tw + layout.gap}u;
  let k = (y / ${th + layout.gap}u) * ${layout.columns}u + x / ${tw + layout.gap}u;
  var colour = ${background}u;
  if (ly < ${th}u && lx < ${tw}u && k < ${K}u) {
    let v = X[((n * ${K}u + k) * ${th}u + ly) * ${tw}u + lx];
    colour = LUT[select(0u, u32(clamp(floor(255.0f * v), 0.0f, 255.0f)), v == v)];
    if (${options.labels !== false}) {
      let ink = labelPixel(CH[n * ${K}u + k], lx, ly, ${layout.labelScale}u);
      if (ink == 1u) { colour = 0xff000000u; }
      if (ink == 2u) { colour = 0xffffffffu; }
    }
  }
  Y[i] = colour;`,
)}`;
  return record(gpu, stage, (batch) => {
    const ids = batch.upload(Uint32Array.from(lists.flat()), 'grid channels');
    const gathered = batch.temporary(N * K * h * w * 4, 'grid tiles');
    batch.dispatch({ label: `grid_gather_${C}x${h}x${w}_${K}`, wgsl: gather, workgroups: grid(N * K * h * w, THREADS) }, [binding(t), gathered, ids]);
    let tiles: GpuTensor = { buffer: gathered, dims: [N, K, h, w] };
    if (th !== h || tw !== w) {
      tiles = resize(gpu, tiles, { size: [th, tw], mode: options.mode, alignCorners: options.alignCorners }, { batch });
      batch.adopt(tiles.buffer);
    }
    // Per tile: each tile its own map ([N·K,1,th,tw]); shared: each picture one map.
    const view = mode === 'tile' ? { buffer: tiles.buffer, dims: [N * K, 1, th, tw] } : tiles;
    const normalized = batch.adopt(normalize(gpu, view, options.method ?? 'minmax', { batch }).buffer);
    const out = batch.buffer(total * 4, 'grid');
    batch.dispatch({ label: `grid_compose_${K}_${th}x${tw}`, wgsl: compose, workgroups: grid(total, THREADS) }, [
      normalized,
      out,
      ids,
      batch.upload(lut, 'grid LUT'),
    ]);
    return { buffer: out, count: N, height: H, width: W, layout, channels: lists };
  });
}

/**
 * The `grid` montage of an [N,C,h,w] feature map, one RGBA picture per
 * batch index, read back once, e.g.
 * `channelGrid(gpu, aspp, { channels: { top: 16 }, tileSize: [64, 64] })` or
 * `channelGrid(gpu, t, { channels: [0, 15] })`. With `{ top: K }` the
 * channel means are computed on the GPU and only they are read back before
 * the montage is drawn. Out-of-range channels or K > C: InputError.
 */
export async function channelGrid(gpu: Gpu, t: TensorLike, options: ChannelGridOptions): Promise<ChannelGridImage[]> {
  const [N, C] = nchw(gpu, t, 'grid');
  const sel = options.channels;
  return checked(gpu, 'grid', async () => {
    let lists: number[][];
    let means: Float32Array[] | undefined;
    if (Array.isArray(sel)) lists = [channelRange(sel as readonly [number, number], C)];
    else if (sel && typeof sel === 'object' && 'top' in sel) ({ channels: lists, means } = await topChannels(gpu, t, sel.top));
    else throw new InputError(`grid: channels must be [from, to] or { top: K }, got ${JSON.stringify(sel)}`);
    const batch = new CommandBatch(gpu);
    let images: GpuGrid;
    try {
      images = channelMontage(gpu, t, lists, options, { batch });
    } catch (e) {
      batch.discard();
      throw e;
    }
    const [H, W] = images.layout.size;
    try {
      const [raw] = await batch.readAfterSubmit([{ buffer: images.buffer, bytes: N * H * W * 4 }]);
      const all = new Uint8Array(raw!);
      return Array.from(
        { length: N },
        (_, n): ChannelGridImage => ({
          width: W,
          height: H,
          rgba: all.subarray(n * H * W * 4, (n + 1) * H * W * 4),
          channels: images.channels[n]!,
          layout: images.layout,
          ...(means ? { means: means[n]! } : {}),
        }),
      );
    } finally {
      images.buffer.destroy();
    }
  });
}
