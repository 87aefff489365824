/**
 * End-to-end latency of one model: segscope on the WebGPU adapter Dawn finds,
 * against onnxruntime-node's CPU provider and its WebGPU provider on the same
 * machine, in the same run. Each onnxruntime provider runs in a child process
 * so that its own Dawn never shares a process with ours.
 *
 *   node --import tsx bench/e2e.ts MODEL [--size 513] [--runs 3]
 *
 * Writes bench/results/e2e-<model>.json and prints a Markdown row.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDawn } from '../src/gpu/dawn.js';
import { readModelFile } from '../src/io/model-file.js';
import type { HostTensor } from '../src/model/graph.js';
import { Session } from '../src/runtime/session.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    size: { type: 'string', default: '513' },
    runs: { type: 'string', default: '3' },
    ort: { type: 'string' },
    out: { type: 'string' },
  },
});
const modelPath = positionals[0];
if (!modelPath) throw new Error('usage: bench/e2e.ts MODEL [--size N] [--runs N]');
const size = Number(values.size);
const runs = Number(values.runs);
const dims = [1, 3, size, size];

/** The same pseudo-random input in every process. */
function input(): Float32Array {
  const x = new Float32Array(dims.reduce((a, b) => a * b, 1));
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = s / 2 ** 32 - 0.5;
  }
  return x;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Timing {
  provider: string;
  loadMs: number;
  runMs: number[];
  medianMs: number;
}

async function timeOrt(provider: string): Promise<Timing> {
  const ort = await import('onnxruntime-node');
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(modelPath!, { executionProviders: [provider] });
  const loadMs = performance.now() - t0;
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input(), dims) };
  const runMs: number[] = [];
  let out: Float32Array | undefined;
  for (let i = 0; i < runs + 1; i++) {
    const t = performance.now();
    const result = await session.run(feeds);
    // The first run includes shader compilation on the WebGPU provider: a warm-up.
    if (i > 0) runMs.push(performance.now() - t);
    out = (await result[session.outputNames[0]!]!.getData()) as Float32Array;
  }
  // The whole first output goes through a file, for the accuracy check in the parent.
  if (values.out) writeFileSync(values.out, out!);
  return { provider: `onnxruntime ${provider}`, loadMs, runMs, medianMs: median(runMs) };
}

async function timeSegscope(): Promise<Timing & { adapter: string; compileMs: number; activationBytes: number; output: Float32Array }> {
  const gpu = await openDawn();
  const t0 = performance.now();
  const graph = await readModelFile(modelPath!);
  const loadMs = performance.now() - t0;
  const session = await Session.create(gpu, graph, { inputShapes: { [graph.inputs[0]!.name]: dims } });
  const compileMs = performance.now() - t0 - loadMs;
  const x: HostTensor = { type: 'float32', dims, data: input() };
  const runMs: number[] = [];
  let out: HostTensor | undefined;
  for (let i = 0; i < runs + 1; i++) {
    const t = performance.now();
    out = (await session.run(x)).outputs.get(session.outputNames[0]!)!;
    if (i > 0) runMs.push(performance.now() - t);
  }
  return {
    provider: 'segscope',
    adapter: gpu.description,
    loadMs,
    compileMs,
    runMs,
    medianMs: median(runMs),
    activationBytes: (await session.plan()).slotBytes.reduce((a, b) => a + b, 0),
    output: out!.data as Float32Array,
  };
}

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return a.length === b.length ? Math.sqrt(num / den) : NaN;
}

if (values.ort) {
  console.log(JSON.stringify(await timeOrt(values.ort)));
} else {
  const dir = mkdtempSync(join(tmpdir(), 'segscope-bench-'));
  const ortRun = (provider: string): Timing & { output: Float32Array } => {
    const out = join(dir, `${provider}.f32`);
    const args = [import.meta.filename, modelPath, '--size', String(size), '--runs', String(runs), '--ort', provider, '--out', out];
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const bytes = readFileSync(out);
    return { ...(JSON.parse(stdout.trim().split('\n').pop()!) as Timing), output: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
  };
  const cpu = ortRun('cpu');
  const webgpu = ortRun('webgpu');
  const ours = await timeSegscope();
  rmSync(dir, { recursive: true, force: true });
  const result = {
    model: basename(modelPath),
    input: dims,
    date: new Date().toISOString(),
    adapter: ours.adapter,
    segscope: { ...ours, output: undefined, relL2VsOrtCpu: relL2(ours.output, cpu.output) },
    ortCpu: { ...cpu, output: undefined },
    ortWebgpu: { ...webgpu, output: undefined, relL2VsOrtCpu: relL2(webgpu.output, cpu.output) },
  };
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  const file = join(import.meta.dirname, 'results', `e2e-${basename(modelPath, '.onnx')}-${size}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`| model | input | segscope | onnxruntime CPU | onnxruntime WebGPU | segscope / ORT WebGPU | segscope / ORT CPU |`);
  console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
  console.log(
    `| ${result.model} | ${dims.join('x')} | ${s(ours.medianMs)} | ${s(cpu.medianMs)} | ${s(webgpu.medianMs)} | ${(ours.medianMs / webgpu.medianMs).toFixed(2)}x | ${(ours.medianMs / cpu.medianMs).toFixed(1)}x |`,
  );
  console.log(`segscope vs ORT CPU relL2 (all logits): ${result.segscope.relL2VsOrtCpu.toExponential(2)}; compile ${s(ours.compileMs)}; activation buffers ${(ours.activationBytes / 2 ** 20).toFixed(0)} MiB; wrote ${file}`);
}
