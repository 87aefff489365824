import { describe, expect, it } from 'vitest';
import { ModelError } from '../src/errors.js';
import type { HostTensor } from '../src/model/graph.js';
import { Session } from '../src/runtime/session.js';
import { gpu, nodeGraph, random, randomTensor, roundToFloat16, runNode, tensor } from './helpers/gpu.js';

/** Plain CPU reference: rows of [outer, size along axis * inner], laid side by side. */
function concatRef(xs: HostTensor[], axis: number): { dims: number[]; data: number[] } {
  const rank = xs[0]!.dims.length;
  const a = axis < 0 ? axis + rank : axis;
  const outer = xs[0]!.dims.slice(0, a).reduce((p, d) => p * d, 1);
  const data: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const x of xs) {
      const row = x.dims.slice(a).reduce((p, d) => p * d, 1);
      data.push(...x.data.subarray(o * row, (o + 1) * row));
    }
  }
  const dims = [...xs[0]!.dims];
  dims[a] = xs.reduce((s, x) => s + x.dims[a]!, 0);
  return { dims, data };
}

/** Shapes equal to `dims` except along `axis`, where they take `sizes`. */
const parts = (dims: number[], axis: number, sizes: number[], seed: number): HostTensor[] =>
  sizes.map((n, k) => {
    const d = [...dims];
    d[axis < 0 ? axis + dims.length : axis] = n;
    return randomTensor(d, seed + k);
  });

describe('Concat', () => {
  it("copies every input with one kernel code, its sizes read from a buffer: one pipeline for all of a model's concats", async () => {
    const graph = nodeGraph({ op: 'Concat', attrs: { axis: 1 }, inputs: parts([2, 0, 5, 3], 1, [4, 7, 1], 11) });
    const session = await Session.create(await gpu(), graph);
    try {
      const kernels = (await session.plan()).kernels.map((k) => k.kernel);
      expect(kernels.length).toBe(3);
      expect(new Set(kernels.map((k) => k.wgsl)).size).toBe(1);
      const sizes = kernels.map((k) => k.bindings.flatMap((b) => (b.kind === 'param' ? [Array.from(b.data)] : []))[0]);
      // [n, row, rowOut, xShift, yShift]: output rows of 12 planes of 5x3 a batch image; input k begins after the planes of those before it.
      expect(sizes).toEqual([
        [2 * 4 * 15, 4 * 15, 12 * 15, 0, 0],
        [2 * 7 * 15, 7 * 15, 12 * 15, 0, 4 * 15],
        [2 * 1 * 15, 1 * 15, 12 * 15, 0, 11 * 15],
      ]);
    } finally {
      session.destroy();
    }
  });

  it('joins decoder features on the channel axis (DeepLabv3+: upsampled ASPP with low-level features)', async () => {
    const xs = parts([1, 0, 9, 7], 1, [16, 6], 1);
    const [y] = await runNode({ op: 'Concat', attrs: { axis: 1 }, inputs: xs });
    const ref = concatRef(xs, 1);
    expect(y!.dims).toEqual(ref.dims);
    expect(Array.from(y!.data)).toEqual(ref.data);
  });

  it('joins five ASPP branches, one a constant', async () => {
    const xs = parts([1, 0, 5, 3], 1, [4, 3, 4, 4, 2], 10);
    const [y] = await runNode({ op: 'Concat', attrs: { axis: -3 }, inputs: [...xs.slice(0, 4), { constant: xs[4]! }] });
    expect(Array.from(y!.data)).toEqual(concatRef(xs, 1).data);
    // At f16 the constant is uploaded as float16 like the rest; the copy is exact.
    const [half] = await runNode({ op: 'Concat', attrs: { axis: -3 }, inputs: [...xs.slice(0, 4), { constant: xs[4]! }] }, 'f16');
    expect(Array.from(half!.data)).toEqual(roundToFloat16(concatRef(xs, 1).data));
  });

  it('every axis of a rank-3 tensor, positive and negative, and rank 1', async () => {
    for (const axis of [0, 1, 2, -1, -2, -3]) {
      const xs = parts([3, 5, 7], axis, [2, 5, 1], 20 + axis);
      const [y] = await runNode({ op: 'Concat', attrs: { axis }, inputs: xs });
      const ref = concatRef(xs, axis);
      expect(y!.dims).toEqual(ref.dims);
      expect(Array.from(y!.data)).toEqual(ref.data);
    }
    const xs = parts([0], 0, [3, 8], 30);
    const [y] = await runNode({ op: 'Concat', attrs: { axis: 0 }, inputs: xs });
    expect(Array.from(y!.data)).toEqual(concatRef(xs, 0).data);
  });

  it('a single input, and integer tensors', async () => {
    const x = randomTensor([2, 3, 5], 40);
    const [y] = await runNode({ op: 'Concat', attrs: { axis: 2 }, inputs: [x] });
    expect(Array.from(y!.data)).toEqual(Array.from(x.data));
    const ints = [tensor([2, 3], Array.from(random(6, 41, -50, 50), Math.floor), 'int32'), tensor([2, 1], [7, -8], 'int32')];
    const [z] = await runNode({ op: 'Concat', attrs: { axis: 1 }, inputs: ints });
    expect(z!.type).toBe('int32');
    expect(Array.from(z!.data)).toEqual(concatRef(ints, 1).data);
  });

  it('rejects mismatched shapes, a bad axis and a missing axis with ModelError', async () => {
    const a = randomTensor([2, 3, 5], 50);
    const b = randomTensor([2, 4, 6], 51);
    await expect(runNode({ op: 'Concat', attrs: { axis: 1 }, inputs: [a, b] })).rejects.toThrow(/does not match/);
    await expect(runNode({ op: 'Concat', attrs: { axis: 3 }, inputs: [a, a] })).rejects.toThrow(ModelError);
    await expect(runNode({ op: 'Concat', inputs: [a, a] })).rejects.toThrow(/axis/);
    await expect(runNode({ op: 'Concat', attrs: { axis: 0 }, inputs: [a, tensor([2, 3, 5], new Array(30).fill(1), 'int32')] })).rejects.toThrow(/mix/);
  });
});
