/**
 * The quantized ops (src/ops/quant/) against plain CPU references written
 * here: integer outputs must be equal, element for element, and float
 * outputs (scales, dequantized values) equal to the float32 the references
 * compute. Plus the load-time errors of bad scales and zero points, the CPU
 * folding of QuantizeLinear/DequantizeLinear, and a QLinearConv chain
 * against onnxruntime's CPU provider, bit for bit.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../src/errors.js';
import type { AttrValue, ElemType, HostTensor } from '../src/model/graph.js';
import { graphFromModel } from '../src/model/from-onnx.js';
import { inferTypes } from '../src/model/infer.js';
import { roundHalfEven } from '../src/model/numeric.js';
import { decodeModel, encodeModel } from '../src/onnx/decode.js';
import { AttributeType, DataType, type TensorProto } from '../src/onnx/schema.js';
import { registry } from '../src/ops/registry.js';
import { Session } from '../src/runtime/session.js';
import { gpu, type NodeCase, nodeGraph, random, roundToFloat16, runNode, storedAs, tensor } from './helpers/gpu.js';

const RANGES: Record<string, [number, number]> = { uint8: [0, 255], int8: [-128, 127] };
const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Seeded random integers in [lo, hi]. */
const ints = (n: number, seed: number, lo: number, hi: number): number[] => Array.from(random(n, seed, lo, hi + 1), (v) => Math.min(hi, Math.floor(v)));
const intTensor = (type: ElemType, dims: number[], seed: number, range = RANGES[type]!) => tensor(dims, ints(size(dims), seed, ...range), type);
const constant = (t: HostTensor) => ({ constant: t });
const values = (t: HostTensor) => Array.from(t.data);

/** Entry of a per-axis parameter for flat element i of a tensor of `dims` (per tensor when the parameter has one value). */
const entryAt = (dims: readonly number[], axis: number, p: HostTensor) => (i: number) =>
  p.data.length === 1 ? 0 : Math.floor(i / size(dims.slice(axis + 1))) % dims[axis]!;

function quantizeRef(x: HostTensor, scale: HostTensor, zp: HostTensor | undefined, type: string, axis = 1): number[] {
  const at = entryAt(x.dims, axis < 0 ? axis + x.dims.length : axis, scale);
  const [lo, hi] = RANGES[type]!;
  return Array.from(x.data, (v, i) => Math.min(hi, Math.max(lo, roundHalfEven(Math.fround(v / scale.data[at(i)]!)) + (zp?.data[at(i)] ?? 0))));
}

function dequantizeRef(x: HostTensor, scale: HostTensor, zp: HostTensor | undefined, axis = 1): number[] {
  const at = entryAt(x.dims, axis, scale);
  return Array.from(x.data, (v, i) => Math.fround(Math.fround(v - (zp?.data[at(i)] ?? 0)) * scale.data[at(i)]!));
}

/** ONNX's reference DynamicQuantizeLinear, in float32. */
function dynamicQuantizeRef(x: HostTensor): { y: number[]; scale: number; zp: number } {
  const max = Math.max(0, ...x.data);
  const min = Math.min(0, ...x.data);
  const scale = Math.fround(Math.fround(max === min ? 1 : Math.fround(max - min)) / 255);
  const zp = roundHalfEven(Math.max(0, Math.min(255, Math.fround(0 - Math.fround(min / scale)))));
  return { y: Array.from(x.data, (v) => Math.min(255, Math.max(0, roundHalfEven(Math.fround(v / scale)) + zp))), scale, zp };
}

interface ConvAttrs {
  pads?: number[];
  strides?: number[];
  dilations?: number[];
  group?: number;
}

/** The integer sums of a conv (NCHW, or NCL), zero points subtracted, padding contributing 0. */
function convIntegerRef(x: HostTensor, w: HostTensor, xzp: number, wzp: (co: number) => number, a: ConvAttrs): { dims: number[]; data: number[] } {
  const oneD = x.dims.length === 3;
  const [n, c, h, wd] = oneD ? [x.dims[0]!, x.dims[1]!, 1, x.dims[2]!] : (x.dims as [number, number, number, number]);
  const [m, cg, kh, kw] = oneD ? [w.dims[0]!, w.dims[1]!, 1, w.dims[2]!] : (w.dims as [number, number, number, number]);
  const g = a.group ?? 1;
  const spatial = (v: number[] | undefined, fill: number) => (oneD ? [fill, ...(v ?? [fill])] : (v ?? [fill, fill]));
  const [sy, sx] = spatial(a.strides, 1) as [number, number];
  const [dy, dx] = spatial(a.dilations, 1) as [number, number];
  const pads = a.pads ?? new Array(oneD ? 2 : 4).fill(0);
  const [py0, px0, py1, px1] = oneD ? [0, pads[0]!, 0, pads[1]!] : (pads as [number, number, number, number]);
  const oh = Math.floor((h + py0 + py1 - (dy * (kh - 1) + 1)) / sy) + 1;
  const ow = Math.floor((wd + px0 + px1 - (dx * (kw - 1) + 1)) / sx) + 1;
  const data: number[] = [];
  for (let b = 0; b < n; b++)
    for (let co = 0; co < m; co++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let acc = 0;
          const group = Math.floor(co / (m / g));
          for (let ci = 0; ci < cg; ci++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = oy * sy + ky * dy - py0;
                const ix = ox * sx + kx * dx - px0;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                const xv = x.data[((b * c + group * cg + ci) * h + iy) * wd + ix]! - xzp;
                acc += xv * (w.data[((co * cg + ci) * kh + ky) * kw + kx]! - wzp(co));
              }
          data.push(acc);
        }
  return { dims: oneD ? [n, m, ow] : [n, m, oh, ow], data };
}

/** onnxruntime's requantization: float32 multiplier, the int32 sum converted to float32, rounded half to even, saturated. */
function requantizeRef(acc: number, multiplier: number, zp: number, type: string): number {
  const [lo, hi] = RANGES[type]!;
  return Math.min(hi, Math.max(lo, roundHalfEven(Math.fround(Math.fround(acc) * multiplier)) + zp));
}
const multiplierRef = (xs: number, ws: number, ys: number) => Math.fround(Math.fround(xs * ws) / ys);

/** Numpy matmul of integer operands with batch broadcasting; zero points per tensor, per row of A, per column of B. */
function matmulIntegerRef(a: HostTensor, b: HostTensor, azp: (row: number) => number, bzp: (col: number) => number): { dims: number[]; data: number[] } {
  const [m, k] = a.dims.slice(-2) as [number, number];
  const n = b.dims[b.dims.length - 1]!;
  const aBatch = a.dims.slice(0, -2);
  const bBatch = b.dims.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const pad = (d: number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const [pa, pb] = [pad(aBatch), pad(bBatch)];
  const batch = pa.map((d, i) => Math.max(d, pb[i]!));
  const data: number[] = [];
  for (let z = 0; z < size(batch); z++) {
    let [ai, bi, rest] = [0, 0, z];
    const coords = batch.map(() => 0);
    for (let d = rank - 1; d >= 0; d--) {
      coords[d] = rest % batch[d]!;
      rest = Math.floor(rest / batch[d]!);
    }
    coords.forEach((c, d) => {
      ai = ai * pa[d]! + (pa[d] === 1 ? 0 : c);
      bi = bi * pb[d]! + (pb[d] === 1 ? 0 : c);
    });
    for (let r = 0; r < m; r++)
      for (let c = 0; c < n; c++) {
        let acc = 0;
        for (let t = 0; t < k; t++) acc += (a.data[(ai * m + r) * k + t]! - azp(ai * m + r)) * (b.data[(bi * k + t) * n + c]! - bzp(bi * n + c));
        data.push(acc);
      }
  }
  return { dims: [...batch, m, n], data };
}

const run = async (c: NodeCase) => (await runNode({ opset: 21, ...c }))[0]!;

describe('QuantizeLinear', () => {
  // Values at exact halves of the scale (a power of two) test rounding half to even; the rest saturate.
  const halves = (dims: number[], s: number) =>
    tensor(
      dims,
      Array.from({ length: size(dims) }, (_, i) => (i - size(dims) / 2 + 0.5) * s * 2.5),
    );

  it('quantizes per tensor to uint8 without a zero point, halves to even, saturating', async () => {
    const x = halves([2, 3, 70], 0.25);
    const scale = tensor([], [0.25]);
    const y = await run({ op: 'QuantizeLinear', inputs: [x, constant(scale)] });
    expect(y.type).toBe('uint8');
    expect(values(y)).toEqual(quantizeRef(x, scale, undefined, 'uint8'));
  });

  it('quantizes per tensor to int8 with a zero point, scale and zero point fed at run time', async () => {
    const x = tensor([5, 61], random(305, 1, -3, 3));
    const scale = tensor([], [0.0137]);
    const zp = tensor([], [-7], 'int8');
    const y = await run({ op: 'QuantizeLinear', inputs: [x, scale, zp] });
    expect(y.type).toBe('int8');
    expect(values(y)).toEqual(quantizeRef(x, scale, zp, 'int8'));
  });

  for (const [type, axis] of [
    ['uint8', 1],
    ['int8', -1],
    ['int8', 0],
  ] as const) {
    it(`quantizes per axis ${axis} to ${type}`, async () => {
      const x = tensor([3, 4, 5, 6], random(360, 2 + axis, -2, 2));
      const length = x.dims.at(axis)!;
      const scale = tensor([length], random(length, 9, 0.005, 0.03));
      const zp = intTensor(type, [length], 10 + axis, type === 'uint8' ? [100, 150] : [-20, 20]);
      const y = await run({ op: 'QuantizeLinear', attrs: { axis }, inputs: [x, constant(scale), constant(zp)] });
      expect(values(y)).toEqual(quantizeRef(x, scale, zp, type, axis));
    });
  }
});

describe('DequantizeLinear', () => {
  for (const type of ['uint8', 'int8'] as const) {
    it(`dequantizes ${type} per tensor and per axis`, async () => {
      const x = intTensor(type, [2, 5, 7], 20);
      const scale = tensor([], [0.0371]);
      const zp = tensor([], [type === 'uint8' ? 131 : -3], type);
      expect(values(await run({ op: 'DequantizeLinear', inputs: [x, constant(scale), constant(zp)] }))).toEqual(dequantizeRef(x, scale, zp));
      const scales = tensor([5], random(5, 21, 0.01, 0.2));
      const zps = intTensor(type, [5], 22);
      expect(values(await run({ op: 'DequantizeLinear', inputs: [x, scales, zps] }))).toEqual(dequantizeRef(x, scales, zps));
    });
  }

  it('dequantizes int32 beyond 2^24 as float32 rounds it, without a zero point', async () => {
    const x = tensor([6], [2 ** 24 + 1, -(2 ** 24) - 3, 2 ** 31 - 1, -(2 ** 31), 123456789, 5], 'int32');
    const scale = tensor([], [0.5]);
    expect(values(await run({ op: 'DequantizeLinear', inputs: [x, constant(scale)] }))).toEqual(dequantizeRef(x, scale, undefined));
  });

  it('folds on load-time inputs: a QDQ weight becomes a float weight for the float Conv', async () => {
    const wq = intTensor('int8', [4, 3, 3, 3], 23);
    const scales = tensor([4], [0.02, 0.011, 0.05, 0.0071]);
    const graph = nodeGraph({ op: 'DequantizeLinear', attrs: { axis: 0 }, inputs: [constant(wq), constant(scales)], opset: 13 });
    graph.nodes.push({
      ...graph.nodes[0]!,
      name: 'conv',
      opType: 'Conv',
      inputs: ['x', 'out0'],
      outputs: ['y'],
      attrs: nodeGraph({ op: 'Conv', inputs: [] }).nodes[0]!.attrs,
    });
    graph.inputs.push({ name: 'x', type: 'float32', dims: [1, 3, 5, 5] });
    graph.outputs = [{ name: 'y', type: 'float32' }];
    const typed = inferTypes(graph, new Map(), (op) => registry.get(op)?.infer);
    expect(typed.nodes.map((n) => n.opType)).toEqual(['Conv']);
    expect(values(typed.values.get('out0')!)).toEqual(dequantizeRef(wq, scales, undefined, 0));
    const session = await Session.create(await gpu(), graph);
    const x = tensor([1, 3, 5, 5], random(75, 24));
    const y = (await session.run({ x })).outputs.get('y')!;
    session.destroy();
    expect(y.dims).toEqual([1, 4, 3, 3]);
  });

  it('folds QuantizeLinear on load-time inputs as the GPU computes it', async () => {
    const x = tensor([40], random(40, 25, -1, 1));
    const scale = tensor([], [0.01]);
    const zp = tensor([], [3], 'int8');
    const typed = inferTypes(
      nodeGraph({ op: 'QuantizeLinear', inputs: [constant(x), constant(scale), constant(zp)], opset: 13 }),
      new Map(),
      (op) => registry.get(op)?.infer,
    );
    expect(typed.nodes).toEqual([]);
    expect(typed.values.get('out0')!.type).toBe('int8');
    expect(values(typed.values.get('out0')!)).toEqual(quantizeRef(x, scale, zp, 'int8'));
  });
});

describe('at precision f16', () => {
  it('quantizes the float16 activation and dequantizes into one', async () => {
    const x = tensor([3, 50], random(150, 26, -2, 2));
    const scale = tensor([3], [0.013, 0.021, 0.008]);
    const zp = intTensor('int8', [3], 27, [-5, 5]);
    const c = { op: 'QuantizeLinear', attrs: { axis: 0 }, inputs: [x, constant(scale), constant(zp)], opset: 13 };
    const [q] = await runNode(c, 'f16');
    expect(values(q!)).toEqual(quantizeRef(storedAs(x, 'f16'), scale, zp, 'int8', 0));
    const [y] = await runNode({ ...c, op: 'DequantizeLinear', inputs: [q!, constant(scale), constant(zp)] }, 'f16');
    expect(values(y!)).toEqual(roundToFloat16(dequantizeRef(q!, scale, zp, 0)));
  });
});

describe('DynamicQuantizeLinear', () => {
  const cases: [string, number[]][] = [
    ['mixed signs, several chunks', Array.from(random(10007, 30, -2.5, 7))],
    ['positive only (min adjusted to 0)', Array.from(random(300, 31, 0.5, 3))],
    ['negative only (max adjusted to 0)', Array.from(random(300, 32, -3, -0.25))],
    ['all zero', new Array(17).fill(0)],
  ];
  for (const [what, data] of cases) {
    it(`computes y, y_scale and y_zero_point as ONNX's reference: ${what}`, async () => {
      const x = tensor([data.length], data);
      const [y, scale, zp] = await runNode({ op: 'DynamicQuantizeLinear', inputs: [x], outputs: 3, opset: 11 });
      const ref = dynamicQuantizeRef(x);
      expect([scale!.type, zp!.type, y!.type]).toEqual(['float32', 'uint8', 'uint8']);
      expect(values(scale!)).toEqual([ref.scale]);
      expect(values(zp!)).toEqual([ref.zp]);
      expect(values(y!)).toEqual(ref.y);
    });
  }

  it('feeds ConvInteger its y and y_zero_point on the GPU', async () => {
    const x = tensor([1, 4, 6, 6], random(144, 33, -1, 2));
    const w = intTensor('uint8', [3, 4, 3, 3], 34);
    const graph = nodeGraph({ op: 'DynamicQuantizeLinear', inputs: [x], outputs: 3, opset: 11 });
    graph.nodes.push({ ...graph.nodes[0]!, name: 'conv', opType: 'ConvInteger', inputs: ['out0', 'w', 'out2'], outputs: ['y'] });
    graph.initializers.set('w', w);
    graph.outputs = [{ name: 'y', type: 'int32' }];
    const session = await Session.create(await gpu(), graph);
    const y = (await session.run({ in0: x })).outputs.get('y')!;
    session.destroy();
    const ref = dynamicQuantizeRef(x);
    const expected = convIntegerRef(tensor([...x.dims], ref.y, 'uint8'), w, ref.zp, () => 0, {});
    expect(y.type).toBe('int32');
    expect(values(y)).toEqual(expected.data);
  });
});

/** Conv cases: shape, weight shape, attributes, and the types of x and w. */
const CONVS: { what: string; x: number[]; w: number[]; attrs: ConvAttrs; types: [ElemType, ElemType] }[] = [
  { what: 'pads', x: [2, 3, 7, 6], w: [4, 3, 3, 3], attrs: { pads: [1, 1, 1, 1] }, types: ['uint8', 'uint8'] },
  { what: 'strides and asymmetric pads', x: [1, 5, 9, 8], w: [6, 5, 3, 2], attrs: { strides: [2, 3], pads: [0, 1, 2, 1] }, types: ['uint8', 'int8'] },
  { what: 'dilations', x: [1, 3, 11, 11], w: [2, 3, 3, 3], attrs: { dilations: [2, 3], pads: [2, 2, 2, 2] }, types: ['int8', 'int8'] },
  { what: 'groups', x: [1, 6, 6, 6], w: [4, 3, 3, 3], attrs: { group: 2, pads: [1, 1, 1, 1] }, types: ['uint8', 'int8'] },
  { what: 'depthwise', x: [1, 4, 5, 5], w: [8, 1, 3, 3], attrs: { group: 4, strides: [2, 2] }, types: ['int8', 'int8'] },
  { what: '1-D', x: [2, 3, 12], w: [4, 3, 5], attrs: { pads: [2, 1], strides: [2] }, types: ['uint8', 'uint8'] },
  // K = 256·3·3: sums of products up to 255² exceed 2^24, where f32 accumulation stops being exact.
  { what: 'K = 2304', x: [1, 256, 5, 5], w: [3, 256, 3, 3], attrs: { pads: [1, 1, 1, 1] }, types: ['uint8', 'uint8'] },
];

describe('ConvInteger', () => {
  for (const c of CONVS) {
    it(`sums exactly in int32: ${c.what}, ${c.types.join(' x ')}`, async () => {
      const [xt, wt] = c.types;
      const x = intTensor(xt, c.x, 40);
      const w = intTensor(wt, c.w, 41);
      const xzp = tensor([], [xt === 'uint8' ? 3 : -2], xt);
      // Per output channel, except for K = 2304, whose zero points are 0 so the products reach 255².
      const big = c.what.startsWith('K');
      const wzp = big ? tensor([], [0], wt) : intTensor(wt, [c.w[0]!], 42, wt === 'uint8' ? [0, 20] : [-10, 10]);
      const y = await run({ op: 'ConvInteger', attrs: c.attrs as Record<string, AttrValue>, inputs: [x, constant(w), big ? null : xzp, constant(wzp)] });
      const ref = convIntegerRef(x, w, big ? 0 : xzp.data[0]!, (co) => wzp.data[wzp.data.length === 1 ? 0 : co]!, c.attrs);
      if (big) expect(Math.max(...ref.data)).toBeGreaterThan(2 ** 24);
      expect(y.type).toBe('int32');
      expect(y.dims).toEqual(ref.dims);
      expect(values(y)).toEqual(ref.data);
    });
  }
});

describe('QLinearConv', () => {
  for (const c of CONVS) {
    for (const perChannel of [false, true]) {
      it(`requantizes as onnxruntime: ${c.what}, ${c.types.join(' x ')}, ${perChannel ? 'per-channel' : 'per-tensor'} w_scale`, async () => {
        const [xt, wt] = c.types;
        const m = c.w[0]!;
        const x = intTensor(xt, c.x, 50);
        const w = intTensor(wt, c.w, 51);
        const xs = 0.0213;
        const ws = perChannel ? Array.from(random(m, 52, 0.001, 0.01)) : [0.0041];
        const ys = c.what.startsWith('K') ? 0.37 : 0.173;
        const [xzp, yzp] = xt === 'uint8' ? [125, 121] : [-3, 4];
        const wzp = wt === 'uint8' ? 117 : 0;
        const bias = ints(m, 53, -3000, 3000);
        const y = await run({
          op: 'QLinearConv',
          attrs: c.attrs as Record<string, AttrValue>,
          inputs: [
            x,
            constant(tensor([], [xs])),
            constant(tensor([], [xzp], xt)),
            constant(w),
            constant(tensor(perChannel ? [m] : [], ws)),
            constant(tensor(perChannel ? [m] : [], perChannel ? new Array(m).fill(wzp) : [wzp], wt)),
            constant(tensor([], [ys])),
            constant(tensor([], [yzp], xt)),
            constant(tensor([m], bias, 'int32')),
          ],
        });
        const ref = convIntegerRef(x, w, xzp, () => wzp, c.attrs);
        const plane = size(ref.dims.slice(2));
        const expected = ref.data.map((acc, i) => {
          const co = Math.floor(i / plane) % m;
          return requantizeRef(acc + bias[co]!, multiplierRef(xs, ws[perChannel ? co : 0]!, ys), yzp, xt);
        });
        expect(y.type).toBe(xt);
        expect(values(y)).toEqual(expected);
        // Not all saturated: the multiplier spreads the sums over the range.
        expect(new Set(expected).size).toBeGreaterThan(10);
      });
    }
  }
});

describe('MatMulInteger', () => {
  const cases: {
    what: string;
    a: number[];
    b: number[];
    azp: 'tensor' | 'row' | 'row-nd';
    bzp: 'tensor' | 'column' | 'column-nd';
    types: [ElemType, ElemType];
  }[] = [
    { what: '2-D', a: [5, 7], b: [7, 3], azp: 'tensor', bzp: 'tensor', types: ['uint8', 'uint8'] },
    { what: 'per-row and per-column zero points', a: [4, 9], b: [9, 6], azp: 'row', bzp: 'column', types: ['uint8', 'int8'] },
    { what: 'batch broadcasting', a: [2, 1, 3, 8], b: [3, 8, 5], azp: 'tensor', bzp: 'column', types: ['int8', 'int8'] },
    { what: 'N-D per-row and per-column zero points', a: [2, 3, 6], b: [2, 6, 4], azp: 'row-nd', bzp: 'column-nd', types: ['uint8', 'uint8'] },
    { what: 'K = 2304', a: [3, 2304], b: [2304, 4], azp: 'tensor', bzp: 'tensor', types: ['uint8', 'uint8'] },
  ];
  for (const c of cases) {
    it(`sums exactly in int32: ${c.what}`, async () => {
      const [at, bt] = c.types;
      const a = intTensor(at, c.a, 60);
      const b = intTensor(bt, c.b, 61);
      const [m, n] = [c.a.at(-2)!, c.b.at(-1)!];
      const zeroPoints = (type: ElemType, dims: number[], seed: number) => intTensor(type, dims, seed, type === 'uint8' ? [0, 30] : [-9, 9]);
      const big = c.what.startsWith('K');
      const azp = zeroPoints(at, { tensor: [], row: [m], 'row-nd': [...c.a.slice(0, -1), 1] }[c.azp], 62);
      const bzp = zeroPoints(bt, { tensor: [], column: [n], 'column-nd': [...c.b.slice(0, -2), 1, n] }[c.bzp], 63);
      const y = await run({ op: 'MatMulInteger', inputs: [a, constant(b), big ? null : azp, big ? null : bzp] });
      const ref = matmulIntegerRef(
        a,
        b,
        (row) => (big ? 0 : azp.data[azp.data.length === 1 ? 0 : c.azp === 'row' ? row % m : row]!),
        (col) => (big ? 0 : bzp.data[bzp.data.length === 1 ? 0 : c.bzp === 'column' ? col % n : col]!),
      );
      if (big) expect(Math.max(...ref.data)).toBeGreaterThan(2 ** 24);
      expect(y.dims).toEqual(ref.dims);
      expect(values(y)).toEqual(ref.data);
    });
  }
});

describe('QLinearMatMul', () => {
  for (const perColumn of [false, true]) {
    for (const type of ['uint8', 'int8'] as const) {
      it(`requantizes as onnxruntime: ${type}, ${perColumn ? 'per-column' : 'per-tensor'} b_scale, batched`, async () => {
        const a = intTensor(type, [2, 5, 300], 70);
        const b = intTensor(type, [300, 6], 71);
        const [as, ys] = [0.017, 0.9];
        const bs = perColumn ? Array.from(random(6, 72, 0.001, 0.02)) : [0.007];
        const [azp, bzp, yzp] = type === 'uint8' ? [128, 120, 130] : [2, -1, -5];
        const y = await run({
          op: 'QLinearMatMul',
          inputs: [
            a,
            constant(tensor([], [as])),
            constant(tensor([], [azp], type)),
            constant(b),
            constant(tensor(perColumn ? [6] : [], bs)),
            constant(tensor([], [bzp], type)),
            constant(tensor([], [ys])),
            constant(tensor([], [yzp], type)),
          ],
        });
        const ref = matmulIntegerRef(
          a,
          b,
          () => azp,
          () => bzp,
        );
        const expected = ref.data.map((acc, i) => requantizeRef(acc, multiplierRef(as, bs[perColumn ? i % 6 : 0]!, ys), yzp, type));
        expect(y.type).toBe(type);
        expect(values(y)).toEqual(expected);
        expect(new Set(expected).size).toBeGreaterThan(10);
      });
    }
  }
});

describe('bad scales and zero points are refused at load time, naming the node', () => {
  const x = tensor([2, 3, 4], random(24, 80));
  const infer = (c: NodeCase) => () => inferTypes(nodeGraph({ opset: 13, ...c }), new Map(), (op) => registry.get(op)?.infer);
  const quantize = (scale: HostTensor, zp?: HostTensor, attrs?: Record<string, AttrValue>, opset?: number): NodeCase => ({
    op: 'QuantizeLinear',
    attrs,
    inputs: [x, constant(scale), ...(zp ? [constant(zp)] : [])],
    opset,
  });
  const cases: [string, NodeCase, RegExp][] = [
    ['a zero scale', quantize(tensor([], [0])), /QuantizeLinear node 'test_QuantizeLinear': y_scale 'in1' holds 0; scales must be positive and finite/],
    ['a negative per-axis scale', quantize(tensor([3], [0.1, -0.2, 0.3])), /y_scale 'in1' holds -0\.2\d*; scales must be positive/],
    ['a non-finite scale', quantize(tensor([], [Infinity])), /y_scale 'in1' holds Infinity/],
    [
      'a zero point out of uint8 range',
      quantize(tensor([], [0.1]), tensor([], [300], 'uint8')),
      /y_zero_point 'in2' holds 300, outside uint8's range \[0, 255\]/,
    ],
    [
      'a zero point whose type disagrees with output_dtype',
      quantize(tensor([], [0.1]), tensor([], [3], 'uint8'), { output_dtype: DataType.INT8 }),
      /output_dtype is int8 but y_zero_point 'in2' is uint8/,
    ],
    [
      'a DequantizeLinear zero point of another type than x',
      { op: 'DequantizeLinear', inputs: [intTensor('uint8', [4], 81), constant(tensor([], [0.1])), constant(tensor([], [1], 'int8'))] },
      /DequantizeLinear node 'test_DequantizeLinear': x_zero_point 'in2' is int8; expected uint8/,
    ],
    [
      'a per-axis scale of the wrong length',
      quantize(tensor([4], [0.1, 0.1, 0.1, 0.1])),
      /'in1' has shape \[4\]; per-axis on axis 1 of x \[2,3,4\] needs \[3\]/,
    ],
    [
      'per-axis scale and zero point of different lengths',
      quantize(tensor([3], [0.1, 0.2, 0.3]), tensor([4], [1, 2, 3, 4], 'uint8'), { axis: 1 }),
      /'in2' has shape \[4\]/,
    ],
    [
      'an axis out of range',
      quantize(tensor([3], [0.1, 0.2, 0.3]), undefined, { axis: 3 }),
      /QuantizeLinear node 'test_QuantizeLinear': axis 3 is out of range for rank 3/,
    ],
    ['a per-axis scale before opset 13', quantize(tensor([3], [0.1, 0.2, 0.3]), undefined, undefined, 10), /one element before opset 13/],
    [
      'a zero QLinearConv w_scale',
      {
        op: 'QLinearConv',
        inputs: [
          intTensor('uint8', [1, 2, 3, 3], 82),
          constant(tensor([], [0.1])),
          constant(tensor([], [0], 'uint8')),
          constant(intTensor('uint8', [2, 2, 1, 1], 83)),
          constant(tensor([2], [0.1, 0])),
          constant(tensor([2], [0, 0], 'uint8')),
          constant(tensor([], [0.1])),
          constant(tensor([], [0], 'uint8')),
        ],
      },
      /QLinearConv node 'test_QLinearConv': w_scale 'in4' holds 0/,
    ],
    [
      'a ConvInteger w_zero_point per channel of the wrong length',
      {
        op: 'ConvInteger',
        inputs: [intTensor('uint8', [1, 2, 3, 3], 84), constant(intTensor('uint8', [4, 2, 1, 1], 85)), null, constant(tensor([3], [0, 0, 0], 'uint8'))],
      },
      /ConvInteger node 'test_ConvInteger': w_zero_point 'in3' has shape \[3\]; expected one element or \[4\]/,
    ],
    [
      'a MatMulInteger a_zero_point out of int8 range',
      { op: 'MatMulInteger', inputs: [intTensor('int8', [2, 3], 86), constant(intTensor('int8', [3, 2], 87)), constant(tensor([], [-129], 'int8'))] },
      /MatMulInteger node 'test_MatMulInteger': a_zero_point 'in2' holds -129, outside int8's range/,
    ],
  ];
  for (const [what, c, message] of cases) {
    it(what, () => {
      expect(infer(c)).toThrow(ModelError);
      expect(infer(c)).toThrow(message);
    });
  }

  it('when the node folds on the CPU too', () => {
    const folded = quantize(tensor([], [0]));
    folded.inputs[0] = constant(x);
    expect(infer(folded)).toThrow(/y_scale 'in1' holds 0/);
  });
});

describe('a QLinearConv chain against onnxruntime', () => {
  /** A TensorProto initializer. */
  const init = (name: string, t: HostTensor, dataType: number): TensorProto => ({
    name,
    dims: [...t.dims],
    data_type: dataType,
    ...(dataType === DataType.FLOAT ? { float_data: Array.from(t.data) } : { int32_data: Array.from(t.data) }),
  });
  const intsAttr = (name: string, v: number[]) => ({ name, type: AttributeType.INTS, ints: v });

  it('gives onnxruntime CPU results bit for bit (uint8 activations, int8 per-channel and uint8 per-tensor weights)', async () => {
    const x = intTensor('uint8', [1, 256, 6, 6], 90);
    const w1 = intTensor('int8', [16, 256, 3, 3], 91);
    const w1Scale = tensor([16], random(16, 92, 0.0005, 0.002));
    const b1 = tensor([16], ints(16, 93, -20000, 20000), 'int32');
    const w2 = intTensor('uint8', [8, 8, 3, 3], 94);
    const uint8 = (v: number) => tensor([], [v], 'uint8');
    const initializers = [
      init('x_scale', tensor([], [0.0197]), DataType.FLOAT),
      init('x_zp', uint8(131), DataType.UINT8),
      init('w1', w1, DataType.INT8),
      init('w1_scale', w1Scale, DataType.FLOAT),
      init('w1_zp', tensor([16], new Array(16).fill(0), 'int8'), DataType.INT8),
      init('h_scale', tensor([], [0.083]), DataType.FLOAT),
      init('h_zp', uint8(97), DataType.UINT8),
      init('b1', b1, DataType.INT32),
      init('w2', w2, DataType.UINT8),
      init('w2_scale', tensor([], [0.0061]), DataType.FLOAT),
      init('w2_zp', uint8(119), DataType.UINT8),
      init('y_scale', tensor([], [0.31]), DataType.FLOAT),
      init('y_zp', uint8(140), DataType.UINT8),
    ];
    const tensorType = (elem: number) => ({ tensor_type: { elem_type: elem } });
    const bytes = encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'qlinear_chain',
        node: [
          {
            name: 'conv1',
            op_type: 'QLinearConv',
            input: ['x', 'x_scale', 'x_zp', 'w1', 'w1_scale', 'w1_zp', 'h_scale', 'h_zp', 'b1'],
            output: ['h'],
            attribute: [intsAttr('pads', [1, 1, 1, 1])],
          },
          {
            name: 'conv2',
            op_type: 'QLinearConv',
            input: ['h', 'h_scale', 'h_zp', 'w2', 'w2_scale', 'w2_zp', 'y_scale', 'y_zp'],
            output: ['y'],
            attribute: [
              intsAttr('strides', [2, 2]),
              intsAttr('dilations', [1, 2]),
              intsAttr('pads', [1, 2, 1, 2]),
              { name: 'group', type: AttributeType.INT, i: 2 },
            ],
          },
        ],
        initializer: initializers,
        input: [{ name: 'x', type: tensorType(DataType.UINT8) }],
        output: [{ name: 'y', type: tensorType(DataType.UINT8) }],
      },
    });
    const reference = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
    const expected = (await reference.run({ x: new ort.Tensor('uint8', Uint8Array.from(x.data), [...x.dims]) })).y!;
    await reference.release();

    const graph = graphFromModel(decodeModel(bytes, 'qlinear_chain.onnx'), { source: 'qlinear_chain.onnx' });
    const session = await Session.create(await gpu(), graph, { inputShapes: { x: [...x.dims] } });
    const { outputs, captured } = await session.run({ x }, { capture: ['h'] });
    const y = outputs.get('y')!;
    const h = await captured.get('h')!.toHost();
    session.destroy();
    expect(h.type).toBe('uint8');
    expect(y.type).toBe('uint8');
    expect(y.dims).toEqual([...expected.dims]);
    expect(values(y)).toEqual(Array.from(expected.data as Uint8Array));
    expect(new Set(values(y)).size).toBeGreaterThan(20);
  });
});
