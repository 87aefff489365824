import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { flatMain, grid, storage } from '../kernels/wgsl.js';
import { binding, nchw, record, type CommandBatch, type GpuTensor, type TensorLike, type StageOptions } from './tensor.js';

/**
 * Spatial resize of [N,C,h,w] to [N,C,H,W], equal to
 * `torch.nn.functional.interpolate(x, size=(H, W), mode=..., align_corners=...)`:
 * `bilinear` with align_corners False (PyTorch's default) or True, and
 * `nearest` (PyTorch's legacy nearest: source index floor(dst * in/out)).
 * The per-axis source indices and weights are computed on the CPU with
 * ATen's arithmetic (UpSample.h) and uploaded as a small table; the kernel
 * interpolates in f32 in ATen's order.
 *
 * `opencv-linear` is OpenCV's `cv2.resize(x, (W, H))` with INTER_LINEAR on
 * float32 planes (pytorch-grad-cam's scale_cam_image): see opencvAxisTaps.
 */
export type ResizeMode = 'bilinear' | 'nearest' | 'opencv-linear';

export const RESIZE_MODES: readonly ResizeMode[] = ['bilinear', 'nearest', 'opencv-linear'];

export interface ResizeOptions {
  /** Output [height, width]. */
  size: readonly [number, number];
  /** Default 'bilinear'. */
  mode?: ResizeMode;
  /** Bilinear only, as in PyTorch (default false). */
  alignCorners?: boolean;
}

/** Resolved resize geometry. */
export interface ResizeGeometry {
  input: [number, number];
  output: [number, number];
  mode: ResizeMode;
  alignCorners: boolean;
}

export function resizeGeometry(input: readonly [number, number], options: ResizeOptions): ResizeGeometry {
  const mode = options.mode ?? 'bilinear';
  if (!RESIZE_MODES.includes(mode)) throw new InputError(`resize: unknown mode '${String(mode)}' (use ${RESIZE_MODES.map((m) => `'${m}'`).join(', ')})`);
  const size = options.size;
  if (!Array.isArray(size) || size.length !== 2 || size.some((s) => !Number.isSafeInteger(s) || s < 1)) {
    throw new InputError(`resize: size must be [height, width] with positive integers, got ${JSON.stringify(size)}`);
  }
  const alignCorners = options.alignCorners ?? false;
  if (alignCorners && mode === 'nearest') {
    throw new InputError('resize: alignCorners applies to bilinear only (PyTorch refuses align_corners with nearest)');
  }
  if (alignCorners && mode === 'opencv-linear') throw new InputError('resize: alignCorners applies to bilinear only (cv2.resize has no align_corners)');
  return { input: [input[0], input[1]], output: [size[0], size[1]], mode, alignCorners };
}

const f32 = Math.fround;

/**
 * Source indices and weights of every output coordinate of one axis, four
 * u32 per coordinate: i0, i1, bits of w0, bits of w1 (value = w0·x[i0] + w1·x[i1]).
 * The arithmetic of ATen's CPU kernel (UpSample.h, torch 1.13): the scale
 * in float, the source index in double, the weights rounded to float and
 * w0 = 1 - w1 in float.
 */
export function axisTaps(input: number, output: number, mode: ResizeMode, alignCorners: boolean): Uint32Array<ArrayBuffer> {
  const table = new Uint32Array(output * 4);
  const weights = new Float32Array(table.buffer);
  for (let o = 0; o < output; o++) {
    let i0: number;
    let i1: number;
    let w1 = 0;
    if (mode === 'nearest') {
      // nearest_idx: identity, halving, or floorf(dst * scale) with scale = float(in) / out.
      if (output === input) i0 = o;
      else if (output === 2 * input) i0 = o >> 1;
      else i0 = Math.min(Math.floor(f32(o * f32(input / output))), input - 1);
      i1 = i0;
    } else if (output === input) {
      i0 = i1 = o;
    } else {
      // area_pixel_compute_scale in float; the source index and lambda in
      // double (ATen's CPU accscalar_t), lambdas stored as float.
      let real: number;
      if (alignCorners) {
        real = (output > 1 ? f32((input - 1) / (output - 1)) : 0) * o;
      } else {
        real = Math.max(f32(input / output) * (o + 0.5) - 0.5, 0);
      }
      i0 = Math.trunc(real);
      i1 = i0 + (i0 < input - 1 ? 1 : 0);
      w1 = f32(Math.min(Math.max(real - i0, 0), 1));
    }
    table[o * 4] = i0;
    table[o * 4 + 1] = i1;
    weights[o * 4 + 2] = f32(1 - w1);
    weights[o * 4 + 3] = w1;
  }
  return table;
}

/**
 * The taps of one axis of OpenCV's INTER_LINEAR on float32 (imgproc
 * resize.cpp: resize -> resizeGeneric_ with HResizeLinear and VResizeLinear,
 * float coefficients), in the table layout of axisTaps: scale = 1 / (out/in)
 * in double; f = float32((o + 0.5) * scale - 0.5); s = floor(f);
 * f = float32(f - s); weights 1 - f and f in float32. Along x
 * (`clampWeights`) a source position left of the first pixel is (s, f) =
 * (0, 0) and one at or right of the last is (in - 1, 0): the edge pixel
 * itself. Along y only the two row indices are clipped into [0, in - 1]
 * (clip(s), clip(s + 1)) and the weights stay (1 - f, f), so an edge row is
 * S·(1 - f) + S·f, which can differ from S by an ulp.
 */
export function opencvAxisTaps(input: number, output: number, clampWeights: boolean): Uint32Array<ArrayBuffer> {
  const table = new Uint32Array(output * 4);
  const weights = new Float32Array(table.buffer);
  const scale = 1 / (output / input);
  const clip = (i: number) => Math.min(Math.max(i, 0), input - 1);
  for (let o = 0; o < output; o++) {
    let f = f32((o + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = f32(f - s);
    if (clampWeights && s < 0) [s, f] = [0, 0];
    if (clampWeights && s >= input - 1) [s, f] = [input - 1, 0];
    table[o * 4] = clip(s);
    table[o * 4 + 1] = clip(s + 1);
    weights[o * 4 + 2] = f32(1 - f);
    weights[o * 4 + 3] = f;
  }
  return table;
}

/**
 * The taps of both axes in one table: rows (H entries) then columns (W
 * entries); for `opencv-linear` one more u32, a zero the kernel reads at run
 * time (samplerWgsl).
 */
export function tapsTable(g: ResizeGeometry): Uint32Array<ArrayBuffer> {
  const opencv = g.mode === 'opencv-linear';
  const rows = opencv ? opencvAxisTaps(g.input[0], g.output[0], false) : axisTaps(g.input[0], g.output[0], g.mode, g.alignCorners);
  const cols = opencv ? opencvAxisTaps(g.input[1], g.output[1], true) : axisTaps(g.input[1], g.output[1], g.mode, g.alignCorners);
  const table = new Uint32Array(rows.length + cols.length + (opencv ? 1 : 0));
  table.set(rows);
  table.set(cols, rows.length);
  return table;
}

/**
 * WGSL for a kernel that samples input planes of `g.input` at output pixels:
 * `setTaps(oy, ox)` picks the pixel (reads table `T`), then
 * `interp(base)` is the resized value of the plane starting at `base`.
 */
export function samplerWgsl(g: ResizeGeometry, table: string): string {
  const [, w] = g.input;
  const H = g.output[0];
  if (g.mode === 'nearest') {
    return `var<private> o00: u32;
fn setTaps(oy: u32, ox: u32) {
  o00 = ${table}[oy * 4u] * ${w}u + ${table}[(${H}u + ox) * 4u];
}
fn interp(base: u32) -> f32 { return X[base + o00]; }`;
  }
  // ATen's order: along the width t = x[i0]·w0 + x[i1]·w1, then the two rows
  // combined the same way; its AVX2 build contracts each to fma(x0, w0, x1·w1),
  // and so does this (bit-exact to torch 1.13 on x86-64 CPUs).
  // OpenCV's (HResizeLinear then VResizeLinear, SSE baseline) rounds every
  // product before the sum, never an fma: each product goes through its bits
  // OR a zero read from the table at run time, which no compiler can contract.
  const opencv = g.mode === 'opencv-linear';
  const sum = (x0: string, w0: string, x1: string, w1: string) => (opencv ? `exact(${x0} * ${w0}) + exact(${x1} * ${w1})` : `fma(${x0}, ${w0}, ${x1} * ${w1})`);
  return `var<private> o00: u32;
var<private> o01: u32;
var<private> o10: u32;
var<private> o11: u32;
var<private> wy0: f32;
var<private> wy1: f32;
var<private> wx0: f32;
var<private> wx1: f32;${
    opencv
      ? `
var<private> zero: u32;
fn exact(v: f32) -> f32 { return bitcast<f32>(bitcast<u32>(v) | zero); }`
      : ''
  }
fn setTaps(oy: u32, ox: u32) {
  let ty = oy * 4u;
  let tx = (${H}u + ox) * 4u;
  let r0 = ${table}[ty] * ${w}u;
  let r1 = ${table}[ty + 1u] * ${w}u;
  let x0 = ${table}[tx];
  let x1 = ${table}[tx + 1u];
  o00 = r0 + x0;
  o01 = r0 + x1;
  o10 = r1 + x0;
  o11 = r1 + x1;
  wy0 = bitcast<f32>(${table}[ty + 2u]);
  wy1 = bitcast<f32>(${table}[ty + 3u]);
  wx0 = bitcast<f32>(${table}[tx + 2u]);
  wx1 = bitcast<f32>(${table}[tx + 3u]);${
    opencv
      ? `
  zero = ${table}[${(H + g.output[1]) * 4}u];`
      : ''
  }
}
fn interp(base: u32) -> f32 {
  let t0 = ${sum('X[base + o00]', 'wx0', 'X[base + o01]', 'wx1')};
  let t1 = ${sum('X[base + o10]', 'wx0', 'X[base + o11]', 'wx1')};
  return ${sum('t0', 'wy0', 't1', 'wy1')};
}`;
}

/** Uploads the taps table of `g` as a temporary of `batch`. */
export const uploadTaps = (batch: CommandBatch, g: ResizeGeometry): GPUBuffer => batch.upload(tapsTable(g), 'resize taps');

const THREADS = 256;

/** Resizes [N,C,h,w] to [N,C,H,W] (a new tensor; the caller owns its buffer). */
export function resize(gpu: Gpu, t: TensorLike, options: ResizeOptions, opts: StageOptions = {}): GpuTensor {
  const [N, C, h, w] = nchw(gpu, t, 'resize');
  const g = resizeGeometry([h, w], options);
  const [H, W] = g.output;
  const total = N * C * H * W;
  const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'f32', 'read_write')}
${storage(2, 'T', 'u32', 'read')}
${samplerWgsl(g, 'T')}
${flatMain(
  THREADS,
  `  if (i >= ${total}u) { return; }
  let p = i % ${H * W}u;
  setTaps(p / ${W}u, p % ${W}u);
  Y[i] = interp((i / ${H * W}u) * ${h * w}u);`,
)}`;
  return record(gpu, opts, (batch) => {
    const out = batch.buffer(total * 4, 'resize');
    batch.dispatch({ label: `resize_${g.mode}_${h}x${w}_to_${H}x${W}`, wgsl: code, workgroups: grid(total, THREADS) }, [binding(t), out, uploadTaps(batch, g)]);
    return { buffer: out, dims: [N, C, H, W] };
  });
}
