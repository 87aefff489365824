/**
 * The visualisation pipeline (featureMap: reduce, resize, normalise, colour,
 * read the picture back) against the model's own run time, on the same
 * WebGPU adapter (one Dawn device for both):
 *
 *   node --import tsx bench/vis.ts [--runs 5]
 *
 * Feature maps: [1,256,33,33] -> 513x513 (ASPP at 513) and [1,256,129,257] ->
 * 1024x2048 (Cityscapes-size), reduce-first and upsample-first, max and mean.
 * Models: test/fixtures/deeplabv3plus_os16.onnx and, when present,
 * big/deeplabv3plus_r101_os16.onnx, both at 1x3x513x513 (the big one run once
 * after a warm-up run: ~20 s each on a software adapter).
 *
 * Writes bench/results/vis-featuremap.json and prints a Markdown table.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Gpu } from '../src/gpu/device.js';
import { openDawn } from '../src/gpu/dawn.js';
import { readModelFile } from '../src/io/model-file.js';
import type { HostTensor } from '../src/model/graph.js';
import { Session } from '../src/runtime/session.js';
import { timeRuns, timeStats } from '../src/runtime/timing.js';
import { featureMap, uploadTensor, type ReductionOrder } from '../src/vis/index.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const root = join(import.meta.dirname, '..');
const MODELS = [
  { path: join(root, 'test/fixtures/deeplabv3plus_os16.onnx'), runs },
  { path: join(root, 'big/deeplabv3plus_r101_os16.onnx'), runs: 1 },
];
const CASES: { dims: [number, number, number, number]; size: [number, number] }[] = [
  { dims: [1, 256, 33, 33], size: [513, 513] },
  { dims: [1, 256, 129, 257], size: [1024, 2048] },
];
const ORDERS: ReductionOrder[] = ['reduce-first', 'upsample-first'];
const REDUCTIONS = ['max', 'mean'] as const;

/** Deterministic pseudo-random values in [-0.5, 0.5). */
function pseudoRandom(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = s / 2 ** 32 - 0.5;
  }
  return x;
}

interface ModelTiming {
  model: string;
  input: number[];
  compileMs: number;
  runMs: number[];
  medianMs: number;
}

async function timeModel(gpu: Gpu, path: string, n: number): Promise<ModelTiming> {
  const dims = [1, 3, 513, 513];
  const graph = await readModelFile(path);
  const t0 = performance.now();
  const session = await Session.create(gpu, graph, { inputShapes: { [graph.inputs[0]!.name]: dims } });
  const compileMs = performance.now() - t0;
  const x: HostTensor = { type: 'float32', dims, data: pseudoRandom(3 * 513 * 513, 12345) };
  try {
    const runMs = await timeRuns(() => session.run(x), n, 1);
    return { model: basename(path), input: dims, compileMs, runMs, medianMs: timeStats(runMs).median };
  } finally {
    session.destroy();
  }
}

interface PipelineTiming {
  input: number[];
  size: [number, number];
  order: ReductionOrder;
  reduce: string;
  runMs: number[];
  medianMs: number;
  fractionOfModelRun: Record<string, number>;
}

const gpu = await openDawn();
const pipelines: PipelineTiming[] = [];
for (const { dims, size } of CASES) {
  const t = uploadTensor(
    gpu,
    dims,
    pseudoRandom(
      dims.reduce((a, b) => a * b, 1),
      777,
    ),
  );
  for (const order of ORDERS) {
    for (const reduce of REDUCTIONS) {
      // The warm-up compiles the pipelines.
      const runMs = await timeRuns(() => featureMap(gpu, t, { reduce, order, size, colormap: 'jet' }), runs, 1);
      const medianMs = timeStats(runMs).median;
      pipelines.push({ input: dims, size, order, reduce, runMs, medianMs, fractionOfModelRun: {} });
      console.error(`featureMap [${dims.join(',')}] -> ${size.join('x')} ${order} ${reduce}: ${medianMs.toFixed(1)} ms`);
    }
  }
  t.buffer.destroy();
}

const models: ModelTiming[] = [];
const missing: string[] = [];
for (const m of MODELS) {
  if (!existsSync(m.path)) {
    missing.push(basename(m.path));
    console.error(`${m.path} is not present: skipped`);
    continue;
  }
  const timing = await timeModel(gpu, m.path, m.runs);
  models.push(timing);
  console.error(`model ${timing.model}: compile ${(timing.compileMs / 1000).toFixed(1)} s, run ${(timing.medianMs / 1000).toFixed(2)} s`);
}
for (const p of pipelines) for (const m of models) p.fractionOfModelRun[m.model] = p.medianMs / m.medianMs;

const result = {
  date: new Date().toISOString(),
  adapter: gpu.description,
  runs,
  models,
  missingModels: missing,
  pipelines,
  goal: 'pipeline < 5% of the model run',
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', 'vis-featuremap.json');
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

const pct = (f: number) => `${(100 * f).toFixed(f < 0.001 ? 3 : 2)}%`;
console.log(`Adapter: ${gpu.description}\n`);
console.log(`| model | input | compile | run (median) |`);
console.log(`| --- | --- | --- | --- |`);
for (const m of models)
  console.log(
    `| ${m.model} | ${m.input.join('x')} | ${(m.compileMs / 1000).toFixed(1)} s | ${(m.medianMs / 1000).toFixed(2)} s (${m.runMs.length} run${m.runMs.length > 1 ? 's' : ''}) |`,
  );
for (const name of missing) console.log(`| ${name} | - | not present: skipped | - |`);
console.log('');
console.log(`| feature map | output | order | reduce | featureMap (median of ${runs}) | ${models.map((m) => `% of ${m.model}`).join(' | ')} |`);
console.log(`| --- | --- | --- | --- | --- | ${models.map(() => '---').join(' | ')} |`);
for (const p of pipelines) {
  const fractions = models.map((m) => {
    const f = p.fractionOfModelRun[m.model]!;
    return `${pct(f)}${f < 0.05 ? '' : ' (over 5%)'}`;
  });
  console.log(`| [${p.input.join(',')}] | ${p.size.join('x')} | ${p.order} | ${p.reduce} | ${p.medianMs.toFixed(1)} ms | ${fractions.join(' | ')} |`);
}
console.log(`\nwrote ${file}`);
