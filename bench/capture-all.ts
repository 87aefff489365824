/**
 * Capturing every tensor of a model at once: does it run, and what memory
 * does it take? The cost should be what the captured tensors need and no
 * more: the planned buffers against the sum of the captured tensors' sizes.
 *
 *   node --import tsx bench/capture-all.ts MODEL [--size 513]
 *
 * Writes bench/results/capture-all-<model>-<size>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDawn } from '../src/gpu/dawn.js';
import { readModelFile } from '../src/io/model-file.js';
import { planMemory } from '../src/runtime/profile.js';
import { Session } from '../src/runtime/session.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { size: { type: 'string', default: '513' } } });
const modelPath = positionals[0];
if (!modelPath) throw new Error('usage: bench/capture-all.ts MODEL [--size N]');
const size = Number(values.size);
const dims = [1, 3, size, size];

const gpu = await openDawn();
const graph = await readModelFile(modelPath);
const session = await Session.create(gpu, graph, { inputShapes: { [graph.inputs[0]!.name]: dims } });
const lean = planMemory(await session.plan());
const x = { type: 'float32' as const, dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i)) };

const t0 = performance.now();
const { captured } = await session.run(x, { capture: ['*'] });
const t1 = performance.now();
const all = planMemory(await session.plan(['*']));
const tensors = [...captured.values()].filter((t) => t.buffer);
const capturedBytes = tensors.reduce((a, t) => a + t.size * 4, 0);
const largest = Math.max(...tensors.map((t) => t.size * 4));
const result = {
  model: basename(modelPath),
  input: dims,
  adapter: gpu.description,
  capturedTensors: tensors.length,
  capturedBytes,
  largestTensorBytes: largest,
  plannedBytesCapturingAll: all.activationBytes,
  plannedBytesCapturingNothing: lean.activationBytes,
  liveSetBytesCapturingNothing: lean.liveBytes,
  firstRunMs: Math.round(t1 - t0),
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', `capture-all-${basename(modelPath, '.onnx')}-${size}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
console.log(
  `${result.model} at ${dims.join('x')}: ${tensors.length} tensors captured, ${mib(capturedBytes)} of captured values; ` +
    `planned buffers ${mib(all.activationBytes)} capturing all vs ${mib(lean.activationBytes)} capturing nothing (live set ${mib(lean.liveBytes)}); first run with captures ${(result.firstRunMs / 1000).toFixed(1)} s (includes building the capture program)`,
);
session.destroy();
