import { ModelError, UnsupportedOpError } from '../errors.js';
import { axis as normaliseAxis } from '../model/dims.js';
import type { Node } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import { axisCoordinates } from '../kernels/wgsl.js';
import { constInts } from './inputs.js';
import { type BindingLimits, type Run, runWindow, shifted, splitUnits, type Strided } from '../kernels/split.js';
import { param, type Kernel, type KernelBinding } from '../kernels/types.js';
import type { OpImpl, OpInput, TensorType } from './types.js';
import {
  collapseAxes,
  converted,
  flatMain,
  fromStorage,
  gpuElementBytes,
  grid,
  range,
  storage,
  stridedIndex,
  strides,
  toStorage,
  wgslType,
} from '../kernels/wgsl.js';

/**
 * Resize (opsets 10–19) and Upsample (7–9), as ONNX defines them and
 * PyTorch's F.interpolate exports them. Each output coordinate of a resized
 * axis reads a few input coordinates ("taps") with weights: one for nearest,
 * two for linear, four for cubic. Linear taps of the transforms PyTorch has
 * (half_pixel, pytorch_half_pixel, align_corners, asymmetric) are PyTorch's,
 * bit for bit (linearSource), and the kernel computes them itself, in integer
 * arithmetic that gives those bits on any adapter; the other taps are
 * computed here on the CPU in float64 from the file's float32 scales and
 * uploaded as tables. The kernel sums over the taps of every resized axis
 * (n-linear, n-cubic), or just gathers for nearest.
 */

const THREADS = 256;

/** One axis of the resize. */
export interface Axis {
  input: number;
  output: number;
  /** The scale the coordinate transforms divide by: the given scale, or output/input when sizes are given. */
  scale: number;
  /** The output length the transforms see: input·scale, fractional when a scale is given (as ONNX's reference). */
  length: number;
}

/** Input coordinate (continuous) of output coordinate `x`. */
type Transform = (x: number, a: Axis) => number;

const transforms: Record<string, Transform> = {
  half_pixel: (x, { scale }) => (x + 0.5) / scale - 0.5,
  // Centres the (fractional) resized extent on the input.
  half_pixel_symmetric: (x, { input, output, scale, length }) => (input / 2) * (1 - output / length) + (x + 0.5) / scale - 0.5,
  pytorch_half_pixel: (x, { scale, length }) => (length > 1 ? (x + 0.5) / scale - 0.5 : 0),
  align_corners: (x, { input, length }) => (length === 1 ? 0 : (x * (input - 1)) / (length - 1)),
  asymmetric: (x, { scale }) => x / scale,
  tf_half_pixel_for_nn: (x, { scale }) => (x + 0.5) / scale,
};

/**
 * The transforms in float32, one rounding per operation, as onnxruntime's
 * CPU kernel computes them (get_original_coordinate) for 8-bit tensors,
 * whose results are truncated: a float64 coordinate would move some of
 * them across an integer.
 */
const { fround } = Math;
const float32Transforms: Record<string, Transform> = {
  half_pixel: (x, { scale }) => fround(fround(fround(x + 0.5) / fround(scale)) - 0.5),
  pytorch_half_pixel: (x, { scale, length }) => (length > 1 ? fround(fround(fround(x + 0.5) / fround(scale)) - 0.5) : 0),
  align_corners: (x, { input, length }) => (length === 1 ? 0 : fround(fround(x * (input - 1)) / fround(length - 1))),
  asymmetric: (x, { scale }) => fround(x / fround(scale)),
  tf_half_pixel_for_nn: (x, { scale }) => fround(fround(x + 0.5) / fround(scale)),
};

/** nearest_mode: the input index of a continuous coordinate. */
const roundings: Record<string, (x: number) => number> = {
  round_prefer_floor: (x) => Math.ceil(x - 0.5),
  round_prefer_ceil: (x) => Math.floor(x + 0.5),
  floor: Math.floor,
  ceil: Math.ceil,
};

type Mode = 'nearest' | 'linear' | 'cubic';

export interface Interpolation {
  mode: Mode;
  /** coordinate_transformation_mode */
  coordinates: string;
  transform: Transform;
  /** The transform in float32 as onnxruntime computes it, where segscope has it (8-bit linear resizes need it). */
  float32Transform?: Transform;
  round: (x: number) => number;
  /** cubic_coeff_a */
  a: number;
  excludeOutside: boolean;
}

/** Keys' cubic convolution weights of taps i-1, i, i+1, i+2 at fraction `t` past i. */
function cubicWeights(t: number, a: number): number[] {
  const near = (d: number) => ((a + 2) * d - (a + 3)) * d * d + 1;
  const far = (d: number) => ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** For every output coordinate of an axis, `count` input indices and their weights. */
export interface Taps {
  count: number;
  index: number[];
  weight: number[];
}

/**
 * A linear axis's source coordinate as PyTorch 2 computes it (ATen's
 * area_pixel_compute_scale and compute_source_index_and_lambda, CPU):
 * the ratio r = input/output (or 1/scale where a scale is given;
 * (input - 1)/(output - 1) for align_corners) rounded to float32, then
 * s = r·(o + 1/2) - 1/2 (r·o for align_corners and asymmetric) rounded
 * once to float32 and clamped at 0; taps floor(s) and the next index (the
 * same at the last), weights 1 - λ (rounded) and λ = s - floor(s) (exact).
 * As integers r = num / 2^k and s = (num·(a·o + b) - c) / 2^shift, so the
 * kernel forms s's numerator exactly and rounds it once (linearTapsWgsl),
 * where float32 arithmetic would round r·(o + 1/2) first.
 * Measured against torch 2.13's F.interpolate on one-hot inputs
 * (test/fixtures/resize, tools/resize_fixtures.py): the same float32
 * weights. torch 1.13 took λ from the unrounded s, which moves about 90%
 * of the weights of a 33 -> 129 upsample by an ulp or so.
 */
export interface LinearSource {
  num: number;
  a: number;
  b: number;
  c: number;
  shift: number;
}

/** Largest output coordinate (a·o + b < 2^16, for the kernel's products) and shift (ratios down to about 2^-16) of the kernel's arithmetic. */
const MAX_LINEAR_OUTPUT = 2 ** 15 - 1;
const MAX_LINEAR_SHIFT = 40;

/** The axis's LinearSource, or undefined where PyTorch has no such transform (the taps then follow ONNX's formula in float64). */
export function linearSource(f: Interpolation, ax: Axis): LinearSource | undefined {
  if (f.mode !== 'linear' || ax.output > MAX_LINEAR_OUTPUT) return undefined;
  const sized = ax.length === ax.output;
  const halfPixel = f.coordinates === 'half_pixel' || (f.coordinates === 'pytorch_half_pixel' && ax.length > 1);
  let ratio: number;
  if (halfPixel || f.coordinates === 'asymmetric') ratio = Math.fround(sized ? ax.input / ax.output : 1 / ax.scale);
  else if (f.coordinates === 'align_corners' && sized) ratio = ax.output > 1 ? Math.fround((ax.input - 1) / (ax.output - 1)) : 0;
  else return undefined;
  // ratio = num / 2^k with num < 2^24, a float32's significand.
  let k = 0;
  while (!Number.isInteger(ratio * 2 ** k)) k++;
  const source = halfPixel ? { num: ratio * 2 ** k, a: 2, b: 1, c: 2 ** k, shift: k + 1 } : { num: ratio * 2 ** k, a: 1, b: 0, c: 0, shift: k };
  return source.shift <= MAX_LINEAR_SHIFT ? source : undefined;
}

/** Input index 0 and the weight of index 1 of output `o`, exactly as the kernel computes them (see LinearSource). */
function linearTap(l: LinearSource, o: number, input: number): { i0: number; lambda: number } {
  // num·(a·o + b) < 2^41: exact in float64, as is the power-of-two scaling; fround rounds it once.
  const s = Math.fround(Math.max(l.num * (l.a * o + l.b) - l.c, 0) / 2 ** l.shift);
  return { i0: Math.min(Math.floor(s), input - 1), lambda: s - Math.floor(s) };
}

/** The taps of every output coordinate of an axis: output `o` reads `index[o·count + t]` with `weight[o·count + t]`, t < count. */
export function tapsOf(f: Interpolation, a: Axis): Taps {
  const clamp = (i: number) => Math.min(Math.max(i, 0), a.input - 1);
  const taps: Taps = { count: { nearest: 1, linear: 2, cubic: 4 }[f.mode], index: [], weight: [] };
  const exact = linearSource(f, a);
  for (let o = 0; o < a.output; o++) {
    if (exact) {
      const { i0, lambda } = linearTap(exact, o, a.input);
      taps.index.push(i0, clamp(i0 + 1));
      taps.weight.push(Math.fround(1 - lambda), lambda);
      continue;
    }
    const x = f.transform(o, a);
    if (f.mode === 'nearest') {
      taps.index.push(clamp(f.round(x)));
      taps.weight.push(1);
    } else if (f.mode === 'linear') {
      // Clamping the coordinate is ONNX's edge padding (and PyTorch's clamp at 0).
      const c = Math.min(Math.max(x, 0), a.input - 1);
      const i = Math.floor(c);
      taps.index.push(i, clamp(i + 1));
      taps.weight.push(1 - (c - i), c - i);
    } else {
      const i = Math.floor(x);
      const at = [i - 1, i, i + 1, i + 2];
      let w = cubicWeights(x - i, f.a);
      if (f.excludeOutside) {
        w = w.map((v, k) => (at[k]! < 0 || at[k]! >= a.input ? 0 : v));
        const sum = w.reduce((p, q) => p + q, 0);
        w = w.map((v) => v / sum);
      }
      taps.index.push(...at.map(clamp));
      taps.weight.push(...w);
    }
  }
  return taps;
}

/** Whether the taps copy the axis unchanged (e.g. N and C with scale 1). */
export const isIdentity = ({ count, index, weight }: Taps, a: Axis) =>
  a.output === a.input && weight.every((w, e) => w === 0 || (w === 1 && index[e] === Math.floor(e / count)));

/** Whether `f` leaves axis `a` as it is. */
const unchanged = (f: Interpolation, a: Axis) => isIdentity(tapsOf(f, a), a);

/** Whether `f` changes at most the last two of `axes` (an NCHW resize). */
const lastTwoResized = (f: Interpolation, axes: readonly Axis[]) => axes.length >= 2 && axes.slice(0, -2).every((a) => unchanged(f, a));

/**
 * WGSL function `linearTaps{axis}(o)` of a LinearSource: taps (i0, i1) and
 * weights (1 - λ, λ) of output coordinate o, equal to linearTap's. s's
 * numerator N = num·(a·o + b) - c is formed in two 32-bit words (num in
 * 16-bit halves, a·o + b < 2^16, so no product overflows) and rounded to
 * float32's 24 significant bits (half to even) in integers too; its whole
 * part and fraction are then exact, and the only float operations are an
 * exact conversion and 1 - λ. So no compiler can move the bits: summing two
 * float parts instead, llvmpipe computed s - floor(s) as (part - floor(s))
 * + part, λ unrounded, as torch 1.13 has it.
 */
function linearTapsWgsl(axis: number, l: LinearSource, input: number): string {
  const [cHi, cLo] = [Math.floor(l.c / 2 ** 32), l.c % 2 ** 32];
  return `fn linearTaps${axis}(o: u32) -> LinearTaps {
  let m = ${l.a}u * o + ${l.b}u;
  let p0 = ${l.num % 2 ** 16}u * m;
  let p1 = ${Math.floor(l.num / 2 ** 16)}u * m;
  let lo0 = p0 + (p1 << 16u);
  let hi0 = (p1 >> 16u) + select(0u, 1u, lo0 < p0);
  // A negative s is clamped to 0.
  let negative = hi0 < ${cHi}u || (hi0 == ${cHi}u && lo0 < ${cLo}u);
  let lo = select(lo0 - ${cLo}u, 0u, negative);
  let hi = select(hi0 - ${cHi}u - select(0u, 1u, lo0 < ${cLo}u), 0u, negative);
  // N rounded to float32's 24 significant bits, half to even: q·2^d. N < 2^40, so d <= 16.
  let bits = select(32u - countLeadingZeros(lo), 64u - countLeadingZeros(hi), hi != 0u);
  let d = select(0u, bits - 24u, bits > 24u);
  let kept = select(lo, (lo >> d) | (hi << (32u - d)), d != 0u);
  let rest = select(0u, lo & ((1u << d) - 1u), d != 0u);
  let half = select(0u, 1u << (d - 1u), d != 0u);
  let q = kept + select(0u, 1u, d != 0u && (rest > half || (rest == half && (kept & 1u) == 1u)));
  // s = q·2^d / 2^shift = q / 2^e: its whole part and its fraction, exact in float32.
  let e = ${l.shift}u - min(d, ${l.shift}u);
  let whole = select(select(q >> e, 0u, e >= 32u), q << (d - ${l.shift}u), d > ${l.shift}u);
  let fraction = select(select(q & ((1u << e) - 1u), q, e >= 32u), 0u, d >= ${l.shift}u);
  let lambda = ldexp(f32(fraction), -i32(e));
  let i0 = min(whole, ${input - 1}u);
  return LinearTaps(i0, min(i0 + 1u, ${input - 1}u), 1.0f - lambda, lambda);
}`;
}

/**
 * Outputs a strip kernel's invocation computes along a row: 8 (4 would
 * fit no resize that 8 does not, as a strip of w outputs spans about
 * (w - 1)·input/output + 2 columns).
 */
const STRIP = 8;

/** The most input columns that a strip of STRIP outputs reads along an axis with these taps (two a tap). */
function stripSpan(taps: Taps, output: number): number {
  let span = 0;
  for (let o = 0; o < output; o += STRIP) span = Math.max(span, taps.index[2 * (Math.min(o + STRIP, output) - 1) + 1]! - taps.index[2 * o]! + 1);
  return span;
}

/**
 * A linear resize of the last two axes with taps the kernel computes (an
 * NCHW upsample as PyTorch exports F.interpolate), as strips: each
 * invocation computes STRIP neighbouring outputs of a row, which read at
 * most `span` columns of the same two input rows; it loads those once and
 * picks each output's two columns by selects. Why: on llvmpipe every load at
 * an address that differs between lanes is a loop over the lanes, and a x4
 * upsample's 8 outputs read 4 columns: 8 loads instead of 32. The arithmetic
 * is the one-output kernel's, term for term, so the results are its bits.
 * Undefined for any other resize, and where a strip would read more
 * columns than it has outputs (downsampling, or nearly the input's size).
 */
function stripKernel(x: TensorType, out: TensorType, f: Interpolation, axes: Axis[], part?: { x: Run; y: Run }): Kernel | undefined {
  const d = axes.length;
  if (f.mode !== 'linear' || !lastTwoResized(f, axes)) return undefined;
  const [ay, ax] = axes.slice(-2) as [Axis, Axis];
  const [sy, sx] = [linearSource(f, ay), linearSource(f, ax)];
  const tx = tapsOf(f, ax);
  const rowsResized = !unchanged(f, ay);
  if (!sx || isIdentity(tx, ax) || (rowsResized && !sy)) return undefined;
  const span = stripSpan(tx, ax.output);
  if (span > STRIP) return undefined;
  const [H, W, OH, OW] = [ay.input, ax.input, ay.output, ax.output];
  const strips = Math.ceil(OW / STRIP);
  const invocations = (sizeOf(out.dims) / OW) * strips;
  const rows = rowsResized ? ['a', 'b'] : ['a'];
  // Column k - base of the loaded ones, by a chain of selects (a private array indexed per lane would be memory again).
  const pick = (row: string, k: string) =>
    range(span)
      .slice(1)
      .reduce((chosen, j) => `select(${chosen}, ${row}${j}, ${k} == ${j}u)`, `${row}0`);
  const alongRow = (row: string, o: number) => `tx${o}.w0 * ${pick(row, `k0_${o}`)} + tx${o}.w1 * ${pick(row, `k1_${o}`)}`;
  const outputs = range(STRIP).map((o) => {
    const value = rowsResized ? `ty.w0 * (${alongRow('a', o)}) + ty.w1 * (${alongRow('b', o)})` : alongRow('a', o);
    const body = `    let tx${o} = linearTaps${d - 1}(ox0 + ${o}u);
    let k0_${o} = tx${o}.i0 - base;
    let k1_${o} = tx${o}.i1 - base;
    Y[${shifted(part?.y.shift)}row * ${OW}u + ox0 + ${o}u] = ${toStorage(out.type, value)};`;
    // Only the last strip of a row may run past its end.
    return `  ${OW % STRIP === 0 || o === 0 ? '' : `if (ox0 + ${o}u < ${OW}u) `}{
${body}
  }`;
  });
  const firstRow = rowsResized ? `ty.i0` : `row % ${OH}u`;
  return {
    label: `resize_linear_${H}to${OH}_${W}to${OW}_strips`,
    wgsl: `${storage(0, 'X', wgslType(x.type))}
${storage(1, 'Y', wgslType(out.type))}
struct LinearTaps { i0: u32, i1: u32, w0: f32, w1: f32 }
${rowsResized ? linearTapsWgsl(d - 2, sy!, H) : ''}
${linearTapsWgsl(d - 1, sx, W)}
${flatMain(
  THREADS,
  `  if (i >= ${invocations}u) { return; }
  // row: (plane, output row); the strip's first output column ox0.
  let row = i / ${strips}u;
  let ox0 = i % ${strips}u * ${STRIP}u;${
    rowsResized
      ? `
  let ty = linearTaps${d - 2}(row % ${OH}u);`
      : ''
  }
  let plane = ${shifted(part?.x.shift)}row / ${OH}u * ${H * W}u;
  let base = linearTaps${d - 1}(ox0).i0;
${rows.map((r, t) => `  let ${r}Row = plane + ${t === 0 ? firstRow : 'ty.i1'} * ${W}u;`).join('\n')}
${range(span)
  .flatMap((k) => rows.map((r) => `  let ${r}${k} = ${fromStorage(x.type, `X[${r}Row + min(base + ${k}u, ${W - 1}u)]`)};`))
  .join('\n')}
${outputs.join('\n')}`,
)}`,
    workgroups: grid(invocations, THREADS),
    bindings: [
      { kind: 'input', index: 0, ...(part ? { window: part.x.window } : {}) },
      { kind: 'output', index: 0, ...(part ? { window: part.y.window } : {}) },
    ],
  };
}

/** The resize kernel; `parts`: windows of the input and output, for one part of a split resize. */
function resizeKernel(x: TensorType, out: TensorType, f: Interpolation, axes: Axis[], part?: { x: Run; y: Run }): Kernel {
  const strips = stripKernel(x, out, f, axes, part);
  if (strips) return strips;
  const inputStrides = strides(x.dims);
  const type = wgslType(x.type);
  const n = sizeOf(out.dims);
  // Per resized axis: its taps from a LinearSource the kernel computes, or from tables at `offset`.
  const resized: { a: number; source?: LinearSource; taps: Taps; offset: number }[] = [];
  let entries = 0;
  axes.forEach((ax, a) => {
    const taps = tapsOf(f, ax);
    if (isIdentity(taps, ax)) return;
    const source = linearSource(f, ax);
    resized.push({ a, taps, offset: entries, ...(source ? { source } : {}) });
    if (!source) entries += taps.index.length;
  });
  const tabled = resized.filter((r) => !r.source);
  // Nearest only gathers; so does a resize that changes nothing.
  const gather = f.mode === 'nearest' || resized.length === 0;
  const yShift = part?.y.shift;
  const coordinates = axisCoordinates(out.dims);
  const resizedCoordinates = resized
    .map(({ a, source }) => `  let o${a} = ${coordinates[a]};${source ? `\n  let taps${a} = linearTaps${a}(o${a});` : ''}`)
    .join('\n');
  // Axes left as they are address the input at their own coordinate.
  const copied = collapseAxes(
    out.dims,
    inputStrides.map((s, a) => (resized.some((r) => r.a === a) ? 0 : s)),
  );
  let body: string;
  if (gather) {
    const terms = resized.map(({ a, offset }) => ` + u32(IDX[${offset}u + o${a}]) * ${inputStrides[a]}u`).join('');
    body = `  Y[${shifted(yShift)}i] = ${converted(x.type, out.type, `X[q${terms}]`)};`;
  } else {
    // Separable, as PyTorch sums: Σ_t weight_t · (the sum over the next axes at tap t), the last axis innermost.
    const tap = (r: (typeof resized)[number], t: number) =>
      r.source
        ? { index: `taps${r.a}.i${t}`, weight: `taps${r.a}.w${t}` }
        : { index: `u32(IDX[${r.offset}u + o${r.a} * ${r.taps.count}u + ${t}u])`, weight: `W[${r.offset}u + o${r.a} * ${r.taps.count}u + ${t}u]` };
    const sum = (level: number, q: string): string => {
      const r = resized[level]!;
      return range(r.taps.count)
        .map((t) => {
          const { index, weight } = tap(r, t);
          const at = `${q} + ${index} * ${inputStrides[r.a]}u`;
          return `${weight} * ${level === resized.length - 1 ? fromStorage(x.type, `X[${at}]`) : `(${sum(level + 1, at)})`}`;
        })
        .join(' + ');
    };
    body = `  Y[${shifted(yShift)}i] = ${toStorage(out.type, sum(0, 'q'))};`;
  }
  const bindings: KernelBinding[] = [
    { kind: 'input', index: 0, ...(part ? { window: part.x.window } : {}) },
    { kind: 'output', index: 0, ...(part ? { window: part.y.window } : {}) },
  ];
  const declarations = [storage(0, 'X', type), storage(1, 'Y', wgslType(out.type))];
  // Tables only when something reads them: a binding the shader does not use is not in its layout.
  if (tabled.length) {
    declarations.push(storage(2, 'IDX', 'i32'));
    bindings.push(param(Int32Array.from(tabled.flatMap((r) => r.taps.index))));
    if (!gather) {
      declarations.push(storage(3, 'W', 'f32'));
      bindings.push(param(Float32Array.from(tabled.flatMap((r) => r.taps.weight))));
    }
  }
  const computed = resized.flatMap((r) => (r.source ? [linearTapsWgsl(r.a, r.source, axes[r.a]!.input)] : []));
  if (computed.length) declarations.push('struct LinearTaps { i0: u32, i1: u32, w0: f32, w1: f32 }', ...computed);
  return {
    label: `resize_${f.mode}_${resized.map((r) => `${axes[r.a]!.input}to${axes[r.a]!.output}`).join('_') || 'copy'}`,
    wgsl: `${declarations.join('\n')}
${flatMain(
  THREADS,
  `  if (i >= ${n}u) { return; }
${resizedCoordinates}
  let q = ${shifted(part?.x.shift)}${stridedIndex(copied)};
${body}`,
)}`,
    workgroups: grid(n, THREADS),
    bindings,
  };
}

/**
 * Bilinear resize of an 8-bit tensor (a quantized model's activations) over
 * its last two axes, bit-equal to onnxruntime's CPU kernel, whose result is
 * truncated toward zero: the coordinates in float32 (float32Transform),
 * clamped to the input; the two input indices and their distances to the
 * coordinate (0.5 each where both indices are the last); then
 * ((w11·x11 + w21·x21) + w12·x12) + w22·x22 in float32 with each w the
 * product of an x and a y distance.
 */
function bilinear8BitKernel(out: TensorType, f: Interpolation, axes: Axis[]): Kernel {
  const [ay, ax] = axes.slice(-2) as [Axis, Axis];
  const indices: number[] = [];
  const distances: number[] = [];
  for (const a of [ay, ax]) {
    for (let o = 0; o < a.output; o++) {
      const c = Math.max(0, Math.min(f.float32Transform!(o, a), a.input - 1));
      const i1 = Math.min(Math.trunc(c), a.input - 1);
      const i2 = Math.min(i1 + 1, a.input - 1);
      indices.push(i1, i2);
      distances.push(...(i1 === i2 ? [0.5, 0.5] : [Math.abs(c - i1), Math.abs(c - i2)]));
    }
  }
  const n = sizeOf(out.dims);
  const [H, W, OH, OW] = [ay.input, ax.input, ay.output, ax.output];
  return {
    label: `resize_linear_8bit_${H}x${W}to${OH}x${OW}`,
    wgsl: `${storage(0, 'X', 'i32')}
${storage(1, 'Y', 'i32')}
${storage(2, 'IDX', 'i32')}
${storage(3, 'D', 'f32')}
${flatMain(
  THREADS,
  `  if (i >= ${n}u) { return; }
  let plane = (i / ${OH * OW}u) * ${H * W}u;
  let y = 2u * ((i / ${OW}u) % ${OH}u);
  let x = 2u * (${OH}u + i % ${OW}u);
  let row1 = plane + u32(IDX[y]) * ${W}u;
  let row2 = plane + u32(IDX[y + 1u]) * ${W}u;
  let x1 = u32(IDX[x]);
  let x2 = u32(IDX[x + 1u]);
  let dy1 = D[y];
  let dy2 = D[y + 1u];
  let dx1 = D[x];
  let dx2 = D[x + 1u];
  let v = ((dx2 * dy2 * f32(X[row1 + x1]) + dx1 * dy2 * f32(X[row1 + x2])) + dx2 * dy1 * f32(X[row2 + x1])) + dx1 * dy1 * f32(X[row2 + x2]);
  Y[i] = i32(v);`,
)}`,
    workgroups: grid(n, THREADS),
    bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }, param(Int32Array.from(indices)), param(Float32Array.from(distances))],
  };
}

/**
 * A resize whose input or output is larger than one binding, as resizes of
 * runs of its leading unchanged axes (the N·C planes of an NCHW upsample),
 * each binding windows of the input and output. Undefined when nothing needs
 * splitting or no leading axis is unchanged.
 */
function splitResize(x: TensorType, out: TensorType, f: Interpolation, axes: Axis[], limits: BindingLimits): Kernel[] | undefined {
  const [xBytes, yBytes] = [gpuElementBytes(x.type), gpuElementBytes(out.type)];
  if (Math.max(sizeOf(x.dims) * xBytes, sizeOf(out.dims) * yBytes) <= limits.maxBytes) return undefined;
  let kept = 0;
  while (kept < axes.length && unchanged(f, axes[kept]!)) kept++;
  const planes = sizeOf(out.dims.slice(0, kept));
  const from: Strided = { unitBytes: sizeOf(x.dims.slice(kept)) * xBytes, baseBytes: 0, elementBytes: xBytes };
  const to: Strided = { unitBytes: sizeOf(out.dims.slice(kept)) * yBytes, baseBytes: 0, elementBytes: yBytes };
  const runs = kept > 0 && splitUnits(planes, [from, to], limits);
  if (!runs) return undefined;
  return runs.map((run) => {
    const count = run[1] - run[0];
    return resizeKernel(
      { ...x, dims: [count, ...x.dims.slice(kept)] },
      { ...out, dims: [count, ...out.dims.slice(kept)] },
      f,
      [{ input: count, output: count, scale: 1, length: count }, ...axes.slice(kept)],
      { x: runWindow(from, run, limits), y: runWindow(to, run, limits) },
    );
  });
}

/** A node's resize: its interpolation and the geometry of every axis. */
export interface Plan {
  f: Interpolation;
  axes: Axis[];
}

const where = (node: Node) => `${node.opType} node '${node.name}'`;

/** An optional input given with at least one value ('' or an empty tensor mean absent). */
const given = (inputs: OpInput[], i: number) => Boolean(inputs[i]?.name) && sizeOf(inputs[i]!.dims) > 0;

function oneOf<T extends string>(node: Node, name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ModelError(`${where(node)}: ${name} must be one of ${allowed.join(', ')}, got '${value}'`);
  }
  return value as T;
}

/** Axes resized by `scales` (output = floor(input·scale)). */
function scaledAxes(node: Node, dims: readonly number[], scales: number[], resized: number[]): Axis[] {
  if (scales.length !== resized.length) {
    throw new ModelError(`${where(node)}: ${scales.length} scales for ${resized.length} axes of an input of shape [${dims}]`);
  }
  return dims.map((input, a) => {
    const k = resized.indexOf(a);
    const scale = k < 0 ? 1 : scales[k]!;
    const output = Math.floor(input * scale);
    if (!(scale > 0) || output < 1) {
      throw new ModelError(`${where(node)}: scale ${scale} on axis ${a} (size ${input}) must be positive and leave at least one element`);
    }
    return { input, output, scale, length: input * scale };
  });
}

/** Axes resized to `sizes`, possibly keeping the aspect ratio (Resize-18). */
function sizedAxes(node: Node, dims: readonly number[], sizes: number[], resized: number[], policy: string): Axis[] {
  if (sizes.length !== resized.length) {
    throw new ModelError(`${where(node)}: ${sizes.length} sizes for ${resized.length} axes of an input of shape [${dims}]`);
  }
  if (sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new ModelError(`${where(node)}: sizes [${sizes}] must be positive`);
  if (policy === 'stretch') {
    return dims.map((input, a) => {
      const k = resized.indexOf(a);
      const output = k < 0 ? input : sizes[k]!;
      return { input, output, scale: output / input, length: output };
    });
  }
  // One scale for every resized axis: the largest that fits in (not_larger) or covers (not_smaller) the sizes.
  const ratios = resized.map((a, k) => sizes[k]! / dims[a]!);
  const scale = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
  return dims.map((input, a) =>
    resized.includes(a) ? { input, output: Math.floor(input * scale + 0.5), scale, length: input * scale } : { input, output: input, scale: 1, length: input },
  );
}

/** Resize-11 and later: roi, scales, sizes inputs and the full set of attributes. */
function resizePlan(node: Node, inputs: OpInput[]): Plan {
  const dims = inputs[0]!.dims;
  const attrs = node.attrs;
  const transform = oneOf(node, 'coordinate_transformation_mode', attrs.string('coordinate_transformation_mode', 'half_pixel'), [
    ...Object.keys(transforms),
    'tf_crop_and_resize',
  ]);
  // roi and extrapolation_value only matter to tf_crop_and_resize.
  if (transform === 'tf_crop_and_resize') throw new UnsupportedOpError(`${where(node)}: coordinate_transformation_mode tf_crop_and_resize is not supported`);
  if (attrs.int('antialias', 0) !== 0) throw new UnsupportedOpError(`${where(node)}: antialias is not supported`);
  const exclude = attrs.int('exclude_outside', 0);
  if (exclude !== 0 && exclude !== 1) throw new ModelError(`${where(node)}: exclude_outside must be 0 or 1, got ${exclude}`);
  const f: Interpolation = {
    mode: oneOf(node, 'mode', attrs.string('mode', 'nearest'), ['nearest', 'linear', 'cubic'] as const),
    coordinates: transform,
    transform: transforms[transform]!,
    ...(float32Transforms[transform] ? { float32Transform: float32Transforms[transform] } : {}),
    round: roundings[oneOf(node, 'nearest_mode', attrs.string('nearest_mode', 'round_prefer_floor'), Object.keys(roundings))]!,
    a: attrs.float('cubic_coeff_a', -0.75),
    excludeOutside: exclude === 1,
  };
  const resized = attrs
    .ints(
      'axes',
      dims.map((_, a) => a),
    )
    .map((a) => normaliseAxis(node, a, dims.length));
  if (new Set(resized).size !== resized.length) throw new ModelError(`${where(node)}: repeated axes [${attrs.ints('axes')}]`);
  const policy = oneOf(node, 'keep_aspect_ratio_policy', attrs.string('keep_aspect_ratio_policy', 'stretch'), ['stretch', 'not_larger', 'not_smaller']);
  if (given(inputs, 2) && given(inputs, 3)) throw new ModelError(`${where(node)}: give scales or sizes, not both`);
  if (given(inputs, 3)) return { f, axes: sizedAxes(node, dims, constInts(node, inputs, 3), resized, policy) };
  // constInts reads any compile-time tensor's values, float scales included.
  if (given(inputs, 2)) return { f, axes: scaledAxes(node, dims, constInts(node, inputs, 2), resized) };
  throw new ModelError(`${where(node)}: needs scales or sizes`);
}

/**
 * Resize-10 and Upsample: scales only, nearest or linear, the asymmetric
 * transform; nearest takes the floor (Upsample's repeat, and PyTorch's nearest).
 */
function legacyPlan(node: Node, inputs: OpInput[], scales: number[]): Plan {
  const dims = inputs[0]!.dims;
  const f: Interpolation = {
    mode: oneOf(node, 'mode', node.attrs.string('mode', 'nearest'), ['nearest', 'linear'] as const),
    coordinates: 'asymmetric',
    transform: transforms.asymmetric!,
    float32Transform: float32Transforms.asymmetric!,
    round: Math.floor,
    a: 0,
    excludeOutside: false,
  };
  return {
    f,
    axes: scaledAxes(
      node,
      dims,
      scales,
      dims.map((_, a) => a),
    ),
  };
}

function resizeOp(plan: (node: Node, inputs: OpInput[], opset: number) => Plan): OpImpl {
  const checked = (node: Node, inputs: OpInput[], opset: number) => {
    const p = plan(node, inputs, opset);
    const type = inputs[0]!.type;
    if (p.f.mode === 'nearest' || isFloatType(type)) return p;
    if (p.f.mode !== 'linear' || (type !== 'uint8' && type !== 'int8')) {
      throw new UnsupportedOpError(`${where(node)}: ${p.f.mode} resize of a ${type} tensor is not supported`);
    }
    if (!p.f.float32Transform || !lastTwoResized(p.f, p.axes)) {
      throw new UnsupportedOpError(
        `${where(node)}: a linear resize of a ${type} tensor is supported over its last two axes with coordinate_transformation_mode ${Object.keys(float32Transforms).join(', ')}`,
      );
    }
    return p;
  };
  return {
    infer(node, inputs, opset) {
      return [{ type: inputs[0]!.type, dims: checked(node, inputs, opset).axes.map((a) => a.output) }];
    },
    kernels(node, inputs, [out], opset, { limits }) {
      const { f, axes } = checked(node, inputs, opset);
      if (f.mode === 'linear' && !isFloatType(inputs[0]!.type)) return [bilinear8BitKernel(out!, f, axes)];
      return splitResize(inputs[0]!, out!, f, axes, limits) ?? [resizeKernel(inputs[0]!, out!, f, axes)];
    },
  };
}

/**
 * The plan of each op from its node, its inputs (the data first) and the
 * opset; also what the gradient op computes the adjoint of (ops/grad/resize.ts).
 */
export const resizePlans: Record<'Resize' | 'Upsample', (node: Node, inputs: OpInput[], opset: number) => Plan> = {
  Resize: (node, inputs, opset) => (opset < 11 ? legacyPlan(node, inputs, constInts(node, inputs, 1)) : resizePlan(node, inputs)),
  Upsample: (node, inputs, opset) => {
    const scales = opset < 9 ? node.attrs.floats('scales') : constInts(node, inputs, 1);
    if (scales.some((s) => s < 1)) throw new ModelError(`${where(node)}: scales [${scales}] must be at least 1`);
    return legacyPlan(node, inputs, scales);
  },
};

export const resizeOps: Record<string, OpImpl> = {
  Resize: resizeOp(resizePlans.Resize),
  Upsample: resizeOp(resizePlans.Upsample),
};
