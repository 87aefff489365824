import { describe, expect, it } from 'vitest';
import { ModelError, UnsupportedOpError } from '../src/errors.js';
import type { AttrValue, HostTensor } from '../src/model/graph.js';
import { PRECISIONS, type Precision } from '../src/model/precision.js';
import { randomTensor, relL2, roundToFloat16, runNode, runWithFloat16Constants, tensor, TOLERANCE } from './helpers/gpu.js';

/**
 * The cases that also run at precision 'f16', with the classifier head: one
 * of each kernel shape (one tile and several, broadcast batches, transposed
 * operands, C or none), not all, as lavapipe compiles every case slowly.
 */
const F16_CASES = new Set([
  '2-D spanning several tiles and k slices',
  'batch broadcast both ways',
  'transA and transB, alpha and beta, C a column [M,1]',
  'no C',
]);
const precisionsOf = (name: string): readonly Precision[] => (F16_CASES.has(name) ? PRECISIONS : ['f32']);

/** Row-major element of `t` at a (right-aligned, broadcast) multi-index. */
function at(t: HostTensor, index: number[]): number {
  const dims = t.dims;
  let offset = 0;
  for (let d = 0; d < dims.length; d++) {
    const i = index[index.length - dims.length + d]!;
    offset = offset * dims[d]! + (dims[d] === 1 ? 0 : i);
  }
  return t.data[offset]!;
}

/** numpy.matmul in float64, written for the test. */
function referenceMatMul(a: HostTensor, b: HostTensor): { dims: number[]; data: number[] } {
  const a2 = a.dims.length === 1 ? { ...a, dims: [1, a.dims[0]!] } : a;
  const b2 = b.dims.length === 1 ? { ...b, dims: [b.dims[0]!, 1] } : b;
  const [m, k] = a2.dims.slice(-2) as [number, number];
  const n = b2.dims[b2.dims.length - 1]!;
  const rank = Math.max(a2.dims.length, b2.dims.length) - 2;
  const batch = Array.from({ length: rank }, (_, i) => {
    const da = a2.dims[a2.dims.length - 2 - rank + i] ?? 1;
    const db = b2.dims[b2.dims.length - 2 - rank + i] ?? 1;
    return Math.max(da, db);
  });
  const data: number[] = [];
  const count = batch.reduce((x, y) => x * y, 1);
  for (let z = 0; z < count; z++) {
    const bi: number[] = [];
    for (let d = rank - 1, r = z; d >= 0; d--) {
      bi[d] = r % batch[d]!;
      r = Math.floor(r / batch[d]!);
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += at(a2, [...bi, i, p]) * at(b2, [...bi, p, j]);
        data.push(s);
      }
    }
  }
  const dims = [...batch, ...(a.dims.length === 1 ? [] : [m]), ...(b.dims.length === 1 ? [] : [n])];
  return { dims, data };
}

/** ONNX Gemm in float64: alpha·A'·B' + beta·C. */
function referenceGemm(a: HostTensor, b: HostTensor, c: HostTensor | undefined, o: { transA: number; transB: number; alpha: number; beta: number }) {
  const [m, k] = o.transA ? [a.dims[1]!, a.dims[0]!] : [a.dims[0]!, a.dims[1]!];
  const n = o.transB ? b.dims[0]! : b.dims[1]!;
  const data: number[] = [];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (o.transA ? a.data[p * m + i]! : a.data[i * k + p]!) * (o.transB ? b.data[j * k + p]! : b.data[p * n + j]!);
      data.push(o.alpha * s + (c ? o.beta * at(c, [i, j]) : 0));
    }
  }
  return { dims: [m, n], data };
}

let seed = 100;

describe('MatMul', () => {
  const cases: [string, number[], number[]][] = [
    ['2-D', [7, 13], [13, 9]],
    ['2-D spanning several tiles and k slices', [70, 37], [37, 67]],
    ['batched 3-D', [3, 5, 11], [3, 11, 6]],
    ['batch broadcast against a matrix', [2, 3, 5, 7], [7, 6]],
    ['batch broadcast both ways', [3, 1, 5, 7], [4, 7, 6]],
    ['1-D left operand', [7], [2, 7, 5]],
    ['1-D right operand', [3, 5, 7], [7]],
    ['1-D both (dot product)', [9], [9]],
  ];
  for (const [name, da, db] of cases) {
    it(`${name}: [${da}] x [${db}]`, async () => {
      const a = randomTensor(da, seed++);
      const b = randomTensor(db, seed++);
      const ref = referenceMatMul(a, b);
      for (const precision of precisionsOf(name)) {
        const [y] = await runNode({ op: 'MatMul', inputs: [a, b] }, precision);
        expect([y!.type, y!.dims]).toEqual(['float32', ref.dims]);
        expect(relL2(y!.data, ref.data), precision).toBeLessThanOrEqual(TOLERANCE[precision]);
      }
    });
  }

  it('takes a constant right operand (a classifier weight)', async () => {
    const a = randomTensor([1, 40], seed++);
    const b = randomTensor([40, 21], seed++);
    const [y] = await runNode({ op: 'MatMul', inputs: [a, { constant: b }] });
    expect(relL2(y!.data, referenceMatMul(a, b).data)).toBeLessThanOrEqual(1e-5);
  });

  it('refuses mismatched inner dimensions, unbroadcastable batches and integer tensors', async () => {
    await expect(runNode({ op: 'MatMul', inputs: [randomTensor([3, 4], 1), randomTensor([5, 2], 2)] })).rejects.toThrow(ModelError);
    await expect(runNode({ op: 'MatMul', inputs: [randomTensor([2, 3, 4], 1), randomTensor([3, 4, 2], 2)] })).rejects.toThrow(ModelError);
    const ints = tensor([2, 2], [1, 2, 3, 4], 'int32');
    await expect(runNode({ op: 'MatMul', inputs: [ints, ints] })).rejects.toThrow(UnsupportedOpError);
  });
});

describe('Gemm', () => {
  const m = 9;
  const k = 13;
  const n = 11;
  const variants: [string, Record<string, number>, number[] | null][] = [
    ['defaults, C of shape [M,N]', {}, [m, n]],
    ['transA', { transA: 1 }, [m, n]],
    ['transB, C a row vector [N]', { transB: 1 }, [n]],
    ['transA and transB, alpha and beta, C a column [M,1]', { transA: 1, transB: 1, alpha: 0.5, beta: -2 }, [m, 1]],
    ['scalar C', { alpha: 2 }, []],
    ['C of shape [1]', { beta: 0.25 }, [1]],
    ['no C', { alpha: -1.5 }, null],
  ];
  for (const [name, attrs, cDims] of variants) {
    it(name, async () => {
      const o = { transA: attrs.transA ?? 0, transB: attrs.transB ?? 0, alpha: attrs.alpha ?? 1, beta: attrs.beta ?? 1 };
      const a = randomTensor(o.transA ? [k, m] : [m, k], seed++);
      const b = randomTensor(o.transB ? [n, k] : [k, n], seed++);
      const c = cDims ? randomTensor(cDims, seed++) : undefined;
      const ref = referenceGemm(a, b, c, o);
      for (const precision of precisionsOf(name)) {
        const [y] = await runNode({ op: 'Gemm', attrs, inputs: [a, { constant: b }, ...(c ? [c] : [])] }, precision);
        expect([y!.type, y!.dims]).toEqual(['float32', ref.dims]);
        expect(relL2(y!.data, ref.data), precision).toBeLessThanOrEqual(TOLERANCE[precision]);
      }
    });
  }

  it('a classifier head: [1,2048] x [1000,2048]^T + b, at f32 and f16', async () => {
    const a = randomTensor([1, 2048], seed++);
    const b = randomTensor([1000, 2048], seed++);
    const c = randomTensor([1000], seed++);
    const ref = referenceGemm(a, b, c, { transA: 0, transB: 1, alpha: 1, beta: 1 });
    for (const precision of PRECISIONS) {
      const [y] = await runNode({ op: 'Gemm', attrs: { transB: 1 }, inputs: [a, { constant: b }, { constant: c }] }, precision);
      expect(y!.type).toBe('float32');
      expect(relL2(y!.data, ref.data), precision).toBeLessThanOrEqual(TOLERANCE[precision]);
    }
  });

  it('refuses bad attributes and shapes; broadcast only before opset 7', async () => {
    const a = randomTensor([3, 4], seed++);
    const b = randomTensor([4, 5], seed++);
    const run = (attrs: Record<string, AttrValue>, inputs: (HostTensor | null)[] = [a, b]) => runNode({ op: 'Gemm', attrs, inputs });
    await expect(run({ transA: 2 })).rejects.toThrow(ModelError);
    await expect(run({ transB: 1 })).rejects.toThrow(ModelError);
    await expect(run({}, [a, b, randomTensor([2, 5], seed++)])).rejects.toThrow(/does not broadcast/);
    // Gemm-6 broadcasts C only when asked to.
    const c = randomTensor([5], seed++);
    await expect(runNode({ op: 'Gemm', opset: 6, inputs: [a, b, c] })).rejects.toThrow(/does not broadcast/);
    const [y] = await runNode({ op: 'Gemm', opset: 6, attrs: { broadcast: 1 }, inputs: [a, b, c] });
    expect(relL2(y!.data, referenceGemm(a, b, c, { transA: 0, transB: 0, alpha: 1, beta: 1 }).data)).toBeLessThanOrEqual(1e-5);
    await expect(run({ broadcast: 1 })).rejects.toThrow(UnsupportedOpError);
    await expect(run({}, [randomTensor([2, 3, 4], seed++), b])).rejects.toThrow(ModelError);
    await expect(run({ gamma: 1 })).rejects.toThrow(UnsupportedOpError);
  });
});

/**
 * Float16 weights (--precision f16): the node alone reads its float32 input
 * and writes float32, so its constant operands, stored as float16 and
 * widened in the kernel, are the only values rounded: exact to f32 accuracy
 * against a reference on the rounded constants, and not against the others.
 */
describe('MatMul and Gemm with float16 weights', () => {
  const half = (t: HostTensor) => tensor([...t.dims], roundToFloat16(t.data));
  const expectFloat16Weights = (uploads: { data: unknown }[], y: HostTensor, rounded: { data: ArrayLike<number> }, exact: { data: ArrayLike<number> }) => {
    expect(uploads.length).toBeGreaterThan(0);
    expect(uploads.filter((u) => !(u.data instanceof Uint16Array))).toEqual([]);
    expect(y.type).toBe('float32');
    expect(relL2(y.data, rounded.data)).toBeLessThanOrEqual(TOLERANCE.f32);
    expect(relL2(y.data, exact.data)).toBeGreaterThan(TOLERANCE.f32);
  };

  it('MatMul by a constant [K,N] over broadcast batches', async () => {
    const a = randomTensor([2, 5, 37], seed++);
    const b = randomTensor([37, 67], seed++);
    const { outputs, uploads } = await runWithFloat16Constants({ op: 'MatMul', inputs: [a, { constant: b }] });
    expectFloat16Weights(uploads, outputs[0]!, referenceMatMul(a, half(b)), referenceMatMul(a, b));
  });

  it('Gemm: a classifier head [1,2048] x [1000,2048]^T + b, alpha and beta', async () => {
    const a = randomTensor([1, 2048], seed++);
    const b = randomTensor([1000, 2048], seed++);
    const c = randomTensor([1000], seed++);
    const o = { transA: 0, transB: 1, alpha: 0.5, beta: -2 };
    const { outputs, uploads } = await runWithFloat16Constants({
      op: 'Gemm',
      attrs: { transB: 1, alpha: 0.5, beta: -2 },
      inputs: [a, { constant: b }, { constant: c }],
    });
    expectFloat16Weights(uploads, outputs[0]!, referenceGemm(a, half(b), half(c), o), referenceGemm(a, b, c, o));
  });
});
