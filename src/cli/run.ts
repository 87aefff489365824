import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { openDawn } from '../gpu/dawn.js';
import { writeFileAtomic } from '../io/files.js';
import { safeFileName } from '../workflow/file-names.js';
import { readModelFile } from '../io/model-file.js';
import { encodeNpy } from '../io/npy.js';
import type { Graph, HostTensor } from '../model/graph.js';
import type { Gpu } from '../gpu/device.js';
import { segmentationMetadata } from '../model/metadata.js';
import type { Precision } from '../model/precision.js';
import { GradientSession } from '../runtime/gradients.js';
import { planMemory } from '../runtime/profile.js';
import { Session } from '../runtime/session.js';
import { classIndex, predictionOf } from '../workflow/prediction.js';
import { parsePrecision, readNpyFile } from './args.js';
import { memoryReport, memoryText } from './memory.js';

export const runHelp = `Usage: segscope run MODEL --input [NAME=]FILE.npy [options]

Runs an ONNX model on the GPU and prints its outputs and the GPU memory its
plan holds (activations, and weights: float16 at --precision f16);
optionally dumps any tensor of the graph as .npy.

Options:
  --input [NAME=]FILE.npy  an input tensor (float32, or int64 for integer
                           inputs); repeat for models with several inputs.
                           Without NAME=, inputs are taken in graph order.
  --dump PATTERN           dump tensors; repeatable. PATTERN is, in this order:
                           a tensor name, a node name (its outputs), a PyTorch
                           module path ('aspp.project': the module's output),
                           a glob ('*', '?'), or a regular expression written
                           /…/. Graph outputs are always dumped.
  --dump-dir DIR           where dumps go (default: out/): DIR/index.json maps
                           tensor names to .npy files
  --grad PATTERN           also dump the gradient of a class target with
                           respect to each tensor PATTERN selects (patterns as
                           for --dump), as <tensor name>.grad in the index,
                           next to the tensor itself; repeatable. The target is
                           pytorch-grad-cam's SemanticSegmentationTarget: the
                           sum of the first output's logits of --class over
                           the --mask pixels
  --class K|NAME           the target's class: an index, or a name from the
                           model's metadata 'classes' (VOC's for 21 classes)
  --mask pred|all          the pixels the target sums: those predicted as the
                           class (default), or all
  --precision P            f32 (default) or f16: activations and weights stored
                           as float16 (computed in f32; needs the adapter's
                           shader-f16); inputs, outputs and dumps stay float32
  --backend NAME           Dawn backend: vulkan, opengles, … (env SEGSCOPE_BACKEND)
  --adapter NAME           adapter name, as Dawn lists them (env SEGSCOPE_ADAPTER)
  --json                   print the summary as JSON
  -h, --help               this help

Examples:
  segscope run model.onnx --input x.npy
  segscope run model.onnx --input x.npy --dump '*' --dump-dir out/
  segscope run model.onnx --input input=x.npy --dump classifier.aspp.project --dump-dir aspp/
  segscope run model.onnx --input x.npy --dump '/layer4.*Relu/'
  segscope run model.onnx --input x.npy --grad classifier.aspp.project --class 7 --dump-dir grads/`;

export async function runCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string', multiple: true, default: [] },
      dump: { type: 'string', multiple: true, default: [] },
      'dump-dir': { type: 'string' },
      grad: { type: 'string', multiple: true, default: [] },
      class: { type: 'string' },
      mask: { type: 'string', default: 'pred' },
      precision: { type: 'string', default: 'f32' },
      backend: { type: 'string' },
      adapter: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(runHelp);
  if (positionals.length !== 1) throw new InputError(`run takes one MODEL argument, got ${positionals.length}. See 'segscope run --help'`);
  const modelPath = positionals[0]!;
  const graph = await readModelFile(modelPath);
  const feeds = await readInputs(graph, values.input);
  const dumpDir = values['dump-dir'] ?? (values.dump.length || values.grad.length ? 'out' : undefined);
  if (values.grad.length && values.class === undefined) throw new InputError('--grad needs --class K|NAME: the class whose score is differentiated');
  if (!values.grad.length && values.class !== undefined) throw new InputError('--class is the target of --grad: give --grad PATTERN too');
  if (values.mask !== 'pred' && values.mask !== 'all') throw new InputError(`--mask '${values.mask}': expected pred or all`);

  const gpu = await openDawn({ backend: values.backend, adapter: values.adapter });
  const t0 = performance.now();
  const session = await Session.create(gpu, graph, {
    inputShapes: Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, [...t.dims]])),
    capture: values.dump,
    precision: parsePrecision(values.precision),
  });
  const t1 = performance.now();
  const { outputs, captured } = await session.run(feeds);
  const t2 = performance.now();
  const memory = memoryReport(planMemory(await session.plan()));
  const dumped = new Map(outputs);
  for (const [name, tensor] of captured) dumped.set(name, await tensor.toHost());
  if (values.grad.length) {
    for (const [name, tensor] of await gradients(gpu, graph, feeds, values.grad, values.class!, values.mask as 'pred' | 'all', session.precision)) {
      dumped.set(name, tensor);
    }
  }

  if (dumpDir) {
    const taken = new Set<string>(['index.json']);
    const index: Record<string, string> = {};
    for (const [name, tensor] of dumped) {
      const file = safeFileName(name, '.npy', taken);
      await writeFileAtomic(join(dumpDir, file), encodeNpy(tensor));
      index[name] = file;
    }
    await writeFileAtomic(join(dumpDir, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  }
  const summary = {
    model: modelPath,
    adapter: gpu.description,
    precision: session.precision,
    compileMs: Math.round(t1 - t0),
    runMs: Math.round(t2 - t1),
    memory,
    outputs: session.outputNames.map((name) => ({ name, ...stats(outputs.get(name)!) })),
    dumped: dumpDir ? { dir: dumpDir, tensors: dumped.size } : undefined,
  };
  if (values.json) return void console.log(JSON.stringify(summary, null, 2));
  console.log(`${modelPath} on ${gpu.description}, precision ${session.precision}`);
  console.log(`compile ${summary.compileMs} ms, run ${summary.runMs} ms`);
  console.log(memoryText(memory));
  for (const o of summary.outputs) {
    console.log(`  ${o.name}: ${o.type}[${o.shape.join(',')}] min ${o.min} max ${o.max} mean ${o.mean}`);
  }
  if (dumpDir) console.log(`wrote ${dumped.size} tensors to ${join(dumpDir, 'index.json')}`);
}

/** Each tensor the patterns select and its gradient (as <name>.grad) for the class target. */
async function gradients(
  gpu: Gpu,
  graph: Graph,
  feeds: Record<string, HostTensor>,
  patterns: string[],
  classText: string,
  mask: 'pred' | 'all',
  precision: Precision,
): Promise<Map<string, HostTensor>> {
  const session = await GradientSession.create(gpu, graph, {
    inputShapes: Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, [...t.dims]])),
    wrt: patterns,
    precision,
  });
  try {
    const shape = session.typeOf(session.output)!.dims;
    const names = predictionOf(graph, segmentationMetadata(graph), session.output, shape)?.names;
    const k = classIndex(classText, shape[1]!, names, '--class');
    const result = await session.run(feeds, { classIndex: k, mask });
    const out = new Map<string, HostTensor>();
    for (const [name, { activation, gradient }] of result.tensors) {
      out.set(name, await activation.toHost());
      out.set(`${name}.grad`, await gradient.toHost());
    }
    return out;
  } finally {
    session.destroy();
  }
}

/** `--input [NAME=]FILE` values as feeds: named ones by name, the rest in graph-input order. */
async function readInputs(graph: Graph, specs: string[]): Promise<Record<string, HostTensor>> {
  const names = graph.inputs.map((i) => i.name);
  const feeds: Record<string, HostTensor> = {};
  const unnamed = names.filter((n) => !specs.some((s) => s.startsWith(`${n}=`)));
  for (const spec of specs) {
    const named = names.find((n) => spec.startsWith(`${n}=`));
    const file = named ? spec.slice(named.length + 1) : spec;
    const name = named ?? unnamed.shift();
    if (!name) throw new InputError(`--input ${spec}: the model's inputs (${names.join(', ')}) are all given already`);
    feeds[name] = await readNpyFile(file, `--input ${spec}`);
  }
  const missing = names.filter((n) => !feeds[n]);
  if (missing.length) throw new InputError(`missing --input for ${missing.map((n) => `'${n}'`).join(', ')} (give each as --input NAME=FILE.npy)`);
  return feeds;
}

function stats(t: HostTensor) {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const v of t.data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  const round = (v: number) => Number(v.toPrecision(6));
  return { type: t.type, shape: [...t.dims], min: round(min), max: round(max), mean: round(sum / Math.max(1, t.data.length)) };
}
