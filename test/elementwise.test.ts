import { describe, expect, it } from 'vitest';
import { ModelError, UnsupportedOpError } from '../src/errors.js';
import type { HostTensor } from '../src/model/graph.js';
import { graphFromModel } from '../src/model/from-onnx.js';
import { decodeModel, encodeModel } from '../src/onnx/decode.js';
import { DataType } from '../src/onnx/schema.js';
import { Session } from '../src/runtime/session.js';
import { PRECISIONS } from '../src/model/precision.js';
import { gpu, nodeGraph, random, randomTensor, relL2, roundToFloat16, runNode, tensor, TOLERANCE } from './helpers/gpu.js';

/** Plain CPU references, written for the test. */

/** Numpy broadcasting of `xs`, combining the elements with `f`. */
function broadcastRef(xs: HostTensor[], f: (...v: number[]) => number): { dims: number[]; data: number[] } {
  const rank = Math.max(...xs.map((x) => x.dims.length));
  const padded = xs.map((x) => [...new Array<number>(rank - x.dims.length).fill(1), ...x.dims]);
  const dims = Array.from({ length: rank }, (_, a) => Math.max(...padded.map((p) => p[a]!)));
  const size = dims.reduce((p, d) => p * d, 1);
  const data: number[] = [];
  for (let i = 0; i < size; i++) {
    const coords: number[] = [];
    let rest = i;
    for (let a = rank - 1; a >= 0; a--) {
      coords[a] = rest % dims[a]!;
      rest = Math.floor(rest / dims[a]!);
    }
    const values = xs.map((x, k) => {
      let index = 0;
      padded[k]!.forEach((d, a) => {
        index = index * d + (d === 1 ? 0 : coords[a]!);
      });
      return x.data[index]!;
    });
    data.push(f(...values));
  }
  return { dims, data };
}

const binary: Record<string, (a: number, b: number) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => a / b,
  Max: Math.max,
  Min: Math.min,
};

/** Shape pairs: same shape, per-channel both ways, scalar, general two-sided broadcast. */
const shapePairs: [number[], number[]][] = [
  [
    [2, 3, 7, 5],
    [2, 3, 7, 5],
  ],
  [
    [1, 3, 7, 5],
    [3, 1, 1],
  ],
  [
    [3, 1, 1],
    [2, 3, 7, 5],
  ],
  [[2, 3, 7, 5], []],
  [
    [3, 1, 5],
    [2, 1, 7, 1],
  ],
];

/** Values away from zero, so Div stays well conditioned. */
const awayFromZero = (dims: number[], seed: number): HostTensor =>
  tensor(
    dims,
    Array.from(
      random(
        dims.reduce((p, d) => p * d, 1),
        seed,
        0.5,
        2,
      ),
      (v, i) => (i % 3 === 0 ? -v : v),
    ),
  );

describe('binary arithmetic with broadcasting', () => {
  for (const [op, f] of Object.entries(binary)) {
    it(`${op} matches the CPU reference for same-shape, per-channel, scalar and general broadcasts`, async () => {
      for (const [k, [da, db]] of shapePairs.entries()) {
        const a = awayFromZero(da, 100 * k + op.length);
        const b = awayFromZero(db, 100 * k + 7 * op.length + 1);
        const ref = broadcastRef([a, b], f);
        for (const precision of PRECISIONS) {
          const [y] = await runNode({ op, inputs: [a, b] }, precision);
          expect(y!.dims).toEqual(ref.dims);
          expect(relL2(y!.data, ref.data), precision).toBeLessThan(TOLERANCE[precision]);
        }
      }
    });
  }

  it('Mul(x, x) squares exactly (the plan binds a copy for the repeated input: WebGPU refuses two writable bindings of one range)', async () => {
    const x = randomTensor([2, 3, 5, 7], 43);
    const graph = nodeGraph({ op: 'Mul', inputs: [x] });
    graph.nodes[0]!.inputs = ['in0', 'in0'];
    const session = await Session.create(await gpu(), graph);
    try {
      const y = (await session.run(x)).outputs.get('out0')!;
      expect(Array.from(y.data)).toEqual(Array.from(x.data, (v) => Math.fround(v * v)));
    } finally {
      session.destroy();
    }
  });

  it('inlines scalar constants and binds other constants, on either side', async () => {
    const x = randomTensor([2, 3, 5, 7], 41);
    const bias = randomTensor([1, 3, 1, 1], 42);
    const cases: [string, HostTensor | { constant: HostTensor }, HostTensor | { constant: HostTensor }, (a: number, b: number) => number][] = [
      ['Sub', { constant: tensor([], [-0.25]) }, x, (a, b) => a - b],
      ['Div', x, { constant: tensor([1], [3]) }, (a, b) => a / b],
      ['Add', x, { constant: bias }, (a, b) => a + b],
      ['Mul', { constant: bias }, x, (a, b) => a * b],
    ];
    for (const [op, a, b, f] of cases) {
      const host = (v: HostTensor | { constant: HostTensor }) => ('constant' in v ? v.constant : v);
      const ref = broadcastRef([host(a), host(b)], f);
      // At f16 a bound constant is uploaded as float16.
      for (const precision of PRECISIONS) {
        const [y] = await runNode({ op, inputs: [a, b] }, precision);
        expect(y!.dims).toEqual(ref.dims);
        expect(relL2(y!.data, ref.data), precision).toBeLessThan(TOLERANCE[precision]);
      }
    }
  });

  it('aligns B at `axis` with the legacy broadcast attribute (opset 6)', async () => {
    const a = randomTensor([2, 3, 4, 5], 51);
    const b = randomTensor([3, 4], 52);
    const [y] = await runNode({ op: 'Add', attrs: { broadcast: 1, axis: 1 }, inputs: [a, b], opset: 6 });
    const ref = broadcastRef([a, tensor([3, 4, 1], b.data)], (u, v) => u + v);
    expect(relL2(y!.data, ref.data)).toBeLessThan(1e-5);
  });

  it('handles more elements than one dispatch dimension allows (per-channel add)', async () => {
    const x = randomTensor([1, 4, 2100, 2100], 61);
    const bias = randomTensor([4, 1, 1], 62);
    const [y] = await runNode({ op: 'Add', inputs: [x, bias] });
    const plane = 2100 * 2100;
    expect(
      relL2(
        y!.data,
        Array.from(x.data, (v, i) => Math.fround(v + bias.data[Math.floor(i / plane)]!)),
      ),
    ).toBe(0);
  });
});

describe('variadic Sum, Mean, Max, Min', () => {
  const variadic: Record<string, (...v: number[]) => number> = {
    Sum: (...v) => v.reduce((s, x) => s + x, 0),
    Mean: (...v) => v.reduce((s, x) => s + x, 0) / v.length,
    Max: Math.max,
    Min: Math.min,
  };
  for (const [op, f] of Object.entries(variadic)) {
    it(`${op} of 1, 3 (broadcast) and 9 inputs (more than one dispatch binds)`, async () => {
      for (const shapes of [[[3, 5, 7]], [[3, 5, 7], [5, 1], [7]], Array.from({ length: 9 }, (_, k) => (k % 2 ? [5, 7] : [3, 5, 7]))]) {
        const xs = shapes.map((d, k) => randomTensor(d, 71 + 13 * k + op.length));
        const ref = broadcastRef(xs, f);
        // Past the first dispatch, the partial result is read back from Y: float16 at f16.
        for (const precision of PRECISIONS) {
          const [y] = await runNode({ op, inputs: xs }, precision);
          expect(y!.dims).toEqual(ref.dims);
          expect(relL2(y!.data, ref.data), precision).toBeLessThan(TOLERANCE[precision]);
        }
      }
    });
  }
});

describe('Pow', () => {
  it('float base and exponent, broadcast', async () => {
    const x = randomTensor([3, 5, 7], 81, 0.5, 2);
    const y = randomTensor([7], 82, -2, 2);
    const [z] = await runNode({ op: 'Pow', inputs: [x, y] });
    expect(relL2(z!.data, broadcastRef([x, y], Math.pow).data)).toBeLessThan(1e-5);
  });

  it('negative bases with integral exponents keep numpy signs; constant exponents 2, 0.5, 3', async () => {
    const x = randomTensor([3, 5, 7], 83, -2, 2);
    const exponents = tensor([5, 1], [-2, -1, 0, 1, 3]);
    const [z] = await runNode({ op: 'Pow', inputs: [x, exponents] });
    expect(relL2(z!.data, broadcastRef([x, exponents], Math.pow).data)).toBeLessThan(1e-5);
    const positive = randomTensor([3, 5, 7], 84, 0.1, 3);
    for (const [base, e] of [
      [x, 2],
      [positive, 0.5],
      [x, 3],
    ] as const) {
      const [p] = await runNode({ op: 'Pow', inputs: [base, { constant: tensor([], [e]) }] });
      expect(
        relL2(
          p!.data,
          Array.from(base.data, (v) => v ** e),
        ),
      ).toBeLessThan(1e-5);
    }
  });

  it('mixed types: the result has the base type', async () => {
    const ints = tensor([6], [-3, -2, 1, 2, 3, 5], 'int32');
    const intExponents = tensor([6], [3, 2, 7, 10, 0, 2], 'int64');
    const floats = tensor([6], [1.5, 0.5, 2, 3, 1.25, 0.75]);
    const floatExponents = tensor([6], [2, 3, 0.5, 1.5, -1, 2.5]);
    const [ii] = await runNode({ op: 'Pow', inputs: [ints, intExponents] });
    expect(ii!.type).toBe('int32');
    expect(Array.from(ii!.data)).toEqual([-27, 4, 1, 1024, 1, 25]);
    const [fi] = await runNode({ op: 'Pow', inputs: [floats, intExponents] });
    expect(relL2(fi!.data, [3.375, 0.25, 128, 59049, 1, 0.5625])).toBeLessThan(1e-6);
    const positiveInts = tensor([6], [3, 2, 1, 2, 3, 5], 'int64');
    const [iF] = await runNode({ op: 'Pow', inputs: [positiveInts, floatExponents] });
    expect(Array.from(iF!.data)).toEqual([9, 8, 1, 2, 0, 55]);
  });
});

describe('integer tensors', () => {
  const ints = (dims: number[], seed: number, lo: number, hi: number, type: HostTensor['type']) =>
    tensor(
      dims,
      Array.from(
        random(
          dims.reduce((p, d) => p * d, 1),
          seed,
          lo,
          hi,
        ),
        Math.floor,
      ),
      type,
    );
  const wrap8 = (v: number) => ((((v + 128) % 256) + 256) % 256) - 128;

  it('int32 Add, Sub, Mul, Div (truncating) and Max with broadcast', async () => {
    const a = ints([3, 5, 7], 91, -100, 100, 'int32');
    const b = tensor([7], [1, -2, 3, -4, 5, 7, -9], 'int32');
    const refs: Record<string, (u: number, v: number) => number> = { ...binary, Div: (u, v) => Math.trunc(u / v) + 0 };
    for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Max']) {
      const [y] = await runNode({ op, inputs: [a, b] });
      expect(y!.type).toBe('int32');
      expect(Array.from(y!.data)).toEqual(broadcastRef([a, b], refs[op]!).data);
    }
  });

  it('8-bit results wrap like the CPU (uint8 Add/Sub, int8 Mul)', async () => {
    const a = ints([5, 7], 92, 0, 256, 'uint8');
    const b = ints([5, 7], 93, 0, 256, 'uint8');
    const [sum] = await runNode({ op: 'Add', inputs: [a, b] });
    expect(Array.from(sum!.data)).toEqual(Array.from(a.data, (v, i) => (v + b.data[i]!) % 256));
    const [diff] = await runNode({ op: 'Sub', inputs: [a, b] });
    expect(Array.from(diff!.data)).toEqual(Array.from(a.data, (v, i) => (v - b.data[i]! + 256) % 256));
    const c = ints([5, 7], 94, -128, 128, 'int8');
    const [product] = await runNode({ op: 'Mul', inputs: [c, { constant: tensor([], [-3], 'int8') }] });
    expect(Array.from(product!.data)).toEqual(Array.from(c.data, (v) => wrap8(v * -3)));
  });
});

describe('unary math', () => {
  /** erf by its Taylor series, exact to ~1e-12 on [-3, 3]. */
  function erf(x: number): number {
    let term = x;
    let sum = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  const unary: Record<string, [(x: number) => number, number, number]> = {
    Neg: [(x) => -x, -5, 5],
    Abs: [Math.abs, -5, 5],
    Exp: [Math.exp, -5, 5],
    Log: [Math.log, 0.01, 10],
    Sqrt: [Math.sqrt, 0, 10],
    Reciprocal: [(x) => 1 / x, 0.5, 4],
    Floor: [Math.floor, -5, 5],
    Ceil: [Math.ceil, -5, 5],
    Erf: [erf, -3, 3],
  };
  for (const [op, [f, lo, hi]] of Object.entries(unary)) {
    it(`${op} matches the CPU reference`, async () => {
      const x = randomTensor([2, 3, 9, 7], 101 + op.length, lo, hi);
      const [y] = await runNode({ op, inputs: [x] });
      expect(y!.dims).toEqual([2, 3, 9, 7]);
      expect(relL2(y!.data, Array.from(x.data, f))).toBeLessThan(1e-5);
    });
  }
});

describe('invalid nodes', () => {
  it('reports bad inputs with ModelError and integer unary math with UnsupportedOpError', async () => {
    const x = randomTensor([2, 3], 111);
    await expect(runNode({ op: 'Add', inputs: [x, randomTensor([4], 112)] })).rejects.toThrow(ModelError);
    await expect(runNode({ op: 'Add', inputs: [x, x, x] })).rejects.toThrow(/expected 2 inputs/);
    await expect(runNode({ op: 'Mul', inputs: [x, tensor([3], [1, 2, 3], 'int32')] })).rejects.toThrow(/mix float32 and int32/);
    await expect(runNode({ op: 'Mean', inputs: [tensor([2], [1, 2], 'int32')] })).rejects.toThrow(ModelError);
    await expect(runNode({ op: 'Add', attrs: { broadcast: 1, axis: 1 }, inputs: [x, randomTensor([3, 2], 113)], opset: 6 })).rejects.toThrow(ModelError);
    await expect(runNode({ op: 'Exp', inputs: [tensor([2], [1, 2], 'int32')] })).rejects.toThrow(UnsupportedOpError);
  });
});

describe('Add fused with the Relu after it', () => {
  it('is one kernel computing max(a + b, 0) with broadcasting, the same bits as the two nodes', async () => {
    const float = { tensor_type: { elem_type: DataType.FLOAT } };
    const model = encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'add_relu',
        node: [
          { name: 'add', op_type: 'Add', input: ['a', 'b'], output: ['sum'] },
          { name: 'relu', op_type: 'Relu', input: ['sum'], output: ['y'] },
        ],
        input: [
          { name: 'a', type: float },
          { name: 'b', type: float },
        ],
        output: [{ name: 'y', type: float }],
      },
    });
    const graph = graphFromModel(decodeModel(model, 'add_relu.onnx'), { source: 'add_relu.onnx' });
    const a = randomTensor([2, 3, 4, 5], 71);
    const b = randomTensor([3, 1, 5], 72);
    const session = await Session.create(await gpu(), graph, { inputShapes: { a: [2, 3, 4, 5], b: [3, 1, 5] } });
    expect((await session.plan()).kernels.map((k) => k.node.name)).toEqual(['add::relu']);
    const { outputs } = await session.run({ a, b });
    const expected = Float32Array.from(a.data, (v, i) => {
      const [c, w] = [Math.floor(i / 20) % 3, i % 5];
      return Math.max(Math.fround(v + b.data[c * 5 + w]!), 0);
    });
    expect(Array.from(outputs.get('y')!.data)).toEqual(Array.from(expected));
    // Capturing the sum keeps the one kernel, which writes the sum too; at f16 the sum is captured as float16 holds it.
    const sum = Float32Array.from(a.data, (v, i) => Math.fround(v + b.data[(Math.floor(i / 20) % 3) * 5 + (i % 5)]!));
    for (const precision of PRECISIONS) {
      const s = await Session.create(await gpu(), graph, { inputShapes: { a: [2, 3, 4, 5], b: [3, 1, 5] }, precision });
      expect(
        (await s.plan(['sum'])).kernels.map((k) => k.node.name),
        precision,
      ).toEqual(['add::relu', ...(precision === 'f16' ? ['sum::cast'] : [])]);
      const { outputs: tapped, captured } = await s.run({ a, b }, { capture: ['sum'] });
      expect(Array.from(tapped.get('y')!.data), precision).toEqual(Array.from(expected));
      expect(Array.from(await captured.get('sum')!.read()), precision).toEqual(precision === 'f16' ? roundToFloat16(sum) : Array.from(sum));
      s.destroy();
    }
    session.destroy();
  });
});
