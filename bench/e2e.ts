/**
 * End-to-end latency of one model: segscope on the WebGPU adapter Dawn finds,
 * against onnxruntime-node's CPU provider and its WebGPU provider on the same
 * machine, in the same run. Each onnxruntime provider runs in a child process
 * (src/cli/ort.ts) so that its own Dawn never shares a process with ours.
 *
 *   node --import tsx bench/e2e.ts MODEL [--size 513 | --size 1024x2048] [--runs 3] [--ort cpu,webgpu] [--precision f32,f16]
 *
 * --ort cpu leaves out onnxruntime's WebGPU provider (minutes per run on a
 * software adapter at 1024x2048). segscope runs at each --precision; at f16
 * its logits are also compared with the f32 run's (relative L2, and how many
 * pixels keep their arg-max class). Writes
 * bench/results/e2e-<model>-<size>.json and prints Markdown rows.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { pseudoRandom, timeOrt, type OrtProvider } from '../src/cli/ort.js';
import { openDawn } from '../src/gpu/dawn.js';
import { readModelFile } from '../src/io/model-file.js';
import type { Graph, HostTensor } from '../src/model/graph.js';
import { parseHW, parsePrecision } from '../src/cli/args.js';
import { argmaxAgreement, relativeL2 } from '../src/metrics/agreement.js';
import type { Precision } from '../src/model/precision.js';
import { flopsByNode, planMemory } from '../src/runtime/profile.js';
import { timeRuns, timeStats } from '../src/runtime/timing.js';
import { Session } from '../src/runtime/session.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    size: { type: 'string', default: '513' },
    runs: { type: 'string', default: '3' },
    ort: { type: 'string', default: 'cpu,webgpu' },
    precision: { type: 'string', default: 'f32,f16' },
  },
});
const modelPath = positionals[0];
if (!modelPath) throw new Error('usage: bench/e2e.ts MODEL [--size N | HxW] [--runs N] [--ort cpu,webgpu] [--precision f32,f16]');
const [height, width] = values.size.includes('x') ? parseHW('--size', values.size) : [Number(values.size), Number(values.size)];
const size = height === width ? `${height}` : `${height}x${width}`;
const runs = Number(values.runs);
const dims = [1, 3, height, width];
const providers = values.ort.split(',') as OrtProvider[];
const precisions = values.precision.split(',').map(parsePrecision);

interface Timing {
  provider: string;
  loadMs: number;
  runMs: number[];
  medianMs: number;
}

async function timeSegscope(
  graph: Graph,
  loadMs: number,
  precision: Precision,
): Promise<
  Timing & { adapter: string; compileMs: number; gflopsPerS: number; activationBytes: number; liveSetBytes: number; gpuBytes: number; output: Float32Array }
> {
  const gpu = await openDawn();
  const t0 = performance.now();
  const session = await Session.create(gpu, graph, { inputShapes: { [graph.inputs[0]!.name]: dims }, precision });
  const compileMs = performance.now() - t0;
  const x: HostTensor = { type: 'float32', dims, data: pseudoRandom(dims.reduce((a, b) => a * b, 1)) };
  let out: HostTensor | undefined;
  const runMs = await timeRuns(
    async () => {
      out = (await session.run(x)).outputs.get(session.outputNames[0]!)!;
    },
    runs,
    1,
  );
  const memory = planMemory(await session.plan());
  const flops = [...flopsByNode(session).values()].reduce((a, b) => a + b, 0);
  const medianMs = timeStats(runMs).median;
  return {
    provider: `segscope ${precision}`,
    adapter: gpu.description,
    loadMs,
    compileMs,
    runMs,
    medianMs,
    gflopsPerS: flops / medianMs / 1e6,
    activationBytes: memory.activationBytes,
    liveSetBytes: memory.liveBytes,
    gpuBytes: memory.totalBytes,
    output: out!.data as Float32Array,
  };
}

// Read once: onnxruntime's children need the input's name, segscope the graph (its load time is part of its figures).
const loadStart = performance.now();
const graph = await readModelFile(modelPath);
const loadMs = performance.now() - loadStart;
const inputName = graph.inputs[0]!.name;
const dir = mkdtempSync(join(tmpdir(), 'segscope-bench-'));
const ortRun = async (provider: OrtProvider): Promise<Timing & { output: Float32Array }> => {
  const outputFile = join(dir, `${provider}.f32`);
  // The first run includes shader compilation on the WebGPU provider: a warm-up.
  const t = await timeOrt({ model: modelPath, provider, shapes: { [inputName]: dims }, runs, warmup: 1, outputFile });
  const bytes = readFileSync(outputFile);
  const output = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return { provider: `onnxruntime ${provider}`, loadMs: t.loadMs, runMs: t.runMs, medianMs: timeStats(t.runMs).median, output };
};
const cpu = await ortRun('cpu');
// A provider that cannot run here (no adapter for onnxruntime's own Dawn) is recorded, not fatal: segscope's figures still stand.
let webgpuError: string | undefined;
const webgpu = providers.includes('webgpu')
  ? await ortRun('webgpu').catch((e: Error) => {
      webgpuError = e.message;
      return undefined;
    })
  : undefined;
const ours = new Map<Precision, Awaited<ReturnType<typeof timeSegscope>>>();
for (const precision of precisions) ours.set(precision, await timeSegscope(graph, loadMs, precision));
rmSync(dir, { recursive: true, force: true });
const f32 = ours.get('f32');
const f16 = ours.get('f16');
const accuracy = (output: Float32Array, reference: Float32Array) => ({
  relL2: relativeL2(output, reference),
  argmaxAgreement: argmaxAgreement(output, reference, [1, reference.length / (height * width), height, width]),
});
const result = {
  model: basename(modelPath),
  input: dims,
  date: new Date().toISOString(),
  adapter: [...ours.values()][0]!.adapter,
  ...(f32 ? { segscope: { ...f32, output: undefined, relL2VsOrtCpu: relativeL2(f32.output, cpu.output) } } : {}),
  ...(f16
    ? {
        segscopeF16: {
          ...f16,
          output: undefined,
          relL2VsOrtCpu: relativeL2(f16.output, cpu.output),
          vsOrtCpu: accuracy(f16.output, cpu.output),
          ...(f32 ? { vsF32: accuracy(f16.output, f32.output), speedupOverF32: f32.medianMs / f16.medianMs } : {}),
        },
      }
    : {}),
  ortCpu: { ...cpu, output: undefined },
  ...(webgpu ? { ortWebgpu: { ...webgpu, output: undefined, relL2VsOrtCpu: relativeL2(webgpu.output, cpu.output) } } : {}),
  ...(webgpuError ? { ortWebgpu: { error: webgpuError } } : {}),
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', `e2e-${basename(modelPath, '.onnx')}-${size}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
console.log(`| model | input | segscope | onnxruntime CPU | onnxruntime WebGPU | segscope / ORT WebGPU | segscope / ORT CPU |`);
console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
for (const [precision, t] of ours) {
  console.log(
    `| ${result.model} | ${dims.join('x')} | ${s(t.medianMs)} (${precision}) | ${s(cpu.medianMs)} | ${webgpu ? s(webgpu.medianMs) : webgpuError ? 'failed' : 'not run'} | ${webgpu ? `${(t.medianMs / webgpu.medianMs).toFixed(2)}x` : '-'} | ${(t.medianMs / cpu.medianMs).toFixed(1)}x |`,
  );
}
for (const [precision, t] of ours) {
  console.log(
    `segscope ${precision} vs ORT CPU relL2 (all logits): ${relativeL2(t.output, cpu.output).toExponential(2)}; ${t.gflopsPerS.toFixed(1)} GFLOP/s; compile ${s(t.compileMs)}; ` +
      `activation buffers ${mib(t.activationBytes)} (live set ${mib(t.liveSetBytes)}), GPU memory with weights ${mib(t.gpuBytes)}`,
  );
}
if (result.segscopeF16?.vsF32) {
  const { relL2, argmaxAgreement } = result.segscopeF16.vsF32;
  console.log(`f16 vs f32: logits relL2 ${relL2.toExponential(2)}, arg-max class kept at ${(100 * argmaxAgreement).toFixed(3)}% of pixels`);
}
if (webgpuError) console.log(`onnxruntime WebGPU failed: ${webgpuError}`);
console.log(`wrote ${file}`);
