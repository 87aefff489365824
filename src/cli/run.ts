import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { openDawn } from '../gpu/dawn.js';
import { writeFileAtomic } from '../io/files.js';
import { safeFileName } from '../workflow/file-names.js';
import { readModelFile } from '../io/model-file.js';
import { encodeNpy } from '../io/npy.js';
import type { Graph, HostTensor } from '../model/graph.js';
import { Session } from '../runtime/session.js';
import { parsePrecision, readNpyFile } from './args.js';

export const runHelp = `Usage: segscope run MODEL --input [NAME=]FILE.npy [options]

Runs an ONNX model on the GPU and prints its outputs; optionally dumps any
tensor of the graph as .npy.

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
  --precision P            f32 (default) or f16: activations stored as float16
                           (computed in f32; needs the adapter's shader-f16);
                           inputs, outputs and dumps stay float32
  --backend NAME           Dawn backend: vulkan, opengles, … (env SEGSCOPE_BACKEND)
  --adapter NAME           adapter name, as Dawn lists them (env SEGSCOPE_ADAPTER)
  --json                   print the summary as JSON
  -h, --help               this help

Examples:
  segscope run model.onnx --input x.npy
  segscope run model.onnx --input x.npy --dump '*' --dump-dir out/
  segscope run model.onnx --input input=x.npy --dump classifier.aspp.project --dump-dir aspp/
  segscope run model.onnx --input x.npy --dump '/layer4.*Relu/'`;

export async function runCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string', multiple: true, default: [] },
      dump: { type: 'string', multiple: true, default: [] },
      'dump-dir': { type: 'string' },
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
  const dumpDir = values['dump-dir'] ?? (values.dump.length ? 'out' : undefined);

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
  const dumped = new Map(outputs);
  for (const [name, tensor] of captured) dumped.set(name, await tensor.toHost());

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
    outputs: session.outputNames.map((name) => ({ name, ...stats(outputs.get(name)!) })),
    dumped: dumpDir ? { dir: dumpDir, tensors: dumped.size } : undefined,
  };
  if (values.json) return void console.log(JSON.stringify(summary, null, 2));
  console.log(`${modelPath} on ${gpu.description}, precision ${session.precision}`);
  console.log(`compile ${summary.compileMs} ms, run ${summary.runMs} ms`);
  for (const o of summary.outputs) {
    console.log(`  ${o.name}: ${o.type}[${o.shape.join(',')}] min ${o.min} max ${o.max} mean ${o.mean}`);
  }
  if (dumpDir) console.log(`wrote ${dumped.size} tensors to ${join(dumpDir, 'index.json')}`);
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
