/**
 * A torchinfo-style summary of a typed graph: every ONNX node with its module
 * path, output shapes, parameters and MACs; the module tree built from the
 * scope names the TorchScript exporter writes into node names; totals.
 *
 * Parameters are float initializers (weights, biases, BatchNorm statistics)
 * and a quantized model's integer weights and biases, except those only read
 * as configuration (Resize scales, Clip bounds, a Pad
 * value…): ONNX does not mark learned tensors, so that is the closest reading
 * of PyTorch's `parameters()`. MACs follow torchinfo: Conv, ConvTranspose,
 * Gemm and MatMul, and their quantized forms (ConvInteger, QLinearConv,
 * MatMulInteger, QLinearMatMul); every other op counts 0.
 */
import type { ElemType, Graph, Node } from './graph.js';
import { isFloatType, opKey, sizeOf } from './graph.js';
import type { TypedGraph } from './infer.js';
import { modulePathOf, tensorsLeaving } from './scopes.js';

/** Bytes per element of a runtime tensor on the GPU (f32, or i32 for integer and bool tensors). */
export const GPU_BYTES_PER_ELEMENT = 4;

export interface TensorSummary {
  name: string;
  type: ElemType;
  /** null when no type is known (an output nothing computes). */
  shape: number[] | null;
}

export interface NodeSummary {
  name: string;
  opType: string;
  /** PyTorch module path from the node's scope, e.g. 'classifier.aspp.project.0'; '' when it has none. */
  module: string;
  outputs: TensorSummary[];
  /** Elements of the node's parameter initializers. */
  params: number;
  macs: number;
  /** Evaluated at load time by constant folding: no GPU work, no activation memory. */
  constant: boolean;
  /** Why segscope cannot run the node (summaries of typed graphs made with unsupported: 'keep'). */
  unsupported?: string;
}

export interface ModuleSummary {
  /** PyTorch module path, e.g. 'classifier.aspp.project'. */
  path: string;
  /** The path relative to the parent module, e.g. 'project', or '0' for 'layer1.0'. */
  name: string;
  /** The scope prefix its nodes' names start with, e.g. '/classifier/aspp/project/'. */
  scope: string;
  /** Path of the parent module; '' at the top level. */
  parent: string;
  /** 0 for top-level modules. */
  depth: number;
  /** Nodes in the module and its submodules. */
  nodeCount: number;
  /** Distinct parameter elements used by the module's nodes. */
  params: number;
  macs: number;
  /** Runtime tensors produced inside the module and read outside it, or graph outputs: what a forward hook sees. */
  outputs: TensorSummary[];
}

export interface Summary {
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  /** Every node of the graph, in graph (topological) order. */
  nodes: NodeSummary[];
  /** Modules in tree order (pre-order, children in order of first execution). Empty when the graph has no scopes. */
  modules: ModuleSummary[];
  totals: {
    /** Elements of all parameter initializers. */
    params: number;
    macs: number;
    gmacs: number;
    /** Bytes of every tensor computed at run time (what capturing everything costs). */
    activationBytes: number;
    activationTensors: number;
    largest: (TensorSummary & { bytes: number }) | null;
  };
}

/**
 * For op types whose trailing inputs are configuration rather than learned
 * tensors: the index of the first configuration input.
 */
const CONFIG_FROM: Readonly<Record<string, number>> = {
  Resize: 1,
  Upsample: 1,
  Reshape: 1,
  Expand: 1,
  Tile: 1,
  Slice: 1,
  Pad: 1,
  Clip: 1,
  Squeeze: 1,
  Unsqueeze: 1,
  Split: 1,
  TopK: 1,
  ConstantOfShape: 0,
  Range: 0,
  ReduceMean: 1,
  ReduceSum: 1,
  ReduceMax: 1,
  ReduceMin: 1,
  ReduceProd: 1,
  ReduceL2: 1,
};

/** A row of the module tree: a module header or a node, with its indentation depth. */
export type TreeRow = { kind: 'module'; module: ModuleSummary; depth: number } | { kind: 'node'; node: NodeSummary; depth: number };

export function summarize(typed: TypedGraph, graph: Graph): Summary {
  const runtime = new Set(typed.nodes.map((n) => n.name));
  const tensor = (name: string): TensorSummary => {
    const t = typed.types.get(name);
    return { name, type: t?.type ?? 'float32', shape: t ? [...t.dims] : null };
  };

  const parameters = parameterNames(graph);
  const nodeParams = (node: Node): string[] => [...new Set(node.inputs.filter((name) => parameters.has(name)))];
  const countOf = (names: Iterable<string>): number => {
    let n = 0;
    for (const name of names) n += sizeOf(graph.initializers.get(name)!.dims);
    return n;
  };

  const nodes = graph.nodes.map(
    (node): NodeSummary => ({
      name: node.name,
      opType: node.opType,
      module: modulePathOf(node.name),
      outputs: node.outputs.filter(Boolean).map(tensor),
      params: countOf(nodeParams(node)),
      macs: macsOf(node, typed),
      constant: !runtime.has(node.name) && !typed.unsupported?.has(node.name),
      ...(typed.unsupported?.has(node.name) ? { unsupported: typed.unsupported.get(node.name)! } : {}),
    }),
  );

  // Modules by scope prefix; a node belongs to every scope its name starts with.
  interface Building {
    summary: ModuleSummary;
    members: number[];
  }
  const modules = new Map<string, Building>();
  const order: Building[] = [];
  graph.nodes.forEach((node, index) => {
    if (!node.name.startsWith('/')) return;
    const segments = node.name.split('/').slice(1, -1);
    let parent: ModuleSummary | undefined;
    for (let k = 1; k <= segments.length; k++) {
      const scope = `/${segments.slice(0, k).join('/')}/`;
      let m = modules.get(scope);
      if (!m) {
        const path = modulePathOf(`${scope}x`);
        const parentPath = parent?.path ?? '';
        const name = parentPath && path.startsWith(`${parentPath}.`) ? path.slice(parentPath.length + 1) : path;
        m = {
          summary: { path, name, scope, parent: parentPath, depth: k - 1, nodeCount: 0, params: 0, macs: 0, outputs: [] },
          members: [],
        };
        modules.set(scope, m);
        order.push(m);
      }
      m.members.push(index);
      parent = m.summary;
    }
  });

  for (const { summary, members } of order) {
    summary.nodeCount = members.length;
    summary.params = countOf(new Set(members.flatMap((i) => nodeParams(graph.nodes[i]!))));
    summary.macs = members.reduce((a, i) => a + nodes[i]!.macs, 0);
    summary.outputs = tensorsLeaving(
      graph,
      (n) => n.name.startsWith(summary.scope),
      (t) => typed.values.has(t),
    ).map(tensor);
  }

  let activationBytes = 0;
  let activationTensors = 0;
  let largest: Summary['totals']['largest'] = null;
  for (const node of nodes) {
    if (node.constant) continue;
    for (const out of node.outputs) {
      if (!out.shape) continue;
      const bytes = sizeOf(out.shape) * GPU_BYTES_PER_ELEMENT;
      activationBytes += bytes;
      activationTensors++;
      if (!largest || bytes > largest.bytes) largest = { ...out, bytes };
    }
  }
  const macs = nodes.reduce((a, n) => a + n.macs, 0);
  return {
    inputs: graph.inputs.map((i) => tensor(i.name)),
    outputs: graph.outputs.map((o) => tensor(o.name)),
    nodes,
    modules: treeOrder(order.map((m) => m.summary)),
    totals: { params: countOf(parameters), macs, gmacs: macs / 1e9, activationBytes, activationTensors, largest },
  };
}

/**
 * Where quantized ops read their weights (8-bit, and QLinearConv's int32
 * bias); their other inputs (scales, zero points) are configuration.
 */
const QUANTIZED_WEIGHTS: Readonly<Record<string, readonly number[]>> = {
  QLinearConv: [3, 8],
  ConvInteger: [1],
  QLinearMatMul: [0, 3],
  MatMulInteger: [0, 1],
  DequantizeLinear: [0],
  QuantizeLinear: [],
  DynamicQuantizeLinear: [],
  'com.microsoft.QLinearAdd': [],
  'com.microsoft.QLinearConcat': [],
  'com.microsoft.QLinearGlobalAveragePool': [],
};

/**
 * Float initializers, and a quantized model's integer weights, read by at
 * least one node as data rather than configuration (or by none: torchinfo
 * counts unused ones too).
 */
function parameterNames(graph: Graph): Set<string> {
  const data = new Set<string>();
  const config = new Set<string>();
  const quantized = new Set<string>();
  for (const node of graph.nodes) {
    const weights = QUANTIZED_WEIGHTS[opKey(node)];
    node.inputs.forEach((name, k) => {
      if (!name || !graph.initializers.has(name)) return;
      if (weights?.includes(k)) quantized.add(name);
      const isConfig = weights ? !weights.includes(k) : k >= (CONFIG_FROM[node.opType] ?? Infinity);
      (isConfig ? config : data).add(name);
    });
  }
  const names = new Set<string>();
  for (const [name, t] of graph.initializers) {
    if ((isFloatType(t.type) || quantized.has(name)) && (data.has(name) || !config.has(name))) names.add(name);
  }
  return names;
}

/** Multiply-accumulates of one node at the typed shapes, as torchinfo counts them. */
function macsOf(node: Node, typed: TypedGraph): number {
  const dims = (name: string | undefined) => (name ? typed.types.get(name)?.dims : undefined);
  const out = dims(node.outputs[0]);
  if (!out) return 0;
  switch (node.opType) {
    case 'Conv':
    case 'ConvInteger':
    case 'QLinearConv': {
      // N·C_out·H_out·W_out · (C_in/groups)·kH·kW: the weight is [C_out, C_in/groups, kH, kW].
      const w = dims(node.inputs[node.opType === 'QLinearConv' ? 3 : 1]);
      return w ? sizeOf(out) * sizeOf(w.slice(1)) : 0;
    }
    case 'ConvTranspose': {
      // Every input element is spread over (C_out/groups)·kH·kW outputs: the weight is [C_in, C_out/groups, kH, kW].
      const x = dims(node.inputs[0]);
      const w = dims(node.inputs[1]);
      return x && w ? sizeOf(x) * sizeOf(w.slice(1)) : 0;
    }
    case 'Gemm': {
      const a = dims(node.inputs[0]);
      if (a?.length !== 2) return 0;
      const k = node.attrs.int('transA', 0) ? a[0]! : a[1]!;
      return sizeOf(out) * k;
    }
    case 'MatMul':
    case 'MatMulInteger':
    case 'QLinearMatMul': {
      const a = dims(node.inputs[0]);
      return a?.length ? sizeOf(out) * a[a.length - 1]! : 0;
    }
    default:
      return 0;
  }
}

/** Modules sorted into pre-order, children in the order they first appear. */
function treeOrder(modules: ModuleSummary[]): ModuleSummary[] {
  const children = new Map<string, ModuleSummary[]>();
  for (const m of modules) {
    const key = parentScope(m.scope);
    children.set(key, [...(children.get(key) ?? []), m]);
  }
  const out: ModuleSummary[] = [];
  const visit = (scope: string) => {
    for (const child of children.get(scope) ?? []) {
      out.push(child);
      visit(child.scope);
    }
  };
  visit('/');
  return out;
}

/** '/a/b/c/' -> '/a/b/'; '/a/' -> '/'. */
const parentScope = (scope: string): string => scope.slice(0, scope.slice(0, -1).lastIndexOf('/') + 1);

/** The scope a node sits in directly: '/a/b/Conv' -> '/a/b/'; '' for names without scopes (and top-level '/Shape'). */
const nodeScope = (name: string): string => (name.startsWith('/') && name.lastIndexOf('/') > 0 ? name.slice(0, name.lastIndexOf('/') + 1) : '');

/**
 * The module tree as rows, like torchinfo prints it: each module, then its
 * nodes and submodules in execution order. Nodes without a scope sit at the
 * top level. `keep` limits the rows to the kept ones and their ancestors.
 */
export function treeRows(summary: Summary, keep?: { module(m: ModuleSummary): boolean; node(n: NodeSummary): boolean }): TreeRow[] {
  const byScope = new Map(summary.modules.map((m) => [m.scope, m]));
  // Children of each scope ('' = top level), nodes and modules interleaved by first node index.
  const items = new Map<string, { first: number; row: () => TreeRow[] }[]>();
  const add = (scope: string, first: number, row: () => TreeRow[]) => {
    const list = items.get(scope) ?? [];
    list.push({ first, row });
    items.set(scope, list);
  };
  const firstNode = new Map<string, number>();
  summary.nodes.forEach((node, index) => {
    const scope = nodeScope(node.name);
    add(byScope.has(scope) ? scope : '', index, () => nodeRows(node, byScope.get(scope)?.depth ?? -1));
    for (let s = scope; s.length > 1 && !firstNode.has(s); s = parentScope(s)) firstNode.set(s, index);
  });
  for (const m of summary.modules) {
    const parent = parentScope(m.scope);
    add(byScope.has(parent) ? parent : '', firstNode.get(m.scope) ?? 0, () => moduleRows(m));
  }
  const expand = (scope: string): TreeRow[] => (items.get(scope) ?? []).sort((a, b) => a.first - b.first).flatMap((item) => item.row());
  const nodeRows = (node: NodeSummary, parentDepth: number): TreeRow[] => (!keep || keep.node(node) ? [{ kind: 'node', node, depth: parentDepth + 1 }] : []);
  const moduleRows = (m: ModuleSummary): TreeRow[] => {
    const inside = expand(m.scope);
    const kept = !keep || keep.module(m);
    return kept || inside.length ? [{ kind: 'module', module: m, depth: m.depth }, ...inside] : [];
  };
  return expand('');
}
