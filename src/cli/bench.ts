import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { openDawn, type DawnOptions } from '../gpu/dawn.js';
import { readModelFile } from '../io/model-file.js';
import { argmaxAgreement, relativeL2 } from '../metrics/agreement.js';
import { isFloatType, sizeOf, type Graph, type HostTensor } from '../model/graph.js';
import type { Precision } from '../model/precision.js';
import { flopsByNode, planMemory, profileNodes, type NodeProfile } from '../runtime/profile.js';
import { timeRuns, timeStats } from '../runtime/timing.js';
import { Session } from '../runtime/session.js';
import { parseCount, parseHW, parsePositive, parsePrecision } from './args.js';
import { memoryReport, memoryText } from './memory.js';
import { inputShapes } from './layers.js';
import { pseudoRandom, timeOrt, type OrtProvider } from './ort.js';
import { Progress } from './progress.js';

export const benchHelp = `Usage: segscope bench MODEL [options]

Measures a model on the GPU: end-to-end latency of ordinary runs (one
submit each, wall clock from feeding the input to reading the outputs back),
then where the GPU time goes: each kernel timed with timestamp queries in
its own compute pass, summed per ONNX node, with each node's FLOPs and
GFLOP/s. Timed apart, kernels lose the overlap of a run's single pass, so
their sum can exceed the run: the ratio is printed (gpu_vs_run in --json)
and the shares are of the sum. Also prints the session build time and the planned GPU memory.
Inputs are pseudo-random. Without the adapter feature 'timestamp-query' only
the wall-clock times are given.

Options:
  --size HxW         input height and width (default: the model's declared
                     input shape; when its height and width are symbolic,
                     its metadata 'input_size', else 513x513). Batch 1,
                     channels from the model.
  --runs N           timed runs, and profiled runs (default 5)
  --warmup N         untimed runs first (default 1; 0 or more)
  --top K            nodes listed, slowest first (default 10)
  --precision P      f32 (default) or f16: float16 activations, computed in
                     f32 (needs the adapter's shader-f16). At f16 the outputs
                     are also compared with an f32 run's: relative L2 and,
                     for scores [N,C,H,W], the pixels keeping their class
  --vs ort           also time onnxruntime-node's CPU and WebGPU providers on
                     the same model and input, each in a child process, and
                     print segscope's median over theirs (ratio < 1: faster)
  --backend NAME     Dawn backend: vulkan, opengles, … (env SEGSCOPE_BACKEND)
  --adapter NAME     adapter name, as Dawn lists them (env SEGSCOPE_ADAPTER)
  --json             print the results as JSON (median_ms at the top level)
  -h, --help         this help

FLOPs are 2·MACs for Conv, ConvTranspose, Gemm and MatMul and the output
elements for every other op.

Examples:
  segscope bench model.onnx
  segscope bench model.onnx --size 1024x2048 --runs 3 --top 20
  segscope bench model.onnx --size 513x513 --vs ort
  segscope bench model.onnx --runs 10 --json > bench.json`;

type Peer = { median_ms: number; load_ms: number; ratio: number } | { error: string };

export async function benchCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      size: { type: 'string' },
      runs: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      top: { type: 'string', default: '10' },
      vs: { type: 'string' },
      precision: { type: 'string', default: 'f32' },
      backend: { type: 'string' },
      adapter: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(benchHelp);
  if (positionals.length !== 1) throw new InputError(`bench takes one MODEL argument, got ${positionals.length}. See 'segscope bench --help'`);
  if (values.vs !== undefined && values.vs !== 'ort') throw new InputError(`--vs '${values.vs}': the only peer is ort (onnxruntime-node)`);
  const result = await measure({
    model: positionals[0]!,
    size: values.size === undefined ? undefined : parseHW('--size', values.size),
    runs: parsePositive('--runs', values.runs),
    warmup: parseCount('--warmup', values.warmup),
    top: parsePositive('--top', values.top),
    vsOrt: values.vs === 'ort',
    precision: parsePrecision(values.precision),
    dawn: { backend: values.backend, adapter: values.adapter },
    progress: new Progress(!values.json && process.stderr.isTTY === true),
  });
  console.log(values.json ? JSON.stringify(result, null, 2) : renderText(result));
}

interface BenchOptions {
  model: string;
  size: [number, number] | undefined;
  runs: number;
  warmup: number;
  top: number;
  vsOrt: boolean;
  precision: Precision;
  dawn: DawnOptions;
  progress: Progress;
}

async function measure(o: BenchOptions) {
  const { progress } = o;
  progress.phase(`loading ${o.model}`);
  const graph = await readModelFile(o.model);
  const shapes = Object.fromEntries(inputShapes(graph, o.size, new Map()));
  for (const input of graph.inputs) {
    if (!isFloatType(input.type)) throw new InputError(`input '${input.name}' is ${input.type}: bench feeds pseudo-random float inputs only`);
  }
  const feeds: Record<string, HostTensor> = Object.fromEntries(
    Object.entries(shapes).map(([name, dims]) => [name, { type: 'float32', dims, data: pseudoRandom(sizeOf(dims)) }]),
  );

  const gpu = await openDawn(o.dawn);
  const t0 = performance.now();
  const session = await Session.create(gpu, graph, {
    inputShapes: shapes,
    precision: o.precision,
    onCompile: (done, total) => progress.step('compiling shaders', done, total),
  });
  const buildMs = performance.now() - t0;
  let calls = 0;
  const runMs = await timeRuns(
    () => {
      progress.step('timed runs', Math.max(0, calls - o.warmup), o.runs, calls++ < o.warmup ? '(warm-up)' : '');
      return session.run(feeds);
    },
    o.runs,
    o.warmup,
  );
  progress.phase(`profiling ${o.runs} runs`);
  const nodes = await profileNodes(session, feeds, o.runs);
  const memory = planMemory(await session.plan());
  const flops = [...flopsByNode(session).values()].reduce((a, b) => a + b, 0);
  const vsF32 = o.precision === 'f32' ? undefined : await compareWithF32(session, graph, shapes, feeds, progress);
  session.destroy();
  const stats = timeStats(runMs);

  const peer = async (provider: OrtProvider): Promise<Peer> => {
    progress.phase(`onnxruntime-node ${provider}`);
    // At least one warm-up: onnxruntime's WebGPU provider compiles its shaders in the first run, segscope while building the session.
    return timeOrt({ model: o.model, provider, shapes, runs: o.runs, warmup: Math.max(1, o.warmup) }).then(
      (t) => {
        const median = timeStats(t.runMs).median;
        return { median_ms: median, load_ms: t.loadMs, ratio: stats.median / median };
      },
      (e: Error) => ({ error: e.message }),
    );
  };
  const vsOrt = o.vsOrt ? { cpu: await peer('cpu'), webgpu: await peer('webgpu') } : undefined;
  progress.end();

  const shown = nodes?.slice(0, o.top) ?? [];
  const rest = nodes?.slice(o.top) ?? [];
  return {
    model: o.model,
    adapter: gpu.description,
    precision: o.precision,
    inputs: shapes,
    runs: o.runs,
    warmup: o.warmup,
    median_ms: stats.median,
    min_ms: stats.min,
    mean_ms: stats.mean,
    build_ms: buildMs,
    flops,
    gflops_per_s: flops / stats.median / 1e6,
    memory: memoryReport(memory),
    timing: nodes ? ('gpu-timestamps' as const) : ('wall-clock' as const),
    /**
     * Sum of the nodes' median GPU times; null without timestamps. Each
     * kernel is timed in a pass of its own, which loses the overlap of the
     * one pass an ordinary run records, so the sum can exceed the run:
     * `gpu_vs_run` is their ratio, and the shares are of the sum.
     */
    gpu_ms: nodes ? total(nodes) : null,
    gpu_vs_run: nodes ? total(nodes) / stats.median : null,
    nodes: nodes?.length ?? null,
    top: shown.map((n) => ({
      node: n.node,
      op: n.opType,
      kernels: n.kernels,
      output_shape: n.outputShape,
      ms: n.ms,
      share_pct: n.share,
      flops: n.flops,
      gflops_per_s: n.gflops,
    })),
    rest: nodes ? { nodes: rest.length, ms: total(rest), share_pct: rest.reduce((a, n) => a + n.share, 0) } : null,
    ...(vsF32 ? { vs_f32: vsF32 } : {}),
    ...(vsOrt ? { vs_ort: vsOrt } : {}),
  };
}

/**
 * The accuracy of `session`'s outputs against a float32 session's on the
 * same inputs: relative L2 of each float output and, for scores [N,C,H,W],
 * the share of pixels whose arg-max class is unchanged.
 */
async function compareWithF32(session: Session, graph: Graph, shapes: Record<string, number[]>, feeds: Record<string, HostTensor>, progress: Progress) {
  progress.phase(`running at f32 for accuracy`);
  const { outputs } = await session.run(feeds);
  const reference = await Session.create(session.gpu, graph, { inputShapes: shapes });
  try {
    const expected = (await reference.run(feeds)).outputs;
    return [...outputs]
      .filter(([, t]) => isFloatType(t.type))
      .map(([name, t]) => ({
        output: name,
        rel_l2: relativeL2(t.data, expected.get(name)!.data),
        ...(t.dims.length === 4 && t.dims[1]! > 1 ? { argmax_agreement: argmaxAgreement(t.data, expected.get(name)!.data, t.dims) } : {}),
      }));
  } finally {
    reference.destroy();
  }
}

type BenchResult = Awaited<ReturnType<typeof measure>>;

const total = (rows: readonly NodeProfile[]) => rows.reduce((a, n) => a + n.ms, 0);
const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
/** 1234567 -> '1.23 M'. */
const si = (n: number) => {
  const [scale, unit] = n >= 1e9 ? [1e9, 'G'] : n >= 1e6 ? [1e6, 'M'] : n >= 1e3 ? [1e3, 'k'] : [1, ''];
  return `${(n / scale).toFixed(2)} ${unit}`;
};
const rate = (gflops: number) => (gflops >= 1 ? gflops.toFixed(1) : gflops.toPrecision(2));
const shape = (dims: readonly number[]) => `[${dims.join(',')}]`;

function renderText(r: BenchResult): string {
  const inputs = Object.entries(r.inputs)
    .map(([name, dims]) => `${name} ${shape(dims)}`)
    .join(', ');
  const out = [
    `${basename(r.model)}: ${inputs} on ${r.adapter}, precision ${r.precision}`,
    `build ${ms(r.build_ms)} ms; ${r.runs} run${r.runs > 1 ? 's' : ''} after ${r.warmup} warm-up: median ${ms(r.median_ms)} ms, min ${ms(r.min_ms)}, mean ${ms(r.mean_ms)}; ` +
      `${si(r.flops)}FLOP, ${rate(r.gflops_per_s)} GFLOP/s`,
    memoryText(r.memory),
  ];
  if (r.gpu_ms === null) {
    out.push(`no GPU time per node: the adapter has no 'timestamp-query' feature, so the times above are wall clock per whole run`);
  } else {
    out.push(
      `GPU time per node (timestamp queries, each kernel in its own pass, median of ${r.runs}): ${ms(r.gpu_ms)} ms in ${r.nodes} nodes, ` +
        `${r.gpu_vs_run!.toFixed(2)}x the median run (one pass per kernel loses the overlap of a run's single pass); shares are of this sum`,
    );
    const header = ['#', 'Op', 'Output shape', 'ms', '%', 'FLOP', 'GFLOP/s', 'Node'];
    const rows = r.top.map((n, k) => [String(k + 1), n.op, shape(n.output_shape), ms(n.ms), n.share_pct.toFixed(1), si(n.flops), rate(n.gflops_per_s), n.node]);
    if (r.rest?.nodes) rows.push(['', '', '', ms(r.rest.ms), r.rest.share_pct.toFixed(1), '', '', `${r.rest.nodes} other nodes`]);
    const right = new Set([0, 3, 4, 5, 6]);
    const widths = header.map((h, k) => Math.max(h.length, ...rows.map((cells) => cells[k]!.length)));
    const line = (cells: string[]) =>
      cells
        .map((c, k) => (right.has(k) ? c.padStart(widths[k]!) : c.padEnd(widths[k]!)))
        .join('  ')
        .trimEnd();
    out.push(line(header), ...rows.map(line));
  }
  for (const v of r.vs_f32 ?? []) {
    const kept = v.argmax_agreement === undefined ? '' : `, arg-max class kept at ${(100 * v.argmax_agreement).toFixed(3)}% of pixels`;
    out.push(`${r.precision} vs f32, output '${v.output}': relative L2 ${v.rel_l2.toExponential(2)}${kept}`);
  }
  if (r.vs_ort) {
    const peer = (name: string, p: Peer) =>
      'error' in p
        ? `${name} failed: ${p.error}`
        : `${name} median ${ms(p.median_ms)} ms (segscope/ORT ${p.ratio.toFixed(2)}x: ${p.ratio < 1 ? 'faster' : 'slower'})`;
    out.push(`onnxruntime-node ${peer('CPU', r.vs_ort.cpu)}; ${peer('WebGPU', r.vs_ort.webgpu)}`);
  }
  return out.join('\n');
}
