/**
 * What a class-activation map costs over a plain forward pass: the forward
 * pass alone (Session.run) against GradientSession.run (forward, target seed
 * and backward in one submit) with respect to one layer at a time, on the
 * WebGPU adapter Dawn finds, in one process run.
 *
 *   node --import tsx bench/gradients.ts MODEL [--size 513 | --size HxW] [--runs 3] [--layer P ...] [--profile]
 *
 * Layers default to classifier.aspp.project and classifier.project (the
 * ASPP output and the decoder's low-level projection of DeepLabv3+).
 * - Forward: Session.run capturing the layers (kept on the GPU, as a vis run
 *   keeps them) and reading the logits back to the host, as
 *   GradientSession.run reads them for its target.
 * - Gradient, per layer: GradientSession.run with wrt that one layer, target
 *   the class the forward pass predicts on the most pixels, mask 'pred'; then
 *   the activation and its gradient read back to the host, as a CAM computed
 *   on the host needs them. The timed run includes that read-back; it is
 *   also reported on its own (readbackMs), so the GPU-resident figure is
 *   medianMs - median readback.
 * Each is timed by tinybench after one warm-up run (src/runtime/timing.ts).
 * The gradient's median is reported as a multiple of the forward's (the
 * target: at most 2.5x), with compile times and the GPU memory each program
 * plans. GradientSession does not expose its Session; its plan is read
 * through the private field, and skipped (null) when that is gone.
 *
 * When a gradient run exceeds 2.5x the forward (or with --profile), one
 * profiled run of each (Session.profile: one timed compute pass per kernel)
 * splits the gradient program's kernel time into the forward nodes and the
 * backward nodes ('segscope/grad/<node>/...') and lists the slowest nodes.
 *
 * Writes bench/results/gradients-<model>-<size>.json and prints Markdown rows.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseHW } from '../src/cli/args.js';
import { pseudoRandom } from '../src/cli/ort.js';
import { openDawn } from '../src/gpu/dawn.js';
import { hasTimestamps } from '../src/gpu/timestamps.js';
import { readModelFile } from '../src/io/model-file.js';
import type { HostTensor } from '../src/model/graph.js';
import { GradientSession } from '../src/runtime/gradients.js';
import { flopsByNode, type NodeProfile, type PlanMemory, planMemory, profileNodes } from '../src/runtime/profile.js';
import { Session } from '../src/runtime/session.js';
import { timeRuns, timeStats } from '../src/runtime/timing.js';

const TARGET_RATIO = 2.5;
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    size: { type: 'string', default: '513' },
    runs: { type: 'string', default: '3' },
    layer: { type: 'string', multiple: true, default: ['classifier.aspp.project', 'classifier.project'] },
    profile: { type: 'boolean', default: false },
  },
});
const modelPath = positionals[0];
if (!modelPath) throw new Error('usage: bench/gradients.ts MODEL [--size N | HxW] [--runs N] [--layer P ...] [--profile]');
const [height, width] = values.size.includes('x') ? parseHW('--size', values.size) : [Number(values.size), Number(values.size)];
const size = height === width ? `${height}` : `${height}x${width}`;
const runs = Number(values.runs);
const layers = values.layer;
const dims = [1, 3, height, width];

const gpu = await openDawn();
const graph = await readModelFile(modelPath);
const inputName = graph.inputs[0]!.name;
const x: HostTensor = { type: 'float32', dims, data: pseudoRandom(dims.reduce((a, b) => a * b, 1)) };
const sum = (xs: Iterable<number>) => [...xs].reduce((a, b) => a + b, 0);
const memoryOf = async (session: Session) => planMemory(await session.plan());

// Forward pass alone.
let t0 = performance.now();
const forward = await Session.create(gpu, graph, { inputShapes: { [inputName]: dims }, capture: layers });
const forwardCompileMs = performance.now() - t0;
const outputName = forward.outputNames[0]!;
let logits: HostTensor | undefined;
const forwardMs = await timeRuns(
  async () => {
    logits = (await forward.run(x)).outputs.get(outputName)!;
  },
  runs,
  1,
);
const forwardMedian = timeStats(forwardMs).median;
const forwardFlops = sum(flopsByNode(forward).values());
const forwardMemory = await memoryOf(forward);

// The target: the class predicted on the most pixels.
const [, K, H, W] = logits!.dims as [number, number, number, number];
const counts = new Array<number>(K).fill(0);
for (let p = 0; p < H * W; p++) {
  let best = 0;
  for (let c = 1; c < K; c++) if (logits!.data[c * H * W + p]! > logits!.data[best * H * W + p]!) best = c;
  counts[best]!++;
}
const classIndex = counts.indexOf(Math.max(...counts));

interface GradientTiming {
  layer: string;
  tensor: string;
  shape: number[];
  compileMs: number;
  runMs: number[];
  medianMs: number;
  /** Reading the activation and gradient back to the host, within each timed run. */
  readbackMs: number[];
  readbackMedianMs: number;
  ratioToForward: number;
  score: number;
  pixels: number;
  /** Arithmetic of the differentiated program (flopsByNode), against forwardFlops. */
  flops: number | null;
  memory: PlanMemory | null;
  profile?: ProfileSummary;
}

interface ProfileSummary {
  /** Summed kernel times of one profiled run (one compute pass per kernel, so above the run's own time). */
  forwardKernelMs: number;
  gradient: { totalMs: number; forwardNodesMs: number; backwardNodesMs: number; seedMs: number };
  /** Backward nodes' time by op type, slowest first. */
  backwardByOp: { opType: string; ms: number; nodes: number }[];
  slowest: NodeProfile[];
  forwardSlowest: NodeProfile[];
}

const isBackward = (node: string) => node.startsWith('segscope/');
let forwardProfile: NodeProfile[] | null | undefined;

async function profileGradient(g: GradientSession): Promise<ProfileSummary | undefined> {
  if (!hasTimestamps(gpu)) return undefined;
  forwardProfile ??= await profileNodes(forward, { [inputName]: x }, 1);
  const nodes = (await profileNodes(g.session, g.feeds(x, { classIndex, mask: 'pred' }), 1))!;
  const byOp = new Map<string, { ms: number; nodes: number }>();
  for (const n of nodes.filter((n) => isBackward(n.node))) {
    const row = byOp.get(n.opType) ?? { ms: 0, nodes: 0 };
    row.ms += n.ms;
    row.nodes++;
    byOp.set(n.opType, row);
  }
  const seed = nodes.filter((n) => n.opType.endsWith('SegmentationSeed'));
  return {
    forwardKernelMs: sum(forwardProfile!.map((n) => n.ms)),
    gradient: {
      totalMs: sum(nodes.map((n) => n.ms)),
      forwardNodesMs: sum(nodes.filter((n) => !isBackward(n.node)).map((n) => n.ms)),
      backwardNodesMs: sum(nodes.filter((n) => isBackward(n.node) && !seed.includes(n)).map((n) => n.ms)),
      seedMs: sum(seed.map((n) => n.ms)),
    },
    backwardByOp: [...byOp].map(([opType, r]) => ({ opType, ...r })).sort((a, b) => b.ms - a.ms),
    slowest: nodes.slice(0, 20),
    forwardSlowest: forwardProfile!.slice(0, 10),
  };
}

const gradients: GradientTiming[] = [];
for (const layer of layers) {
  t0 = performance.now();
  const g = await GradientSession.create(gpu, graph, { inputShapes: { [inputName]: dims }, wrt: [layer] });
  const compileMs = performance.now() - t0;
  const readbackMs: number[] = [];
  let score = 0;
  let pixels = 0;
  const runMs = await timeRuns(
    async () => {
      const result = await g.run(x, { classIndex, mask: 'pred' });
      const t = performance.now();
      for (const { activation, gradient } of result.tensors.values()) await Promise.all([activation.toHost(), gradient.toHost()]);
      readbackMs.push(performance.now() - t);
      ({ score, pixels } = result);
    },
    runs,
    1,
  );
  const timedReadback = readbackMs.slice(-runs);
  const medianMs = timeStats(runMs).median;
  let flops: number | null = null;
  try {
    flops = sum(flopsByNode(g.session).values());
  } catch {
    // summarize() may not know an internal op: no FLOP count then.
  }
  const timing: GradientTiming = {
    layer,
    tensor: g.wrt[0]!,
    shape: [...(g.typeOf(g.wrt[0]!)?.dims ?? [])],
    compileMs,
    runMs,
    medianMs,
    readbackMs: timedReadback,
    readbackMedianMs: timeStats(timedReadback).median,
    ratioToForward: medianMs / forwardMedian,
    score,
    pixels,
    flops,
    memory: await memoryOf(g.session),
  };
  if (values.profile || timing.ratioToForward > TARGET_RATIO) timing.profile = await profileGradient(g);
  gradients.push(timing);
  g.destroy();
}
forward.destroy();

const result = {
  model: basename(modelPath),
  input: dims,
  date: new Date().toISOString(),
  adapter: gpu.description,
  runs,
  targetRatio: TARGET_RATIO,
  target: { classIndex, mask: 'pred', pixels: counts[classIndex], classes: K },
  forward: {
    what: 'Session.run capturing the layers (on the GPU), logits read back to the host',
    compileMs: forwardCompileMs,
    runMs: forwardMs,
    medianMs: forwardMedian,
    flops: forwardFlops,
    gflopsPerS: forwardFlops / forwardMedian / 1e6,
    memory: forwardMemory,
  },
  gradients: gradients.map((t) => ({ what: 'GradientSession.run (logits read back by it), then activation and gradient read back to the host', ...t })),
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', `gradients-${basename(modelPath, '.onnx')}-${size}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v >= 100 ? 0 : 1)} ms`);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const mem = (m: PlanMemory | null) => (m ? `${mib(m.activationBytes)} (live ${mib(m.liveBytes)}), ${mib(m.totalBytes)} with weights` : 'not exposed');
console.log(`| model | input | run | median | x forward | compile | activations, GPU memory |`);
console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
console.log(`| ${result.model} | ${dims.join('x')} | forward | ${ms(forwardMedian)} | 1 | ${ms(forwardCompileMs)} | ${mem(forwardMemory)} |`);
for (const t of gradients) {
  const flag = t.ratioToForward <= TARGET_RATIO ? '' : ` (over ${TARGET_RATIO}x)`;
  console.log(
    `| ${result.model} | ${dims.join('x')} | gradient wrt ${t.layer} [${t.shape.join(',')}] | ${ms(t.medianMs)} (read-back ${ms(t.readbackMedianMs)}) | ${t.ratioToForward.toFixed(2)}x${flag} | ${ms(t.compileMs)} | ${mem(t.memory)} |`,
  );
}
console.log(`target: class ${classIndex}, predicted on ${counts[classIndex]} of ${H * W} pixels (mask 'pred')`);
for (const t of gradients) {
  if (t.flops) console.log(`${t.layer}: differentiated program ${(t.flops / 1e9).toFixed(1)} GFLOP against the forward's ${(forwardFlops / 1e9).toFixed(1)}`);
  const p = t.profile;
  if (!p) continue;
  const g = p.gradient;
  console.log(
    `\n${t.layer}, one profiled run (kernel time): forward program ${ms(p.forwardKernelMs)}; gradient program ${ms(g.totalMs)} = forward nodes ${ms(g.forwardNodesMs)} + seed ${ms(g.seedMs)} + backward nodes ${ms(g.backwardNodesMs)}`,
  );
  console.log(`backward by op: ${p.backwardByOp.map((o) => `${o.opType} ${ms(o.ms)} (${o.nodes})`).join(', ')}`);
  console.log(`| node | op | output | ms | share | GFLOP/s |`);
  console.log(`| --- | --- | --- | --- | --- | --- |`);
  for (const n of p.slowest.slice(0, 12)) {
    console.log(`| ${n.node} | ${n.opType} | ${n.outputShape.join('x')} | ${n.ms.toFixed(1)} | ${n.share.toFixed(1)}% | ${n.gflops.toFixed(1)} |`);
  }
}
console.log(`wrote ${file}`);
