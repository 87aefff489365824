/**
 * What capturing other layers costs after the first run: a session plans,
 * compiles and uploads a program per set of captured tensors (the
 * explorer's layer changes, `segscope vis` over several layers), so a run
 * with a new capture set pays for that program on top of the run. Measured
 * for two checkouts, interleaved (before, after, before, …), each run in a
 * fresh process of its checkout:
 * - build: Session.create (plan, pack and upload the weights, compile);
 * - run: the first run, capturing nothing;
 * - new captures: each run capturing the output of one more ReLU, at four
 *   depths of the model (a new program every time), and its extra cost over
 *   the plain run's time;
 * - seen captures: the last set again (its program is kept);
 * - the process's resident and ArrayBuffer memory after the build and after
 *   the last run (what the session holds on the host).
 *
 *   git worktree add /tmp/before <commit>
 *   node --import tsx bench/recapture.ts --before /tmp/before \
 *     --model big/deeplabv3plus_r101_os16.onnx [--model …] --size 513 [--rounds 2] [--out NAME]
 *
 * Model paths are relative to this checkout. Writes bench/results/NAME.json
 * (default recapture.json) and prints a line per run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parsePositive } from '../src/cli/args.js';

const { values, positionals } = parseArgs({
  options: {
    before: { type: 'string' },
    model: { type: 'string', multiple: true, default: [] },
    size: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    out: { type: 'string', default: 'recapture' },
    child: { type: 'string' },
  },
  allowPositionals: true,
});

/** Depths, as fractions of the model's ReLUs, whose outputs the new capture sets add one by one. */
const DEPTHS = [0.1, 0.3, 0.5, 0.7];

interface Measured {
  build_ms: number;
  run_ms: number;
  new_capture_ms: number[];
  seen_capture_ms: number;
  rss_after_build_mb: number;
  array_buffers_after_build_mb: number;
  rss_after_mb: number;
  array_buffers_after_mb: number;
}

/** In a child process: the measurements of one model on the checkout `dir`. */
async function child(dir: string, model: string, size: number): Promise<void> {
  const load = <T>(path: string) => import(pathToFileURL(join(dir, path)).href) as Promise<T>;
  const { openDawn } = await load<typeof import('../src/gpu/dawn.js')>('src/gpu/dawn.ts');
  const { readModelFile } = await load<typeof import('../src/io/model-file.js')>('src/io/model-file.ts');
  const { Session } = await load<typeof import('../src/runtime/session.js')>('src/runtime/session.ts');
  const gpu = await openDawn();
  const graph = await readModelFile(model);
  const input = graph.inputs[0]!;
  const dims = [1, 3, size, size];
  const megabytes = () => {
    const m = process.memoryUsage();
    return { rss: m.rss / 1e6, arrayBuffers: m.arrayBuffers / 1e6 };
  };
  let t = performance.now();
  const session = await Session.create(gpu, graph, { inputShapes: { [input.name]: dims } });
  const build_ms = performance.now() - t;
  const built = megabytes();
  const x = { type: 'float32' as const, dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.25) };
  t = performance.now();
  await session.run(x);
  const run_ms = performance.now() - t;
  const relus = session.typed.graph.nodes.filter((n) => n.opType === 'Relu').map((n) => n.outputs[0]!);
  const captures: string[] = [];
  const new_capture_ms: number[] = [];
  for (const depth of DEPTHS) {
    captures.push(relus[Math.floor(depth * relus.length)]!);
    t = performance.now();
    await session.run(x, { capture: [...captures] });
    new_capture_ms.push(performance.now() - t);
  }
  t = performance.now();
  await session.run(x, { capture: [...captures] });
  const seen_capture_ms = performance.now() - t;
  const after = megabytes();
  session.destroy();
  const measured: Measured = {
    build_ms,
    run_ms,
    new_capture_ms,
    seen_capture_ms,
    rss_after_build_mb: built.rss,
    array_buffers_after_build_mb: built.arrayBuffers,
    rss_after_mb: after.rss,
    array_buffers_after_mb: after.arrayBuffers,
  };
  console.log(`MEASURED ${JSON.stringify(measured)}`);
  process.exit(0);
}

function measure(dir: string, model: string): Measured {
  const args = ['--import', 'tsx', import.meta.filename, '--child', dir, resolve(model), '--size', values.size!];
  const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 26 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('MEASURED '));
  if (r.status !== 0 || !line) throw new Error(`${dir}: ${model} failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(line.slice('MEASURED '.length)) as Measured;
}

if (values.child) {
  await child(values.child, positionals[0]!, parsePositive('--size', values.size!));
} else {
  if (!values.before) throw new Error('--before DIR: the checkout to compare with (git worktree add DIR COMMIT)');
  if (!values.model!.length) throw new Error('--model FILE: at least one model');
  if (!values.size) throw new Error('--size N: the input size (N x N)');
  if (!/^[\w.-]+$/.test(values.out!)) throw new Error(`--out '${values.out}': expected a file name without a folder`);
  const rounds = parsePositive('--rounds', values.rounds!);
  const checkouts = { before: resolve(values.before), after: resolve(import.meta.dirname, '..') };
  const commit = (dir: string) => execFileSync('git', ['-C', dir, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim().slice(0, 100);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const runs: ({ model: string; round: number; checkout: string; at: string } & Measured)[] = [];
  for (const model of values.model!)
    for (let round = 1; round <= rounds; round++)
      for (const [checkout, dir] of Object.entries(checkouts)) {
        const at = new Date().toISOString();
        const m = measure(dir, model);
        runs.push({ model, round, checkout, at, ...m });
        const extra = median(m.new_capture_ms) - m.run_ms;
        console.log(
          `${model} round ${round} ${checkout}: build ${m.build_ms.toFixed(0)} ms, run ${m.run_ms.toFixed(0)} ms, new captures ${m.new_capture_ms.map((v) => v.toFixed(0)).join('/')} ms (median +${extra.toFixed(0)} ms over the run), seen ${m.seen_capture_ms.toFixed(0)} ms; host memory after build ${m.rss_after_build_mb.toFixed(0)} MB resident, ${m.array_buffers_after_build_mb.toFixed(0)} MB ArrayBuffers`,
        );
      }
  const out = {
    date: new Date().toISOString(),
    cpus: cpus().length,
    lp_num_threads: process.env.LP_NUM_THREADS ?? 'segscope default',
    before: commit(checkouts.before),
    after: commit(checkouts.after),
    size: Number(values.size),
    depths: DEPTHS,
    runs,
  };
  const file = join(import.meta.dirname, 'results', `${values.out}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote ${file}`);
}
