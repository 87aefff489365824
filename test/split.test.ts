/**
 * Nodes whose tensors exceed one buffer binding run split over windows of
 * them (src/kernels/split.ts). Adapters allow 128 MiB and more per binding, so
 * the tests lower the limit with Session's maxBindingBytes and split small
 * tensors the same way: every split result against an independent CPU
 * reference or onnxruntime, and every planned binding within the limit.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuError } from '../src/errors.js';
import { readModelFile } from '../src/io/model-file.js';
import { Attrs, type AttrValue, type Graph, type HostTensor, type Node } from '../src/model/graph.js';
import { PRECISIONS, type Precision } from '../src/model/precision.js';
import { type BindingLimits, runWindow, splitUnits } from '../src/kernels/split.js';
import type { Plan } from '../src/runtime/plan.js';
import { Session } from '../src/runtime/session.js';
import { F16_TOLERANCE, gpu, nodeGraph, random, randomTensor, relL2, roundToFloat16 } from './helpers/gpu.js';
import { runOrt } from './helpers/ort.js';

describe('splitUnits and runWindow', () => {
  it('cover every unit once, with aligned windows inside the limit', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const [a, b, c, d] = random(4, seed, 0, 1);
      const limits: BindingLimits = { maxBytes: 256 + Math.floor(a! * 4000) * 4, offsetAlignment: [16, 64, 256][seed % 3]! };
      // float16 and float32 elements.
      const elementBytes = [2, 4][seed % 2]!;
      const unitBytes = elementBytes * (1 + Math.floor(b! * 300));
      const baseBytes = elementBytes * Math.floor(c! * 1000);
      const count = 1 + Math.floor(d! * 200);
      const t = { unitBytes, baseBytes, elementBytes };
      const runs = splitUnits(count, [t], limits);
      if (unitBytes + limits.offsetAlignment - elementBytes <= limits.maxBytes) expect(runs, `seed ${seed}`).toBeDefined();
      if (!runs) continue;
      expect(runs[0]![0]).toBe(0);
      expect(runs.at(-1)![1]).toBe(count);
      runs.forEach((run, i) => {
        expect(run[1]).toBeGreaterThan(run[0]);
        if (i > 0) expect(run[0]).toBe(runs[i - 1]![1]);
        const { window, shift } = runWindow(t, run, limits);
        expect(window.offset % limits.offsetAlignment).toBe(0);
        expect(window.bytes).toBeLessThanOrEqual(limits.maxBytes);
        expect(Number.isInteger(shift)).toBe(true);
        expect(window.offset + shift * elementBytes).toBe(baseBytes + run[0] * unitBytes);
        expect(window.offset + window.bytes).toBe(baseBytes + run[1] * unitBytes);
      });
    }
  });

  it('gives up when one unit does not fit', () => {
    expect(splitUnits(3, [{ unitBytes: 1000, baseBytes: 0, elementBytes: 4 }], { maxBytes: 999, offsetAlignment: 256 })).toBeUndefined();
    // Fits only from an aligned start: the second unit starts 1000 % 256 = 232 bytes into its window.
    expect(splitUnits(3, [{ unitBytes: 1000, baseBytes: 0, elementBytes: 4 }], { maxBytes: 1100, offsetAlignment: 256 })).toBeUndefined();
  });
});

/** The planned kernels of `node` (fused names included) and the largest binding of the whole plan. */
function inspect(plan: Plan, node: string) {
  const kernels = plan.kernels.filter((k) => k.node.name === node || k.node.name.startsWith(`${node}::`));
  const largest = Math.max(...plan.kernels.flatMap((k) => k.buffers.map((b) => b.bytes)));
  return { kernels: kernels.length, largest };
}

async function runSplit(graph: Graph, feeds: Record<string, HostTensor>, maxBindingBytes: number, precision: Precision = 'f32') {
  const session = await Session.create(await gpu(), graph, { maxBindingBytes, precision });
  try {
    const { outputs } = await session.run(feeds);
    return { outputs, plan: await session.plan() };
  } finally {
    session.destroy();
  }
}

/** The fused conv's input X, residual R and output Y. */
type ConvTensor = 'x' | 'r' | 'y';

/**
 * Conv → Add(residual) → Relu, which the runtime fuses into one conv with an
 * epilogue. At precision 'f16' the fused conv stores the tensors in `halved`
 * as float16: each reaches it through a Cast to float32, a no-op in the
 * model, so that the conv's side of it is an internal tensor, which a
 * session stores as float16 (a graph input, or an output no node reads,
 * stays float32).
 */
function residualConvGraph(
  x: HostTensor,
  w: HostTensor,
  bias: HostTensor,
  r: HostTensor,
  attrs: Record<string, number[]>,
  halved: readonly ConvTensor[],
): Graph {
  const graph = nodeGraph({ op: 'Conv', attrs, inputs: [x, { constant: w }, { constant: bias }] });
  const node = (name: string, opType: string, inputs: string[], output: string, attrs = new Map<string, AttrValue>()): Node => ({
    name,
    opType,
    domain: '',
    inputs,
    outputs: [output],
    attrs: new Attrs(attrs, `${opType} node '${name}'`),
  });
  const names: Record<ConvTensor, string> = { x: 'in0', r: 'r', y: graph.outputs[0]!.name };
  /** The tensor on the conv's side. */
  const half = (t: ConvTensor) => (halved.includes(t) ? `${names[t]}_f16` : names[t]);
  const ONNX_FLOAT = 1;
  const cast = (from: string, to: string) => node(`cast_${to}`, 'Cast', [from], to, new Map([['to', ONNX_FLOAT]]));
  const conv = graph.nodes[0]!;
  return {
    ...graph,
    inputs: [...graph.inputs, { name: 'r', type: 'float32', dims: [...r.dims] }],
    nodes: [
      ...(['x', 'r'] as const).filter((t) => halved.includes(t)).map((t) => cast(names[t], half(t))),
      { ...conv, inputs: [half('x'), ...conv.inputs.slice(1)], outputs: ['conv_out'] },
      node('add', 'Add', ['conv_out', half('r')], 'sum'),
      node('relu', 'Relu', ['sum'], half('y')),
      ...(halved.includes('y') ? [cast(half('y'), names.y)] : []),
    ],
  };
}

/** Direct convolution in float64 (groups 1, symmetric padding) plus residual, then ReLU: the conv's output, the sum and the result. */
function referenceResidualConv(x: HostTensor, w: HostTensor, bias: HostTensor, r: HostTensor, pad: number, dilation: number) {
  const [n, c, h, wd] = x.dims as [number, number, number, number];
  const [m, , kh, kw] = w.dims as [number, number, number, number];
  const [conv, sum, out] = [0, 1, 2].map(() => new Float64Array(n * m * h * wd)) as [Float64Array, Float64Array, Float64Array];
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
          conv[o] = s;
          sum[o] = s + r.data[o]!;
          out[o] = Math.max(0, sum[o]!);
        }
  return { conv, sum, out };
}

/**
 * A Conv -> Add(residual) -> Relu case keeping the map size: seeded tensors,
 * its graph (residualConvGraph), the conv node's name, the feeds, and the
 * float64 reference.
 */
function residualCase(xDims: number[], wDims: number[], seed: number, weightRange: number, pad: number, dilation: number, halved: readonly ConvTensor[] = []) {
  const x = randomTensor(xDims, seed);
  const w = randomTensor(wDims, seed + 1, -weightRange, weightRange);
  const bias = randomTensor([wDims[0]!], seed + 2);
  const r = randomTensor([xDims[0]!, wDims[0]!, xDims[2]!, xDims[3]!], seed + 3);
  const graph = residualConvGraph(x, w, bias, r, { pads: Array<number>(4).fill(pad), dilations: [dilation, dilation] }, halved);
  const conv = graph.nodes.find((n) => n.opType === 'Conv')!.name;
  const { out, ...intermediates } = referenceResidualConv(x, w, bias, r, pad, dilation);
  return { graph, conv, feeds: { in0: x, r }, reference: out, intermediates: { conv_out: intermediates.conv, sum: intermediates.sum } };
}

/** Relative L2 error allowed against the float64 reference, by the precision activations are stored at. */
const TOLERANCE: Record<Precision, number> = { f32: 1e-6, f16: F16_TOLERANCE };

/** The graph's output: float32 at either precision (a session casts float16 outputs back), within the precision's tolerance of the reference. */
function expectOutput(graph: Graph, outputs: Map<string, HostTensor>, reference: ArrayLike<number>, precision: Precision) {
  const y = outputs.get(graph.outputs[0]!.name)!;
  expect(y.type).toBe('float32');
  expect(relL2(y.data, reference)).toBeLessThanOrEqual(TOLERANCE[precision]);
}

describe('split nodes on the GPU', () => {
  for (const precision of PRECISIONS) {
    // At f16 the conv reads and writes float16 tensors, half the bytes of float32 ones.
    const halved: ConvTensor[] = precision === 'f16' ? ['x', 'r', 'y'] : [];
    const at = precision === 'f16' ? ', on float16 tensors' : '';

    it(`a conv with fused residual and ReLU, split over images, output channels and input channels${at}`, async () => {
      // 31x33 planes (4092 bytes, 2046 in float16): most runs start unaligned. Two images.
      const { graph, conv, feeds, reference } = residualCase([2, 6, 31, 33], [6, 6, 3, 3], 11, 0.3, 2, 2, halved);
      // In float16 a limit of 8 KB would split them alike but leave the packed weights (float32 either way) too little room on the tiled GEMM.
      const maxBindingBytes = precision === 'f16' ? 10 << 10 : 16 << 10;
      const { outputs, plan } = await runSplit(graph, feeds, maxBindingBytes, precision);
      const parts = plan.kernels.filter((k) => k.node.name.startsWith(conv));
      // X and Y are 24.6 KB an image (12.3 KB in float16): two runs of channels each, in both images.
      const windows = (kind: 'input' | 'output') =>
        new Set(parts.map((k) => (k.buffers[k.kernel.bindings.findIndex((b) => b.kind === kind)] as { offset: number }).offset)).size;
      expect(parts.length).toBe(2 * 2 * 2);
      expect([windows('input'), windows('output')]).toEqual([4, 4]);
      expect(inspect(plan, conv).largest).toBeLessThanOrEqual(maxBindingBytes);
      expectOutput(graph, outputs, reference, precision);
    });

    it(`captures of a split fused conv's own output and sum change nothing and hold their values${at}`, async () => {
      const { graph, conv, feeds, reference, intermediates } = residualCase([2, 6, 31, 33], [6, 6, 3, 3], 11, 0.3, 2, 2, halved);
      const session = await Session.create(await gpu(), graph, { maxBindingBytes: precision === 'f16' ? 10 << 10 : 16 << 10, precision });
      try {
        const output = graph.outputs[0]!.name;
        const lean = (await session.run(feeds)).outputs.get(output)!;
        expectOutput(graph, new Map([[output, lean]]), reference, precision);
        for (const capture of [['conv_out'], ['sum'], ['conv_out', 'sum']] as const) {
          const { outputs, captured } = await session.run(feeds, { capture });
          expect(outputs.get(output)!.data, `output with ${capture.join(', ')} captured`).toEqual(lean.data);
          for (const t of capture) expect(relL2(await captured.get(t)!.read(), intermediates[t]), t).toBeLessThanOrEqual(TOLERANCE[precision]);
        }
        // The same 8 parts of one fused conv as without captures, writing both tensors too; no separate Add or Relu.
        const plan = await session.plan(['conv_out', 'sum']);
        expect(inspect(plan, conv).kernels).toBe(2 * 2 * 2);
        expect(plan.kernels.filter((k) => k.node.opType !== 'Conv' && k.node.opType !== 'Cast')).toEqual([]);
      } finally {
        session.destroy();
      }
    });

    it(`a conv whose packed weights alone exceed the limit, split over input channels${at}`, async () => {
      const { graph, conv, feeds, reference } = residualCase([1, 64, 5, 4], [32, 64, 3, 3], 15, 0.1, 1, 1, halved);
      // Packed: 576 x 32 or 64 (padded) values by the adapter's kernel, 74 or 147 KB in float32 and half that in float16 (at f16); X 5 KB, Y 2.5 KB.
      const limit = precision === 'f16' ? 20 << 10 : 40 << 10;
      const { outputs, plan } = await runSplit(graph, feeds, limit, precision);
      expect(inspect(plan, conv).kernels).toBeGreaterThanOrEqual(2);
      expect(inspect(plan, conv).largest).toBeLessThanOrEqual(limit);
      expectOutput(graph, outputs, reference, precision);
    });

    it(`a 1x1 conv reading 4 pixels at a time from windows${at}`, async () => {
      // X is 24.6 KB (12.3 KB in float16), Y 15.4 KB (7.7 KB).
      const { graph, conv, feeds, reference } = residualCase([1, 64, 8, 12], [40, 64, 1, 1], 21, 0.3, 0, 1, halved);
      const { outputs, plan } = await runSplit(graph, feeds, 5000, precision);
      expect(inspect(plan, conv).kernels).toBeGreaterThan(4);
      expectOutput(graph, outputs, reference, precision);
    });
  }

  it('a split conv on float16 tensors whose residual, a graph input, stays float32: windows of its own', async () => {
    // R's planes are twice the bytes of Y's, so its windows and shifts differ from the output's.
    const { graph, conv, feeds, reference } = residualCase([2, 6, 31, 33], [6, 6, 3, 3], 11, 0.3, 2, 2, ['x', 'y']);
    const maxBindingBytes = 10 << 10;
    const { outputs, plan } = await runSplit(graph, feeds, maxBindingBytes, 'f16');
    expect(inspect(plan, conv).kernels).toBeGreaterThan(1);
    expect(inspect(plan, conv).largest).toBeLessThanOrEqual(maxBindingBytes);
    expectOutput(graph, outputs, reference, 'f16');
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

      // At f16, with the concat's output cast to float32 after it: it reads its float32 graph inputs and writes float16, in windows of each width.
      const cast = {
        ...graph.nodes[0]!,
        name: 'cast',
        opType: 'Cast',
        inputs: ['out0'],
        outputs: ['y'],
        attrs: new Attrs(new Map([['to', 1]]), "Cast node 'cast'"),
      };
      const mixed = { ...graph, nodes: [graph.nodes[0]!, cast], outputs: [{ name: 'y', type: 'float32' as const }] };
      const half = await runSplit(mixed, { in0: x, in1: y }, 1024, 'f16');
      expect(inspect(half.plan, graph.nodes[0]!.name).kernels).toBeGreaterThan(2);
      expect(Array.from(half.outputs.get('y')!.data)).toEqual(roundToFloat16(expected));
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

  it("DeepLabv3+ with the conv after the decoder concat and the final upsample split, the concat in place (or split where the adapter's alignment keeps it a copy), matches onnxruntime", async () => {
    const path = join(import.meta.dirname, 'fixtures/deeplabv3plus_os16.onnx');
    const graph = await readModelFile(path);
    const input = graph.inputs[0]!.name;
    const dims = [1, 3, 129, 129];
    const x = randomTensor(dims, 51, -2, 2);
    // The decoder concat is 80 x 33 x 33 floats (348 KB), the logits 21 x 129 x 129 (1.4 MB), the largest packed weights 184 KB.
    const maxBindingBytes = 300 << 10;
    const device = await gpu();
    const session = await Session.create(device, graph, { inputShapes: { [input]: dims }, maxBindingBytes });
    const { outputs } = await session.run({ [input]: x });
    const plan = await session.plan();
    session.destroy();
    const split = new Set(
      plan.kernels.filter((k, i) => plan.kernels.some((o, j) => j !== i && o.node === k.node && o.kernel.label === k.kernel.label)).map((k) => k.node.opType),
    );
    // The concat's first input, 48 low-level channels of 33x33 floats, ends 209088 bytes in: a multiple of 64, not of 128.
    const inPlace = device.limits.minStorageBufferOffsetAlignment <= 64;
    expect([...split].sort()).toEqual(inPlace ? ['Conv', 'Resize'] : ['Concat', 'Conv', 'Resize']);
    expect(plan.kernels.some((k) => k.node.opType === 'Concat')).toBe(!inPlace);
    expect(inspect(plan, '').largest).toBeLessThanOrEqual(maxBindingBytes);
    const reference = await runOrt(
      path,
      { [input]: x },
      graph.outputs.map((o) => o.name),
    );
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
