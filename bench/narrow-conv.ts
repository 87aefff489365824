/**
 * Convs to one to four output channels, the heads of salient-object, matting
 * and binary-segmentation networks (U²-Net's 3x3 side outputs from 64
 * channels to 1 at 320x320, a 3x3 to 1 at 512x512, 1x1 mask heads, a
 * two-class classifier), each a one-node model with random weights, timed
 * as bench/ops.ts times DeepLab's ops: segscope's kernel time (timestamp
 * queries) and whole runs, onnxruntime-node CPU and WebGPU in child
 * processes. On CPU adapters these run on the narrow kernel
 * (src/ops/conv/narrow.ts).
 *
 *   node --import tsx bench/narrow-conv.ts [--runs N]
 *
 * Writes bench/results/narrow-conv.json and prints a table.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pseudoRandom, timeOrt, type OrtProvider } from '../src/cli/ort.js';
import { openDawn } from '../src/gpu/dawn.js';
import { hasTimestamps } from '../src/gpu/timestamps.js';
import { readModelFile } from '../src/io/model-file.js';
import { sizeOf } from '../src/model/graph.js';
import { encodeModel } from '../src/onnx/decode.js';
import { DataType } from '../src/onnx/schema.js';
import { timeRuns, timeStats } from '../src/runtime/timing.js';
import { Session } from '../src/runtime/session.js';
import { parsePositive } from '../src/cli/args.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = parsePositive('--runs', values.runs);

const CASES = [
  { name: 'conv3x3_64to1_512 (mask head)', x: [1, 64, 512, 512], w: [1, 64, 3, 3] },
  { name: 'conv3x3_64to1_320 (U²-Net side output)', x: [1, 64, 320, 320], w: [1, 64, 3, 3] },
  { name: 'conv1x1_64to1_512 (1x1 mask head)', x: [1, 64, 512, 512], w: [1, 64, 1, 1] },
  { name: 'conv3x3_32to2_256 (two-class head)', x: [1, 32, 256, 256], w: [2, 32, 3, 3] },
  { name: 'conv1x1_256to2_129 (two-class DeepLab classifier)', x: [1, 256, 129, 129], w: [2, 256, 1, 1] },
];

const tensorType = (dims: number[]) => ({ tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dim_value: d })) } } });

/** A model of one Conv with random weights and bias, "same" padding. */
function convModel(x: number[], w: number[]): Uint8Array {
  const pad = (w[2]! - 1) / 2;
  const y = [x[0]!, w[0]!, x[2]!, x[3]!];
  const random = (name: string, dims: number[]) => ({ name, dims, data_type: DataType.FLOAT, raw_data: new Uint8Array(pseudoRandom(sizeOf(dims)).buffer) });
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'conv',
      node: [{ name: 'conv', op_type: 'Conv', input: ['x', 'w', 'b'], output: ['y'], attribute: [{ name: 'pads', type: 7, ints: [pad, pad, pad, pad] }] }],
      initializer: [random('w', w), random('b', [w[0]!])],
      input: [{ name: 'x', type: tensorType(x) }],
      output: [{ name: 'y', type: tensorType(y) }],
    },
  });
}

type Peer = { ms: number } | { error: string };
async function timePeer(provider: OrtProvider, model: string, x: number[]): Promise<Peer> {
  try {
    return { ms: timeStats((await timeOrt({ model, provider, shapes: { x }, runs, warmup: 1 })).runMs).median };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

const gpu = await openDawn();
if (!hasTimestamps(gpu)) throw new Error(`${gpu.description} has no 'timestamp-query' feature: bench/narrow-conv.ts reports GPU time`);
const dir = mkdtempSync(join(tmpdir(), 'segscope-narrow-'));
const results = [];
for (const c of CASES) {
  const file = join(dir, 'conv.onnx');
  writeFileSync(file, convModel(c.x, c.w));
  const session = await Session.create(gpu, await readModelFile(file), {});
  const feeds = { x: { type: 'float32' as const, dims: c.x, data: pseudoRandom(sizeOf(c.x)) } };
  const wallMs = await timeRuns(() => session.run(feeds), runs, 1);
  const gpuMs: number[] = [];
  for (let r = 0; r < runs; r++) gpuMs.push((await session.profile(feeds)).kernels.reduce((a, k) => a + k.ms, 0));
  session.destroy();
  const flops = 2 * sizeOf(c.w) * c.x[2]! * c.x[3]!;
  const ours = { gpu_ms: timeStats(gpuMs).median, ms: timeStats(wallMs).median };
  const [cpu, webgpu] = [await timePeer('cpu', file, c.x), await timePeer('webgpu', file, c.x)];
  const ratio = (p: Peer) => ('error' in p ? null : ours.ms / p.ms);
  results.push({
    ...c,
    flops,
    segscope: { ...ours, gflops_per_s: flops / ours.gpu_ms / 1e6 },
    ort_cpu: cpu,
    ort_webgpu: webgpu,
    ratio_vs_ort_cpu: ratio(cpu),
    ratio_vs_ort_webgpu: ratio(webgpu),
  });
  console.error(`${c.name}: ${ours.gpu_ms.toFixed(1)} ms GPU, ${ours.ms.toFixed(1)} ms run`);
}
rmSync(dir, { recursive: true, force: true });

const summary = { date: new Date().toISOString(), adapter: gpu.description, runs, cases: results };
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'results', 'narrow-conv.json'), `${JSON.stringify(summary, null, 2)}\n`);
const ms = (p: Peer) => ('error' in p ? 'failed' : p.ms.toFixed(1));
const x = (r: number | null) => (r === null ? '' : `${r.toFixed(2)}x`);
console.log(`Narrow convs on ${gpu.description}; median of ${runs} runs (${summary.date}).\n`);
console.log('| case | GFLOP | segscope GPU ms | GFLOP/s | segscope ms | ORT CPU ms | ORT WebGPU ms | vs CPU | vs WebGPU |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of results)
  console.log(
    `| ${r.name} | ${(r.flops / 1e9).toFixed(3)} | ${r.segscope.gpu_ms.toFixed(1)} | ${r.segscope.gflops_per_s.toFixed(2)} | ${r.segscope.ms.toFixed(1)} | ${ms(r.ort_cpu)} | ${ms(r.ort_webgpu)} | ${x(r.ratio_vs_ort_cpu)} | ${x(r.ratio_vs_ort_webgpu)} |`,
  );
