/**
 * Seeded loader fuzzer (issue #8): corrupts the fixture models
 * (test/helpers/mutate.ts), loads each case from bytes as `readModelFile`
 * does, plans a session and runs some on the GPU. Every case must end in a
 * typed error or a run, within the bounds of BOUNDS, and a run must give
 * onnxruntime's outputs where onnxruntime runs the same bytes (runs it
 * refuses are counted apart). Exits with 1 when any case failed.
 *
 *   node --import tsx bench/fuzz.ts [--cases 10000] [--seed 1] [--batch 1000] [--gpu-every 100]
 *   node --import tsx bench/fuzz.ts --replay SEED
 *
 * Cases run in child processes, a batch each, so a crash (V8 fatal error,
 * abort, segfault) or a hang ends one worker, not the run: the case that was
 * in progress is reported as a failure with its seed and the batch goes on
 * in a fresh worker. The GPU is slow on lavapipe (a session compiles ~100
 * shaders), so a worker runs a planned case when its plan (kernels, shapes,
 * buffer sizes) is one it has not run yet, and otherwise every
 * `--gpu-every`th planned case. Writes bench/results/fuzz.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDawn } from '../src/gpu/dawn.js';
import { BOUNDS, describeFailure, makeCase, MUTATION_KINDS, planKey, runCase, workspace, type CaseResult } from '../test/helpers/mutate.js';
import { REFERENCE_TIMEOUT_MS } from '../test/helpers/reference.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    batch: { type: 'string', default: '1000' },
    'gpu-every': { type: 'string', default: '4' },
    replay: { type: 'string' },
    worker: { type: 'boolean', default: false },
    from: { type: 'string' },
    to: { type: 'string' },
  },
});
const baseSeed = Number(values.seed);
const gpuEvery = Number(values['gpu-every']);
/** Case i of a run has seed base + i: `--replay` needs nothing else. */
const seedOf = (index: number): number => (baseSeed + index) >>> 0;
/** A worker silent this long is hung: the GPU bound and onnxruntime's, plus margin for a slow start. */
const HANG_MS = BOUNDS.gpuMs + REFERENCE_TIMEOUT_MS + 20_000;

/** What a worker reports per case. */
interface Report {
  index: number;
  kind: string;
  fixture: string;
  makeMs: number;
  result: CaseResult;
  line?: string;
}

if (values.replay !== undefined) process.exitCode = await replay(Number(values.replay));
else if (values.worker) await worker(Number(values.from), Number(values.to));
else process.exitCode = await main(Number(values.cases), Number(values.batch));
process.exit();

/** Runs one case on the GPU whatever its plan; 1 when it fails. */
async function replay(seed: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'segscope-fuzz-'));
  const c = makeCase(seed);
  const ws = workspace(await openDawn(), dir);
  const result = await runCase(ws, c, () => true);
  ws.reference.close();
  rmSync(dir, { recursive: true });
  console.log(JSON.stringify({ seed, fixture: c.fixture.file, kind: c.kind, detail: c.detail, ...result }, null, 2));
  if (!result.failure) return 0;
  console.log(`FAIL ${describeFailure(c, result)}`);
  return 1;
}

/** Runs cases [from, to) and reports each to the parent; the parent tracks progress by index. */
async function worker(from: number, to: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'segscope-fuzz-'));
  const ws = workspace(await openDawn(), dir);
  const ran = new Set<string>();
  let planned = 0;
  for (let index = from; index < to; index++) {
    const t0 = performance.now();
    const c = makeCase(seedOf(index));
    const makeMs = performance.now() - t0;
    const result = await runCase(ws, c, (plan) => {
      const key = planKey(plan);
      const run = !ran.has(key) || planned++ % gpuEvery === 0;
      ran.add(key);
      return run;
    });
    const report: Report = { index, kind: c.kind, fixture: c.fixture.file, makeMs, result };
    if (result.failure) report.line = describeFailure(c, result);
    await new Promise((done) => process.send!(report, done));
  }
  ws.reference.close();
  rmSync(dir, { recursive: true });
  await new Promise((done) => process.send!({ peakRssBytes: process.resourceUsage().maxRSS * 1024 }, done));
}

interface Failure {
  seed: number;
  what: string;
}

/** Runs the cases and writes the summary; 1 when any case failed. */
async function main(cases: number, batch: number): Promise<number> {
  const reports: Report[] = [];
  const failures: Failure[] = [];
  let crashes = 0;
  let peakRssBytes = 0;
  const t0 = performance.now();
  for (let next = 0; next < cases; ) {
    const to = Math.min(next + batch, cases);
    const end = await runWorker(next, to, (r) => {
      reports.push(r);
      if (r.line) {
        failures.push({ seed: seedOf(r.index), what: r.line });
        console.log(`FAIL ${r.line}`);
      }
    });
    peakRssBytes = Math.max(peakRssBytes, end.peakRssBytes ?? 0);
    if (end.crashed !== undefined) {
      // The case in progress took the worker down: report it and go on after it.
      const what = `seed ${seedOf(end.crashed)} (${describeSeed(end.crashed)}): worker ${end.why}`;
      failures.push({ seed: seedOf(end.crashed), what });
      crashes++;
      console.log(`FAIL ${what}`);
      next = end.crashed + 1;
    } else {
      next = to;
    }
    console.log(`${next}/${cases} cases, ${failures.length} failures, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const summary = summarize(reports, failures, crashes, peakRssBytes, performance.now() - t0);
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(join(import.meta.dirname, 'results/fuzz.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(JSON.stringify({ ...summary, byKind: undefined, failures: summary.failures.length }, null, 2));
  if (!failures.length) return 0;
  console.log(`${failures.length} FAILED: ${JSON.stringify(summary.failureClasses)}; each is a FAIL line above and in bench/results/fuzz.json`);
  return 1;
}

/** Rebuilding a case in the parent is cheap and names it without trusting the dead worker. */
function describeSeed(index: number): string {
  const c = makeCase(seedOf(index));
  return `${c.fixture.file}, ${c.kind}: ${c.detail}`;
}

interface WorkerEnd {
  /** Index of the case in progress when the worker died or hung. */
  crashed?: number;
  why?: string;
  peakRssBytes?: number;
}

function runWorker(from: number, to: number, onReport: (r: Report) => void): Promise<WorkerEnd> {
  return new Promise((resolve) => {
    const args = ['--worker', '--from', String(from), '--to', String(to), '--seed', String(baseSeed), '--gpu-every', String(gpuEvery)];
    const child: ChildProcess = fork(import.meta.filename, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let inProgress = from;
    let peakRssBytes: number | undefined;
    let hung = false;
    let watchdog = setTimeout(() => kill(), HANG_MS);
    const kill = () => {
      hung = true;
      child.kill('SIGKILL');
    };
    child.on('message', (m: Report | { peakRssBytes: number }) => {
      clearTimeout(watchdog);
      watchdog = setTimeout(kill, HANG_MS);
      if ('peakRssBytes' in m) peakRssBytes = m.peakRssBytes;
      else {
        onReport(m);
        inProgress = m.index + 1;
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      if (inProgress >= to && code === 0) return resolve({ peakRssBytes });
      const why = hung ? `hung (no report for ${HANG_MS / 1000} s)` : `exited with ${signal ?? `code ${code}`}: ${lastLines(stderr)}`;
      resolve({ crashed: inProgress, why, peakRssBytes });
    });
  });
}

/** A declaration, not a const: main runs at the top-level await above, before a const here would be set. */
function lastLines(text: string): string {
  return text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('Warning:') && !/^\s*\d+: 0x/.test(l))
    .slice(0, 6)
    .join(' | ');
}

function quantiles(xs: number[]): { median: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  const round = (x: number) => Math.round(x * 10) / 10;
  return { median: round(at(0.5)), p99: round(at(0.99)), max: round(s[s.length - 1] ?? 0) };
}

/** The three worst cases by `measure`, to replay. */
function top(reports: Report[], measure: (r: Report) => number) {
  return [...reports]
    .sort((a, b) => measure(b) - measure(a))
    .slice(0, 3)
    .map((r) => ({ seed: seedOf(r.index), fixture: r.fixture, kind: r.kind, stage: r.result.stage, value: Math.round(measure(r)) }));
}

function refusalsByKind(refused: Report[]) {
  const out: Record<string, { count: number; examples: { seed: number; fixture: string; why: string }[] }> = {};
  for (const r of refused) {
    out[r.kind] ??= { count: 0, examples: [] };
    const entry = out[r.kind]!;
    entry.count++;
    // The file's path is a scratch folder's: the fixture names it.
    const why = r.result.referenceDetail!.replace(/^Load model from \S+ failed:/, '').slice(0, 200);
    if (entry.examples.length < 2) entry.examples.push({ seed: seedOf(r.index), fixture: r.fixture, why });
  }
  return out;
}

function summarize(reports: Report[], failures: Failure[], crashes: number, peakRssBytes: number, wallMs: number) {
  const count = (pick: (r: Report) => string) => {
    const out: Record<string, number> = {};
    for (const r of reports) out[pick(r)] = (out[pick(r)] ?? 0) + 1;
    return out;
  };
  const gpuCases = reports.filter((r) => r.result.stage === 'gpu');
  return {
    date: new Date().toISOString(),
    seed: baseSeed,
    cases: reports.length + crashes,
    crashesAndHangs: crashes,
    wallSeconds: Math.round(wallMs / 1000),
    bounds: BOUNDS,
    failures,
    failureClasses: {
      untypedError: reports.filter((r) => r.result.outcome === 'fail').length,
      differsFromOnnxruntime: reports.filter((r) => r.result.reference === 'mismatch').length,
      boundBroken: reports.filter((r) => r.result.failure && r.result.outcome !== 'fail' && r.result.reference !== 'mismatch').length,
      crashOrHang: crashes,
    },
    outcomes: count((r) => (r.result.failure ? 'fail' : r.result.outcome)),
    errorClasses: count((r) => (r.result.outcome === 'typed' ? r.result.error!.split(':')[0]! : r.result.outcome)),
    stages: count((r) => `${r.result.outcome}@${r.result.stage}`),
    gpu: {
      reached: gpuCases.length,
      ran: gpuCases.filter((r) => r.result.outcome === 'ran').length,
      ranFinite: gpuCases.filter((r) => r.result.finite).length,
      // NaN or infinities in segscope's outputs: equal to onnxruntime's (at the same places), or unjudged where it refuses.
      ranNotFinite: gpuCases
        .filter((r) => r.result.outcome === 'ran' && !r.result.finite)
        .map((r) => ({ seed: seedOf(r.index), fixture: r.fixture, kind: r.kind, onnxruntime: r.result.reference })),
      // Every run is judged by onnxruntime on the same bytes and input (test/helpers/mutate.ts outputDifference).
      ranEqualToOnnxruntime: gpuCases.filter((r) => r.result.reference === 'equal').length,
      ranOnnxruntimeRefuses: gpuCases.filter((r) => r.result.reference === 'refused').length,
      ranDifferentFromOnnxruntime: gpuCases.filter((r) => r.result.reference === 'mismatch').length,
      // Allowed: segscope may run a model onnxruntime refuses. By mutation kind, with two to replay.
      onnxruntimeRefusals: refusalsByKind(gpuCases.filter((r) => r.result.reference === 'refused')),
      typedErrors: gpuCases.filter((r) => r.result.outcome === 'typed').length,
      plannedNotRun: count((r) => r.result.skipped ?? 'n/a'),
      // A model that plans but fails to compile or run: typed, yet worth a look.
      typedErrorCases: gpuCases
        .filter((r) => r.result.outcome === 'typed')
        .map((r) => ({ seed: seedOf(r.index), fixture: r.fixture, kind: r.kind, error: r.result.error!.slice(0, 300) })),
      note: `a planned case runs on the GPU when its plan is new to its worker, else every ${gpuEvery}th planned case does`,
    },
    byKind: Object.fromEntries(
      MUTATION_KINDS.map((kind) => [kind, count((r) => (r.kind === kind ? (r.result.failure ? 'fail' : r.result.outcome) : ''))]).map(([kind, c]) => [
        kind,
        Object.fromEntries(Object.entries(c as Record<string, number>).filter(([k]) => k)),
      ]),
    ),
    timingMs: {
      mutate: quantiles(reports.map((r) => r.makeMs)),
      loadAndPlan: quantiles(reports.map((r) => r.result.cpuMs)),
      gpuCompileAndRun: quantiles(gpuCases.map((r) => r.result.gpuMs)),
      onnxruntime: quantiles(gpuCases.flatMap((r) => r.result.referenceMs ?? [])),
      perCase: quantiles(reports.map((r) => r.makeMs + r.result.cpuMs + r.result.gpuMs)),
    },
    slowest: top(reports, (r) => r.result.cpuMs + r.result.gpuMs),
    memory: {
      peakRssMiB: Math.round(peakRssBytes / 2 ** 20),
      maxPeakRssGrowthPerCaseMiB: Math.round(Math.max(0, ...reports.map((r) => r.result.rssGrowthBytes)) / 2 ** 20),
      largestGrowth: top(reports, (r) => r.result.rssGrowthBytes / 2 ** 20),
    },
  };
}
