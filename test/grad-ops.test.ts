/**
 * segscope's internal gradient ops (src/ops/grad/), each against a plain CPU
 * reference written here and against the math: the adjoint identity
 * <F(x), dy> = <x, Fᵀ(dy)> with the engine's own forward op for the linear
 * maps (Resize, AveragePool), finite differences of a CPU forward for the
 * others (activations, MaxPool). The semantics are PyTorch autograd's.
 */
import { describe, expect, it } from 'vitest';
import { ModelError, UnsupportedOpError } from '../src/errors.js';
import type { AttrValue, HostTensor, TensorType } from '../src/model/graph.js';
import { type Precision, PRECISIONS } from '../src/model/precision.js';
import { registry } from '../src/ops/registry.js';
import { type NodeCase, nodeGraph, random, randomTensor, relL2, roundToFloat16, runNode, storedAs, tensor, TOLERANCE } from './helpers/gpu.js';
import { byScale, bySizes, type Options, type RefAxis, resizeAdjointRef } from './helpers/resize-reference.js';

const G = 'segscope::';
const sizeOf = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Σ a·b in float64. */
function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** |<y, dy> - <x, dx>| relative to Σ|y·dy| (the scale of the sum's rounding). */
function adjointGap(y: ArrayLike<number>, dy: ArrayLike<number>, x: ArrayLike<number>, dx: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < y.length; i++) scale += Math.abs(y[i]! * dy[i]!);
  return Math.abs(dot(y, dy) - dot(x, dx)) / scale;
}

/** The coordinates of flat index `i` in the row-major `dims`. */
const unflatten = (i: number, dims: readonly number[]) => dims.map((_, a) => Math.floor(i / sizeOf(dims.slice(a + 1))) % dims[a]!);
/** The flat index of `coord` in the row-major `dims`. */
const flatten = (coord: readonly number[], dims: readonly number[]) => coord.reduce((acc, c, a) => acc * dims[a]! + c, 0);

describe('segscope::ActivationGrad', () => {
  interface Activation {
    op: string;
    params?: Record<string, number>;
    /** What t is: the forward's input x or its output y. */
    reads: 'x' | 'y';
    f: (x: number) => number;
    /** PyTorch's backward formula from dy and t. */
    df: (dy: number, t: number) => number;
    /** Inputs x where f' jumps. */
    kinks: number[];
  }
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const activations: Activation[] = [
    { op: 'Relu', reads: 'y', f: (x) => Math.max(x, 0), df: (dy, y) => (y > 0 ? dy : 0), kinks: [0] },
    { op: 'LeakyRelu', reads: 'x', f: (x) => (x >= 0 ? x : 0.01 * x), df: (dy, x) => (x > 0 ? dy : 0.01 * dy), kinks: [0] },
    { op: 'LeakyRelu', params: { alpha: 0.2 }, reads: 'x', f: (x) => (x >= 0 ? x : 0.2 * x), df: (dy, x) => (x > 0 ? dy : 0.2 * dy), kinks: [0] },
    { op: 'Clip', params: { min: 0, max: 6 }, reads: 'x', f: (x) => clamp(x, 0, 6), df: (dy, x) => (x > 0 && x < 6 ? dy : 0), kinks: [0, 6] },
    { op: 'Clip', params: { min: -1 }, reads: 'x', f: (x) => Math.max(x, -1), df: (dy, x) => (x > -1 ? dy : 0), kinks: [-1] },
    { op: 'Sigmoid', reads: 'y', f: sigmoid, df: (dy, y) => dy * y * (1 - y), kinks: [] },
    { op: 'Tanh', reads: 'y', f: Math.tanh, df: (dy, y) => dy * (1 - y * y), kinks: [] },
    {
      op: 'HardSigmoid',
      reads: 'x',
      f: (x) => clamp(0.2 * x + 0.5, 0, 1),
      df: (dy, x) => (0.2 * x + 0.5 > 0 && 0.2 * x + 0.5 < 1 ? 0.2 * dy : 0),
      kinks: [-2.5, 2.5],
    },
    {
      op: 'HardSigmoid',
      params: { alpha: 1 / 6, beta: 0.5 },
      reads: 'x',
      f: (x) => clamp(x / 6 + 0.5, 0, 1),
      df: (dy, x) => (x / 6 + 0.5 > 0 && x / 6 + 0.5 < 1 ? dy / 6 : 0),
      kinks: [-3, 3],
    },
    {
      op: 'HardSwish',
      reads: 'x',
      f: (x) => x * clamp(x / 6 + 0.5, 0, 1),
      df: (dy, x) => (x < -3 ? 0 : x <= 3 ? dy * (x / 3 + 0.5) : dy),
      kinks: [-3, 3],
    },
  ];
  const dims = [2, 3, 7, 5];
  const name = (a: Activation) => `${a.op}${a.params ? ` ${JSON.stringify(a.params)}` : ''}`;
  /** dx from the GPU for x (t is x or f(x) as float32 holds it). */
  const run = (a: Activation, x: HostTensor, dy: HostTensor, precision: Precision = 'f32') => {
    const t = a.reads === 'x' ? x : tensor([...x.dims], Array.from(x.data, a.f));
    return runNode({ op: `${G}ActivationGrad`, attrs: { op: a.op, ...a.params }, inputs: [dy, t] }, precision).then(([dx]) => ({ dx: dx!, t }));
  };

  activations.forEach((a, k) => {
    it(`${name(a)} matches PyTorch's formula on t = ${a.reads}, at f32 and f16`, async () => {
      const x = randomTensor(dims, 40 + k, -8, 8);
      const dy = randomTensor(dims, 60 + k);
      for (const precision of PRECISIONS) {
        const { dx, t } = await run(a, x, dy, precision);
        expect([dx.type, dx.dims]).toEqual(['float32', dims]);
        const [ts, dys] = [storedAs(t, precision).data, storedAs(dy, precision).data];
        expect(
          relL2(
            dx.data,
            Array.from(ts, (v, i) => a.df(dys[i]!, v)),
          ),
          precision,
        ).toBeLessThan(TOLERANCE[precision]);
      }
    });

    it(`${name(a)} is dy·f'(x) by central differences away from kinks`, async () => {
      // Points within 0.05 of a kink move 0.1 past it.
      const x = randomTensor(dims, 80 + k, -6, 6);
      x.data.forEach((v, i) => {
        for (const kink of a.kinks) if (Math.abs(v - kink) < 0.05) x.data[i] = kink + (v < kink ? -0.1 : 0.1);
      });
      const dy = randomTensor(dims, 90 + k);
      const h = 1e-3;
      const fd = Array.from(x.data, (v, i) => (dy.data[i]! * (a.f(v + h) - a.f(v - h))) / (2 * h));
      const { dx } = await run(a, x, dy);
      expect(relL2(dx.data, fd)).toBeLessThan(1e-5);
    });
  });

  it('refuses an unknown op (listing the known ones), unknown attributes, and t of another shape', async () => {
    const dy = randomTensor([2, 3], 1);
    const grad = (attrs: Record<string, AttrValue>, t = dy) => runNode({ op: `${G}ActivationGrad`, attrs, inputs: [dy, t] });
    await expect(grad({ op: 'Gelu' })).rejects.toThrow(/ActivationGrad node 'test_segscope::ActivationGrad': unknown op 'Gelu' \(known: Relu, LeakyRelu/);
    await expect(grad({ op: 'Relu', alpha: 0.1 })).rejects.toThrow(ModelError);
    await expect(grad({})).rejects.toThrow(/required attribute 'op'/);
    await expect(grad({ op: 'Relu' }, randomTensor([3, 2], 2))).rejects.toThrow(/t \(the forward's output\).*\[3,2\], expected \[2,3\]/);
  });
});

describe('segscope::ZeroInsert', () => {
  const cases: { dims: number[]; strides: number[] }[] = [
    { dims: [1, 3, 5, 4], strides: [2, 2] },
    { dims: [2, 2, 3, 7], strides: [3, 1] },
    { dims: [1, 2, 1, 6], strides: [2, 3] },
  ];
  for (const { dims, strides } of cases) {
    it(`[${dims}] strides [${strides}], at f32 and f16`, async () => {
      const x = randomTensor(dims, dims[3]!);
      const out = dims.map((d, a) => (a < 2 ? d : (d - 1) * strides[a - 2]! + 1));
      const ref = Array.from({ length: sizeOf(out) }, (_, i) => {
        const c = unflatten(i, out);
        if (c.some((v, a) => a >= 2 && v % strides[a - 2]! !== 0)) return 0;
        return x.data[
          flatten(
            c.map((v, a) => (a < 2 ? v : v / strides[a - 2]!)),
            dims,
          )
        ]!;
      });
      for (const precision of PRECISIONS) {
        const [y] = await runNode({ op: `${G}ZeroInsert`, attrs: { strides }, inputs: [x] }, precision);
        expect(y!.dims).toEqual(out);
        expect(Array.from(y!.data), precision).toEqual(precision === 'f16' ? roundToFloat16(ref) : ref);
      }
    });
  }

  it('refuses strides that do not fit the input', async () => {
    const x = randomTensor([1, 2, 3, 3], 3);
    await expect(runNode({ op: `${G}ZeroInsert`, attrs: { strides: [2] }, inputs: [x] })).rejects.toThrow(/strides must be 2 integers ≥ 1/);
    await expect(runNode({ op: `${G}ZeroInsert`, attrs: { strides: [0, 1] }, inputs: [x] })).rejects.toThrow(ModelError);
  });
});

describe('segscope::Slice', () => {
  const cases: { dims: number[]; starts: number[]; ends: number[] }[] = [
    { dims: [2, 5, 7, 6], starts: [0, 1, 2, 0], ends: [2, 4, 7, 5] },
    { dims: [1, 6, 9, 9], starts: [0, 2, 1, 1], ends: [1, 5, 8, 8] },
    { dims: [13], starts: [3], ends: [12] },
    { dims: [3, 4, 5], starts: [1, 0, 2], ends: [3, 4, 3] },
    { dims: [2, 3, 4], starts: [0, 0, 0], ends: [2, 3, 4] },
  ];
  for (const { dims, starts, ends } of cases) {
    it(`[${dims}] from [${starts}] to [${ends}], at f32 and f16`, async () => {
      const x = randomTensor(dims, sizeOf(dims));
      const out = ends.map((e, a) => e - starts[a]!);
      const ref = Array.from(
        { length: sizeOf(out) },
        (_, i) =>
          x.data[
            flatten(
              unflatten(i, out).map((c, a) => c + starts[a]!),
              dims,
            )
          ]!,
      );
      for (const precision of PRECISIONS) {
        const [y] = await runNode({ op: `${G}Slice`, attrs: { starts, ends }, inputs: [x] }, precision);
        expect(y!.dims).toEqual(out);
        expect(Array.from(y!.data), precision).toEqual(precision === 'f16' ? roundToFloat16(ref) : ref);
      }
    });
  }

  it('refuses bounds outside 0 ≤ start < end ≤ size and a bound per axis missing', async () => {
    const x = randomTensor([2, 5], 4);
    const slice = (starts: number[], ends: number[]) => runNode({ op: `${G}Slice`, attrs: { starts, ends }, inputs: [x] });
    await expect(slice([0, 3], [2, 3])).rejects.toThrow(/axis 1 of size 5 cannot be sliced from 3 to 3/);
    await expect(slice([0, 0], [2, 6])).rejects.toThrow(ModelError);
    await expect(slice([-1, 0], [2, 5])).rejects.toThrow(ModelError);
    await expect(slice([0], [2])).rejects.toThrow(/one start and one end per axis/);
  });
});

/** The forward pool's geometry, as the reference sees it. */
interface PoolCase {
  name: string;
  dims: number[];
  kernel: number[];
  strides?: number[];
  dilations?: number[];
  /** Begin pads then end pads. */
  pads?: number[];
  ceil?: boolean;
  autoPad?: string;
}

const poolCases: PoolCase[] = [
  { name: 'k2 s2', dims: [1, 2, 8, 6], kernel: [2, 2], strides: [2, 2] },
  { name: 'k2 s1, odd sizes', dims: [1, 3, 5, 7], kernel: [2, 2] },
  { name: 'k3 s2 pad 1 (ResNet stem)', dims: [2, 3, 9, 7], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
  { name: 'k3 s1 pad 1', dims: [1, 2, 7, 5], kernel: [3, 3], pads: [1, 1, 1, 1] },
  { name: 'k3x2 s2x1, asymmetric pads', dims: [1, 2, 9, 7], kernel: [3, 2], strides: [2, 1], pads: [1, 0, 2, 1] },
  { name: 'dilation 2 with pads', dims: [1, 2, 9, 8], kernel: [3, 3], dilations: [2, 2], pads: [2, 1, 2, 1] },
  { name: 'ceil_mode, the last window past the end padding', dims: [1, 2, 8, 8], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil: true },
  { name: 'ceil_mode k2 s2 on odd sizes', dims: [1, 2, 7, 9], kernel: [2, 2], strides: [2, 2], ceil: true },
  { name: 'ceil_mode dropping a window that starts in the end padding', dims: [1, 1, 9, 9], kernel: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil: true },
  { name: 'auto_pad SAME_UPPER', dims: [1, 2, 11, 10], kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_UPPER' },
  { name: '1-D k3 s2 pad 1', dims: [2, 3, 13], kernel: [3], strides: [2], pads: [1, 1] },
];

const poolAttrs = (c: PoolCase, extra: Record<string, AttrValue> = {}): Record<string, AttrValue> => ({
  kernel_shape: c.kernel,
  ...(c.strides && { strides: c.strides }),
  ...(c.dilations && { dilations: c.dilations }),
  ...(c.pads && { pads: c.pads }),
  ...(c.ceil && { ceil_mode: 1 }),
  ...(c.autoPad && { auto_pad: c.autoPad }),
  ...extra,
});

/** Per spatial axis: the output size and the pads, from ONNX's formulas (PyTorch's rule for ceil_mode). */
function poolAxes(c: PoolCase): { input: number; output: number; kernel: number; stride: number; dilation: number; begin: number; end: number }[] {
  const spatial = c.dims.slice(2);
  const n = spatial.length;
  return spatial.map((input, a) => {
    const kernel = c.kernel[a]!;
    const stride = c.strides?.[a] ?? 1;
    const dilation = c.dilations?.[a] ?? 1;
    const extent = (kernel - 1) * dilation + 1;
    if (c.autoPad === 'SAME_UPPER') {
      const output = Math.ceil(input / stride);
      const total = Math.max(0, (output - 1) * stride + extent - input);
      return { input, output, kernel, stride, dilation, begin: Math.floor(total / 2), end: total - Math.floor(total / 2) };
    }
    const [begin, end] = [c.pads?.[a] ?? 0, c.pads?.[a + n] ?? 0];
    const span = input + begin + end - extent;
    let output = (c.ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
    if (c.ceil && (output - 1) * stride >= input + begin) output--;
    return { input, output, kernel, stride, dilation, begin, end };
  });
}

/**
 * Calls `visit(plane, output, positions, count)` for every window: its
 * positions inside the input (flat in the plane), in row-major order, and the
 * count the forward divides by (of positions, or with `includePad` of all
 * positions up to the end padding).
 */
function forEachWindow(c: PoolCase, includePad: boolean, visit: (plane: number, output: number, positions: number[], count: number) => void): void {
  const axes = poolAxes(c);
  const inDims = axes.map((a) => a.input);
  const outDims = axes.map((a) => a.output);
  for (let plane = 0; plane < c.dims[0]! * c.dims[1]!; plane++) {
    for (let o = 0; o < sizeOf(outDims); o++) {
      const oc = unflatten(o, outDims);
      const positions: number[] = [];
      let padded = 0;
      for (let t = 0; t < sizeOf(c.kernel); t++) {
        const pos = unflatten(t, c.kernel).map((k, a) => oc[a]! * axes[a]!.stride + k * axes[a]!.dilation - axes[a]!.begin);
        if (pos.some((q, a) => q >= axes[a]!.input + axes[a]!.end)) continue;
        padded++;
        if (pos.some((q, a) => q < 0 || q >= axes[a]!.input)) continue;
        positions.push(flatten(pos, inDims));
      }
      visit(plane, o, positions, includePad ? padded : positions.length);
    }
  }
}

const outDimsOf = (c: PoolCase) => [...c.dims.slice(0, 2), ...poolAxes(c).map((a) => a.output)];

/** MaxPool's backward: each window's dy to its first maximum. */
function maxPoolGradRef(c: PoolCase, x: ArrayLike<number>, dy: ArrayLike<number>): number[] {
  const dx = new Array<number>(sizeOf(c.dims)).fill(0);
  const inPlane = sizeOf(c.dims.slice(2));
  const outPlane = sizeOf(outDimsOf(c).slice(2));
  forEachWindow(c, false, (plane, o, positions) => {
    let arg = positions[0]!;
    for (const p of positions) if (x[plane * inPlane + p]! > x[plane * inPlane + arg]!) arg = p;
    dx[plane * inPlane + arg]! += dy[plane * outPlane + o]!;
  });
  return dx;
}

/** MaxPool in float64, for finite differences. */
function maxPoolRef(c: PoolCase, x: ArrayLike<number>): number[] {
  const y: number[] = [];
  const inPlane = sizeOf(c.dims.slice(2));
  forEachWindow(c, false, (plane, _, positions) => {
    y.push(Math.max(...positions.map((p) => x[plane * inPlane + p]!)));
  });
  return y;
}

/** AveragePool's backward: each window's dy / count to each of its positions. */
function averagePoolGradRef(c: PoolCase, dy: ArrayLike<number>, includePad: boolean): number[] {
  const dx = new Array<number>(sizeOf(c.dims)).fill(0);
  const inPlane = sizeOf(c.dims.slice(2));
  const outPlane = sizeOf(outDimsOf(c).slice(2));
  forEachWindow(c, includePad, (plane, o, positions, count) => {
    for (const p of positions) dx[plane * inPlane + p]! += dy[plane * outPlane + o]! / count;
  });
  return dx;
}

/** A tensor of distinct values 0.01 apart in a random order: no ties, so MaxPool is smooth within ±0.005. */
function distinct(dims: number[], seed: number): HostTensor {
  const n = sizeOf(dims);
  const order = Array.from(random(n, seed), (r, i) => [r, i] as const).sort((a, b) => a[0] - b[0]);
  const data = new Array<number>(n);
  order.forEach(([, i], rank) => {
    data[i] = (rank - n / 2) * 0.01;
  });
  return tensor(dims, data);
}

describe('segscope::MaxPoolGrad', () => {
  poolCases.forEach((c, k) => {
    it(`${c.name}: the CPU reference at f32 and f16, and the forward's output shape`, async () => {
      const x = randomTensor(c.dims, 300 + k);
      const dy = randomTensor(outDimsOf(c), 320 + k);
      const [y] = await runNode({ op: 'MaxPool', attrs: poolAttrs(c), inputs: [x] });
      expect(y!.dims).toEqual(outDimsOf(c));
      for (const precision of PRECISIONS) {
        const [dx] = await runNode({ op: `${G}MaxPoolGrad`, attrs: poolAttrs(c), inputs: [dy, x] }, precision);
        expect(dx!.dims).toEqual(c.dims);
        const ref = maxPoolGradRef(c, storedAs(x, precision).data, storedAs(dy, precision).data);
        expect(relL2(dx!.data, ref), precision).toBeLessThan(TOLERANCE[precision]);
      }
    });

    it(`${c.name}: the gradient of <MaxPool(x), dy> by central differences`, async () => {
      const x = distinct(c.dims, 340 + k);
      const dy = randomTensor(outDimsOf(c), 360 + k);
      const loss = (v: number[]) => dot(maxPoolRef(c, v), dy.data);
      const h = 0.0025;
      const base = Array.from(x.data);
      const fd = base.map((_, i) => {
        const at = (d: number) => loss(base.map((v, j) => (j === i ? v + d : v)));
        return (at(h) - at(-h)) / (2 * h);
      });
      const [dx] = await runNode({ op: `${G}MaxPoolGrad`, attrs: poolAttrs(c), inputs: [dy, x] });
      expect(relL2(dx!.data, fd)).toBeLessThan(1e-5);
    });
  });

  it("sends a tie's gradient to the first maximum in row-major order of the window's positions inside the input", async () => {
    // A constant 4x4 plane, 3x3 windows, stride 1, pads 1: each window's first position inside the input.
    const c: PoolCase = { name: 'ties', dims: [1, 1, 4, 4], kernel: [3, 3], pads: [1, 1, 1, 1] };
    const x = tensor(c.dims, new Array(16).fill(2));
    const dy = tensor(
      [1, 1, 4, 4],
      Array.from({ length: 16 }, (_, i) => 2 ** i),
    );
    const [dx] = await runNode({ op: `${G}MaxPoolGrad`, attrs: poolAttrs(c), inputs: [dy, x] });
    // Window (i, j) starts at (max(i - 1, 0), max(j - 1, 0)).
    const expected = new Array<number>(16).fill(0);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expected[Math.max(i - 1, 0) * 4 + Math.max(j - 1, 0)]! += 2 ** (i * 4 + j);
    expect(Array.from(dx!.data)).toEqual(expected);
    expect(expected).toEqual(maxPoolGradRef(c, x.data, dy.data));
    // Two maxima in one 2x2 window: the first in row-major order gets it.
    const [two] = await runNode({
      op: `${G}MaxPoolGrad`,
      attrs: { kernel_shape: [2, 2], strides: [2, 2] },
      inputs: [tensor([1, 1, 1, 1], [5]), tensor([1, 1, 2, 2], [1, 3, 3, 0])],
    });
    expect(Array.from(two!.data)).toEqual([0, 5, 0, 0]);
  });

  it("refuses dy of another shape than the forward's output, and attributes MaxPool does not have", async () => {
    const x = randomTensor([1, 2, 8, 8], 5);
    const grad = (dy: HostTensor, attrs: Record<string, AttrValue>) => runNode({ op: `${G}MaxPoolGrad`, attrs, inputs: [dy, x] });
    await expect(grad(randomTensor([1, 2, 4, 5], 6), { kernel_shape: [2, 2], strides: [2, 2] })).rejects.toThrow(
      /MaxPoolGrad node 'test_segscope::MaxPoolGrad': dy '.*' has shape \[1,2,4,5\], expected \[1,2,4,4\]/,
    );
    await expect(grad(randomTensor([1, 2, 4, 4], 6), { kernel_shape: [2, 2], strides: [2, 2], count_include_pad: 1 })).rejects.toThrow(ModelError);
    await expect(grad(randomTensor([1, 2, 4, 4], 6), { kernel_shape: [2, 2, 2] })).rejects.toThrow(/kernel_shape must be 2 integers/);
  });
});

describe('segscope::AveragePoolGrad', () => {
  poolCases.forEach((c, k) => {
    for (const includePad of [0, 1]) {
      it(`${c.name}, count_include_pad=${includePad}: the CPU reference at f32 and f16, and the adjoint of the engine's AveragePool`, async () => {
        const attrs = poolAttrs(c, { count_include_pad: includePad });
        const x = randomTensor(c.dims, 400 + k);
        const dy = randomTensor(outDimsOf(c), 420 + k);
        for (const precision of PRECISIONS) {
          const [dx] = await runNode({ op: `${G}AveragePoolGrad`, attrs, inputs: [dy, x], opset: 19 }, precision);
          expect(dx!.dims).toEqual(c.dims);
          const ref = averagePoolGradRef(c, storedAs(dy, precision).data, includePad === 1);
          expect(relL2(dx!.data, ref), precision).toBeLessThan(TOLERANCE[precision]);
        }
        const [y] = await runNode({ op: 'AveragePool', attrs, inputs: [x], opset: 19 });
        const [dx] = await runNode({ op: `${G}AveragePoolGrad`, attrs, inputs: [dy, x], opset: 19 });
        expect(adjointGap(y!.data, dy.data, x.data, dx!.data)).toBeLessThan(1e-5);
      });
    }
  });

  it('does not bind x, which it reads only for its shape', () => {
    const c = poolCases[2]!;
    const graph = nodeGraph({ op: `${G}AveragePoolGrad`, attrs: poolAttrs(c), inputs: [randomTensor(outDimsOf(c), 1), randomTensor(c.dims, 2)] });
    const node = graph.nodes[0]!;
    const inputs = graph.inputs.map((i) => ({ name: i.name, type: i.type, dims: i.dims as number[] }));
    const impl = registry.get(node.opType)!;
    const outputs: TensorType[] = impl.infer(node, inputs, graph.opset);
    const kernels = impl.kernels!(node, inputs, outputs, graph.opset, { limits: { maxBytes: 1 << 27, offsetAlignment: 256 } });
    expect(kernels.flatMap((kernel) => kernel.bindings)).toEqual([
      { kind: 'input', index: 0 },
      { kind: 'output', index: 0 },
    ]);
  });
});

describe('segscope::ResizeGrad', () => {
  const i64 = (v: number[]) => ({ constant: tensor([v.length], v, 'int64') });
  const f32s = (v: number[]) => ({ constant: tensor([v.length], v) });
  const modes: (Options & { name: string })[] = [
    { name: 'linear', mode: 'linear', transform: '' },
    { name: 'nearest round_prefer_floor', mode: 'nearest', transform: '', nearest: 'round_prefer_floor' },
    { name: 'nearest floor', mode: 'nearest', transform: '', nearest: 'floor' },
    { name: 'cubic', mode: 'cubic', transform: '' },
    { name: 'cubic A=-0.5 exclude_outside', mode: 'cubic', transform: '', a: -0.5, exclude: true },
  ];
  const transforms = ['half_pixel', 'align_corners', 'asymmetric', 'pytorch_half_pixel'];
  const attrsOf = (o: Options): Record<string, AttrValue> => ({
    mode: o.mode,
    coordinate_transformation_mode: o.transform,
    ...(o.nearest && { nearest_mode: o.nearest }),
    ...(o.a !== undefined && { cubic_coeff_a: o.a }),
    ...(o.exclude && { exclude_outside: 1 }),
  });
  type Target = { sizes: number[] } | { scales: number[] };
  const targets: { name: string; dims: number[]; target: Target }[] = [
    { name: '9x7 -> 17x20 by sizes', dims: [1, 2, 9, 7], target: { sizes: [1, 2, 17, 20] } },
    { name: '13x17 -> 7x7 by scales 0.6, 0.45', dims: [2, 2, 13, 17], target: { scales: [1, 1, 0.6, 0.45] } },
    { name: '5x6 -> 10x15 by scales 2, 2.5', dims: [1, 3, 5, 6], target: { scales: [1, 1, 2, 2.5] } },
  ];

  /** dx from the GPU, the reference axes, and the forward's inputs after x. */
  async function check(o: Options, dims: number[], target: Target, seed: number, precisions: readonly Precision[] = ['f32']) {
    const axes: RefAxis[] = dims.map((d, a) => ('sizes' in target ? bySizes(d, target.sizes[a]!) : byScale(d, target.scales[a]!)));
    const rest = 'sizes' in target ? [null, null, i64(target.sizes)] : [null, f32s(target.scales)];
    const x = randomTensor(dims, seed);
    const dy = randomTensor(
      axes.map((a) => a.output),
      seed + 1,
    );
    const attrs = attrsOf(o);
    for (const precision of precisions) {
      const [dx] = await runNode({ op: `${G}ResizeGrad`, attrs, inputs: [dy, x, ...rest], opset: 13 }, precision);
      expect(dx!.dims).toEqual(dims);
      expect(relL2(dx!.data, resizeAdjointRef(storedAs(dy, precision).data, axes, o)), precision).toBeLessThan(TOLERANCE[precision]);
    }
    const [y] = await runNode({ op: 'Resize', attrs, inputs: [x, ...rest], opset: 13 });
    const [dx] = await runNode({ op: `${G}ResizeGrad`, attrs, inputs: [dy, x, ...rest], opset: 13 });
    expect(adjointGap(y!.data, dy.data, x.data, dx!.data)).toBeLessThan(1e-5);
  }

  modes.forEach((m, k) => {
    for (const transform of transforms) {
      it(`${m.name}, ${transform}: the CPU reference and the adjoint of the engine's Resize, up and down, sizes and scales`, async () => {
        for (const [t, { dims, target }] of targets.entries()) await check({ ...m, transform }, dims, target, 500 + 10 * k + t);
      });
    }
  });

  it('at f16: linear, nearest and cubic', async () => {
    for (const [k, m] of [modes[0]!, modes[1]!, modes[3]!].entries()) {
      await check({ ...m, transform: 'half_pixel' }, targets[0]!.dims, targets[0]!.target, 600 + k, PRECISIONS);
      await check({ ...m, transform: 'align_corners' }, targets[1]!.dims, targets[1]!.target, 610 + k, PRECISIONS);
    }
  });

  it('a 1-D resize and one that changes nothing (a copy)', async () => {
    await check({ mode: 'cubic', transform: 'half_pixel' }, [13], { scales: [2.5] }, 620);
    await check({ mode: 'linear', transform: 'half_pixel' }, [1, 3, 5, 7], { scales: [1, 1, 1, 1] }, 621);
  });

  it('Resize-18 axes with keep_aspect_ratio_policy not_larger', async () => {
    const x = randomTensor([1, 2, 9, 12], 630);
    const scale = 16 / 12;
    const axes = [bySizes(1, 1), bySizes(2, 2), { input: 9, output: 12, scale, length: 9 * scale }, { input: 12, output: 16, scale, length: 12 * scale }];
    const dy = randomTensor([1, 2, 12, 16], 631);
    const attrs = { mode: 'linear', axes: [-2, -1], keep_aspect_ratio_policy: 'not_larger' };
    const [dx] = await runNode({ op: `${G}ResizeGrad`, attrs, inputs: [dy, x, null, null, i64([20, 16])], opset: 18 });
    expect(relL2(dx!.data, resizeAdjointRef(dy.data, axes, { mode: 'linear', transform: 'half_pixel' }))).toBeLessThan(1e-5);
  });

  it('Resize-10 and Upsample (opset 9 input scales, opset 7 attribute scales), nearest and linear', async () => {
    const x = randomTensor([1, 2, 7, 5], 640);
    const scales = [1, 1, 2, 3];
    const axes = x.dims.map((d, a) => byScale(d, scales[a]!));
    const dy = randomTensor([1, 2, 14, 15], 641);
    for (const mode of ['nearest', 'linear']) {
      const ref = resizeAdjointRef(dy.data, axes, { mode, transform: 'asymmetric', nearest: 'floor' });
      const runs: Omit<NodeCase, 'op'>[] = [
        { attrs: { mode }, inputs: [dy, x, f32s(scales)], opset: 10 },
        { attrs: { mode, forward: 'Upsample' }, inputs: [dy, x, f32s(scales)], opset: 9 },
        { attrs: { mode, scales, forward: 'Upsample' }, inputs: [dy, x], opset: 7 },
      ];
      for (const r of runs) {
        const [dx] = await runNode({ op: `${G}ResizeGrad`, ...r });
        expect(relL2(dx!.data, ref), `${mode} opset ${r.opset}`).toBeLessThan(1e-6);
      }
    }
  });

  it("refuses what the forward refuses, dy of another shape than the forward's output, and an unknown forward", async () => {
    const x = randomTensor([1, 1, 4, 4], 650);
    const dy = randomTensor([1, 1, 8, 8], 651);
    const grad = (attrs: Record<string, AttrValue>, d = dy, opset = 13) =>
      runNode({ op: `${G}ResizeGrad`, attrs, inputs: [d, x, null, null, i64([1, 1, 8, 8])], opset });
    await expect(grad({ coordinate_transformation_mode: 'tf_crop_and_resize' })).rejects.toThrow(UnsupportedOpError);
    await expect(grad({ mode: 'linear', antialias: 1 }, dy, 18)).rejects.toThrow(UnsupportedOpError);
    await expect(grad({ mode: 'bilinear' })).rejects.toThrow(/mode must be one of/);
    await expect(grad({ mode: 'linear' }, randomTensor([1, 1, 8, 7], 652))).rejects.toThrow(
      /ResizeGrad node 'test_segscope::ResizeGrad': dy '.*' has shape \[1,1,8,7\], expected \[1,1,8,8\]/,
    );
    await expect(grad({ forward: 'Conv' })).rejects.toThrow(/forward must be Resize or Upsample/);
    await expect(grad({ kernel_shape: [2, 2] })).rejects.toThrow(/unknown attribute 'kernel_shape'/);
  });
});

describe('segscope::SegmentationSeed', () => {
  const dims = [2, 5, 4, 3];
  const [N, K, H, W] = dims as [number, number, number, number];

  function seedRef(logits: ArrayLike<number>, k: number, mask: ArrayLike<number>, usePrediction: boolean): number[] {
    const out = new Array<number>(sizeOf(dims)).fill(0);
    for (let n = 0; n < N; n++) {
      for (let s = 0; s < H * W; s++) {
        let arg = 0;
        for (let c = 1; c < K; c++) if (logits[(n * K + c) * H * W + s]! > logits[(n * K + arg) * H * W + s]!) arg = c;
        const m = usePrediction ? (arg === k ? 1 : 0) : mask[n * H * W + s]!;
        if (k >= 0 && k < K && Number.isInteger(k)) out[(n * K + k) * H * W + s] = m;
      }
    }
    return out;
  }

  const logits = randomTensor(dims, 700, -3, 3);
  const mask = tensor(
    [N, 1, H, W],
    Array.from(random(N * H * W, 701), (v) => (v > 0 ? 1 : v < -0.8 ? 0.5 : 0)),
  );
  const seed = (k: number, use: number, constantUse = false, precision: Precision = 'f32', l = logits) =>
    runNode(
      {
        op: `${G}SegmentationSeed`,
        inputs: [l, tensor([1], [k]), mask, constantUse ? { constant: tensor([1], [use]) } : tensor([1], [use])],
      },
      precision,
    ).then(([y]) => y!);

  it('the mask or the prediction on the class channel, zero elsewhere, at f32 and f16, with usePrediction fed or constant', async () => {
    for (const precision of PRECISIONS) {
      for (const constantUse of [false, true]) {
        for (const use of [0, 1]) {
          for (const k of [0, 2, 4]) {
            const y = await seed(k, use, constantUse, precision);
            expect(y.dims).toEqual(dims);
            expect(Array.from(y.data), `class ${k} use ${use} constant ${constantUse} ${precision}`).toEqual(
              seedRef(storedAs(logits, precision).data, k, mask.data, use !== 0),
            );
          }
        }
      }
    }
  });

  it('takes the first argmax on ties', async () => {
    // Every pixel: classes 1 and 3 share the maximum.
    const tied = tensor(
      dims,
      Array.from({ length: sizeOf(dims) }, (_, i) => ([1, 3].includes(unflatten(i, dims)[1]!) ? 2 : unflatten(i, dims)[1]! * 0.1)),
    );
    const one = await seed(1, 1, false, 'f32', tied);
    const three = await seed(3, 1, false, 'f32', tied);
    const plane = H * W;
    expect(Array.from(one.data).filter((v) => v === 1).length).toBe(N * plane);
    expect(Array.from(three.data).every((v) => v === 0)).toBe(true);
    expect(Array.from(one.data)).toEqual(seedRef(tied.data, 1, mask.data, true));
  });

  it('a class outside [0, K) or not an integer gives an all-zero seed', async () => {
    for (const k of [-1, 5, 1.5]) {
      for (const use of [0, 1]) expect(Array.from((await seed(k, use)).data).every((v) => v === 0)).toBe(true);
    }
  });

  it('refuses inputs of the wrong shapes', async () => {
    const run = (inputs: HostTensor[]) => runNode({ op: `${G}SegmentationSeed`, inputs });
    const [k, use] = [tensor([1], [0]), tensor([1], [1])];
    await expect(run([logits, k, tensor([N, 1, H, W + 1], new Array(N * H * (W + 1)).fill(0)), use])).rejects.toThrow(/mask '.*' has shape/);
    await expect(run([logits, tensor([2], [0, 1]), mask, use])).rejects.toThrow(/classIndex '.*' must hold one value/);
    await expect(run([randomTensor([2, 5, 12], 1), k, mask, use])).rejects.toThrow(/must be \[N, K, H, W\]/);
  });
});
