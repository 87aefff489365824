/**
 * The GPU memory of weights at each --precision: every model at hand planned
 * at f32 and at f16 for the adapter Dawn finds, the plan a session builds
 * (session.plan()) without compiling it, with the file's size and parameter
 * count. Planned bytes, no timing:
 *
 *   node --import tsx bench/weights.ts
 *
 * Models: the float16 fixtures (tools/float16_fixture.py; the second folds
 * BatchNorm nodes into its convs) and their float32 source at 65x65, the
 * default model at 257x257, and, when big/ has them, the full-size
 * ResNet-101 and ResNet-50 DeepLabv3+ at 513x513, float32 and as float16
 * models (`python3 tools/float16_fixture.py big/X.onnx big/X_fp16.onnx`).
 * Writes bench/results/weights.json.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memoryReport } from '../src/cli/memory.js';
import { openDawn } from '../src/gpu/dawn.js';
import { readModelFile } from '../src/io/model-file.js';
import { sizeOf } from '../src/model/graph.js';
import { inferTypes } from '../src/model/infer.js';
import { PRECISIONS } from '../src/model/precision.js';
import { registry } from '../src/ops/registry.js';
import { planDevice, planProgram } from '../src/runtime/program.js';
import { planMemory } from '../src/runtime/profile.js';

const root = join(import.meta.dirname, '..');
const models: [string, number][] = [
  ['test/fixtures/deeplabv3plus_os16.onnx', 65],
  ['test/fixtures/deeplabv3plus_os16_fp16.onnx', 65],
  ['test/fixtures/deeplabv3plus_bn_fp16.onnx', 65],
  ['weights/deeplabv3plus_scenes.onnx', 257],
  ...['r101', 'r50'].flatMap((net): [string, number][] => [
    [`big/deeplabv3plus_${net}_os16.onnx`, 513],
    [`big/deeplabv3plus_${net}_os16_fp16.onnx`, 513],
  ]),
];

const gpu = await openDawn();
const device = planDevice(gpu);
const results = [];
for (const [file, size] of models) {
  if (!existsSync(join(root, file))) {
    console.error(`${file} is missing: skipped`);
    continue;
  }
  const graph = await readModelFile(join(root, file));
  const typed = inferTypes(graph, new Map([[graph.inputs[0]!.name, [1, 3, size, size]]]), (op) => registry.get(op)?.infer);
  const memory = Object.fromEntries(PRECISIONS.map((p) => [p, memoryReport(planMemory(planProgram(typed, new Set(), device, p)))]));
  const row = {
    model: file,
    input: [1, 3, size, size],
    file_bytes: statSync(join(root, file)).size,
    stored_as: graph.inputs[0]!.type,
    parameters: [...graph.initializers.values()].reduce((a, t) => a + sizeOf(t.dims), 0),
    memory,
    weights_f16_over_f32: memory.f16!.weight_bytes / memory.f32!.weight_bytes,
  };
  results.push(row);
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  console.log(
    `${file} at ${size}x${size}: file ${mb(row.file_bytes)} MB; weights ${mb(memory.f32!.weight_bytes)} MB at f32, ${mb(memory.f16!.weight_bytes)} MB at f16 (${row.weights_f16_over_f32.toFixed(3)})`,
  );
}
const out = { date: new Date().toISOString(), adapter: gpu.description, models: results };
writeFileSync(join(root, 'bench/results/weights.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log('wrote bench/results/weights.json');
process.exit(0);
