import { InputError, ModelError, SegscopeError, UnsupportedOpError, ValueNeededError } from '../errors.js';
import { earliestOpset } from './opsets.js';
import { evaluators, FOLDS_FROM_TYPE } from './fold.js';
import type { Graph, HostTensor, Node, TensorType, TypedInput } from './graph.js';
import { MAX_ELEMENTS, opKey, sizeOf } from './graph.js';

/** The shape rule of a GPU op; `undefined` when the op type is not supported on the GPU. */
export type ShapeRule = (node: Node, inputs: TypedInput[], opset: number) => TensorType[];

/** A graph with every tensor typed for one concrete input shape. */
export interface TypedGraph {
  graph: Graph;
  /** Every tensor name -> element type and concrete shape. */
  types: ReadonlyMap<string, TensorType>;
  /** Tensors whose value is known at load time: initializers and folded constants. */
  values: ReadonlyMap<string, HostTensor>;
  /** The nodes left to run on the GPU, in order. */
  nodes: Node[];
  /**
   * With `unsupported: 'keep'`: the nodes segscope cannot run, by name, with
   * why (their outputs, and everything computed from them, have no type).
   */
  unsupported?: ReadonlyMap<string, string>;
}

/**
 * Shape inference and constant folding in one walk: a node whose inputs are
 * all known is evaluated on the CPU (that removes the exporters' shape
 * subgraphs), every other node gets its output types from its GPU shape rule.
 * Every unsupported op in the graph is reported at once, before anything runs,
 * and so is every node that needs a value only known at run time (one
 * ValueNeededError naming all those tensors).
 */
export function inferTypes(
  graph: Graph,
  inputDims: ReadonlyMap<string, readonly number[]>,
  ruleFor: (opType: string) => ShapeRule | undefined,
  options: { unsupported?: 'throw' | 'keep' } = {},
): TypedGraph {
  const keep = options.unsupported === 'keep';
  const types = new Map<string, TensorType>();
  const values = new Map<string, HostTensor>();
  for (const [name, t] of graph.initializers) {
    values.set(name, t);
    types.set(name, { type: t.type, dims: [...t.dims] });
  }
  for (const input of graph.inputs) types.set(input.name, { type: input.type, dims: resolveInput(graph, input, inputDims) });
  for (const name of inputDims.keys()) {
    if (!graph.inputs.some((i) => i.name === name)) {
      throw new InputError(`${graph.source || 'model'} has no input '${name}' (inputs: ${graph.inputs.map((i) => i.name).join(', ')})`);
    }
  }

  const defaultDomain = (node: Node) => node.domain === '' || node.domain === 'ai.onnx';
  const unsupported = new Map<string, string[]>();
  const reject = (why: string, node: Node) => unsupported.set(why, [...(unsupported.get(why) ?? []), node.name]);
  // Other domains have GPU rules only (registered under opKey); the CPU folder and the opset table are the default domain's.
  const evaluatorOf = (node: Node) => (defaultDomain(node) ? evaluators[node.opType] : undefined);
  for (const node of graph.nodes) {
    if (!evaluatorOf(node) && !ruleFor(opKey(node))) reject(opKey(node), node);
    else if (defaultDomain(node) && graph.opset < earliestOpset(node.opType))
      reject(`${node.opType} at opset ${graph.opset} (implemented from opset ${earliestOpset(node.opType)})`, node);
  }
  // Listing a model's layers needs no GPU: with 'keep', what cannot run is marked instead of refused.
  const refused = new Map([...unsupported].flatMap(([why, names]) => names.map((name) => [name, why] as const)));
  if (unsupported.size && !keep) throw unsupportedError(graph, unsupported);

  const nodes: Node[] = [];
  // Nodes that need a value computed at run time: all reported at once, so a Session learns every input it must read on the host.
  const needed: ValueNeededError[] = [];
  const needsValue = (e: ValueNeededError, node: Node) => {
    if (keep) refused.set(node.name, e.message);
    else needed.push(e);
  };
  for (const node of graph.nodes) {
    const inputs = node.inputs.map((name): TypedInput => {
      if (!name) return { name, type: 'float32', dims: [] };
      const t = types.get(name);
      return t ? { name, ...t, value: values.get(name) } : { name, type: 'float32', dims: [], value: undefined };
    });
    // Downstream of a node that cannot run nothing is typed; its error is already recorded.
    if (refused.has(node.name) || node.inputs.some((name) => name && !types.has(name))) continue;

    const present = inputs.filter((x) => x.name);
    const evaluate = evaluatorOf(node);
    const rule = ruleFor(opKey(node));
    const foldable = evaluate && (FOLDS_FROM_TYPE.has(node.opType) || present.every((x) => x.value));
    if (foldable) {
      const outs = typeNode(graph, node, () => evaluate(node, inputs, graph.opset));
      outs.forEach((v, k) => {
        const name = node.outputs[k];
        if (!name) return;
        values.set(name, v);
        types.set(name, { type: v.type, dims: [...v.dims] });
      });
      continue;
    }
    if (!rule) {
      const computed = present.filter((x) => !x.value).map((x) => x.name);
      const why = `${node.opType} node '${node.name}': evaluated only at load time, but input '${computed[0]}' is computed at run time`;
      needsValue(new ValueNeededError(why, computed), node);
      continue;
    }
    let outs: TensorType[];
    try {
      outs = typeNode(graph, node, () => rule(node, inputs, graph.opset));
    } catch (e) {
      if (e instanceof ValueNeededError) {
        needsValue(e, node);
        continue;
      }
      // A variant the op does not implement (an attribute value, a mode): marked like an unsupported op.
      if (!keep || !(e instanceof UnsupportedOpError)) throw e;
      refused.set(node.name, e.message);
      continue;
    }
    outs.forEach((t, k) => {
      const name = node.outputs[k];
      if (name) types.set(name, t);
    });
    nodes.push(node);
  }
  if (keep) return { graph, types, values, nodes, unsupported: refused };
  if (needed.length) {
    throw new ValueNeededError(
      needed.map((e) => e.message).join('; '),
      needed.flatMap((e) => e.tensors),
    );
  }
  for (const output of graph.outputs) {
    if (!types.has(output.name)) throw new ModelError(`${graph.source || 'model'}: graph output '${output.name}' is never produced`);
  }
  return { graph, types, values, nodes };
}

/**
 * Runs a node's evaluator or shape rule and checks the shapes it gives. The
 * rules trust ONNX's arities and attribute types; a malformed node (a Conv
 * without weights, a perm of the wrong length) can make one throw a
 * TypeError or RangeError, which becomes a ModelError naming the node. A
 * shape beyond MAX_ELEMENTS (e.g. from pads of 2^62) is refused here, before
 * anything downstream sizes buffers or arrays from it, and so is a node
 * naming an output its op does not produce.
 */
function typeNode<T extends { dims: readonly number[] }>(graph: Graph, node: Node, typeOutputs: () => T[]): T[] {
  const where = `${graph.source || 'model'}: node '${node.name}' (${node.opType})`;
  let outs: T[];
  try {
    outs = typeOutputs();
  } catch (e) {
    if (e instanceof SegscopeError) throw e;
    throw new ModelError(`${where}: its inputs or attributes are malformed (${e instanceof Error ? `${e.name}: ${e.message}` : String(e)})`);
  }
  // A node naming more outputs than its op makes (a corrupt file) would leave tensors without a type.
  if (node.outputs.some((name, k) => name && k >= outs.length)) {
    const named = node.outputs.filter(Boolean);
    throw new ModelError(`${where}: names ${named.length} outputs ('${named.join("', '")}'); ${node.opType} produces ${outs.length}`);
  }
  for (const { dims } of outs) {
    if (dims.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new ModelError(`${where}: computes an output of shape [${dims.join(',')}]; dims must be non-negative integers`);
    }
    if (sizeOf(dims) > MAX_ELEMENTS) {
      throw new ModelError(`${where}: its output [${dims.join(',')}] has more than 2^31 elements, which segscope does not support`);
    }
  }
  return outs;
}

/** The concrete shape of a graph input: the given one, checked against the file's (possibly symbolic) dims. */
export function resolveInput(graph: Graph, input: Graph['inputs'][number], given: ReadonlyMap<string, readonly number[]>): number[] {
  const declared = input.dims;
  const dims = given.get(input.name);
  if (!dims) {
    if (declared?.every((d): d is number => typeof d === 'number' && d >= 0)) return declared;
    throw new InputError(`input '${input.name}' of ${graph.source || 'model'} has shape [${declared?.join(',') ?? '?'}]: give its concrete shape`);
  }
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new InputError(`input '${input.name}': shape [${dims.join(',')}] must be non-negative integers`);
  }
  if (declared) {
    const fits = declared.length === dims.length && declared.every((d, i) => typeof d !== 'number' || d <= 0 || d === dims[i]);
    if (!fits) {
      throw new InputError(`input '${input.name}' of ${graph.source || 'model'} expects shape [${declared.join(',')}], got [${dims.join(',')}]`);
    }
  }
  return [...dims];
}

function unsupportedError(graph: Graph, unsupported: Map<string, string[]>): UnsupportedOpError {
  const list = [...unsupported].map(
    ([op, names]) => `${op} (${names.length} node${names.length > 1 ? 's' : ''}: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''})`,
  );
  return new UnsupportedOpError(`${graph.source || 'model'} uses ops segscope cannot run: ${list.join('; ')}`);
}
