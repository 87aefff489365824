import { describe, expect, it } from 'vitest';
import { PRECISIONS } from '../src/model/precision.js';
import { Attrs, type Graph, type Node } from '../src/model/graph.js';
import { Session } from '../src/runtime/session.js';
import { gpu, nodeGraph, randomTensor, relL2, runNode, tensor, TOLERANCE } from './helpers/gpu.js';

/** Plain CPU references, written for the test. */
const reference: Record<string, (x: number) => number> = {
  Relu: (x) => Math.max(x, 0),
  Sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  HardSigmoid: (x) => Math.min(Math.max(0.2 * x + 0.5, 0), 1),
  HardSwish: (x) => x * Math.min(Math.max(x / 6 + 0.5, 0), 1),
  LeakyRelu: (x) => (x >= 0 ? x : 0.01 * x),
  Tanh: Math.tanh,
};

describe('activations', () => {
  for (const [op, f] of Object.entries(reference)) {
    it(`${op} matches the CPU reference on an odd-sized tensor, at f32 and f16`, async () => {
      const x = randomTensor([1, 3, 17, 9], op.length * 7919, -8, 8);
      for (const precision of PRECISIONS) {
        const [y] = await runNode({ op, inputs: [x] }, precision);
        expect([y!.type, y!.dims]).toEqual(['float32', [1, 3, 17, 9]]);
        expect(relL2(y!.data, Array.from(x.data, f)), precision).toBeLessThan(TOLERANCE[precision]);
      }
    });
  }

  it('Clip takes bounds from inputs (opset 11+) and from attributes (opset 6)', async () => {
    const x = randomTensor([2, 5, 7], 11, -10, 10);
    const relu6 = Array.from(x.data, (v) => Math.min(Math.max(v, 0), 6));
    const [a] = await runNode({ op: 'Clip', inputs: [x, { constant: tensor([], [0]) }, { constant: tensor([], [6]) }] });
    const [b] = await runNode({ op: 'Clip', attrs: { min: 0, max: 6 }, inputs: [x], opset: 6 });
    expect(relL2(a!.data, relu6)).toBe(0);
    expect(relL2(b!.data, relu6)).toBe(0);
  });

  it('Clip computes min(max(x, min), max) as onnxruntime does: max where min > max, NaN kept (fuzz seeds 12041, 15145: a shader that failed to compile)', async () => {
    const x = tensor([6], [Number.NaN, -3, 0, 2, 5, 9]);
    const [crossed] = await runNode({ op: 'Clip', inputs: [x, { constant: tensor([], [6]) }, { constant: tensor([], [0]) }] });
    expect(Array.from(crossed!.data)).toEqual([Number.NaN, 0, 0, 0, 0, 0]);
    const [relu6] = await runNode({ op: 'Clip', inputs: [x, { constant: tensor([], [0]) }, { constant: tensor([], [6]) }] });
    expect(Array.from(relu6!.data)).toEqual([Number.NaN, 0, 0, 2, 5, 6]);
  });

  it('handles more elements than one dispatch dimension allows', async () => {
    const x = randomTensor([1, 4, 2100, 2100], 5);
    const [y] = await runNode({ op: 'Relu', inputs: [x] });
    expect(relL2(y!.data, Array.from(x.data, reference.Relu!))).toBe(0);
  });
});

describe('ReLU keeps NaN, as onnxruntime and PyTorch do', () => {
  const x = tensor([1, 1, 1, 6], [Number.NaN, -1, -0, 0, 2.5, Number.NEGATIVE_INFINITY]);
  // max(x, 0) with NaN kept; -0 stays -0 (std::max(x, 0) returns x unless x < 0).
  const expected = [Number.NaN, 0, -0, 0, 2.5, 0];
  const same = (a: ArrayLike<number>) => Array.from(a).map((v) => (Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : v));

  it('in the Relu kernel, at f32 and f16', async () => {
    for (const precision of PRECISIONS) expect(same((await runNode({ op: 'Relu', inputs: [x] }, precision))[0]!.data), precision).toEqual(same(expected));
  });

  it('fused into a Conv (a 1x1 identity conv) and into an Add (x + 0)', async () => {
    for (const graph of [
      withRelu(nodeGraph({ op: 'Conv', inputs: [x, { constant: tensor([1, 1, 1, 1], [1]) }] })),
      withRelu(nodeGraph({ op: 'Add', inputs: [x, { constant: tensor([1], [0]) }] })),
    ]) {
      const session = await Session.create(await gpu(), graph);
      expect((await session.plan()).kernels.map((k) => k.node.name)).toEqual([`${graph.nodes[0]!.name}::relu`]);
      const y = (await session.run({ in0: x })).outputs.get(graph.outputs[0]!.name)!;
      expect(same(y.data), graph.nodes[0]!.opType).toEqual(same(expected));
      session.destroy();
    }
  });
});

/** The one-node graph with a Relu after its node. */
function withRelu(graph: Graph): Graph {
  const [node] = graph.nodes;
  const y = graph.outputs[0]!.name;
  const relu: Node = { name: 'relu', opType: 'Relu', domain: '', inputs: ['pre_relu'], outputs: [y], attrs: new Attrs(new Map(), "Relu node 'relu'") };
  return { ...graph, nodes: [{ ...node!, outputs: ['pre_relu'] }, relu] };
}
