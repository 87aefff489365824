import { describe, expect, it } from 'vitest';
import { ModelError, UnsupportedOpError } from '../src/errors.js';
import type { HostTensor } from '../src/model/graph.js';
import { PRECISIONS } from '../src/model/precision.js';
import { reduceKernel, reducers } from '../src/ops/reduce.js';
import { random, randomTensor, relL2, roundToFloat16, runNode, storedAs, tensor, TOLERANCE } from './helpers/gpu.js';

/** Plain CPU references: the reduced values of one output -> the output. */
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
const reference: Record<string, (v: number[]) => number> = {
  ReduceSum: sum,
  ReduceMean: (v) => sum(v) / v.length,
  ReduceMax: (v) => Math.max(...v),
  ReduceMin: (v) => Math.min(...v),
  ReduceProd: (v) => v.reduce((a, b) => a * b, 1),
  ReduceL1: (v) => sum(v.map(Math.abs)),
  ReduceL2: (v) => Math.sqrt(sum(v.map((x) => x * x))),
  ReduceSumSquare: (v) => sum(v.map((x) => x * x)),
  ReduceLogSum: (v) => Math.log(sum(v)),
};

/** The values of `x` grouped by output element (reduced axes zeroed), and the keepdims output shape. */
function groups(x: HostTensor, axes: number[]): { dims: number[]; values: number[][] } {
  const dims = x.dims.map((d, a) => (axes.includes(a) ? 1 : d));
  const values: number[][] = Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => []);
  const coord = x.dims.map(() => 0);
  for (let i = 0; i < x.data.length; i++) {
    let o = 0;
    for (const [a, c] of coord.entries()) o = o * dims[a]! + (axes.includes(a) ? 0 : c);
    values[o]!.push(x.data[i]!);
    for (let a = coord.length - 1; a >= 0 && ++coord[a]! === x.dims[a]; a--) coord[a] = 0;
  }
  return { dims, values };
}

const reduceRef = (op: string, x: HostTensor, axes: number[]) => groups(x, axes).values.map(reference[op]!);

/**
 * The reducers that also run at precision 'f16' over the middle axis: a sum,
 * a fold starting from -infinity, one with a finishing step (the workgroup
 * tests below run others), not all, as lavapipe compiles every case slowly.
 */
const F16_REDUCERS = new Set(['ReduceSum', 'ReduceMax', 'ReduceL2']);

describe('reductions', () => {
  for (const op of Object.keys(reference)) {
    it(`${op} over the middle axis matches the CPU reference (opset 13)`, async () => {
      // Logarithms and products want positive values of moderate size.
      const x = randomTensor([3, 5, 7], op.length * 31, op === 'ReduceLogSum' || op === 'ReduceProd' ? 0.5 : -1, 1.5);
      const axes = op === 'ReduceSum' ? { inputs: [x, { constant: tensor([1], [1], 'int64') }] } : { inputs: [x], attrs: { axes: [1] } };
      for (const precision of F16_REDUCERS.has(op) ? PRECISIONS : (['f32'] as const)) {
        const [y] = await runNode({ op, opset: 13, ...axes }, precision);
        expect([y!.type, y!.dims]).toEqual(['float32', [3, 1, 7]]);
        expect(relL2(y!.data, reduceRef(op, x, [1])), precision).toBeLessThan(TOLERANCE[precision]);
      }
    });
  }

  it('reduces non-adjacent and negative axes without keepdims', async () => {
    const x = randomTensor([3, 4, 5, 7], 2);
    const [y] = await runNode({ op: 'ReduceMax', attrs: { axes: [-1, 1], keepdims: 0 }, inputs: [x], opset: 13 });
    expect(y!.dims).toEqual([3, 5]);
    expect(relL2(y!.data, reduceRef('ReduceMax', x, [1, 3]))).toBe(0);
  });

  it('reduces every axis when none are given', async () => {
    const x = randomTensor([3, 2, 5], 3);
    const [a] = await runNode({ op: 'ReduceMean', inputs: [x], opset: 13 });
    const [b] = await runNode({ op: 'ReduceSum', inputs: [x, { constant: tensor([0], [], 'int64') }], opset: 13 });
    expect(a!.dims).toEqual([1, 1, 1]);
    expect(b!.dims).toEqual([1, 1, 1]);
    expect(relL2(a!.data, reduceRef('ReduceMean', x, [0, 1, 2]))).toBeLessThan(1e-5);
    expect(relL2(b!.data, reduceRef('ReduceSum', x, [0, 1, 2]))).toBeLessThan(1e-5);
  });

  it('is the identity with empty axes and noop_with_empty_axes', async () => {
    const x = randomTensor([3, 2, 5], 4);
    const noop = { op: 'ReduceSum', attrs: { noop_with_empty_axes: 1 }, inputs: [x, { constant: tensor([0], [], 'int64') }], opset: 13 };
    const [y] = await runNode(noop);
    expect(y!.dims).toEqual([3, 2, 5]);
    expect(relL2(y!.data, x.data)).toBe(0);
    // A copy at f16 gives the input as float16 holds it, exactly.
    const [half] = await runNode(noop, 'f16');
    expect([half!.type, half!.dims]).toEqual(['float32', [3, 2, 5]]);
    expect(Array.from(half!.data)).toEqual(roundToFloat16(x.data));
  });

  it('takes axes from the second input at opset 18', async () => {
    const x = randomTensor([2, 3, 9], 5);
    const [y] = await runNode({ op: 'ReduceL2', attrs: { keepdims: 0 }, inputs: [x, { constant: tensor([1], [0], 'int64') }], opset: 18 });
    expect(y!.dims).toEqual([3, 9]);
    expect(relL2(y!.data, reduceRef('ReduceL2', x, [0]))).toBeLessThan(1e-5);
  });

  it('ReduceMean over [2,3] (adaptive average pooling) of 33x33 planes: on CPU adapters a thread per output from 64 outputs, else the workgroup tree, at f32 and f16', async () => {
    const mean = reducers.ReduceMean;
    const kernel = (dims: number[], target: { cpuSubgroupSize?: number }) =>
      reduceKernel('reduce_mean', mean, { type: 'float32', dims }, { type: 'float32', dims: [...dims.slice(0, 2), 1, 1] }, [2, 3], target).label;
    expect(kernel([2, 37, 33, 33], { cpuSubgroupSize: 8 })).toBe('reduce_mean_thread');
    expect(kernel([2, 37, 33, 33], {})).toBe('reduce_mean_workgroup');
    expect(kernel([1, 63, 33, 33], { cpuSubgroupSize: 8 })).toBe('reduce_mean_workgroup');
    // Lavapipe runs both: 74 outputs, and 5.
    for (const dims of [
      [2, 37, 33, 33],
      [1, 5, 33, 33],
    ]) {
      const x = randomTensor(dims, 6);
      for (const precision of PRECISIONS) {
        const [y] = await runNode({ op: 'ReduceMean', attrs: { axes: [2, 3], keepdims: 1 }, inputs: [x], opset: 13 }, precision);
        expect([y!.type, y!.dims]).toEqual(['float32', [dims[0], dims[1], 1, 1]]);
        expect(relL2(y!.data, reduceRef('ReduceMean', x, [2, 3])), precision).toBeLessThan(TOLERANCE[precision]);
      }
    }
  });

  it('the workgroup tree handles reduced axes that are not contiguous, at f32 and f16', async () => {
    const x = randomTensor([9, 5, 31], 7);
    for (const op of ['ReduceMin', 'ReduceSumSquare']) {
      for (const precision of PRECISIONS) {
        const [y] = await runNode({ op, attrs: { axes: [0, 2], keepdims: 0 }, inputs: [x], opset: 13 }, precision);
        expect([y!.type, y!.dims]).toEqual(['float32', [5]]);
        expect(relL2(y!.data, reduceRef(op, x, [0, 2])), `${op} ${precision}`).toBeLessThan(TOLERANCE[precision]);
      }
    }
  });

  it('refuses bad axes, axes in the wrong place, and integer tensors', async () => {
    const x = randomTensor([3, 4], 8);
    await expect(runNode({ op: 'ReduceMean', attrs: { axes: [1, -1] }, inputs: [x], opset: 13 })).rejects.toThrow(ModelError);
    await expect(runNode({ op: 'ReduceMean', attrs: { axes: [2] }, inputs: [x], opset: 13 })).rejects.toThrow(/axis 2 is out of range/);
    await expect(runNode({ op: 'ReduceMean', attrs: { axes: [1] }, inputs: [x], opset: 18 })).rejects.toThrow(/input from opset 18/);
    // Axes fed at run time are read on the host, as if they were constants.
    const axes = tensor([1], [1], 'int64');
    expect(await runNode({ op: 'ReduceSum', inputs: [x, axes], opset: 13 })).toEqual(
      await runNode({ op: 'ReduceSum', inputs: [x, { constant: axes }], opset: 13 }),
    );
    await expect(runNode({ op: 'ReduceMax', inputs: [tensor([2], [1, 2], 'int32')], opset: 13 })).rejects.toThrow(UnsupportedOpError);
  });
});

/** Index of the best value along `axis`; the first or the last of equal ones. */
function argRef(x: HostTensor, axis: number, better: (a: number, b: number) => boolean, last: boolean): number[] {
  const inner = x.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = x.dims[axis]!;
  const out: number[] = [];
  for (let o = 0; o < x.data.length / n; o++) {
    const base = Math.floor(o / inner) * n * inner + (o % inner);
    let best = 0;
    for (let k = 1; k < n; k++) {
      const v = x.data[base + k * inner]!;
      const b = x.data[base + best * inner]!;
      if (better(v, b) || (last && v === b)) best = k;
    }
    out.push(best);
  }
  return out;
}

describe('ArgMax and ArgMin', () => {
  const gt = (a: number, b: number) => a > b;
  const lt = (a: number, b: number) => a < b;

  it('ArgMax over the class axis of logits is the segmentation mask (int64), at f32 and f16', async () => {
    const x = randomTensor([1, 21, 13, 11], 9, -5, 5);
    for (const precision of PRECISIONS) {
      const [y] = await runNode({ op: 'ArgMax', attrs: { axis: 1, keepdims: 1 }, inputs: [x] }, precision);
      expect([y!.type, y!.dims]).toEqual(['int64', [1, 1, 13, 11]]);
      expect(Array.from(y!.data), precision).toEqual(argRef(storedAs(x, precision), 1, gt, false));
    }
  });

  for (const [op, better] of [
    ['ArgMax', gt],
    ['ArgMin', lt],
  ] as const) {
    for (const last of [0, 1]) {
      it(`${op} breaks ties toward the ${last ? 'last' : 'first'} index`, async () => {
        // Few distinct values, so ties are common.
        const x = tensor(
          [4, 7, 5],
          Array.from(random(140, 10 + last), (v) => Math.round(v * 2)),
        );
        const [y] = await runNode({ op, attrs: { axis: -2, keepdims: 0, select_last_index: last }, inputs: [x] });
        expect(y!.dims).toEqual([4, 5]);
        expect(Array.from(y!.data)).toEqual(argRef(x, 1, better, last === 1));
      });
    }
  }

  it('defaults to axis 0 with keepdims (ArgMin at f32 and f16), and rejects a bad axis', async () => {
    const x = randomTensor([6, 3], 11);
    for (const precision of PRECISIONS) {
      const [y] = await runNode({ op: 'ArgMin', inputs: [x] }, precision);
      expect([y!.type, y!.dims]).toEqual(['int64', [1, 3]]);
      expect(Array.from(y!.data), precision).toEqual(argRef(storedAs(x, precision), 0, lt, false));
    }
    await expect(runNode({ op: 'ArgMax', attrs: { axis: 2 }, inputs: [x] })).rejects.toThrow(ModelError);
  });
});
