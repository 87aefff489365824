/**
 * End-to-end latency of one model: segscope on the WebGPU adapter Dawn finds,
 * against onnxruntime-node's CPU provider and its WebGPU provider on the same
 * machine, in the same run. Each onnxruntime provider runs in a child process
 * (src/cli/ort.ts) so that its own Dawn never shares a process with ours.
 *
 *   node --import tsx bench/e2e.ts MODEL [--size 513 | --size 1024x2048] [--runs 3] [--ort cpu,webgpu]
 *
 * --ort cpu leaves out onnxruntime's WebGPU provider (minutes per run on a
 * software adapter at 1024x2048). Writes bench/results/e2e-<model>-<size>.json
 * and prints a Markdown row.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { pseudoRandom, timeOrt, type OrtProvider } from '../src/cli/ort.js';
import { openDawn } from '../src/gpu/dawn.js';
import { readModelFile } from '../src/io/model-file.js';
import type { Graph, HostTensor } from '../src/model/graph.js';
import { parseHW } from '../src/cli/args.js';
import { flopsByNode, planMemory } from '../src/runtime/profile.js';
import { timeRuns, timeStats } from '../src/runtime/timing.js';
import { Session } from '../src/runtime/session.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    size: { type: 'string', default: '513' },
    runs: { type: 'string', default: '3' },
    ort: { type: 'string', default: 'cpu,webgpu' },
  },
});
const modelPath = positionals[0];
if (!modelPath) throw new Error('usage: bench/e2e.ts MODEL [--size N | HxW] [--runs N] [--ort cpu,webgpu]');
const [height, width] = values.size.includes('x') ? parseHW('--size', values.size) : [Number(values.size), Number(values.size)];
const size = height === width ? `${height}` : `${height}x${width}`;
const runs = Number(values.runs);
const dims = [1, 3, height, width];
const providers = values.ort.split(',') as OrtProvider[];

interface Timing {
  provider: string;
  loadMs: number;
  runMs: number[];
  medianMs: number;
}

async function timeSegscope(
  graph: Graph,
  loadMs: number,
): Promise<Timing & { adapter: string; compileMs: number; gflopsPerS: number; activationBytes: number; liveSetBytes: number; gpuBytes: number; output: Float32Array }> {
  const gpu = await openDawn();
  const t0 = performance.now();
  const session = await Session.create(gpu, graph, { inputShapes: { [graph.inputs[0]!.name]: dims } });
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
    provider: 'segscope',
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

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return a.length === b.length ? Math.sqrt(num / den) : NaN;
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
const webgpu = providers.includes('webgpu') ? await ortRun('webgpu') : undefined;
const ours = await timeSegscope(graph, loadMs);
rmSync(dir, { recursive: true, force: true });
const result = {
  model: basename(modelPath),
  input: dims,
  date: new Date().toISOString(),
  adapter: ours.adapter,
  segscope: { ...ours, output: undefined, relL2VsOrtCpu: relL2(ours.output, cpu.output) },
  ortCpu: { ...cpu, output: undefined },
  ...(webgpu ? { ortWebgpu: { ...webgpu, output: undefined, relL2VsOrtCpu: relL2(webgpu.output, cpu.output) } } : {}),
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', `e2e-${basename(modelPath, '.onnx')}-${size}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log(`| model | input | segscope | onnxruntime CPU | onnxruntime WebGPU | segscope / ORT WebGPU | segscope / ORT CPU |`);
console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
console.log(
  `| ${result.model} | ${dims.join('x')} | ${s(ours.medianMs)} | ${s(cpu.medianMs)} | ${webgpu ? s(webgpu.medianMs) : 'not run'} | ${webgpu ? `${(ours.medianMs / webgpu.medianMs).toFixed(2)}x` : '-'} | ${(ours.medianMs / cpu.medianMs).toFixed(1)}x |`,
);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
console.log(
  `segscope vs ORT CPU relL2 (all logits): ${result.segscope.relL2VsOrtCpu.toExponential(2)}; ${ours.gflopsPerS.toFixed(1)} GFLOP/s; compile ${s(ours.compileMs)}; ` +
    `activation buffers ${mib(ours.activationBytes)} (live set ${mib(ours.liveSetBytes)}), GPU memory with weights ${mib(ours.gpuBytes)}; wrote ${file}`,
);
