import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModelFile } from '../src/io/model-file.js';
import type { Graph } from '../src/model/graph.js';
import { inferTypes } from '../src/model/infer.js';
import { foldBatchNorm, fuseEpilogues } from '../src/model/passes.js';
import type { TypedGraph } from '../src/model/infer.js';
import { PRECISIONS } from '../src/model/precision.js';
import { registry } from '../src/ops/registry.js';
import { planDevice, planProgram } from '../src/runtime/program.js';
import { Session } from '../src/runtime/session.js';
import { gpu, namedNode, randomTensor } from './helpers/gpu.js';

const rules = (op: string) => registry.get(op)?.infer;

describe('graph passes', () => {
  it('folds the shape subgraphs of a do_constant_folding=False export into constants', async () => {
    const graph = await readModelFile(join(import.meta.dirname, 'fixtures/deeplabv3plus_bn.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 49, 57]]]), rules);
    const left = new Set(typed.nodes.map((n) => n.opType));
    for (const op of ['Shape', 'Gather', 'Cast', 'Slice', 'Unsqueeze', 'Constant']) expect(left.has(op), op).toBe(false);
    // The Resize sizes computed by those subgraphs are concrete.
    expect(typed.types.get('output')!.dims).toEqual([1, 21, 49, 57]);
  });

  it('folds BatchNormalization into the Conv before it; a kept Conv output is computed besides', async () => {
    const graph = await readModelFile(join(import.meta.dirname, 'fixtures/deeplabv3plus_bn.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 33, 33]]]), rules);
    const bns = typed.nodes.filter((n) => n.opType === 'BatchNormalization');
    expect(bns.length).toBe(28);

    const folded = foldBatchNorm(typed, new Set());
    expect(folded.nodes.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(0);
    expect(folded.nodes.length).toBe(typed.nodes.length - 28);

    const stem = typed.nodes.find((n) => n.opType === 'Conv')!.outputs[0]!;
    const kept = foldBatchNorm(typed, new Set([stem]));
    expect(kept.nodes.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(0);
    expect(kept.nodes.length).toBe(typed.nodes.length - 27);
    expect(kept.nodes.some((n) => n.outputs.includes(stem))).toBe(true);
  });

  it('fuses Relu, the residual Add and Add+Relu into the conv epilogue, keeping the order valid and captures exact', async () => {
    const graph = await readModelFile(join(import.meta.dirname, 'fixtures/deeplabv3plus_os16.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 65, 65]]]), rules);
    const count = (t: TypedGraph, op: string) => t.nodes.filter((n) => n.opType === op).length;
    const fused = fuseEpilogues(typed, new Set());
    // Every Relu of this model follows a Conv or a residual Add; every Add is a residual one.
    expect(count(fused, 'Relu')).toBe(0);
    expect(count(fused, 'Add')).toBe(0);
    expect(count(fused, 'Conv')).toBe(count(typed, 'Conv'));
    const residual = fused.nodes.filter((n) => n.epilogue?.residual);
    expect(residual.length).toBe(count(typed, 'Add'));
    for (const n of residual) expect([n.epilogue!.activation, n.inputs.length]).toEqual(['Relu', 4]);
    // Topological: every input exists before its reader (the downsample conv of a block comes after the main branch).
    const ready = new Set([...graph.inputs.map((i) => i.name), ...typed.values.keys(), '']);
    for (const n of fused.nodes) {
      for (const i of n.inputs) expect(ready.has(i), `${n.name} reads ${i} before it is computed`).toBe(true);
      for (const o of n.outputs) ready.add(o);
    }
    // An identity block's fused conv stays where the conv was; a block with a downsample branch waits for it.
    const at = (prefix: string) => fused.nodes.findIndex((n) => n.name.startsWith(prefix));
    expect(at('/backbone/layer3/layer3.1/conv3/Conv') + 1).toBe(at('/backbone/layer4/layer4.0/conv1/Conv'));
    expect(at('/backbone/layer1/layer1.0/conv3/Conv')).toBeGreaterThan(at('/backbone/layer1/layer1.0/downsample/downsample.0/Conv'));
    // Outputs of fused nodes are the tensors of the nodes they replace, so every graph output still exists.
    for (const o of graph.outputs) expect(ready.has(o.name)).toBe(true);

    // Kept (captured) tensors of a fused chain are written by the fused kernel too, as its further outputs:
    // the nodes are those without captures, so nothing else changes.
    const conv3 = typed.nodes.find((n) => n.name === '/backbone/layer1/layer1.0/conv3/Conv')!.outputs[0]!;
    const sum = typed.nodes.find((n) => n.name === '/backbone/layer1/layer1.0/Add')!.outputs[0]!;
    const names = (t: TypedGraph) => t.nodes.map((n) => n.name);
    const fusedConv3 = (t: TypedGraph) => t.nodes.find((n) => n.name.startsWith('/backbone/layer1/layer1.0/conv3/Conv'))!;
    const relu = fusedConv3(fused).outputs[0]!;
    for (const [keep, outputs, taps] of [
      [[conv3], [relu, conv3], { beforeResidual: 1 }],
      [[sum], [relu, sum], { beforeActivation: 1 }],
      [[sum, conv3], [relu, conv3, sum], { beforeResidual: 1, beforeActivation: 2 }],
    ] as const) {
      const kept = fuseEpilogues(typed, new Set(keep));
      expect(names(kept), `keeping ${keep.join(', ')}`).toEqual(names(fused));
      expect([fusedConv3(kept).outputs, fusedConv3(kept).epilogue]).toEqual([outputs, { residual: true, activation: 'Relu', taps }]);
    }
  });

  it('leave the typed graph as they found it: planning program after program, with and without captures, at f32 and f16', async () => {
    const graph = await readModelFile(join(import.meta.dirname, 'fixtures/deeplabv3plus_bn.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 33, 33]]]), rules);
    const before = { types: structuredClone([...typed.types]), values: [...typed.values], nodes: [...typed.nodes] };
    const device = planDevice(await gpu());
    // BatchNorm folding, fusion, storage types and the buffer plan, as each program of a session is built.
    for (const precision of PRECISIONS) {
      for (const keep of [[], ['/backbone/layer1/layer1.0/conv3/Conv_output_0'], [...typed.types.keys()]]) planProgram(typed, new Set(keep), device, precision);
    }
    expect([...typed.types]).toEqual(before.types);
    expect([...typed.values]).toEqual(before.values);
    expect(typed.nodes).toEqual(before.nodes);
  });

  it("runs a residual that is the conv's own input, y = relu(x + conv(x)), fused, binding a copy of x", async () => {
    const node = namedNode;
    const graph: Graph = {
      nodes: [node('Conv', ['x', 'w'], 'c', { pads: [1, 1, 1, 1] }), node('Add', ['c', 'x'], 's'), node('Relu', ['s'], 'y')],
      inputs: [{ name: 'x', type: 'float32', dims: [1, 4, 6, 6] }],
      outputs: [{ name: 'y', type: 'float32' }],
      initializers: new Map([['w', randomTensor([4, 4, 3, 3], 2)]]),
      opset: 17,
      metadata: {},
      source: 'residual of the conv input',
    };
    const typed = inferTypes(graph, new Map(), rules);
    expect(fuseEpilogues(typed, new Set()).nodes.map((n) => [n.opType, n.epilogue])).toEqual([['Conv', { residual: true, activation: 'Relu' }]]);
    const session = await Session.create(await gpu(), graph);
    const x = randomTensor([1, 4, 6, 6], 1);
    try {
      expect((await session.plan()).kernels.map((k) => k.kernel.label)).toContain('copy_repeated_input');
      const fused = (await session.run(x)).outputs.get('y')!;
      // Capturing the conv's output keeps every node apart: the same numbers.
      const apart = (await session.run(x, { capture: ['c'] })).outputs.get('y')!;
      expect(Array.from(fused.data)).toEqual(Array.from(apart.data));
    } finally {
      session.destroy();
    }
  });
});
