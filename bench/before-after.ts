/**
 * A change measured against the commit before it: `segscope bench --json`
 * of each model from two checkouts, interleaved (before, after, before, …)
 * so that a shared machine's drift falls on both. Per run: the end-to-end
 * median, the session build, the planned memory, and the kernel time of
 * the nodes of each kind (the label of a node's first kernel up to its
 * first digit or '_': conv, winograd, depthwise, narrow, resize, …) and of
 * the nodes whose names contain a --nodes string.
 *
 *   git worktree add /tmp/before <commit>
 *   node --import tsx bench/before-after.ts --before /tmp/before \
 *     --model big/deeplabv3plus_r101_os16.onnx --model test/fixtures/tv_lraspp.onnx \
 *     [--size 513x513] [--rounds 2] [--runs 3] [--nodes convs.2/,/Resize] [--out NAME]
 *
 * The after checkout is this one. Model paths are relative to it. Writes
 * bench/results/NAME.json (default before-after.json) and prints a line per run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePositive } from '../src/cli/args.js';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    model: { type: 'string', multiple: true, default: [] },
    size: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    nodes: { type: 'string', default: '' },
    out: { type: 'string', default: 'before-after' },
  },
});
const [rounds, runs] = [parsePositive('--rounds', values.rounds!), parsePositive('--runs', values.runs!)];
if (!values.before) throw new Error('--before DIR: the checkout of the commit before the change (git worktree add DIR COMMIT)');
if (!values.model!.length) throw new Error('--model FILE: at least one model');
if (!/^[\w.-]+$/.test(values.out!)) throw new Error(`--out '${values.out}': expected a file name without a folder`);

const after = resolve(import.meta.dirname, '..');
const checkouts = { before: resolve(values.before), after };
const commit = (dir: string) => execFileSync('git', ['-C', dir, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim().slice(0, 100);
const nodes = values.nodes!.split(',').filter(Boolean);

interface BenchJson {
  adapter: string;
  median_ms: number;
  build_ms: number;
  memory?: { activation_bytes: number; weight_bytes: number };
  top?: { node: string; kernels?: string[]; ms: number }[];
}

/** The kind of a kernel label: conv1x1 -> conv, winograd4x4_gemm -> winograd, resize_linear_… -> resize. */
const kind = (label: string) => label.match(/^[A-Za-z]+/)?.[0] ?? label;

function bench(dir: string, model: string) {
  const args = ['--import', 'tsx', join(dir, 'src/cli/main.ts'), 'bench', resolve(after, model), '--json', '--top', '1000', '--runs', String(runs)];
  if (values.size) args.push('--size', values.size);
  const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${dir}: segscope bench ${model} failed (${r.status}):\n${r.stderr}`);
  const j = JSON.parse(r.stdout) as BenchJson;
  const kernels: Record<string, number> = {};
  for (const n of j.top ?? []) {
    const first = n.kernels?.[0];
    if (first) kernels[kind(first)] = (kernels[kind(first)] ?? 0) + n.ms;
  }
  const named = Object.fromEntries(nodes.map((s) => [s, (j.top ?? []).filter((n) => n.node.includes(s)).reduce((t, n) => t + n.ms, 0)]));
  return {
    adapter: j.adapter,
    median_ms: j.median_ms,
    build_ms: j.build_ms,
    activation_bytes: j.memory?.activation_bytes,
    weight_bytes: j.memory?.weight_bytes,
    kernel_ms_by_kind: Object.fromEntries(Object.entries(kernels).map(([k, v]) => [k, Math.round(v * 10) / 10])),
    kernel_ms_of_nodes: Object.fromEntries(Object.entries(named).map(([k, v]) => [k, Math.round(v * 10) / 10])),
  };
}

const results: { round: number; model: string; checkout: 'before' | 'after'; result: ReturnType<typeof bench> }[] = [];
for (let round = 1; round <= rounds; round++)
  for (const model of values.model!)
    for (const checkout of ['before', 'after'] as const) {
      const result = bench(checkouts[checkout], model);
      results.push({ round, model, checkout, result });
      const kinds = Object.entries(result.kernel_ms_by_kind)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      console.log(
        `round ${round} ${checkout.padEnd(6)} ${model}: ${result.median_ms.toFixed(0)} ms (build ${result.build_ms.toFixed(0)} ms); kernels: ${kinds}`,
      );
    }

const file = join(after, 'bench/results', `${values.out}.json`);
writeFileSync(
  file,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      adapter: results[0]?.result.adapter,
      cpus: cpus().length,
      lp_num_threads: process.env.LP_NUM_THREADS ?? 'segscope default',
      method: `segscope bench MODEL --json --runs ${runs}${values.size ? ` --size ${values.size}` : ''} from each checkout, before and after interleaved, ${rounds} round(s); kernel times are timestamp queries, one pass per kernel`,
      before: commit(checkouts.before),
      after: commit(after),
      results,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${file}`);
