import { describe, expect, it } from 'vitest';
import { ModelError } from '../src/errors.js';
import type { Graph, HostTensor, Node } from '../src/model/graph.js';
import type { Plan } from '../src/runtime/plan.js';
import { join } from 'node:path';
import { readModelFile } from '../src/io/model-file.js';
import { inferTypes } from '../src/model/infer.js';
import { registry } from '../src/ops/registry.js';
import { planDevice, planProgram } from '../src/runtime/program.js';
import { Session } from '../src/runtime/session.js';
import { gpu, namedNode, nodeGraph, random, randomTensor, roundToFloat16, runNode, tensor } from './helpers/gpu.js';

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
      const sizes = kernels.map((k) => k.bindings.flatMap((b) => (b.kind === 'param' ? [Array.from(b.data())] : []))[0]);
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

const node = namedNode;

/** A graph of `nodes` from input x of `dims` to output y, with constant `initializers`. */
const chain = (dims: number[], nodes: Node[], initializers: [string, HostTensor][] = []): Graph => ({
  nodes,
  inputs: [{ name: 'x', type: 'float32', dims }],
  outputs: [{ name: 'y', type: 'float32' }],
  initializers: new Map(initializers),
  opset: 17,
  metadata: {},
  source: 'in-place concat test',
});

/** Runs `graph` on x, capturing `capture`, with its plan. */
async function planAndRun(graph: Graph, x: HostTensor, capture: string[] = []) {
  const session = await Session.create(await gpu(), graph);
  try {
    const plan = await session.plan(capture);
    const { outputs, captured } = await session.run(x, { capture });
    const captures = new Map(await Promise.all([...captured].map(async ([name, t]) => [name, await t.toHost()] as const)));
    return { plan, outputs, captures };
  } finally {
    session.destroy();
  }
}

const labels = (plan: Plan) => plan.kernels.map((k) => k.kernel.label);
const where = (plan: Plan, name: string) => {
  const p = plan.placement.get(name)!;
  return p.kind === 'buffer' ? { slot: p.slot, offset: p.offset } : undefined;
};

describe('Concat in place (runtime/in-place.ts)', () => {
  it("DeepLabv3+'s ASPP and decoder concats take their inputs in place, at the adapter's storage offset alignment (lavapipe: 16 bytes)", async () => {
    const device = await gpu();
    const adapter = (await device.instance.requestAdapter())!;
    expect(device.limits.minStorageBufferOffsetAlignment).toBe(adapter.limits.minStorageBufferOffsetAlignment);
    const graph = await readModelFile(join(import.meta.dirname, '../weights/deeplabv3plus_scenes.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 257, 257]]]), (op) => registry.get(op)?.infer);
    const plan = planProgram(typed, new Set(), planDevice(device));
    // The decoder's first input, 48 low-level channels of 65x65 floats, ends 811200 bytes in: a multiple of 64, not of 128.
    const inPlace = device.limits.minStorageBufferOffsetAlignment <= 64;
    expect(labels(plan).filter((l) => l === 'concat_part').length).toBe(inPlace ? 0 : 2);
  });

  const x = randomTensor([1, 4, 8, 8], 60);
  const relu = Array.from(x.data, (v) => Math.max(v, 0));
  const neg = Array.from(x.data, (v) => -v);

  it('has the producers of a batch-1 channel concat write into their slices of its output: no copy, each input at its offset, the same numbers', async () => {
    // DeepLabv3+'s concats: branches computed from one input, joined on channels. 4 planes of 8x8 floats: 1024 bytes an input.
    const graph = chain(
      [1, 4, 8, 8],
      [node('Relu', ['x'], 'a'), node('Neg', ['x'], 'b'), node('Abs', ['x'], 'c'), node('Concat', ['a', 'b', 'c'], 'y', { axis: 1 })],
    );
    const { plan, outputs, captures } = await planAndRun(graph, x, ['b']);
    expect(labels(plan)).not.toContain('concat_part');
    const y = where(plan, 'y')!;
    expect([where(plan, 'a'), where(plan, 'b'), where(plan, 'c')]).toEqual([0, 1024, 2048].map((offset) => ({ slot: y.slot, offset: y.offset + offset })));
    expect(Array.from(outputs.get('y')!.data)).toEqual([...relu, ...neg, ...Array.from(x.data, Math.abs)]);
    // A captured input reads its slice.
    expect(Array.from(captures.get('b')!.data)).toEqual(neg);
  });

  it('keeps the copy for an input it cannot place: a graph input, a repeated input, one shared by two concats, a misaligned slice, a batch of 2', async () => {
    const copies = async (graph: Graph, input: HostTensor, expected: number[]) => {
      const { plan, outputs } = await planAndRun(graph, input);
      expect(Array.from(outputs.get('y')!.data)).toEqual(expected);
      return labels(plan).filter((l) => l === 'concat_part').length;
    };
    expect(
      await copies(chain([1, 4, 8, 8], [node('Relu', ['x'], 'a'), node('Concat', ['a', 'x'], 'y', { axis: 1 })]), x, [...relu, ...Array.from(x.data)]),
    ).toBe(2);
    expect(await copies(chain([1, 4, 8, 8], [node('Relu', ['x'], 'a'), node('Concat', ['a', 'a'], 'y', { axis: 1 })]), x, [...relu, ...relu])).toBe(2);
    // The first concat takes a and b in place; the second, which needs a elsewhere too, copies.
    const shared = chain(
      [1, 4, 8, 8],
      [node('Relu', ['x'], 'a'), node('Neg', ['x'], 'b'), node('Concat', ['a', 'b'], 'ab', { axis: 1 }), node('Concat', ['ab', 'a'], 'y', { axis: 1 })],
    );
    expect(await copies(shared, x, [...relu, ...neg, ...relu])).toBe(2);
    // One channel of 3x3 floats: the second input would start 36 bytes in, off any adapter's storage offset alignment.
    const small = randomTensor([1, 1, 3, 3], 61);
    const smallRelu = Array.from(small.data, (v) => Math.max(v, 0));
    const smallNeg = Array.from(small.data, (v) => -v);
    expect(
      await copies(chain([1, 1, 3, 3], [node('Relu', ['x'], 'a'), node('Neg', ['x'], 'b'), node('Concat', ['a', 'b'], 'y', { axis: 1 })]), small, [
        ...smallRelu,
        ...smallNeg,
      ]),
    ).toBe(2);
    // Two images: each input is two blocks of the output, not one.
    const two = randomTensor([2, 4, 8, 8], 62);
    const half = 4 * 64;
    const twoRelu = Array.from(two.data, (v) => Math.max(v, 0));
    const twoNeg = Array.from(two.data, (v) => -v);
    expect(
      await copies(chain([2, 4, 8, 8], [node('Relu', ['x'], 'a'), node('Neg', ['x'], 'b'), node('Concat', ['a', 'b'], 'y', { axis: 1 })]), two, [
        ...twoRelu.slice(0, half),
        ...twoNeg.slice(0, half),
        ...twoRelu.slice(half),
        ...twoNeg.slice(half),
      ]),
    ).toBe(2);
  });

  it('binds a copy when one kernel reads the concat and one of its inputs, which share bytes (WebGPU refuses overlapping writable bindings)', async () => {
    // y = reshape(a, [64, 1]) @ concat(a, b): a [1, 64] lies in the concat's first 256 bytes.
    const v = randomTensor([1, 64], 63);
    const a = Array.from(v.data, (t) => Math.max(t, 0));
    const ab = [...a, ...Array.from(v.data, (t) => -t)];
    const graph = chain(
      [1, 64],
      [
        node('Relu', ['x'], 'a'),
        node('Neg', ['x'], 'b'),
        node('Concat', ['a', 'b'], 'ab', { axis: 1 }),
        node('Reshape', ['a', 'column'], 'col'),
        node('MatMul', ['col', 'ab'], 'y'),
      ],
      [['column', tensor([2], [64, 1], 'int64')]],
    );
    const { plan, outputs } = await planAndRun(graph, v);
    expect(labels(plan)).not.toContain('concat_part');
    expect(labels(plan)).toContain('copy_repeated_input');
    // Each product has one term, exact in float32 (+ 0 makes the reference's -0 of 0 * -t a 0, as the kernel's sum from 0 gives).
    expect(Array.from(outputs.get('y')!.data)).toEqual(a.flatMap((r) => ab.map((c) => Math.fround(r * c) + 0)));
  });
});
