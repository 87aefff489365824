import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { segmentationMetadata } from '../model/metadata.js';
import { readModelFile } from '../io/model-file.js';
import type { Graph } from '../model/graph.js';
import { inferTypes } from '../model/infer.js';
import { summarize, treeRows, type NodeSummary, type Summary, type TensorSummary } from '../model/summary.js';
import { registry } from '../ops/registry.js';
import { closestNames } from '../runtime/select.js';
import { layerFilter, type LayerFilter } from '../workflow/layer-filter.js';
import { DEFAULT_INPUT } from '../workflow/input.js';

export const layersHelp = `Usage: segscope layers MODEL [options]

Lists every node of an ONNX model like torchinfo's summary: the module tree
(from the scope names the TorchScript exporter writes; a flat list
otherwise), each node's op type, output shape at the given input size,
parameters and MACs, then the totals: parameters, GMACs, and the activation
memory (what capturing every tensor at once costs on the GPU). Needs no GPU.

Options:
  --size HxW               input height and width (default: the model's
                           declared input shape; when its height and width
                           are symbolic, its metadata 'input_size', else
                           513x513). Batch 1, channels from the model.
  --input-shape NAME=DIMS  the full shape of input NAME, e.g. input=1x3x513x513;
                           repeatable, for models with other inputs
  --filter PATTERN         keep the rows whose node name, module path
                           (classifier.aspp.project, or its scope
                           /classifier/aspp/project) or output tensor name is
                           PATTERN or matches the glob PATTERN ('*' any run,
                           '?' one character); repeatable
  --json                   print nodes, modules and totals as JSON
  -h, --help               this help

Examples:
  segscope layers model.onnx
  segscope layers model.onnx --size 1024x2048
  segscope layers model.onnx --filter 'classifier.aspp.project' --filter 'classifier.project'
  segscope layers model.onnx --filter '/backbone/layer4/*' --json`;

export async function layersCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      size: { type: 'string' },
      'input-shape': { type: 'string', multiple: true, default: [] },
      filter: { type: 'string', multiple: true, default: [] },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(layersHelp);
  if (positionals.length !== 1) throw new InputError(`layers takes one MODEL argument, got ${positionals.length}. See 'segscope layers --help'`);
  const modelPath = positionals[0]!;
  const size = values.size === undefined ? undefined : parseSize(values.size);
  const shapes = values['input-shape'].map(parseInputShape);
  const graph = await readModelFile(modelPath);
  const inputDims = inputShapes(graph, size, new Map(shapes));
  const typed = inferTypes(graph, inputDims, (op) => registry.get(op)?.infer, { unsupported: 'keep' });
  const summary = summarize(typed, graph);

  const keep = values.filter.length ? matcher(summary, values.filter) : undefined;
  if (values.json) {
    const nodes = keep ? summary.nodes.filter(keep.node) : summary.nodes;
    const modules = keep ? summary.modules.filter(keep.module) : summary.modules;
    return void console.log(
      JSON.stringify({ model: modelPath, inputs: summary.inputs, outputs: summary.outputs, nodes, modules, totals: summary.totals }, null, 2),
    );
  }
  console.log(renderText(modelPath, summary, keep));
}

/** '513x513' -> [513, 513]. */
function parseSize(text: string): number[] {
  const m = /^(\d+)x(\d+)$/.exec(text.trim());
  const dims = m ? [Number(m[1]), Number(m[2])] : [];
  if (!m || dims.some((d) => d < 1)) throw new InputError(`--size '${text}': expected HEIGHTxWIDTH with positive integers, e.g. 513x513`);
  return dims;
}

/** 'input=1x3x513x513' -> ['input', [1, 3, 513, 513]]. */
function parseInputShape(text: string): [string, number[]] {
  const at = text.lastIndexOf('=');
  const dims = text.slice(at + 1);
  if (at < 1 || !/^\d+(x\d+)*$/.test(dims)) throw new InputError(`--input-shape '${text}': expected NAME=DIMS, e.g. input=1x3x513x513`);
  return [text.slice(0, at), dims.split('x').map(Number)];
}

/**
 * The concrete shape of every input (callers feed each one): --input-shape,
 * else the declared dims when they are all concrete (a 4-D one resized by
 * --size), else a 4-D NCHW input at --size (default:
 * the model's metadata input_size, else 513x513) with N=1 where symbolic and
 * C from the model.
 */
export function inputShapes(graph: Graph, size: number[] | undefined, given: Map<string, number[]>): Map<string, number[]> {
  const dims = new Map(given);
  const stated = segmentationMetadata(graph).inputSize ?? DEFAULT_INPUT;
  for (const input of graph.inputs) {
    if (dims.has(input.name)) continue;
    const declared = input.dims;
    if (declared?.every((d): d is number => typeof d === 'number' && d > 0) && (!size || declared.length !== 4)) {
      dims.set(input.name, declared);
      continue;
    }
    const [n, c, h, w] = declared ?? [];
    if (declared?.length !== 4 || typeof c !== 'number' || c < 1) {
      throw new InputError(
        `input '${input.name}' has shape [${declared?.join(',') ?? '?'}]: give it with --input-shape ${input.name}=DIMS (--size applies to NCHW inputs with a known channel count)`,
      );
    }
    const [height, width] = size ?? [typeof h === 'number' && h > 0 ? h : stated[0]!, typeof w === 'number' && w > 0 ? w : stated[1]!];
    dims.set(input.name, [typeof n === 'number' && n > 0 ? n : 1, c, height!, width!]);
  }
  return dims;
}

/** --filter patterns as row predicates; a pattern that matches no row is an error naming the closest names. */
function matcher(summary: Summary, patterns: string[]): LayerFilter {
  const keep = layerFilter(patterns);
  for (const [k, pattern] of patterns.entries()) {
    if (!summary.modules.some((m) => keep.matches(k, m)) && !summary.nodes.some((n) => keep.matches(k, n))) {
      const names = new Set([...summary.modules.map((m) => m.path), ...summary.nodes.flatMap((n) => [n.name, ...n.outputs.map((o) => o.name)])]);
      const close = closestNames(names, pattern);
      throw new InputError(`--filter '${pattern}' matches no node, module or tensor. Closest names: ${close.map((n) => `'${n}'`).join(', ')}`);
    }
  }
  return keep;
}

const count = (n: number) => n.toLocaleString('en-US');
/** The op column: '*' folded at load time, '!' cannot run. */
const opText = (n: NodeSummary) => (n.unsupported ? `${n.opType}!` : n.constant ? `${n.opType}*` : n.opType);
const shapeText = (t: TensorSummary) => (t.shape ? `[${t.shape.join(',')}]` : '?');
const names = (ts: TensorSummary[]) => ts.map((t) => t.name).join(' ');
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

function renderText(modelPath: string, summary: Summary, keep: LayerFilter | undefined): string {
  const num = (n: number) => (n ? count(n) : '--');
  const tree = treeRows(summary, keep);
  const rows: string[][] = [];
  for (let k = 0; k < tree.length; k++) {
    const row = tree[k]!;
    const indent = '  '.repeat(row.depth);
    if (row.kind === 'module') {
      const m = row.module;
      const only = tree[k + 1];
      if (m.nodeCount === 1 && only?.kind === 'node') {
        // A module of one node (conv1 -> Conv) is one row, as torchinfo shows a leaf module.
        const n = only.node;
        rows.push([`${indent}${m.name}`, opText(n), n.outputs.map(shapeText).join(' '), num(n.params), num(n.macs), names(n.outputs)]);
        k++;
      } else {
        rows.push([`${indent}${m.name}`, '', m.outputs.map(shapeText).join(' '), num(m.params), num(m.macs), names(m.outputs)]);
      }
      continue;
    }
    const n = row.node;
    const label = row.depth > 0 ? n.name.slice(n.name.lastIndexOf('/') + 1) : n.name;
    rows.push([`${indent}${label}`, opText(n), n.outputs.map(shapeText).join(' '), num(n.params), num(n.macs), names(n.outputs)]);
  }
  const header = ['Layer (module / node)', 'Op', 'Output shape', 'Params', 'MACs', 'Output tensor'];
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, k) => (k === 3 || k === 4 ? c.padStart(widths[k]!) : c.padEnd(widths[k]!)))
      .join('  ')
      .trimEnd();
  const rule = '='.repeat(widths.slice(0, -1).reduce((a, w) => a + w + 2, header.at(-1)!.length));
  const { totals } = summary;
  const inputs = summary.inputs.map((i) => `${i.name} ${shapeText(i)}`).join(', ');
  const out = [`${modelPath}: input ${inputs}`, rule, line(header), rule, ...rows.map(line), rule];
  if (keep) {
    const modules = summary.modules.filter(keep.module).length;
    const nodes = summary.nodes.filter(keep.node).length;
    out.push(`--filter: ${modules} of ${summary.modules.length} modules and ${nodes} of ${summary.nodes.length} nodes match; totals are for the whole model`);
  }
  if (rows.some((r) => r[1]!.endsWith('*'))) out.push('* folded to a constant at load time: no GPU work, no activation memory');
  const refused = summary.nodes.filter((n) => n.unsupported);
  if (refused.length) {
    out.push(`! segscope cannot run ${refused.length} node${refused.length === 1 ? '' : 's'} (shapes after them are unknown: ?):`);
    const byReason = new Map<string, string[]>();
    for (const n of refused) byReason.set(n.unsupported!, [...(byReason.get(n.unsupported!) ?? []), n.name]);
    for (const [why, nodes] of byReason) out.push(`  ${why}: ${nodes.slice(0, 5).join(', ')}${nodes.length > 5 ? ', …' : ''}`);
  }
  out.push(
    `Total params: ${count(totals.params)}`,
    `Total MACs: ${(totals.gmacs).toFixed(2)} G (${count(totals.macs)})`,
    `Activation memory: ${mib(totals.activationBytes)} in ${count(totals.activationTensors)} tensors (4 bytes per element; capturing every tensor costs this much)`,
  );
  if (totals.largest) out.push(`Largest tensor: ${totals.largest.name} ${shapeText(totals.largest)} ${mib(totals.largest.bytes)}`);
  out.push(rule);
  return out.join('\n');
}
