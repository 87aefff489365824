/**
 * Whole models exported from PyTorch (test/fixtures, made by
 * tools/export_fixtures.py) against onnxruntime's CPU provider: the logits
 * and every intermediate float tensor, relative L2 ≤ 1e-4.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModelFile } from '../src/io/model-file.js';
import { isFloatType } from '../src/model/graph.js';
import { Session } from '../src/runtime/session.js';
import { gpu, randomTensor, relL2 } from './helpers/gpu.js';
import { runOrt } from './helpers/ort.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');

/** Each fixture with an input size different from its export size, to exercise dynamic axes. */
const cases: [file: string, dims: number[]][] = [
  ['deeplabv3plus_os16.onnx', [1, 3, 65, 65]],
  ['deeplabv3plus_os8_ac.onnx', [1, 3, 57, 71]],
  ['deeplabv3plus_sep.onnx', [1, 3, 61, 83]],
  ['deeplabv3plus_opset11.onnx', [1, 3, 65, 65]],
  ['deeplabv3plus_bn.onnx', [2, 3, 49, 49]],
  ['tv_deeplabv3.onnx', [1, 3, 65, 81]],
  ['tv_fcn.onnx', [1, 3, 64, 64]],
  ['tv_lraspp.onnx', [1, 3, 97, 65]],
  ['deeplabv3plus_dynamo/model.onnx', [1, 3, 65, 65]],
];

describe('PyTorch exports match onnxruntime on every tensor', () => {
  for (const [file, dims] of cases) {
    it(`${file} at ${dims.join('x')}`, async () => {
      const path = join(FIXTURES, file);
      const graph = await readModelFile(path);
      const input = graph.inputs[0]!.name;
      const x = randomTensor(dims, file.length * 131 + dims[2]!, -2, 2);
      const session = await Session.create(await gpu(), graph, { inputShapes: { [input]: dims } });

      // No capture: BatchNorm folded, buffers reused.
      const lean = await session.run({ [input]: x });
      // Everything captured through the hook API: nothing is fused away, each
      // capture is the ONNX tensor of that name.
      const { outputs, captured } = await session.run({ [input]: x }, { capture: ['*'] });
      const floats = [...captured.values()].filter((t) => isFloatType(t.type) && t.buffer);
      const ours = new Map(await Promise.all(floats.map(async (t) => [t.name, await t.toHost()] as const)));
      session.destroy();
      const reference = await runOrt(path, { [input]: x }, [...ours.keys()]);

      expect(ours.size).toBeGreaterThan(20);
      const worst = [...ours]
        .map(([name, a]) => {
          const b = reference.get(name)!;
          expect(a.dims, name).toEqual(b.dims);
          return { name, error: relL2(a.data, b.data) };
        })
        .sort((p, q) => q.error - p.error);
      expect(worst[0]!.error, `worst tensor ${worst[0]!.name}`).toBeLessThanOrEqual(1e-4);

      // Capturing never changes the outputs.
      for (const o of graph.outputs) {
        expect(relL2(lean.outputs.get(o.name)!.data, reference.get(o.name)!.data), o.name).toBeLessThanOrEqual(1e-4);
        expect(outputs.get(o.name)!.data, o.name).toEqual(lean.outputs.get(o.name)!.data);
      }
    });
  }
});
