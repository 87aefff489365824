import { InputError } from '../errors.js';
import { checked, type Gpu } from '../gpu/device.js';
import { flatMain, grid, storage } from '../kernels/wgsl.js';
import { palette as namedPalette, type PaletteName } from './colormap.js';
import type { GpuImages, RgbaImage } from './rgba.js';
import { channelRuns, type ChannelRun } from './reduce.js';
import { binding, bindings, CommandBatch, nchw, record, type StageOptions, type TensorLike } from './tensor.js';

/**
 * The segmentation output: the argmax over the class axis of logits
 * [N,K,H,W] (first maximum wins, as torch.argmax and np.argmax; a NaN
 * counts as the maximum, as both do), coloured with a palette.
 */

export interface SegmentationOptions {
  /** 'voc' (21 classes by default, up to 256), 'cityscapes' (19 train ids), or RGB bytes, 3 per class, at least K classes. */
  palette: PaletteName | Uint8Array;
  /** Classes drawn transparent (RGBA 0,0,0,0), e.g. 0 to leave VOC's background out of an overlay; the class map keeps them. */
  ignore?: number | readonly number[];
}

/** The class index of every pixel on the GPU: u32, [N,1,H,W]. The caller owns `buffer`. */
export interface GpuClassMap {
  readonly buffer: GPUBuffer;
  readonly dims: readonly [number, number, number, number];
  readonly type: 'uint32';
}

export interface GpuSegmentation {
  /** The coloured masks, one per batch index. */
  images: GpuImages;
  classes: GpuClassMap;
}

export interface SegmentationImage extends RgbaImage {
  /** The class index of every pixel, row-major. */
  classes: Uint32Array;
}

/** The palette of K classes packed as one RGBA u32 per class, ignored classes transparent; errors start with `what`. */
export function packPalette(options: SegmentationOptions, K: number, what = 'segmentationMask'): Uint32Array<ArrayBuffer> {
  const p = options?.palette;
  let rgb: Uint8Array;
  if (p instanceof Uint8Array) {
    if (p.length % 3 !== 0 || p.length / 3 < K) {
      throw new InputError(`${what}: a palette of ${p.length} bytes for K=${K} classes: give RGB, 3 bytes per class, at least ${K * 3} bytes`);
    }
    rgb = p;
  } else if (typeof p === 'string') {
    rgb = namedPalette(p, K);
  } else {
    throw new InputError(`${what}: palette must be 'voc', 'cityscapes' or RGB bytes, got ${JSON.stringify(p)}`);
  }
  const ignore = options.ignore === undefined ? [] : typeof options.ignore === 'number' ? [options.ignore] : [...options.ignore];
  const bad = ignore.filter((c) => !Number.isSafeInteger(c) || c < 0 || c >= K);
  if (bad.length) throw new InputError(`${what}: ignore classes ${bad.join(', ')} are out of range: the logits have K=${K} classes (0..${K - 1})`);
  const packed = new Uint32Array(K);
  for (let k = 0; k < K; k++) {
    packed[k] = ignore.includes(k) ? 0 : (rgb[3 * k]! | (rgb[3 * k + 1]! << 8) | (rgb[3 * k + 2]! << 16) | (255 << 24)) >>> 0;
  }
  return packed;
}

const THREADS = 256;

/** On the bits: compilers may fold v != v away. */
export const IS_NAN = 'fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }';

/**
 * One class of the argmax, whose logit is `value` and index `index`, folded
 * into `best`, `arg` and `nan`: strictly greater keeps the first maximum; the
 * first NaN wins and stays (numpy.argmax's rule).
 */
const argmaxStep = (value: string, index: string) => `    let v = ${value};
    if (!nan && (v > best || isNan(v))) {
      nan = isNan(v);
      best = v;
      arg = ${index};
    }`;

/**
 * Argmax over classes of logits [N,K,H,W] and its colours, in one kernel:
 * returns the RGBA masks (palette colour of each pixel's class) and the
 * class map ([N,1,H,W] u32). Records into `batch` when given. The caller
 * owns both buffers.
 */
export function segmentationMask(gpu: Gpu, logits: TensorLike, options: SegmentationOptions, stage: StageOptions = {}): GpuSegmentation {
  const [N, K, H, W] = nchw(gpu, logits, 'segmentationMask', true);
  const packed = packPalette(options, K);
  const HW = H * W;
  const total = N * HW;
  const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'RGBA', 'u32', 'read_write')}
${storage(2, 'CLS', 'u32', 'read_write')}
${storage(3, 'PAL', 'u32', 'read')}
${IS_NAN}
${flatMain(
  THREADS,
  `  if (i >= ${total}u) { return; }
  let base = (i / ${HW}u) * ${K * HW}u + i % ${HW}u;
  var best = X[base];
  var arg = 0u;
  var nan = isNan(best);
  for (var c = 1u; c < ${K}u; c++) {
${argmaxStep(`X[base + c * ${HW}u]`, 'c')}
  }
  CLS[i] = arg;
  RGBA[i] = PAL[arg];`,
)}`;
  const runs = channelRuns(gpu, logits);
  return record(gpu, stage, (batch) => {
    const rgba = batch.buffer(total * 4, 'segmentation rgba');
    const classes = batch.buffer(total * 4, 'segmentation classes');
    const palette = batch.upload(packed, 'segmentation palette');
    if (runs) argmaxInRuns(batch, runs, [K, HW], rgba, classes, palette);
    else batch.dispatch({ label: `segmentation_argmax_${K}x${HW}`, wgsl: code, workgroups: grid(total, THREADS) }, [binding(logits), rgba, classes, palette]);
    return {
      images: { buffer: rgba, count: N, height: H, width: W },
      classes: { buffer: classes, dims: [N, 1, H, W], type: 'uint32' },
    };
  });
}

/**
 * The argmax of logits larger than one binding, over runs of classes
 * (reduce.ts channelRuns): each run carries the best value, its class and
 * whether a NaN was met in [N,H,W] state to the next, so the classes equal
 * the one-pass kernel's; the last run writes the colours.
 */
function argmaxInRuns(
  batch: CommandBatch,
  runs: readonly ChannelRun[],
  [K, HW]: [number, number],
  rgba: GPUBuffer,
  classes: GPUBuffer,
  palette: GPUBuffer,
): void {
  const total = (runs.at(-1)!.image + 1) * HW;
  const best = batch.temporary(total * 4, 'segmentation best logit');
  const nans = batch.temporary(total * 4, 'segmentation NaN seen');
  for (const { image, run, window, shift } of runs) {
    const [first, last] = [run[0] === 0, run[1] === K];
    // Only what this run uses is bound: 'auto' layouts leave out unused bindings.
    const { declarations, buffers } = bindings([
      ['X', 'f32', 'read', window],
      ...(last ? [['RGBA', 'u32', 'read_write', rgba] as const, ['PAL', 'u32', 'read', palette] as const] : []),
      ['CLS', 'u32', 'read_write', classes],
      ...(first && last ? [] : [['BEST', 'f32', 'read_write', best] as const, ['NAN', 'u32', 'read_write', nans] as const]),
    ]);
    const code = `${declarations}
${IS_NAN}
${flatMain(
  THREADS,
  `  if (i >= ${HW}u) { return; }
  let o = ${image * HW}u + i;
  var best = ${first ? `X[${shift}u + i]` : 'BEST[o]'};
  var arg = ${first ? '0u' : 'CLS[o]'};
  var nan = ${first ? 'isNan(best)' : 'NAN[o] != 0u'};
  for (var c = ${first ? 1 : 0}u; c < ${run[1] - run[0]}u; c++) {
${argmaxStep(`X[${shift}u + c * ${HW}u + i]`, `${run[0]}u + c`)}
  }
  CLS[o] = arg;
  ${last ? 'RGBA[o] = PAL[arg];' : 'BEST[o] = best;\n  NAN[o] = select(0u, 1u, nan);'}`,
)}`;
    batch.dispatch({ label: `segmentation_argmax_${K}x${HW}_run`, wgsl: code, workgroups: grid(HW, THREADS) }, buffers);
  }
}

/** Reads a class map back as numbers (in `batch` if given: it is submitted). */
export async function readClassMap(gpu: Gpu, classes: GpuClassMap, batch: CommandBatch = new CommandBatch(gpu)): Promise<Uint32Array> {
  const [N, , H, W] = classes.dims;
  const [raw] = await batch.readAfterSubmit([{ buffer: classes.buffer, bytes: N * H * W * 4 }]);
  return new Uint32Array(raw!);
}

/**
 * The segmentation of logits [N,K,H,W] read back in one submit: per batch
 * index, the coloured mask and the class map. GPU buffers are freed.
 */
export async function segmentation(gpu: Gpu, logits: TensorLike, options: SegmentationOptions): Promise<SegmentationImage[]> {
  const read = await readSegmentation(gpu, 'segmentation', (batch) => segmentationMask(gpu, logits, options, { batch }));
  return read.map(({ mask }) => mask);
}

/**
 * Records a mask stage (`stage`) into a batch of its own and reads back, in
 * one submit, per batch index: the coloured mask, the class map and the
 * `extra` pictures the stage made. Every buffer the stage returned is freed.
 */
export async function readSegmentation<S extends GpuSegmentation>(
  gpu: Gpu,
  what: string,
  stage: (batch: CommandBatch) => S,
  extra: (s: S) => GpuImages[] = () => [],
): Promise<{ mask: SegmentationImage; extra: RgbaImage[] }[]> {
  return checked(gpu, what, async () => {
    const batch = new CommandBatch(gpu);
    let seg: S;
    try {
      seg = stage(batch);
    } catch (e) {
      batch.discard();
      throw e;
    }
    const pictures = [seg.images, ...extra(seg)];
    const { count: N, height: H, width: W } = seg.images;
    const plane = H * W;
    const buffers = [seg.classes.buffer, ...pictures.map((p) => p.buffer)];
    try {
      const [cls, ...raw] = await batch.readAfterSubmit(buffers.map((buffer) => ({ buffer, bytes: N * plane * 4 })));
      const classes = new Uint32Array(cls!);
      const colours = raw.map((r) => new Uint8Array(r));
      const picture = (k: number, n: number): RgbaImage => ({ width: W, height: H, rgba: colours[k]!.subarray(n * plane * 4, (n + 1) * plane * 4) });
      return Array.from({ length: N }, (_, n) => ({
        mask: { ...picture(0, n), classes: classes.subarray(n * plane, (n + 1) * plane) },
        extra: colours.slice(1).map((_, k) => picture(k + 1, n)),
      }));
    } finally {
      for (const b of buffers) b.destroy();
    }
  });
}
