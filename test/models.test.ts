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
      const intermediates = graph.nodes.flatMap((n) => n.outputs.filter(Boolean));

      // Every tensor kept: nothing is fused away, each is the ONNX tensor of that name.
      const all = await Session.create(await gpu(), graph, { inputShapes: { [input]: dims }, keep: intermediates });
      const floats = intermediates.filter((n) => {
        const t = all.typeOf(n);
        return t && isFloatType(t.type) && all.plan.placement.get(n)?.kind === 'buffer';
      });
      const ours = await all.run({ [input]: x }, floats);
      all.destroy();
      const reference = await runOrt(path, { [input]: x }, floats);

      const worst = floats
        .map((name) => {
          const a = ours.get(name)!;
          const b = reference.get(name)!;
          expect(a.dims, name).toEqual(b.dims);
          return { name, error: relL2(a.data, b.data) };
        })
        .sort((p, q) => q.error - p.error);
      expect(floats.length).toBeGreaterThan(20);
      expect(worst[0]!.error, `worst tensor ${worst[0]!.name}`).toBeLessThanOrEqual(1e-4);

      // Nothing kept: BatchNorm folded, buffers reused; the outputs must not change.
      const lean = await Session.create(await gpu(), graph, { inputShapes: { [input]: dims } });
      const outputs = await lean.run({ [input]: x });
      lean.destroy();
      for (const o of graph.outputs) {
        expect(relL2(outputs.get(o.name)!.data, reference.get(o.name)!.data), o.name).toBeLessThanOrEqual(1e-4);
      }
    });
  }
});
