/**
 * Nodes whose tensors exceed one buffer binding run split over windows of
 * them (src/ops/split.ts). Adapters allow 128 MiB and more per binding, so
 * the tests lower the limit with Session's maxBindingBytes and split small
 * tensors the same way: every split result against an independent CPU
 * reference or onnxruntime, and every planned binding within the limit.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuError } from '../src/errors.js';
import { readModelFile } from '../src/io/model-file.js';
import { Attrs, type Graph, type HostTensor, type Node } from '../src/model/graph.js';
import { runWindow, splitUnits, type BindingLimits } from '../src/ops/split.js';
import type { Plan } from '../src/runtime/plan.js';
import { Session } from '../src/runtime/session.js';
import { gpu, nodeGraph, random, randomTensor, relL2 } from './helpers/gpu.js';
import { runOrt } from './helpers/ort.js';

describe('splitUnits and runWindow', () => {
  it('cover every unit once, with aligned windows inside the limit', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const [a, b, c, d] = random(4, seed, 0, 1);
      const limits: BindingLimits = { maxBytes: 256 + Math.floor(a! * 4000) * 4, offsetAlignment: [16, 64, 256][seed % 3]! };
      const unitBytes = 4 * (1 + Math.floor(b! * 300));
      const baseBytes = 4 * Math.floor(c! * 1000);
      const count = 1 + Math.floor(d! * 200);
      const t = { unitBytes, baseBytes };
      const runs = splitUnits(count, [t], limits);
      if (unitBytes + limits.offsetAlignment - 4 <= limits.maxBytes) expect(runs, `seed ${seed}`).toBeDefined();
      if (!runs) {
        expect(unitBytes + ((baseBytes + 0) % limits.offsetAlignment)).toBeGreaterThan(limits.maxBytes - 0);
        continue;
      }
      expect(runs[0]![0]).toBe(0);
      expect(runs.at(-1)![1]).toBe(count);
      runs.forEach((run, i) => {
        expect(run[1]).toBeGreaterThan(run[0]);
        if (i > 0) expect(run[0]).toBe(runs[i - 1]![1]);
        const { window, shift } = runWindow(t, run, limits);
        expect(window.offset % limits.offsetAlignment).toBe(0);
        expect(window.bytes).toBeLessThanOrEqual(limits.maxBytes);
        expect(window.offset + shift * 4).toBe(baseBytes + run[0] * unitBytes);
        expect(window.offset + window.bytes).toBe(baseBytes + run[1] * unitBytes);
      });
    }
  });

  it('gives up when one unit does not fit', () => {
    expect(splitUnits(3, [{ unitBytes: 1000, baseBytes: 0 }], { maxBytes: 999, offsetAlignment: 256 })).toBeUndefined();
    // Fits only from an aligned start: the second unit starts 1000 % 256 = 232 bytes into its window.
    expect(splitUnits(3, [{ unitBytes: 1000, baseBytes: 0 }], { maxBytes: 1100, offsetAlignment: 256 })).toBeUndefined();
  });
});

/** The planned kernels of `node` (fused names included) and the largest binding of the whole plan. */
function inspect(plan: Plan, node: string) {
  const kernels = plan.kernels.filter((k) => k.node.name === node || k.node.name.startsWith(`${node}::`));
  const largest = Math.max(...plan.kernels.flatMap((k) => k.buffers.map((b) => (b.kind === 'slot' ? b.bytes : b.data.byteLength))));
  return { kernels: kernels.length, largest };
}

async function runSplit(graph: Graph, feeds: Record<string, HostTensor>, maxBindingBytes: number) {
  const session = await Session.create(await gpu(), graph, { maxBindingBytes });
  try {
    const { outputs } = await session.run(feeds);
    return { outputs, plan: await session.plan() };
  } finally {
    session.destroy();
  }
}

/** Conv → Add(residual) → Relu, which the runtime fuses into one conv with an epilogue. */
function residualConvGraph(x: HostTensor, w: HostTensor, bias: HostTensor, r: HostTensor, attrs: Record<string, number[]>): Graph {
  const graph = nodeGraph({ op: 'Conv', attrs, inputs: [x, { constant: w }, { constant: bias }] });
  const node = (name: string, opType: string, inputs: string[], output: string): Node => ({
    name,
    opType,
    domain: '',
    inputs,
    outputs: [output],
    attrs: new Attrs(new Map(), `${opType} node '${name}'`),
  });
  return {
    ...graph,
    inputs: [...graph.inputs, { name: 'r', type: 'float32', dims: [...r.dims] }],
    nodes: [{ ...graph.nodes[0]!, outputs: ['conv_out'] }, node('add', 'Add', ['conv_out', 'r'], 'sum'), node('relu', 'Relu', ['sum'], graph.outputs[0]!.name)],
  };
}

/** Direct convolution in float64 (groups 1, symmetric padding) plus residual, then ReLU. */
function referenceResidualConv(x: HostTensor, w: HostTensor, bias: HostTensor, r: HostTensor, pad: number, dilation: number): Float64Array {
  const [n, c, h, wd] = x.dims as [number, number, number, number];
  const [m, , kh, kw] = w.dims as [number, number, number, number];
  const out = new Float64Array(n * m * h * wd);
  for (let b = 0; b < n; b++)
    for (let co = 0; co < m; co++)
      for (let y = 0; y < h; y++)
        for (let xo = 0; xo < wd; xo++) {
          let s = bias.data[co]!;
          for (let ci = 0; ci < c; ci++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = y - pad + ky * dilation;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = xo - pad + kx * dilation;
                if (ix >= 0 && ix < wd) s += x.data[((b * c + ci) * h + iy) * wd + ix]! * w.data[((co * c + ci) * kh + ky) * kw + kx]!;
              }
            }
          const o = ((b * m + co) * h + y) * wd + xo;
          out[o] = Math.max(0, s + r.data[o]!);
        }
  return out;
}

/** A Conv -> Add(residual) -> Relu case keeping the map size: seeded tensors, its graph and feeds, and the float64 reference. */
function residualCase(xDims: number[], wDims: number[], seed: number, weightRange: number, pad: number, dilation: number) {
  const x = randomTensor(xDims, seed);
  const w = randomTensor(wDims, seed + 1, -weightRange, weightRange);
  const bias = randomTensor([wDims[0]!], seed + 2);
  const r = randomTensor([xDims[0]!, wDims[0]!, xDims[2]!, xDims[3]!], seed + 3);
  const graph = residualConvGraph(x, w, bias, r, { pads: Array<number>(4).fill(pad), dilations: [dilation, dilation] });
  return { graph, feeds: { in0: x, r }, reference: referenceResidualConv(x, w, bias, r, pad, dilation) };
}

describe('split nodes on the GPU', () => {
  it('a conv with fused residual and ReLU, split over images, output channels and input channels', async () => {
    // 31x33 planes (4092 bytes): most runs start unaligned. Two images.
    const { graph, feeds, reference } = residualCase([2, 6, 31, 33], [6, 6, 3, 3], 11, 0.3, 2, 2);
    const maxBindingBytes = 16 << 10;
    const { outputs, plan } = await runSplit(graph, feeds, maxBindingBytes);
    const parts = plan.kernels.filter((k) => k.node.name.startsWith(graph.nodes[0]!.name));
    // X and Y are 24.6 KB an image: two runs of channels each, in both images.
    const windows = (kind: 'input' | 'output') =>
      new Set(parts.map((k) => (k.buffers[k.kernel.bindings.findIndex((b) => b.kind === kind)] as { offset: number }).offset)).size;
    expect(parts.length).toBe(2 * 2 * 2);
    expect([windows('input'), windows('output')]).toEqual([4, 4]);
    expect(inspect(plan, graph.nodes[0]!.name).largest).toBeLessThanOrEqual(maxBindingBytes);
    expect(relL2(outputs.get(graph.outputs[0]!.name)!.data, reference)).toBeLessThanOrEqual(1e-6);
  });

  it('a conv whose packed weights alone exceed the limit, split over input channels', async () => {
    const { graph, feeds, reference } = residualCase([1, 64, 5, 4], [32, 64, 3, 3], 15, 0.1, 1, 1);
    // Packed: 576 x 32 or 64 (padded) floats, 74 or 147 KB by the adapter's kernel; X 5 KB, Y 2.5 KB.
    const { outputs, plan } = await runSplit(graph, feeds, 40 << 10);
    expect(inspect(plan, graph.nodes[0]!.name).kernels).toBeGreaterThanOrEqual(2);
    expect(inspect(plan, graph.nodes[0]!.name).largest).toBeLessThanOrEqual(40 << 10);
    expect(relL2(outputs.get(graph.outputs[0]!.name)!.data, reference)).toBeLessThanOrEqual(1e-6);
  });

  it('a 1x1 conv reading 4 pixels at a time from windows', async () => {
    const { graph, feeds, reference } = residualCase([1, 64, 8, 12], [40, 64, 1, 1], 21, 0.3, 0, 1);
    const { outputs, plan } = await runSplit(graph, feeds, 5000);
    expect(inspect(plan, graph.nodes[0]!.name).kernels).toBeGreaterThan(4);
    expect(relL2(outputs.get(graph.outputs[0]!.name)!.data, reference)).toBeLessThanOrEqual(1e-6);
  });

  const concats: [axis: number, a: number[], b: number[]][] = [
    [1, [1, 5, 13, 11], [1, 7, 13, 11]],
    [2, [2, 3, 9, 10], [2, 3, 4, 10]],
  ];
  for (const [axis, a, b] of concats) {
    it(`Concat on axis ${axis} of [${a}] and [${b}] in windows`, async () => {
      const x = randomTensor(a, 31);
      const y = randomTensor(b, 32);
      const graph = nodeGraph({ op: 'Concat', attrs: { axis }, inputs: [x, y] });
      const { outputs, plan } = await runSplit(graph, { in0: x, in1: y }, 1024);
      expect(inspect(plan, graph.nodes[0]!.name).kernels).toBeGreaterThan(2);
      expect(inspect(plan, graph.nodes[0]!.name).largest).toBeLessThanOrEqual(1024);
      // Reference: each output element from its source, by index.
      const outer = a.slice(0, axis).reduce((p, q) => p * q, 1);
      const [rowA, rowB] = [a, b].map((d) => d.slice(axis).reduce((p, q) => p * q, 1)) as [number, number];
      const expected = new Float32Array(outer * (rowA + rowB));
      for (let o = 0; o < outer; o++) {
        expected.set(x.data.subarray(o * rowA, (o + 1) * rowA), o * (rowA + rowB));
        expected.set(y.data.subarray(o * rowB, (o + 1) * rowB), o * (rowA + rowB) + rowA);
      }
      expect(outputs.get(graph.outputs[0]!.name)!.data).toEqual(expected);
    });
  }

  it('a bilinear Resize split over channel planes equals the unsplit kernel bit for bit', async () => {
    const x = randomTensor([2, 6, 9, 7], 41);
    const graph = nodeGraph({
      op: 'Resize',
      attrs: { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' },
      inputs: [x, null, null, { constant: { type: 'int64', dims: [4], data: Float64Array.from([2, 6, 31, 29]) } }],
      opset: 13,
    });
    const whole = await runSplit(graph, { in0: x }, Infinity);
    const split = await runSplit(graph, { in0: x }, 4096);
    expect(inspect(split.plan, graph.nodes[0]!.name).kernels).toBeGreaterThan(3);
    expect(inspect(split.plan, graph.nodes[0]!.name).largest).toBeLessThanOrEqual(4096);
    expect(split.outputs.get(graph.outputs[0]!.name)!.data).toEqual(whole.outputs.get(graph.outputs[0]!.name)!.data);
  });

  it('DeepLabv3+ with the decoder concat, the conv after it and the final upsample split matches onnxruntime', async () => {
    const path = join(import.meta.dirname, 'fixtures/deeplabv3plus_os16.onnx');
    const graph = await readModelFile(path);
    const input = graph.inputs[0]!.name;
    const dims = [1, 3, 129, 129];
    const x = randomTensor(dims, 51, -2, 2);
    // The decoder concat is 80 x 33 x 33 floats (348 KB), the logits 21 x 129 x 129 (1.4 MB), the largest packed weights 184 KB.
    const maxBindingBytes = 300 << 10;
    const session = await Session.create(await gpu(), graph, { inputShapes: { [input]: dims }, maxBindingBytes });
    const { outputs } = await session.run({ [input]: x });
    const plan = await session.plan();
    session.destroy();
    const split = new Set(plan.kernels.filter((k, i) => plan.kernels.some((o, j) => j !== i && o.node === k.node && o.kernel.label === k.kernel.label)).map((k) => k.node.opType));
    expect([...split].sort()).toEqual(['Concat', 'Conv', 'Resize']);
    expect(inspect(plan, '').largest).toBeLessThanOrEqual(maxBindingBytes);
    const reference = await runOrt(path, { [input]: x }, graph.outputs.map((o) => o.name));
    for (const o of graph.outputs) expect(relL2(outputs.get(o.name)!.data, reference.get(o.name)!.data), o.name).toBeLessThanOrEqual(1e-4);
  });

  it('a node that cannot be split is refused before running, naming the node, the tensor and the limit', async () => {
    const x = randomTensor([1, 8, 16, 16], 61);
    const graph = nodeGraph({ op: 'Softmax', attrs: { axis: 1 }, inputs: [x], opset: 13 });
    const create = Session.create(await gpu(), graph, { maxBindingBytes: 4096 });
    await expect(create).rejects.toThrow(GpuError);
    await expect(create).rejects.toThrow(
      /Softmax node '.*' input 'in0' needs a 8192 byte binding; the adapter allows 4096 bytes per binding and this op cannot be split/,
    );
  });
});
