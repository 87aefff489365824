import { InputError } from '../errors.js';
import type { ElemType, Epilogue, EpilogueTaps, Graph, HostTensor, Node, ValueInfo } from './graph.js';
import { isFloatType } from './graph.js';
import type { TypedGraph } from './infer.js';

/**
 * Folds BatchNormalization into the Conv before it, when the export kept it
 * separate (do_constant_folding=False):
 *   W'[o] = W[o] * s[o],  b'[o] = (b[o] - mean[o]) * s[o] + beta[o],  s = gamma / sqrt(var + eps).
 * The Conv's own output disappears. When it is in `keep` (captured or
 * dumped), the original Conv also stays, computing it for the capture alone:
 * every kept tensor is exactly the ONNX tensor of that name, and capturing
 * never changes any other value, bit for bit.
 */
export function foldBatchNorm(typed: TypedGraph, keep: ReadonlySet<string>): TypedGraph {
  // The folded weights go into copies: a session plans many programs from one typed graph.
  const values = new Map(typed.values);
  const types = new Map(typed.types);
  const consumers = new Map<string, Node[]>();
  for (const node of typed.nodes) for (const name of node.inputs) consumers.set(name, [...(consumers.get(name) ?? []), node]);
  const outputs = new Set(typed.graph.outputs.map((o) => o.name));
  const removed = new Set<Node>();
  const replaced = new Map<Node, Node[]>();

  for (const conv of typed.nodes) {
    if (conv.opType !== 'Conv') continue;
    const y = conv.outputs[0]!;
    const users = consumers.get(y) ?? [];
    const bn = users[0];
    if (users.length !== 1 || bn!.opType !== 'BatchNormalization' || bn!.inputs[0] !== y) continue;
    if (outputs.has(y) || bn!.outputs.filter(Boolean).length !== 1) continue;
    const w = values.get(conv.inputs[1]!);
    const [gamma, beta, mean, variance] = bn!.inputs.slice(1, 5).map((n) => values.get(n));
    const bias = conv.inputs[2] ? values.get(conv.inputs[2]) : undefined;
    if (!w || !gamma || !beta || !mean || !variance || (conv.inputs[2] && !bias)) continue;

    const eps = bn!.attrs.float('epsilon', 1e-5);
    const outChannels = w.dims[0]!;
    const perChannel = w.data.length / outChannels;
    const scale = Float32Array.from({ length: outChannels }, (_, o) => gamma.data[o]! / Math.sqrt(variance.data[o]! + eps));
    const wFolded = Float32Array.from(w.data, (v, i) => v * scale[Math.floor(i / perChannel)]!);
    const bFolded = Float32Array.from(scale, (s, o) => ((bias?.data[o] ?? 0) - mean.data[o]!) * s + beta.data[o]!);
    const wName = `${conv.name}::weight_bn_folded`;
    const bName = `${conv.name}::bias_bn_folded`;
    const add = (name: string, t: HostTensor) => {
      values.set(name, t);
      types.set(name, { type: t.type, dims: [...t.dims] });
    };
    add(wName, { type: 'float32', dims: [...w.dims], data: wFolded });
    add(bName, { type: 'float32', dims: [outChannels], data: bFolded });
    const fused: Node = { ...conv, name: `${conv.name}::bn_folded`, inputs: [conv.inputs[0]!, wName, bName], outputs: [bn!.outputs[0]!] };
    replaced.set(conv, keep.has(y) ? [conv, fused] : [fused]);
    removed.add(bn!);
  }
  const nodes = typed.nodes.filter((n) => !removed.has(n)).flatMap((n) => replaced.get(n) ?? [n]);
  return { ...typed, nodes, values, types };
}

/** The ONNX node a node of the engine's graph comes from: fused nodes are named '<origin>::<what was fused>'. */
export const originalName = (node: Node): string => node.name.split('::')[0]!;

/**
 * Fuses the elementwise tail of a Conv into its kernel, the residual block's
 * pattern: Conv -> Relu, Conv -> Add(residual), Conv -> Add -> Relu; and
 * Add -> Relu into one elementwise kernel. The fused node takes the conv's
 * place when the residual is computed by then, else the place of the last
 * node it replaces (a ResNet's downsample branch comes after the main
 * branch's convs), and computes the same floats in the same order (conv + bias + residual, then
 * max with 0), so results are bit for bit those of the separate nodes. A
 * graph output, or a tensor read by other nodes, is never fused away. A
 * tensor in `keep` is fused as it would be without captures, and the fused
 * kernel also writes it (Epilogue.taps, as the node's further outputs): the
 * program's kernels, and so every other value, are those of a run without
 * captures, bit for bit at every storage precision.
 */
export function fuseEpilogues(typed: TypedGraph, keep: ReadonlySet<string>): TypedGraph {
  const { types, values } = typed;
  const consumers = new Map<string, Node[]>();
  for (const node of typed.nodes) for (const name of node.inputs) consumers.set(name, [...(consumers.get(name) ?? []), node]);
  const outputs = new Set(typed.graph.outputs.map((o) => o.name));
  // The one node reading `t`, when `t` may vanish into a fused kernel.
  const soleReader = (t: string): Node | undefined => {
    const readers = consumers.get(t) ?? [];
    return readers.length === 1 && !outputs.has(t) ? readers[0] : undefined;
  };
  const isFloat = (t: string) => isFloatType(types.get(t)?.type ?? 'int32');
  const sameDims = (a: string, b: string) => {
    const [da, db] = [types.get(a)?.dims, types.get(b)?.dims];
    return !!da && !!db && da.length === db.length && da.every((d, k) => d === db[k]);
  };
  const isRelu = (n: Node | undefined): boolean => n?.opType === 'Relu' && !n.epilogue;
  /** The fused node's outputs and epilogue: `output`, then each vanished tensor that `keep` names, as a tap. */
  const fused = (output: string, epilogue: Epilogue, vanished: Partial<Record<keyof EpilogueTaps, string>>): Pick<Node, 'outputs' | 'epilogue'> => {
    const outputs = [output];
    const taps: EpilogueTaps = {};
    for (const [tap, t] of Object.entries(vanished) as [keyof EpilogueTaps, string][]) {
      if (keep.has(t)) taps[tap] = outputs.push(t) - 1;
    }
    return { outputs, epilogue: outputs.length > 1 ? { ...epilogue, taps } : epilogue };
  };

  const position = new Map(typed.nodes.map((n, i) => [n, i]));
  const producedAt = new Map(typed.nodes.flatMap((n, i) => n.outputs.map((t) => [t, i] as const)));
  const removed = new Set<Node>();
  const placed = new Map<Node, Node>();
  for (const node of typed.nodes) {
    if (removed.has(node) || placed.has(node) || node.epilogue) continue;
    const y = node.outputs[0]!;
    if (!isFloat(y)) continue;
    const next = soleReader(y);
    // A reader already fused into another node is taken (a block's downsample conv meets the main branch's Add).
    if (!next || removed.has(next) || placed.has(next)) continue;
    if (node.opType === 'Conv') {
      if (isRelu(next)) {
        placed.set(next, { ...node, name: `${node.name}::relu`, ...fused(next.outputs[0]!, { activation: 'Relu' }, { beforeActivation: y }) });
        removed.add(node);
        continue;
      }
      const residual = next.opType === 'Add' && next.inputs.length === 2 ? next.inputs.find((t, k) => t !== y && next.inputs[1 - k] === y) : undefined;
      if (residual && !values.has(residual) && sameDims(residual, y)) {
        const z = next.outputs[0]!;
        const relu = soleReader(z);
        const last = isRelu(relu) ? relu! : next;
        const inputs = [node.inputs[0]!, node.inputs[1]!, node.inputs[2] ?? '', residual];
        const tail =
          last === next
            ? fused(z, { residual: true }, { beforeResidual: y })
            : fused(last.outputs[0]!, { residual: true, activation: 'Relu' }, { beforeResidual: y, beforeActivation: z });
        const fusedNode: Node = { ...node, name: `${node.name}::${last === next ? 'add' : 'add_relu'}`, inputs, ...tail };
        // At the conv when the residual is ready by then (an identity block), so the conv's input is freed
        // as early as before; else where the Add was.
        const anchor = (producedAt.get(residual) ?? -1) < position.get(node)! ? node : last;
        placed.set(anchor, fusedNode);
        for (const n of [node, next, last]) if (n !== anchor) removed.add(n);
        continue;
      }
    }
    if (node.opType === 'Add' && isRelu(next)) {
      placed.set(next, { ...node, name: `${node.name}::relu`, ...fused(next.outputs[0]!, { activation: 'Relu' }, { beforeActivation: y }) });
      removed.add(node);
    }
  }
  const nodes = typed.nodes.filter((n) => !removed.has(n)).map((n) => placed.get(n) ?? n);
  return { ...typed, nodes };
}

/**
 * Turns graph inputs into constants. An engine with static shapes must know
 * at load time the values that decide shapes (a Reshape's target shape, a
 * Resize's sizes); a graph that takes them as inputs runs once they are fixed.
 */
export function freezeInputs(graph: Graph, values: Readonly<Record<string, HostTensor>>): Graph {
  const names = Object.keys(values);
  if (!names.length) return graph;
  for (const name of names) {
    const input = graph.inputs.find((i) => i.name === name);
    if (!input) throw new InputError(`cannot freeze '${name}': ${graph.source || 'the model'} has no input of that name`);
    checkFeedType(input, values[name]!);
  }
  return {
    ...graph,
    inputs: graph.inputs.filter((i) => !(i.name in values)),
    initializers: new Map([...graph.initializers, ...Object.entries(values)]),
  };
}

/**
 * A tensor given for a graph input must be of the input's kind: float, integer
 * or bool. Widths may differ (float64 data for a float32 input, int32 for
 * int64): the GPU holds floats as f32 and integers as i32 anyway.
 */
export function checkFeedType(input: ValueInfo, t: HostTensor): void {
  const kind = (type: ElemType) => (isFloatType(type) ? 'float' : type === 'bool' ? 'bool' : 'integer');
  if (kind(t.type) !== kind(input.type)) throw new InputError(`input '${input.name}' is ${input.type}, got a ${t.type} tensor`);
}
