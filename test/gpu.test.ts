import { describe, expect, it } from 'vitest';
import { GpuError } from '../src/errors.js';
import { openDawn } from '../src/gpu/dawn.js';
import { checked } from '../src/gpu/device.js';
import { cachedPipelineCount, computePipeline } from '../src/gpu/pipelines.js';
import { CommandBatch } from '../src/vis/tensor.js';
import { readModelFile } from '../src/io/model-file.js';
import { inferTypes } from '../src/model/infer.js';
import { registry } from '../src/ops/registry.js';
import { buildPlan, checkLimits } from '../src/runtime/plan.js';
import { Session } from '../src/runtime/session.js';
import { gpu, nodeGraph, randomTensor, relL2 } from './helpers/gpu.js';
import { join } from 'node:path';

describe('GPU device handling', () => {
  it('names what was tried and how to get a driver when no adapter is found', async () => {
    const attempt = openDawn({ backend: 'no-such-backend' });
    await expect(attempt).rejects.toThrow(GpuError);
    await expect(attempt).rejects.toThrow(/Tried: no-such-backend .*mesa-vulkan-drivers/s);
  });

  it('turns a lost device into a GpuError, and a new device works afterwards', async () => {
    const gpu = await openDawn();
    const x = randomTensor([1, 4, 9, 9], 1);
    const session = await Session.create(gpu, nodeGraph({ op: 'Relu', inputs: [x] }));
    gpu.device.destroy();
    await expect(session.run({ in0: x })).rejects.toThrow(GpuError);

    const fresh = await openDawn();
    const again = await Session.create(fresh, nodeGraph({ op: 'Relu', inputs: [x] }));
    const y = (await again.run({ in0: x })).outputs.get('out0')!;
    expect(
      relL2(
        y.data,
        Array.from(x.data, (v) => Math.max(v, 0)),
      ),
    ).toBe(0);
    fresh.device.destroy();
  });

  it('feeds large inputs through a kept mapping, fresh every run', async () => {
    // 1x64x32x33 floats (270 KB) is over the 256 KiB from which feeds skip writeBuffer.
    const dims = [1, 64, 32, 33];
    const session = await Session.create(await gpu(), nodeGraph({ op: 'Add', inputs: [randomTensor(dims, 1), randomTensor(dims, 2)] }));
    try {
      for (let run = 0; run < 3; run++) {
        const [a, b] = [randomTensor(dims, 10 + run), randomTensor(dims, 20 + run)];
        const y = (await session.run({ in0: a, in1: b })).outputs.get('out0')!;
        expect(y.data).toEqual(Float32Array.from(a.data, (v, i) => Math.fround(v + b.data[i]!)));
      }
    } finally {
      session.destroy();
    }
  });

  it('takes overlapping runs in turn: each gets the outputs of its own inputs', async () => {
    const dims = [1, 64, 32, 33];
    const session = await Session.create(await gpu(), nodeGraph({ op: 'Add', inputs: [randomTensor(dims, 1), randomTensor(dims, 2)] }));
    try {
      const feeds = [0, 1, 2].map((k) => ({ in0: randomTensor(dims, 30 + k), in1: randomTensor(dims, 40 + k) }));
      // plan() builds programs too (here a third, which evicts the oldest): it waits its turn as well.
      const [results] = await Promise.all([
        Promise.all(feeds.map((f, k) => session.run(f, { capture: k === 1 ? ['out0'] : [] }))),
        session.plan(['in0']),
        session.plan(['*']),
      ]);
      results.forEach((r, k) => {
        const { in0: a, in1: b } = feeds[k]!;
        expect(r.outputs.get('out0')!.data).toEqual(Float32Array.from(a.data, (v, i) => Math.fround(v + b.data[i]!)));
      });
    } finally {
      session.destroy();
    }
  });

  it('refuses a plan whose buffers exceed the binding limit before allocating anything', async () => {
    const graph = await readModelFile(join(import.meta.dirname, 'fixtures/deeplabv3plus_os16.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 513, 513]]]), (op) => registry.get(op)?.infer);
    const plan = buildPlan(typed, registry, new Set());
    const limits = { maxStorageBufferBindingSize: 1 << 20, maxBufferSize: 1 << 30, minStorageBufferOffsetAlignment: 256 };
    expect(() => checkLimits(plan, limits)).toThrow(GpuError);
    expect(() => checkLimits(plan, limits)).toThrow(
      /Conv node '\/backbone\/conv1\/Conv' input 'input' needs a 3158028 byte binding; the adapter allows 1048576 bytes per binding/,
    );
    expect(() => checkLimits(plan, { ...limits, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 20 })).toThrow(
      /Conv node '\/classifier\/classifier\/classifier.6\/Conv' output '\/classifier\/classifier\/classifier.6\/Conv_output_0' needs a \d+ byte buffer; the adapter allows 1048576 bytes per buffer/,
    );
  });
});

describe('a kernel reading one tensor twice', () => {
  // WebGPU refuses overlapping writable bindings; the plan binds a copy for the repeat.
  it('MatMul(x, x) and Add(x, Reshape(x)) bind a copy and compute the products and sums', async () => {
    const x = randomTensor([5, 5], 3);
    const square = nodeGraph({ op: 'MatMul', inputs: [x] });
    square.nodes[0]!.inputs = ['in0', 'in0'];
    const reshaped = nodeGraph({ op: 'Add', inputs: [x] });
    reshaped.nodes = [
      { ...reshaped.nodes[0]!, name: 'flat', opType: 'Reshape', inputs: ['in0', 'shape'], outputs: ['flat'] },
      { ...reshaped.nodes[0]!, name: 'back', opType: 'Reshape', inputs: ['flat', 'square'], outputs: ['back'] },
      { ...reshaped.nodes[0]!, inputs: ['in0', 'back'] },
    ];
    reshaped.initializers = new Map([
      ['shape', { type: 'int64', dims: [1], data: Float64Array.of(25) }],
      ['square', { type: 'int64', dims: [2], data: Float64Array.of(5, 5) }],
    ]);
    const product = Array.from({ length: 25 }, (_, k) => {
      const [i, j] = [Math.floor(k / 5), k % 5];
      return Array.from({ length: 5 }, (_, t) => x.data[i * 5 + t]! * x.data[t * 5 + j]!).reduce((a, b) => a + b, 0);
    });
    for (const [graph, expected] of [
      [square, product],
      [reshaped, Array.from(x.data, (v) => 2 * v)],
    ] as const) {
      const session = await Session.create(await gpu(), graph);
      try {
        expect((await session.plan()).kernels.map((k) => k.kernel.label)).toContain('copy_repeated_input');
        const y = (await session.run(x)).outputs.get('out0')!;
        expect(relL2(y.data, expected)).toBeLessThan(1e-6);
      } finally {
        session.destroy();
      }
    }
  });
});

describe('compute pipelines (gpu/pipelines.ts)', () => {
  it('a refused shader is a GpuError naming the kernel and the compiler message, in checked and in a vis read', async () => {
    const device = await gpu();
    const bad = '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_thing; }';
    const inChecked = checked(device, 'compiling a test kernel', () => void computePipeline(device.device, bad, "Test node 'broken' (bad_kernel)"));
    await expect(inChecked).rejects.toThrow(GpuError);
    await expect(inChecked).rejects.toThrow(/^Test node 'broken' \(bad_kernel\): shader failed to compile: \d+:\d+ .*undefined_thing/);
    // The bind group and command buffer made from the refused pipeline are invalid too: a scope of the test's own keeps
    // Dawn from printing those consequences.
    device.device.pushErrorScope('validation');
    const batch = new CommandBatch(device);
    const out = batch.temporary(4, 'out');
    batch.dispatch({ label: 'vis bad_stage', wgsl: `${bad}\n@group(0) @binding(0) var<storage, read_write> Y: array<f32>;`, workgroups: [1, 1, 1] }, [out]);
    await expect(batch.readAfterSubmit([{ buffer: out, bytes: 4 }])).rejects.toThrow(/^vis bad_stage: shader failed to compile/);
    expect(await device.device.popErrorScope()).not.toBeNull();
  });

  it('are shared by every session and vis stage of a device: a second session of a model compiles nothing', async () => {
    const device = await gpu();
    const graph = await readModelFile(join(import.meta.dirname, 'fixtures/deeplabv3plus_os16.onnx'));
    const open = () => Session.create(device, graph, { inputShapes: { input: [1, 3, 37, 37] } });
    const first = await open();
    const compiled = cachedPipelineCount(device.device);
    const second = await open();
    expect(cachedPipelineCount(device.device)).toBe(compiled);
    const x = randomTensor([1, 3, 37, 37], 5);
    expect((await second.run(x)).outputs.get('output')!.data).toEqual((await first.run(x)).outputs.get('output')!.data);
    first.destroy();
    second.destroy();
  });
});
