/**
 * Op-level benchmarks: every distinct convolution of DeepLabv3+ ResNet-101
 * OS16 at 513x513 (stem, bottleneck 1x1s and 3x3s at dilation 1 and 2,
 * strided ones, ASPP at dilations 6/12/18, ASPP and image-pooling 1x1s, the
 * projection, the decoder, the classifier), and its Resize, Concat, MaxPool,
 * GlobalAveragePool and Add+Relu, each as a one-node model with random
 * weights, timed three ways: segscope (GPU time from timestamp queries, and
 * wall clock of a whole run), onnxruntime-node CPU and onnxruntime-node
 * WebGPU (child processes, src/cli/ort.ts).
 *
 *   node --import tsx bench/ops.ts [--runs N] [--only NAME]...
 *
 * The configurations come from big/deeplabv3plus_r101_os16.onnx (shape
 * inference gives each node's shapes; nodes of the same configuration are
 * one case). --only keeps the cases whose name contains NAME. Writes
 * bench/results/ops.json and bench/results/ops.md.
 *
 * Each case is also placed on the adapter's roofline, as measured by
 * bench/roofline.ts (bench/results/roofline.json, at the LP_NUM_THREADS this
 * process runs with): the least time its FLOPs need at the FMA peak or its
 * bytes (inputs, weights and outputs, each moved once) at the copy
 * bandwidth, whichever is more, as a share of the kernel time measured.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pseudoRandom, timeOrt, type OrtProvider } from '../src/cli/ort.js';
import { openDawn } from '../src/gpu/dawn.js';
import { hasTimestamps } from '../src/gpu/timestamps.js';
import { readModelFile } from '../src/io/model-file.js';
import { graphFromModel } from '../src/model/from-onnx.js';
import { isFloatType, sizeOf, type HostTensor } from '../src/model/graph.js';
import { gpuElementBytes } from '../src/kernels/wgsl.js';
import { inferTypes, type TypedGraph } from '../src/model/infer.js';
import { decodeModel, encodeModel } from '../src/onnx/decode.js';
import { DataType, type NodeProto, type TensorProto, type ValueInfoProto } from '../src/onnx/schema.js';
import { registry } from '../src/ops/registry.js';
import { flopsByNode } from '../src/runtime/profile.js';
import { timeRuns, timeStats } from '../src/runtime/timing.js';
import { Session } from '../src/runtime/session.js';
import { parsePositive } from '../src/cli/args.js';

const MODEL = join(import.meta.dirname, '../big/deeplabv3plus_r101_os16.onnx');
const INPUT = [1, 3, 513, 513];

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    only: { type: 'string', multiple: true, default: [] },
  },
});
const runs = parsePositive('--runs', values.runs);
if (!existsSync(MODEL)) {
  console.error(`${MODEL} is missing. Export it (PyTorch, random weights) with:\n  /usr/bin/python3 tools/export_fixtures.py --only big`);
  process.exit(1);
}

/** One benchmark: a few nodes of the model (one, or Add with its Relu) standing for `count` alike. */
interface Case {
  name: string;
  nodes: NodeProto[];
  /** Nodes of the model with this configuration. */
  count: number;
}

/**
 * The distinct configurations of the model's runtime nodes, by case name:
 * the name spells every parameter that changes the work (shapes, kernel,
 * stride, dilation, padding, groups), so equal names are equal work.
 */
function casesOf(typed: TypedGraph, protos: ReadonlyMap<string, NodeProto>): Case[] {
  const dims = (name: string) => typed.types.get(name)!.dims;
  const consumers = new Map<string, string[]>();
  for (const node of typed.nodes) for (const input of node.inputs) consumers.set(input, [...(consumers.get(input) ?? []), node.name]);
  const hw = (d: readonly number[]) => (d[2] === d[3] ? `${d[2]}` : `${d[2]}x${d[3]}`);
  const cases = new Map<string, Case>();
  for (const node of typed.nodes) {
    const x = dims(node.inputs[0]!);
    const y = dims(node.outputs[0]!);
    let name: string | undefined;
    let members = [node.name];
    switch (node.opType) {
      case 'Conv': {
        const [kh, kw] = dims(node.inputs[1]!).slice(2);
        const [s] = node.attrs.ints('strides', [1, 1]);
        const [d] = node.attrs.ints('dilations', [1, 1]);
        const [p] = node.attrs.ints('pads', [0, 0, 0, 0]);
        const g = node.attrs.int('group', 1);
        const samePad = (d! * (kh! - 1)) / 2;
        name = `conv${kh}x${kw}_s${s}_d${d}${p === samePad ? '' : `_p${p}`}${g > 1 ? `_g${g}` : ''}_${x[1]}to${y[1]}_${hw(x)}${node.inputs[2] ? '' : '_nobias'}`;
        break;
      }
      case 'Resize':
        name = `resize_${node.attrs.string('mode', 'nearest')}_${x[1]}_${hw(x)}to${hw(y)}`;
        break;
      case 'Concat':
        name = `concat_${node.inputs.map((i) => dims(i)[1]).join('+')}_${hw(y)}`;
        break;
      case 'MaxPool': {
        const [k] = node.attrs.ints('kernel_shape');
        name = `maxpool${k}x${k}_s${node.attrs.ints('strides', [1, 1])[0]}_${x[1]}_${hw(x)}`;
        break;
      }
      case 'GlobalAveragePool':
      case 'ReduceMean':
        name = `${node.opType.toLowerCase()}_${x[1]}_${hw(x)}`;
        break;
      case 'Add': {
        // The residual join: Add then Relu, as the bottleneck blocks run it.
        const next = consumers.get(node.outputs[0]!) ?? [];
        const relu = next.length === 1 ? typed.nodes.find((n) => n.name === next[0] && n.opType === 'Relu') : undefined;
        if (relu) members = [node.name, relu.name];
        name = `add${relu ? '_relu' : ''}_${y[1]}_${hw(y)}`;
        break;
      }
    }
    if (!name) continue;
    const seen = cases.get(name);
    if (seen) seen.count++;
    else cases.set(name, { name, nodes: members.map((m) => protos.get(m)!), count: 1 });
  }
  return [...cases.values()];
}

const FLOAT = DataType.FLOAT;
const INT64 = DataType.INT64;

function tensorProto(name: string, t: HostTensor): TensorProto {
  return isFloatType(t.type)
    ? { name, dims: [...t.dims], data_type: FLOAT, raw_data: new Uint8Array(Float32Array.from(t.data).buffer) }
    : { name, dims: [...t.dims], data_type: INT64, int64_data: Array.from(t.data) };
}

function valueInfo(name: string, dims: readonly number[]): ValueInfoProto {
  return { name, type: { tensor_type: { elem_type: FLOAT, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } };
}

/**
 * A model of the case's nodes alone: runtime inputs become graph inputs,
 * Conv weights and biases random values of their shapes, other constants
 * (Resize sizes, axes) their values in the full model.
 */
function caseModel(c: Case, typed: TypedGraph, opset: number): { bytes: Uint8Array; shapes: Record<string, number[]> } {
  const produced = new Set(c.nodes.flatMap((n) => n.output ?? []));
  const consumed = new Set(c.nodes.flatMap((n) => n.input ?? []));
  const shapes: Record<string, number[]> = {};
  const initializer: TensorProto[] = [];
  for (const node of c.nodes) {
    (node.input ?? []).forEach((name, k) => {
      if (!name || produced.has(name) || shapes[name] || initializer.some((t) => t.name === name)) return;
      const value = typed.values.get(name);
      if (!value) shapes[name] = typed.types.get(name)!.dims;
      else if (node.op_type === 'Conv' && k > 0)
        initializer.push(tensorProto(name, { type: 'float32', dims: value.dims, data: pseudoRandom(sizeOf(value.dims)) }));
      else initializer.push(tensorProto(name, value));
    });
  }
  const outputs = [...produced].filter((name) => !consumed.has(name));
  const bytes = encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: opset }],
    graph: {
      name: c.name,
      node: c.nodes,
      initializer,
      input: Object.entries(shapes).map(([name, dims]) => valueInfo(name, dims)),
      output: outputs.map((name) => valueInfo(name, typed.types.get(name)!.dims)),
    },
  });
  return { bytes, shapes };
}

type Peer = { ms: number; gflops_per_s: number } | { error: string };

async function timePeer(provider: OrtProvider, model: string, shapes: Record<string, number[]>, flops: number): Promise<Peer> {
  try {
    const ms = timeStats((await timeOrt({ model, provider, shapes, runs, warmup: 1 })).runMs).median;
    return { ms, gflops_per_s: flops / ms / 1e6 };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** The adapter's measured peaks (bench/roofline.ts) at the thread count this process runs with. */
function roofline(adapter: string): { threads: number; gflopsPerS: number; gbPerS: number; date: string } {
  const file = join(import.meta.dirname, 'results/roofline.json');
  const redo = 'run node --import tsx bench/roofline.ts first';
  if (!existsSync(file)) throw new Error(`${file} is missing: ${redo}`);
  const measured = JSON.parse(readFileSync(file, 'utf8')) as {
    adapter: string;
    date: string;
    byThreads: { threads: number; best: { gflopsPerS: number }; bestCopy: { gbPerS: number } }[];
  };
  if (measured.adapter !== adapter) throw new Error(`${file} was measured on ${measured.adapter}, not ${adapter}: ${redo}`);
  const threads = Number(process.env.LP_NUM_THREADS);
  const row = measured.byThreads.find((r) => r.threads === threads);
  if (!row) throw new Error(`${file} has no row for LP_NUM_THREADS=${process.env.LP_NUM_THREADS}: ${redo} --threads ${threads}`);
  return { threads, gflopsPerS: row.best.gflopsPerS, gbPerS: row.bestCopy.gbPerS, date: measured.date };
}

/** Bytes a case must move at least: each of its inputs (weights included) read once, each output written once. */
function caseBytes(c: Case, typed: TypedGraph): number {
  const produced = new Set(c.nodes.flatMap((n) => n.output ?? []));
  const consumed = new Set(c.nodes.flatMap((n) => n.input ?? []));
  const inputs = [...consumed].filter((name) => name && !produced.has(name));
  const outputs = [...produced].filter((name) => !consumed.has(name));
  return [...inputs, ...outputs].reduce((sum, name) => {
    const t = typed.types.get(name)!;
    return sum + sizeOf(t.dims) * gpuElementBytes(t.type);
  }, 0);
}

const bytes = readFileSync(MODEL);
const proto = decodeModel(bytes, MODEL);
const graph = graphFromModel(proto, { source: MODEL });
const typed = inferTypes(graph, new Map([[graph.inputs[0]!.name, INPUT]]), (op) => registry.get(op)?.infer);
const protos = new Map((proto.graph!.node ?? []).map((n) => [n.name!, n]));
const all = casesOf(typed, protos);
const cases = values.only.length ? all.filter((c) => values.only.some((o) => c.name.includes(o))) : all;
if (!cases.length) {
  console.error(`--only ${values.only.join(', ')} matches no case. Cases:\n  ${all.map((c) => c.name).join('\n  ')}`);
  process.exit(1);
}

const gpu = await openDawn();
if (!hasTimestamps(gpu)) throw new Error(`${gpu.description} has no 'timestamp-query' feature: bench/ops.ts reports GPU time per op`);
const peak = roofline(gpu.description);
const dir = mkdtempSync(join(tmpdir(), 'segscope-ops-'));
const results = [];
for (const c of cases) {
  const { bytes: model, shapes } = caseModel(c, typed, graph.opset);
  const file = join(dir, `${c.name}.onnx`);
  writeFileSync(file, model);
  const session = await Session.create(gpu, await readModelFile(file), { inputShapes: shapes });
  const feeds = Object.fromEntries(Object.entries(shapes).map(([name, dims]) => [name, { type: 'float32' as const, dims, data: pseudoRandom(sizeOf(dims)) }]));
  const flops = [...flopsByNode(session).values()].reduce((a, b) => a + b, 0);
  const wallMs = await timeRuns(() => session.run(feeds), runs, 1);
  const gpuMs: number[] = [];
  for (let r = 0; r < runs; r++) gpuMs.push((await session.profile(feeds)).kernels.reduce((a, k) => a + k.ms, 0));
  const output = session.typeOf(session.outputNames[0]!)!.dims;
  session.destroy();
  const ours = { gpu_ms: timeStats(gpuMs).median, ms: timeStats(wallMs).median };
  const cpu = await timePeer('cpu', file, shapes, flops);
  const webgpu = await timePeer('webgpu', file, shapes, flops);
  const ratio = (p: Peer) => ('error' in p ? null : ours.ms / p.ms);
  const moved = caseBytes(c, typed);
  const [computeMs, memoryMs] = [flops / peak.gflopsPerS / 1e6, moved / peak.gbPerS / 1e6];
  const result = {
    name: c.name,
    ops: c.nodes.map((n) => n.op_type).join('+'),
    count: c.count,
    example: c.nodes[0]!.name,
    inputs: shapes,
    output,
    flops,
    bytes: moved,
    segscope: { ...ours, gflops_per_s: flops / ours.gpu_ms / 1e6 },
    /** The least kernel time the roofline allows, which of its two limits sets it, and that time over the measured one. */
    roofline: { ms: Math.max(computeMs, memoryMs), bound: computeMs >= memoryMs ? 'compute' : 'memory', of_peak: Math.max(computeMs, memoryMs) / ours.gpu_ms },
    ort_cpu: cpu,
    ort_webgpu: webgpu,
    /** segscope's wall clock over onnxruntime's (< 1: segscope faster); both include upload and read-back. */
    ratio_vs_ort_cpu: ratio(cpu),
    ratio_vs_ort_webgpu: ratio(webgpu),
  };
  results.push(result);
  console.error(
    `${c.name}: segscope ${ours.gpu_ms.toFixed(2)} ms GPU / ${ours.ms.toFixed(2)} ms run; ORT CPU ${'error' in cpu ? cpu.error : cpu.ms.toFixed(2)}; ORT WebGPU ${'error' in webgpu ? webgpu.error : webgpu.ms.toFixed(2)}`,
  );
}
rmSync(dir, { recursive: true, force: true });

const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
const summary = {
  model: 'deeplabv3plus_r101_os16.onnx',
  input: INPUT,
  date: new Date().toISOString(),
  adapter: gpu.description,
  runs,
  roofline: { lp_num_threads: peak.threads, gflops_per_s: peak.gflopsPerS, gb_per_s: peak.gbPerS, measured: peak.date },
  cases: results,
};
writeFileSync(join(out, 'ops.json'), `${JSON.stringify(summary, null, 2)}\n`);

const f = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const peer = (p: Peer) => ('error' in p ? 'failed' : f(p.ms));
const x = (r: number | null) => (r === null ? '' : `${r.toFixed(2)}x`);
const md = [
  `Op benchmarks of DeepLabv3+ ResNet-101 OS16 at ${INPUT.join('x')} on ${gpu.description}; median of ${runs} runs (${summary.date}).`,
  'segscope GPU: kernel time from timestamp queries; the ms columns are whole runs (upload, dispatch, read-back) for all three; x: segscope run / onnxruntime run (< 1: segscope faster).',
  `roofline: the least kernel time at ${peak.gflopsPerS.toFixed(1)} GFLOP/s of FMA or ${peak.gbPerS.toFixed(1)} GB/s of copy (bench/roofline.ts, LP_NUM_THREADS=${peak.threads}, ${peak.date}), whichever limit (C: compute, M: memory) sets it, over the kernel time.`,
  '',
  '| case | ops | × | output | GFLOP | MB | segscope GPU ms | GFLOP/s | roofline | segscope ms | ORT CPU ms | ORT WebGPU ms | vs CPU | vs WebGPU |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.map(
    (r) =>
      `| ${r.name} | ${r.ops} | ${r.count} | ${r.output.join('x')} | ${(r.flops / 1e9).toFixed(3)} | ${f(r.bytes / 1e6)} | ${f(r.segscope.gpu_ms)} | ${r.segscope.gflops_per_s.toFixed(1)} | ${(100 * r.roofline.of_peak).toFixed(0)}% ${r.roofline.bound === 'compute' ? 'C' : 'M'} | ${f(r.segscope.ms)} | ${peer(r.ort_cpu)} | ${peer(r.ort_webgpu)} | ${x(r.ratio_vs_ort_cpu)} | ${x(r.ratio_vs_ort_webgpu)} |`,
  ),
];
writeFileSync(join(out, 'ops.md'), `${md.join('\n')}\n`);
console.log(md.join('\n'));
