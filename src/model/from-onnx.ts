/**
 * ModelProto → Graph: validates what the engine relies on (unique names,
 * every input produced exactly once, no cycles, a supported opset) and puts
 * the nodes in topological order. Files are usually sorted already, but
 * nothing in the format guarantees it.
 */
import { ModelError } from '../errors.js';
import {
  AttributeType,
  DataType,
  enumName,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type ValueInfoProto,
} from '../onnx/schema.js';
import { elemTypeOf, tensorFromProto, type ExternalDataReader, type TensorContext } from './tensor-proto.js';
import { Attrs, type AttrValue, type Dim, type Graph, type HostTensor, INTERNAL_OP_PREFIX, type Node, type ValueInfo } from './graph.js';

export interface GraphOptions {
  /** The model file, for error messages ('' when built in memory). */
  source: string;
  /** Needed only for models whose tensors live in external data files. */
  readExternal?: ExternalDataReader;
  /** See TensorContext.adoptBytes. */
  adoptBytes?: boolean;
}

/** Opsets outside this range are refused; 11..20 is what segscope is tested on. */
const MIN_OPSET = 1;
const MAX_OPSET = 22;

const utf8 = new TextDecoder();

export function graphFromModel(model: ModelProto, opts: GraphOptions): Graph {
  const fail = (problem: string): never => {
    throw new ModelError(opts.source ? `${opts.source}: ${problem}` : problem);
  };
  const ctx: TensorContext = { source: opts.source, readExternal: opts.readExternal, adoptBytes: opts.adoptBytes };

  const graph = model.graph ?? fail('the model has no graph');
  const opset = defaultOpset(model, fail);

  if (graph.sparse_initializer?.length) fail('sparse initializers are not supported');
  const initializers = new Map<string, HostTensor>();
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    if (!name) fail('an initializer has no name');
    if (initializers.has(name)) fail(`initializer '${name}' appears twice`);
    initializers.set(name, tensorFromProto(t, ctx));
  }

  // A graph input that is also an initializer is a default value the
  // caller may override (IR < 4 required listing them); it is not a runtime input.
  const inputNames = new Set<string>();
  const inputs: ValueInfo[] = [];
  for (const v of graph.input ?? []) {
    const name = v.name ?? '';
    if (!name) fail('a graph input has no name');
    if (inputNames.has(name)) fail(`graph input '${name}' appears twice`);
    inputNames.add(name);
    if (!initializers.has(name)) inputs.push(valueInfo(v, `graph input '${name}'`, fail));
  }

  const protos = graph.node ?? [];
  const names = uniqueNodeNames(protos, fail);
  const nodes = protos.map((p, i) => nodeFromProto(p, names[i], ctx, fail));

  // Every tensor has exactly one producer: a graph input, an initializer, or one node output.
  const producer = new Map<string, number>();
  const describeProducer = (name: string): string => {
    const index = producer.get(name);
    if (index !== undefined) return `node '${nodes[index].name}'`;
    return initializers.has(name) ? 'an initializer' : 'a graph input';
  };
  nodes.forEach((node, index) => {
    for (const output of node.outputs) {
      if (!output) continue; // an omitted optional output
      if (producer.has(output) || initializers.has(output) || inputNames.has(output)) {
        fail(`tensor '${output}' is produced twice: by ${describeProducer(output)} and by node '${node.name}'`);
      }
      producer.set(output, index);
    }
  });
  const exists = (name: string): boolean => producer.has(name) || initializers.has(name) || inputNames.has(name);
  for (const node of nodes) {
    for (const input of node.inputs) {
      if (input && !exists(input)) fail(`node '${node.name}' (${node.opType}) reads tensor '${input}', which no node, initializer or graph input produces`);
    }
  }

  const outputs = (graph.output ?? []).map((v) => {
    const name = v.name ?? '';
    if (!exists(name)) fail(`graph output '${name}' is not produced by any node, initializer or graph input`);
    return valueInfo(typedOutput(v, graph), `graph output '${name}'`, fail);
  });

  return {
    nodes: topologicalOrder(nodes, producer, fail),
    inputs,
    outputs,
    initializers,
    opset,
    metadata: Object.fromEntries((model.metadata_props ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
    source: opts.source,
  };
}

/** Nodes bind to the highest imported version of their domain's opset. */
function defaultOpset(model: ModelProto, fail: (problem: string) => never): number {
  const versions = (model.opset_import ?? []).filter((o) => !o.domain || o.domain === 'ai.onnx').map((o) => o.version ?? 0);
  if (versions.length === 0) return fail("the model imports no opset for the default domain ('' / 'ai.onnx')");
  const opset = Math.max(...versions);
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    fail(`opset ${opset} of the default domain is not supported (segscope accepts ${MIN_OPSET}..${MAX_OPSET} and is tested on 11..20)`);
  }
  return opset;
}

/**
 * File names where present and unique; `<opType>_<index>` for unnamed
 * nodes; a numeric suffix for repeats. Named nodes claim their names first
 * so a generated name never steals a name the file uses.
 */
function uniqueNodeNames(protos: readonly NodeProto[], fail: (problem: string) => never): string[] {
  const taken = new Set<string>();
  const names = protos.map((p) => {
    const name = p.name ?? '';
    if (!name || taken.has(name)) return undefined;
    taken.add(name);
    return name;
  });
  return protos.map((p, i) => {
    const claimed = names[i];
    if (claimed !== undefined) return claimed;
    if (!p.op_type) return fail(`node #${i} has no op_type`);
    const base = p.name || `${p.op_type}_${i}`;
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  });
}

function nodeFromProto(p: NodeProto, name: string, ctx: TensorContext, fail: (problem: string) => never): Node {
  const opType = p.op_type ?? '';
  if (!opType) fail(`node '${name}' has no op_type`);
  const where = `node '${name}' (${opType})`;
  if (opType.startsWith(INTERNAL_OP_PREFIX))
    fail(`${where}: op types starting with '${INTERNAL_OP_PREFIX}' are segscope's own and cannot come from a model file`);
  const values = new Map<string, AttrValue>();
  for (const a of p.attribute ?? []) {
    const attrName = a.name ?? '';
    if (!attrName) fail(`${where} has an attribute without a name`);
    if (values.has(attrName)) fail(`${where} has attribute '${attrName}' twice`);
    values.set(attrName, attrValue(a, `${where} attribute '${attrName}'`, ctx, fail));
  }
  return {
    name,
    opType,
    // 'ai.onnx' is an alias of the default domain; one spelling keeps op lookup simple.
    domain: p.domain === 'ai.onnx' ? '' : (p.domain ?? ''),
    inputs: [...(p.input ?? [])],
    outputs: [...(p.output ?? [])],
    attrs: new Attrs(values, where),
  };
}

function attrValue(a: AttributeProto, where: string, ctx: TensorContext, fail: (problem: string) => never): AttrValue {
  const type = a.type ?? AttributeType.UNDEFINED;
  switch (type) {
    case AttributeType.FLOAT:
      return a.f ?? 0;
    case AttributeType.INT:
      return a.i ?? 0;
    case AttributeType.STRING:
      return utf8.decode(a.s ?? new Uint8Array(0));
    case AttributeType.TENSOR:
      return tensorFromProto(a.t ?? fail(`${where} has type TENSOR but no tensor`), ctx, where);
    case AttributeType.FLOATS:
      return [...(a.floats ?? [])];
    case AttributeType.INTS:
      return [...(a.ints ?? [])];
    case AttributeType.STRINGS:
      return (a.strings ?? []).map((s) => utf8.decode(s));
    case AttributeType.GRAPH:
    case AttributeType.GRAPHS:
      return fail(`${where} holds a subgraph; control flow (If, Loop, Scan) is not supported`);
    case AttributeType.UNDEFINED:
      return fail(`${where} has no type (files older than IR version 2 are not supported)`);
    default:
      return fail(`${where} has type ${enumName(AttributeType, type)}, which is not supported`);
  }
}

/**
 * Graph outputs SHOULD carry a type, but some tools put it only in
 * value_info (e.g. after marking an intermediate tensor as an output).
 */
function typedOutput(v: ValueInfoProto, graph: GraphProto): ValueInfoProto {
  if (v.type) return v;
  return graph.value_info?.find((info) => info.name === v.name && info.type) ?? v;
}

function valueInfo(v: ValueInfoProto, what: string, fail: (problem: string) => never): ValueInfo {
  const t = v.type;
  const tensor = t?.tensor_type;
  if (!tensor) {
    const kind = t?.sequence_type
      ? 'a sequence'
      : t?.map_type
        ? 'a map'
        : t?.optional_type
          ? 'an optional'
          : t?.sparse_tensor_type
            ? 'a sparse tensor'
            : undefined;
    return fail(kind ? `${what} is ${kind}; only dense tensors are supported` : `${what} has no tensor type`);
  }
  const elemType = tensor.elem_type ?? 0;
  const type = elemTypeOf(elemType) ?? fail(`${what} has element type ${enumName(DataType, elemType)}, which is not supported`);
  const info: ValueInfo = { name: v.name ?? '', type };
  if (tensor.shape) {
    info.dims = (tensor.shape.dim ?? []).map((d): Dim => {
      if (d.dim_value !== undefined) {
        if (!Number.isInteger(d.dim_value) || d.dim_value < 0) fail(`${what} has dimension ${d.dim_value}; dims must be non-negative`);
        return d.dim_value;
      }
      return d.dim_param || '?';
    });
  }
  return info;
}

/**
 * Depth-first post-order from each node in file order: a file that is
 * already sorted keeps its order exactly. Iterative, so deep chains of
 * nodes cannot overflow the call stack.
 */
function topologicalOrder(nodes: readonly Node[], producer: ReadonlyMap<string, number>, fail: (problem: string) => never): Node[] {
  const UNSEEN = 0,
    ON_PATH = 1,
    DONE = 2;
  const state = new Uint8Array(nodes.length);
  const order: Node[] = [];
  for (let root = 0; root < nodes.length; root++) {
    if (state[root] !== UNSEEN) continue;
    // Each entry: a node and the position of the next input to follow.
    const path: Array<[node: number, nextInput: number]> = [[root, 0]];
    state[root] = ON_PATH;
    while (path.length > 0) {
      const top = path[path.length - 1];
      const [index, nextInput] = top;
      const inputs = nodes[index].inputs;
      if (nextInput === inputs.length) {
        state[index] = DONE;
        order.push(nodes[index]);
        path.pop();
        continue;
      }
      top[1]++;
      const from = producer.get(inputs[nextInput]);
      if (from === undefined || state[from] === DONE) continue;
      if (state[from] === ON_PATH) {
        // Along the path each node reads from the next; list the cycle in data-flow order, from `from`.
        const cycle = path
          .slice(path.findIndex(([i]) => i === from) + 1)
          .reverse()
          .map(([i]) => `'${nodes[i].name}'`);
        const name = `'${nodes[from].name}'`;
        fail(`node ${name} is part of a cycle: ${[name, ...cycle, name].join(' → ')}`);
      }
      state[from] = ON_PATH;
      path.push([from, 0]);
    }
  }
  return order;
}
