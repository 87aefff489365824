/**
 * The adapter's roofline: its sustained float32 FMA throughput (the best of
 * a few register-only WGSL kernels: vector width 1 or 4, 4/8/16 independent
 * accumulators, workgroups of 64 or 256) and its memory bandwidth (a
 * streaming vec4 copy between two 64 MiB buffers), in GFLOP/s and GB/s, and
 * what a dispatch costs before any work (one workgroup of 64 invocations
 * storing one value each: the wall time of 110 such dispatches in one pass
 * less that of 10, over 100), which on lavapipe is the thread pool's wake-up
 * and wait, and grows with the thread count.
 *
 *   node --import tsx bench/roofline.ts [--threads 1,2,4,8,16]
 *
 * The thread counts measured by default are those, and the count segscope
 * sets on this machine (gpu/dawn.ts), which bench/ops.ts reads the row of.
 *
 * Mesa's lavapipe reads LP_NUM_THREADS when its Vulkan device is created, so
 * each thread count is measured in a child process of this file (--child)
 * with that variable set. Other drivers ignore it: there the rows differ
 * only by noise. Each dispatch is timed by timestamp queries where the
 * device has them (src/gpu/timestamps.ts), else by the wall time of
 * submit + onSubmittedWorkDone. Writes bench/results/roofline.json and
 * prints a table.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LAVAPIPE_THREADS_PER_CPU, openDawn } from '../src/gpu/dawn.js';
import type { Gpu } from '../src/gpu/device.js';
import { hasTimestamps, recordTimed, type Dispatch } from '../src/gpu/timestamps.js';
import { timeStats } from '../src/runtime/timing.js';
import { parsePositive } from '../src/cli/args.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: [...new Set([1, 2, 4, 8, 16, LAVAPIPE_THREADS_PER_CPU * availableParallelism()])].sort((a, b) => a - b).join(',') },
    child: { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
  },
});
const runs = parsePositive('--runs', values.runs);

/** Target GPU time of one FMA dispatch, ms: long enough to be sustained, short enough for 12 configurations. */
const TARGET_MS = 150;
/** Invocations of every FMA dispatch: many workgroups per thread at any thread count. */
const INVOCATIONS = 32768;
/** Each buffer of the copy, bytes. */
const COPY_BYTES = 64 * 2 ** 20;
/** FMAs per accumulator per loop trip (the body is unrolled this many times). */
const UNROLL = 4;

interface FmaConfig {
  width: 1 | 4;
  accumulators: number;
  workgroupSize: number;
}
interface FmaResult extends FmaConfig {
  iterations: number;
  ms: number;
  gflopsPerS: number;
  /** From the median wall time (submit to completion) instead of the GPU time. */
  gflopsPerSWall: number;
}
interface CopyResult {
  vec4PerInvocation: number;
  workgroupSize: number;
  ms: number;
  gbPerS: number;
}
interface ChildResult {
  threads: number;
  adapter: string;
  timer: 'timestamp-query' | 'wall';
  fma: FmaResult[];
  copy: CopyResult[];
  dispatchMs: number;
}

/** Dispatches in the two passes whose wall times are subtracted. */
const FEW_DISPATCHES = 10;
const MANY_DISPATCHES = 110;

function fmaShader({ width, accumulators, workgroupSize }: FmaConfig): string {
  const t = width === 1 ? 'f32' : 'vec4<f32>';
  const init = [...Array(accumulators).keys()].map((k) => `  var a${k} = ${t}(seed + ${k}.0);`).join('\n');
  const body = [...Array(UNROLL)].map(() => [...Array(accumulators).keys()].map((k) => `    a${k} = fma(a${k}, m, c);`).join('\n')).join('\n');
  const sum = [...Array(accumulators).keys()].map((k) => `a${k}`).join(' + ');
  return `
struct Params { iterations: u32, m: f32, c: f32, pad: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let seed = f32(g.x) * 1e-6;
  let m = ${t}(p.m);
  let c = ${t}(p.c);
${init}
  for (var i = 0u; i < p.iterations; i++) {
${body}
  }
  let s = ${sum};
  out[g.x] = ${width === 1 ? 's' : 's.x + s.y + s.z + s.w'};
}`;
}

function copyShader(vec4PerInvocation: number, workgroupSize: number): string {
  // Grid-stride: invocation i copies i, i + N, i + 2N… so each step of a workgroup touches consecutive vec4s.
  return `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let stride = n.x * ${workgroupSize}u;
  for (var k = 0u; k < ${vec4PerInvocation}u; k++) {
    let i = g.x + k * stride;
    dst[i] = src[i];
  }
}`;
}

/** Wall time of the last timeDispatch, ms: submit to the timestamps read back (a cross-check of the GPU time). */
let lastWallMs = 0;

/** GPU time of one dispatch, ms: its timestamps where the device has them, else wall time to completion. */
async function timeDispatch(gpu: Gpu, dispatch: Dispatch): Promise<number> {
  const { device } = gpu;
  const encoder = device.createCommandEncoder();
  if (hasTimestamps(gpu)) {
    const timed = recordTimed(gpu, encoder, [dispatch]);
    const t0 = performance.now();
    device.queue.submit([encoder.finish()]);
    const [ns] = await timed.read();
    lastWallMs = performance.now() - t0;
    if (ns! > 0) return ns! / 1e6;
    // A clock that went backwards: fall through to wall time.
  }
  const pass = device.createCommandEncoder();
  const p = pass.beginComputePass();
  p.setPipeline(dispatch.pipeline);
  p.setBindGroup(0, dispatch.bindGroup);
  p.dispatchWorkgroups(...dispatch.workgroups);
  p.end();
  const t0 = performance.now();
  device.queue.submit([pass.finish()]);
  await device.queue.onSubmittedWorkDone();
  lastWallMs = performance.now() - t0;
  return lastWallMs;
}

async function measureFma(gpu: Gpu, config: FmaConfig): Promise<FmaResult> {
  const { device } = gpu;
  const module = device.createShaderModule({ code: fmaShader(config) });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const out = device.createBuffer({ size: INVOCATIONS * 4, usage: GPUBufferUsage.STORAGE });
  const params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: out } },
      { binding: 1, resource: { buffer: params } },
    ],
  });
  const dispatch: Dispatch = { pipeline, bindGroup, workgroups: [INVOCATIONS / config.workgroupSize, 1, 1] };
  const setIterations = (n: number) => {
    const data = new ArrayBuffer(16);
    new Uint32Array(data, 0, 1)[0] = n;
    new Float32Array(data, 4, 2).set([0.999, 1e-3]);
    device.queue.writeBuffer(params, 0, data);
  };
  // Warm up (lavapipe compiles a pipeline at its first dispatch), then scale a short dispatch to TARGET_MS.
  let iterations = 64;
  setIterations(iterations);
  await timeDispatch(gpu, dispatch);
  let ms = await timeDispatch(gpu, dispatch);
  for (let k = 0; k < 3 && ms < TARGET_MS / 4; k++) {
    iterations = Math.max(iterations + 1, Math.round((iterations * TARGET_MS) / Math.max(ms, 0.5)));
    setIterations(iterations);
    ms = await timeDispatch(gpu, dispatch);
  }
  const times: number[] = [];
  const walls: number[] = [];
  for (let r = 0; r < runs; r++) {
    times.push(await timeDispatch(gpu, dispatch));
    walls.push(lastWallMs);
  }
  const median = timeStats(times).median;
  out.destroy();
  params.destroy();
  const flops = INVOCATIONS * iterations * UNROLL * config.accumulators * config.width * 2;
  return { ...config, iterations, ms: median, gflopsPerS: flops / median / 1e6, gflopsPerSWall: flops / timeStats(walls).median / 1e6 };
}

async function measureCopy(gpu: Gpu): Promise<CopyResult[]> {
  const { device } = gpu;
  const src = device.createBuffer({ size: COPY_BYTES, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const dst = device.createBuffer({ size: COPY_BYTES, usage: GPUBufferUsage.STORAGE });
  // Touch the source so that no page is first faulted in by a timed dispatch.
  device.queue.writeBuffer(src, 0, new Float32Array(COPY_BYTES / 4).fill(1));
  const vec4s = COPY_BYTES / 16;
  const results: CopyResult[] = [];
  for (const [vec4PerInvocation, workgroupSize] of [
    [1, 256],
    [4, 64],
    [16, 256],
  ] as const) {
    const module = device.createShaderModule({ code: copyShader(vec4PerInvocation, workgroupSize) });
    const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: src } },
        { binding: 1, resource: { buffer: dst } },
      ],
    });
    const dispatch: Dispatch = { pipeline, bindGroup, workgroups: [vec4s / vec4PerInvocation / workgroupSize, 1, 1] };
    await timeDispatch(gpu, dispatch); // warm-up: first touch of the destination
    const times: number[] = [];
    for (let r = 0; r < Math.max(runs, 5); r++) times.push(await timeDispatch(gpu, dispatch));
    const ms = timeStats(times).median;
    results.push({ vec4PerInvocation, workgroupSize, ms, gbPerS: (2 * COPY_BYTES) / ms / 1e6 });
  }
  src.destroy();
  dst.destroy();
  return results;
}

/** Cost of one tiny dispatch, ms (see the header): median over 5 pairs of passes. */
async function measureDispatch(gpu: Gpu): Promise<number> {
  const { device } = gpu;
  const module = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) { out[g.x] = f32(g.x); }`,
  });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const out = device.createBuffer({ size: 64 * 4, usage: GPUBufferUsage.STORAGE });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] });
  const pass = async (dispatches: number) => {
    const encoder = device.createCommandEncoder();
    const p = encoder.beginComputePass();
    p.setPipeline(pipeline);
    p.setBindGroup(0, bindGroup);
    for (let k = 0; k < dispatches; k++) p.dispatchWorkgroups(1);
    p.end();
    const t0 = performance.now();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await pass(FEW_DISPATCHES);
  const each: number[] = [];
  for (let r = 0; r < 5; r++) each.push(((await pass(MANY_DISPATCHES)) - (await pass(FEW_DISPATCHES))) / (MANY_DISPATCHES - FEW_DISPATCHES));
  out.destroy();
  return timeStats(each).median;
}

async function child(): Promise<void> {
  const gpu = await openDawn();
  const fma: FmaResult[] = [];
  for (const width of [1, 4] as const)
    for (const accumulators of [4, 8, 16]) for (const workgroupSize of [64, 256]) fma.push(await measureFma(gpu, { width, accumulators, workgroupSize }));
  const copy = await measureCopy(gpu);
  const dispatchMs = await measureDispatch(gpu);
  const result: ChildResult = {
    threads: Number(process.env.LP_NUM_THREADS),
    adapter: gpu.description,
    timer: hasTimestamps(gpu) ? 'timestamp-query' : 'wall',
    fma,
    copy,
    dispatchMs,
  };
  gpu.device.destroy();
  console.log(`ROOFLINE ${JSON.stringify(result)}`);
}

async function parent(): Promise<void> {
  const threadCounts = values.threads.split(',').map(Number);
  const rows = [];
  for (const threads of threadCounts) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', '--runs', String(runs)], {
      env: { ...process.env, LP_NUM_THREADS: String(threads) },
      encoding: 'utf8',
      maxBuffer: 2 ** 26,
    });
    const line = r.stdout.split('\n').find((l) => l.startsWith('ROOFLINE '));
    if (r.status !== 0 || !line) throw new Error(`LP_NUM_THREADS=${threads}: child failed (${r.status}):\n${r.stderr}`);
    const result = JSON.parse(line.slice('ROOFLINE '.length)) as ChildResult;
    const best = result.fma.reduce((a, b) => (b.gflopsPerS > a.gflopsPerS ? b : a));
    const bestCopy = result.copy.reduce((a, b) => (b.gbPerS > a.gbPerS ? b : a));
    rows.push({ ...result, best, bestCopy, gflopsPerS: best.gflopsPerS, gbPerS: bestCopy.gbPerS });
    console.error(
      `LP_NUM_THREADS=${threads}: ${best.gflopsPerS.toFixed(1)} GFLOP/s, ${bestCopy.gbPerS.toFixed(1)} GB/s, ${(result.dispatchMs * 1000).toFixed(0)} us a dispatch (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    );
  }
  const winner = rows.reduce((a, b) => (b.gflopsPerS > a.gflopsPerS ? b : a));
  const bandwidthWinner = rows.reduce((a, b) => (b.gbPerS > a.gbPerS ? b : a));
  const out = {
    date: new Date().toISOString(),
    cpus: cpus().length,
    adapter: rows[0]!.adapter,
    timer: rows[0]!.timer,
    method: {
      fma: `${INVOCATIONS} invocations, each fma(a, m, c) on independent accumulators (${UNROLL}x unrolled loop), 2 FLOPs per lane per FMA; ~${TARGET_MS} ms per dispatch; median of ${runs}`,
      copy: `vec4 copy between two ${COPY_BYTES / 2 ** 20} MiB buffers; bytes read + written; median of ${Math.max(runs, 5)}`,
      dispatch: `wall time of ${MANY_DISPATCHES} one-workgroup dispatches in one pass less that of ${FEW_DISPATCHES}, over ${MANY_DISPATCHES - FEW_DISPATCHES}; median of 5`,
    },
    winner: { threads: winner.threads, gflopsPerS: winner.gflopsPerS, gbPerS: winner.gbPerS },
    bandwidthWinner: { threads: bandwidthWinner.threads, gbPerS: bandwidthWinner.gbPerS },
    byThreads: rows.map(({ threads, best, bestCopy, fma, copy, dispatchMs }) => ({ threads, best, bestCopy, dispatchMs, fma, copy })),
  };
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  const file = join(import.meta.dirname, 'results', 'roofline.json');
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`${out.adapter}, ${out.cpus} CPUs, timed by ${out.timer}`);
  console.log('| LP_NUM_THREADS | FMA GFLOP/s | (by wall time) | best kernel | copy GB/s | best copy | ms a dispatch |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.threads} | ${r.gflopsPerS.toFixed(1)} | ${r.best.gflopsPerSWall.toFixed(1)} | ${r.best.width === 1 ? 'f32' : 'vec4'}, ${r.best.accumulators} acc, wg ${r.best.workgroupSize} | ${r.gbPerS.toFixed(1)} | ${r.bestCopy.vec4PerInvocation} vec4/inv, wg ${r.bestCopy.workgroupSize} | ${r.dispatchMs.toFixed(3)} |`,
    );
  console.log(
    `winner: LP_NUM_THREADS=${winner.threads} (${winner.gflopsPerS.toFixed(1)} GFLOP/s); best bandwidth at ${bandwidthWinner.threads} (${bandwidthWinner.gbPerS.toFixed(1)} GB/s)`,
  );
  console.log(`wrote ${file}`);
}

await (values.child ? child() : parent());
