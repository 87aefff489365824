/**
 * Cold starts: how long a session takes to build (Session.create: plan,
 * upload, compile and warm every pipeline) in a fresh process whose Mesa
 * shader cache is empty (what a user pays for each new model and input
 * size), and again in a fresh process once that cache holds the model's
 * shaders; and, before it, reading the model file (readModelFile).
 *
 *   node --import tsx bench/cold-start.ts [--runs N]
 *
 * Each run is a child process of this file (--child) given its own
 * MESA_SHADER_CACHE_DIR: a new empty folder for the cold build, the same
 * folder for the warm one after it. On lavapipe nearly all of a cold build
 * is llvmpipe compiling each pipeline's code at its first dispatch, which
 * the session's warm-up does (runtime/program.ts). Models: the default one
 * at 257x257 and, where tools/export_fixtures.py --only big,big_r50 has made
 * them, ResNet-50 and ResNet-101 DeepLabv3+ at 513x513. Writes
 * bench/results/cold-start.json and prints a table.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDawn } from '../src/gpu/dawn.js';
import { readModelFile } from '../src/io/model-file.js';
import { timeStats } from '../src/runtime/timing.js';
import { Session } from '../src/runtime/session.js';
import { parsePositive } from '../src/cli/args.js';

const { values, positionals } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, child: { type: 'boolean', default: false } },
  allowPositionals: true,
});
const runs = parsePositive('--runs', values.runs);

const root = join(import.meta.dirname, '..');
const MODELS = [
  { name: 'the default model, 1x3x257x257', file: 'weights/deeplabv3plus_scenes.onnx', size: 257 },
  { name: 'DeepLabv3+ ResNet-50 OS16, 1x3x513x513', file: 'big/deeplabv3plus_r50_os16.onnx', size: 513 },
  { name: 'DeepLabv3+ ResNet-101 OS16, 1x3x513x513', file: 'big/deeplabv3plus_r101_os16.onnx', size: 513 },
];

interface Build {
  adapter: string;
  /** Opening the adapter and device. */
  openMs: number;
  /** readModelFile: the file read and decoded into a graph. */
  readMs: number;
  /** Session.create. */
  buildMs: number;
  pipelines: number;
}

async function child(file: string, size: number): Promise<void> {
  const t0 = performance.now();
  const gpu = await openDawn();
  const openMs = performance.now() - t0;
  const t1 = performance.now();
  const graph = await readModelFile(file);
  const readMs = performance.now() - t1;
  const t2 = performance.now();
  const session = await Session.create(gpu, graph, { inputShapes: { [graph.inputs[0]!.name]: [1, 3, size, size] } });
  const buildMs = performance.now() - t2;
  const pipelines = new Set((await session.plan()).kernels.map((k) => k.kernel.wgsl)).size;
  session.destroy();
  const build: Build = { adapter: gpu.description, openMs, readMs, buildMs, pipelines };
  console.log(`BUILD ${JSON.stringify(build)}`);
}

function build(file: string, size: number, cache: string): Build {
  const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', file, String(size)], {
    cwd: root,
    env: { ...process.env, MESA_SHADER_CACHE_DIR: cache },
    encoding: 'utf8',
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('BUILD '));
  if (r.status !== 0 || !line) throw new Error(`${file}: child failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(line.slice('BUILD '.length)) as Build;
}

async function parent(): Promise<void> {
  const rows = [];
  for (const model of MODELS.filter((m) => existsSync(join(root, m.file)))) {
    const cold: Build[] = [];
    const warm: Build[] = [];
    for (let r = 0; r < runs; r++) {
      const cache = mkdtempSync(join(tmpdir(), 'segscope-mesa-cache-'));
      try {
        cold.push(build(model.file, model.size, cache));
        warm.push(build(model.file, model.size, cache));
      } finally {
        rmSync(cache, { recursive: true, force: true });
      }
    }
    const median = (b: Build[], key: 'buildMs' | 'readMs' = 'buildMs') => timeStats(b.map((x) => x[key])).median;
    const row = {
      ...model,
      pipelines: cold[0]!.pipelines,
      read_ms: median([...cold, ...warm], 'readMs'),
      cold_ms: median(cold),
      warm_ms: median(warm),
      cold,
      warm,
    };
    rows.push(row);
    console.error(
      `${model.name}: read ${(row.read_ms / 1000).toFixed(2)} s; ${row.pipelines} pipelines, cold ${(row.cold_ms / 1000).toFixed(1)} s, warm ${(row.warm_ms / 1000).toFixed(2)} s`,
    );
  }
  const out = {
    date: new Date().toISOString(),
    adapter: rows[0]?.cold[0]?.adapter,
    runs,
    lp_num_threads: process.env.LP_NUM_THREADS ?? 'segscope default',
    models: rows,
  };
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(join(import.meta.dirname, 'results', 'cold-start.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`Session build on ${out.adapter}; median of ${runs} fresh processes each (${out.date}).\n`);
  console.log('| model, input | reading the file | distinct pipelines | cold Mesa shader cache | warm |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.name} | ${(r.read_ms / 1000).toFixed(2)} s | ${r.pipelines} | ${(r.cold_ms / 1000).toFixed(1)} s | ${(r.warm_ms / 1000).toFixed(2)} s |`,
    );
}

await (values.child ? child(positionals[0]!, Number(positionals[1])) : parent());
