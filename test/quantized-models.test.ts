/**
 * The OS16 DeepLabv3+ fixture quantized by onnxruntime's tools and by
 * PyTorch (tools/quantize_fixtures.py: dynamic, static QDQ, static
 * QOperator; PyTorch FX)
 * against onnxruntime's CPU provider on every tensor: the integer tensors
 * (8-bit activations, ConvInteger's int32 sums) equal, the float ones within
 * relative L2 1e-4. And the layers of a quantized model drawn and read as
 * the real values they stand for.
 *
 * The QOperator model is integer arithmetic end to end and equal by
 * construction. In the dynamic and QDQ models, float ops (Conv, Mul) feed
 * QuantizeLinear and DynamicQuantizeLinear: a float sum that lands within a
 * rounding error of the midpoint between two levels may round to the other
 * level (a float Conv sums in another order than onnxruntime's), so there an
 * integer may differ by one level, and so may the levels computed from it
 * (on this input: 1 of 9248 elements, then 4, then 13 of 6069 layers
 * further on), and the float tensors computed from them by those levels'
 * share. A wrong scale or zero point moves most elements, by many levels.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readImage } from '../src/io/image.js';
import { readModelFile } from '../src/io/model-file.js';
import { type Graph, type HostTensor, isFloatType } from '../src/model/graph.js';
import { tensorQuantization } from '../src/model/tensor-quantization.js';
import { toInputTensor } from '../src/preprocess/input-tensor.js';
import { Session } from '../src/runtime/session.js';
import { uploadTensor } from '../src/vis/tensor.js';
import { drawLayer } from '../src/workflow/draw.js';
import { Visualizer } from '../src/workflow/visualizer.js';
import { gpu, randomTensor, relL2 } from './helpers/gpu.js';
import { runOrt } from './helpers/ort.js';

const QUANTIZED = join(import.meta.dirname, 'fixtures/quantized');
const DIMS = [1, 3, 65, 65];

/** Each file with op types it must contain, so that a regenerated fixture still tests what it did. */
const cases: [file: string, ops: string[], exact: boolean][] = [
  ['deeplabv3plus_os16_dynamic.onnx', ['DynamicQuantizeLinear', 'ConvInteger', 'Cast', 'Mul'], false],
  ['deeplabv3plus_os16_qdq.onnx', ['QuantizeLinear', 'DequantizeLinear', 'Conv'], false],
  // PyTorch's own quantization (FX, exported by the TorchScript exporter): QDQ with uint8 Casts.
  ['deeplabv3plus_os16_torch.onnx', ['QuantizeLinear', 'DequantizeLinear', 'Conv', 'Cast'], false],
  [
    'deeplabv3plus_os16_qop.onnx',
    ['QLinearConv', 'com.microsoft.QLinearAdd', 'com.microsoft.QLinearConcat', 'com.microsoft.QLinearGlobalAveragePool', 'MaxPool', 'Resize'],
    true,
  ],
];

/** Elements of two integer tensors that differ, and by how much at most. */
function differences(a: ArrayLike<number>, b: ArrayLike<number>): { count: number; largest: number } {
  let [count, largest] = [0, 0];
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > 0) count++;
    largest = Math.max(largest, d);
  }
  return { count, largest };
}

/** The tensors `graph` computes from any of `sources`, the sources included. */
function downstream(graph: Graph, sources: Iterable<string>): Set<string> {
  const reached = new Set(sources);
  for (const node of graph.nodes) if (node.inputs.some((x) => reached.has(x))) for (const y of node.outputs) reached.add(y);
  return reached;
}

describe('quantized models match onnxruntime on every tensor', () => {
  for (const [file, ops, exact] of cases) {
    const integers = exact ? 'integer tensors equal' : 'integer tensors within one level in at most 1% of elements';
    it(`${file}: ${integers}, float ones within 1e-4 (1e-2 after a moved level)`, async () => {
      const path = join(QUANTIZED, file);
      const graph = await readModelFile(path);
      expect(new Set(graph.nodes.map((n) => (n.domain ? `${n.domain}.${n.opType}` : n.opType)))).toEqual(expect.objectContaining(new Set(ops)));
      const x = randomTensor(DIMS, 17, -2, 2);
      const session = await Session.create(await gpu(), graph, { inputShapes: { input: DIMS } });
      let ours: Map<string, HostTensor>;
      try {
        const { captured } = await session.run({ input: x }, { capture: ['*'] });
        const computed = [...captured.values()].filter((t) => t.buffer);
        ours = new Map(await Promise.all(computed.map(async (t) => [t.name, await t.toHost()] as const)));
      } finally {
        session.destroy();
      }
      const reference = await runOrt(
        path,
        { input: x },
        [...ours].map(([name, t]) => ({ name, type: t.type })),
      );
      for (const [name, t] of ours) expect([t.type, t.dims], name).toEqual([reference.get(name)!.type, reference.get(name)!.dims]);
      const integer = [...ours].filter(([, t]) => !isFloatType(t.type));
      expect(integer.length, 'integer tensors compared').toBeGreaterThan(20);
      const moved: string[] = [];
      for (const [name, t] of integer) {
        const expected = reference.get(name)!.data;
        if (exact) expect(Array.from(t.data), name).toEqual(Array.from(expected));
        const { count, largest } = differences(t.data, expected);
        expect(largest, name).toBeLessThanOrEqual(1);
        expect(count, name).toBeLessThanOrEqual(t.data.length / 100);
        if (count > 0) moved.push(name);
      }
      // A level is 1/255 of its tensor's calibrated range: the floats computed from a moved one move by that share.
      const afterMoved = downstream(graph, moved);
      for (const [name, t] of ours) {
        if (isFloatType(t.type)) expect(relL2(t.data, reference.get(name)!.data), name).toBeLessThanOrEqual(afterMoved.has(name) ? 1e-2 : 1e-4);
      }
    });
  }
});

describe('layers of a quantized model', () => {
  const QOP = join(QUANTIZED, 'deeplabv3plus_os16_qop.onnx');
  // The ASPP projection's 8-bit output (its module has a second output, the DequantizeLinear named after the ReLU).
  const ASPP = '/classifier/aspp/project/project.0/Conv_output_0_quantized';

  it('are drawn and read as their dequantized values: (q - zero point) · scale of the QLinear node that made them', async () => {
    const graph = await readModelFile(QOP);
    const pixels = await readImage(join(import.meta.dirname, '../weights/samples/street.png'));
    const visualizer = await Visualizer.create(await gpu(), graph, { layers: [ASPP], inputSize: [65, 65] });
    const session = await Session.create(await gpu(), graph, { inputShapes: { input: DIMS } });
    try {
      const run = await visualizer.run(pixels);
      const [{ name, shape }] = run.layers[0]!.tensors as [{ name: string; shape: number[] }];
      expect(session.typeOf(name)!.type).toBe('uint8');
      const quantization = tensorQuantization(session.typed, name)!;
      const [scale, zeroPoint] = [session.typed.values.get(quantization.scale)!.data[0]!, session.typed.values.get(quantization.zeroPoint!)!.data[0]!];
      expect(scale).toBeGreaterThan(0);

      const { tensor } = toInputTensor(pixels, { size: [65, 65], mean: visualizer.input.mean, std: visualizer.input.std });
      const q = await (await session.run(tensor, { capture: [name] })).captured.get(name)!.toHost();
      const read = await run.read(name);
      expect(read.type).toBe('float32');
      expect(read.dims).toEqual(shape);
      expect(Array.from(read.data)).toEqual(Array.from(q.data, (v) => Math.fround(Math.fround(v - zeroPoint) * scale)));
      expect(new Set(q.data).size, 'distinct 8-bit levels').toBeGreaterThan(5);

      // The pictures are the float pipeline's on those values.
      const options = { reductions: ['max', 'mean'] };
      const floats = uploadTensor(await gpu(), read.dims, read.data);
      try {
        const expected = await drawLayer(await gpu(), ASPP, [{ name, value: floats }], options, [65, 65]);
        expect(await run.draw(run.layers[0]!, options)).toEqual(expected);
      } finally {
        floats.buffer.destroy();
      }
    } finally {
      visualizer.destroy();
      session.destroy();
    }
  });
});
