/**
 * Long-run stability (issue #8): many consecutive runs of one session, with
 * and without capture, then many sessions created and destroyed. Samples
 * process memory and the live GPU buffers (counted by wrapping createBuffer,
 * test/helpers/buffers.ts) and fits the heap's slope after warm-up.
 *
 *   node --expose-gc --import tsx bench/long-run.ts [--runs 1000] [--sessions 50] [--every 50]
 *
 * With --expose-gc each sample follows a full GC, so the heap figures are
 * live data rather than garbage not yet collected. Writes
 * bench/results/long-run.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDawn } from '../src/gpu/dawn.js';
import { readModelFile } from '../src/io/model-file.js';
import { Session } from '../src/runtime/session.js';
import { countBuffers } from '../test/helpers/buffers.js';
import { randomTensor } from '../test/helpers/gpu.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    sessions: { type: 'string', default: '50' },
    every: { type: 'string', default: '50' },
  },
});
const runs = Number(values.runs);
const sessions = Number(values.sessions);
const every = Number(values.every);
/** Samples before this many runs are warm-up: programs compiled, V8 optimised, pools filled. */
const WARM_UP = 100;

const FIXTURE = join(import.meta.dirname, '../test/fixtures/deeplabv3plus_os16.onnx');
const DIMS = [1, 3, 65, 65];
const x = randomTensor(DIMS, 65, -2, 2);
const MiB = 2 ** 20;
const gc = (globalThis as { gc?: () => void }).gc;

const gpu = await openDawn();
const buffers = countBuffers(gpu.device);
const graph = await readModelFile(FIXTURE);

interface Sample {
  runs: number;
  heapUsedMiB: number;
  rssMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
  liveBuffers: number;
  liveBufferMiB: number;
  msPerRun: number;
}

function sample(done: number, msPerRun: number): Sample {
  gc?.();
  const m = process.memoryUsage();
  const mib = (n: number) => Math.round((n / MiB) * 100) / 100;
  return {
    runs: done,
    heapUsedMiB: mib(m.heapUsed),
    rssMiB: mib(m.rss),
    externalMiB: mib(m.external),
    arrayBuffersMiB: mib(m.arrayBuffers),
    liveBuffers: buffers.live(),
    liveBufferMiB: mib(buffers.liveBytes()),
    msPerRun: Math.round(msPerRun * 10) / 10,
  };
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  const sxy = xs.reduce((a, xi, i) => a + (xi - mx) * (ys[i]! - my), 0);
  const sxx = xs.reduce((a, xi) => a + (xi - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

/** `runs` runs of one session; `capture` also reads one captured tensor back per run. */
async function consecutiveRuns(capture: boolean) {
  const session = await Session.create(gpu, graph, { inputShapes: { input: DIMS } });
  const samples: Sample[] = [sample(0, 0)];
  let t0 = performance.now();
  for (let i = 1; i <= runs; i++) {
    if (capture) {
      const { captured } = await session.run(x, { capture: ['*'] });
      await [...captured.values()]
        .filter((t) => t.buffer)
        .at(-1)!
        .toHost();
    } else {
      await session.run(x);
    }
    if (i % every === 0) {
      samples.push(sample(i, (performance.now() - t0) / every));
      t0 = performance.now();
    }
  }
  session.destroy();
  const warm = samples.filter((s) => s.runs >= WARM_UP);
  const perRun = (key: keyof Sample) =>
    Math.round(
      slope(
        warm.map((s) => s.runs),
        warm.map((s) => s[key] * MiB),
      ),
    );
  const buffersAfterWarmUp = new Set(warm.map((s) => s.liveBuffers));
  return {
    capture,
    runs,
    heapSlopeBytesPerRun: perRun('heapUsedMiB'),
    rssSlopeBytesPerRun: perRun('rssMiB'),
    externalSlopeBytesPerRun: perRun('externalMiB'),
    liveBuffersFlat: buffersAfterWarmUp.size === 1,
    liveBuffersAfterDestroy: buffers.live(),
    samples,
  };
}

/** Sessions created, run once and destroyed: every buffer must come back. */
async function sessionChurn() {
  const before = buffers.live();
  const samples: Sample[] = [];
  const t0 = performance.now();
  for (let i = 1; i <= sessions; i++) {
    const session = await Session.create(gpu, graph, { inputShapes: { input: DIMS } });
    await session.run(x);
    session.destroy();
    if (i % 10 === 0) samples.push(sample(i, (performance.now() - t0) / i));
  }
  return {
    sessions,
    liveBuffersBefore: before,
    liveBuffersAfter: buffers.live(),
    buffersCreated: buffers.created(),
    heapSlopeBytesPerSession: Math.round(
      slope(
        samples.map((s) => s.runs),
        samples.map((s) => s.heapUsedMiB * MiB),
      ),
    ),
    rssSlopeBytesPerSession: Math.round(
      slope(
        samples.map((s) => s.runs),
        samples.map((s) => s.rssMiB * MiB),
      ),
    ),
    samples,
  };
}

const lean = await consecutiveRuns(false);
console.log(`lean: heap ${lean.heapSlopeBytesPerRun} B/run, buffers flat ${lean.liveBuffersFlat}`);
const captured = await consecutiveRuns(true);
console.log(`capture '*': heap ${captured.heapSlopeBytesPerRun} B/run, buffers flat ${captured.liveBuffersFlat}`);
const churn = await sessionChurn();
console.log(`${sessions} sessions: live buffers ${churn.liveBuffersBefore} → ${churn.liveBuffersAfter}`);

const result = {
  date: new Date().toISOString(),
  adapter: gpu.description,
  model: 'test/fixtures/deeplabv3plus_os16.onnx',
  input: DIMS,
  gcBeforeSample: gc !== undefined,
  warmUpRuns: WARM_UP,
  consecutive: [lean, captured],
  sessionChurn: churn,
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'results/long-run.json'), `${JSON.stringify(result, null, 2)}\n`);
gpu.device.destroy();
process.exit(0);
