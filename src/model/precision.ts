import { Attrs, isFloatType, type Node, type TensorType } from './graph.js';
import type { TypedGraph } from './infer.js';

/** What float tensors are stored as on the GPU. Kernels compute in f32 either way. */
export type Precision = 'f32' | 'f16';
export const PRECISIONS: readonly Precision[] = ['f32', 'f16'];

/** ONNX TensorProto.DataType of Cast's `to`. */
const ONNX_FLOAT = 1;
const ONNX_FLOAT16 = 10;

/**
 * Sets the type every float tensor is stored as on the GPU.
 *
 * 'f32': float32, a float16 model's tensors too (its weights were widened at
 * load; this is how segscope has always run them).
 *
 * 'f16': float16, halving activation memory and traffic, except the tensors
 * the host sees: graph inputs, graph outputs and `keep` (captures). Those
 * stay float32 and are joined to a float16 twin named '<tensor>::f16' by a
 * Cast node: an input is cast right at the start, an output or a capture
 * right after its producer. Feeds, outputs and captured tensors are
 * therefore float32 as in an f32 run, and a capture names the same tensor.
 * Constants are relabelled too (uploaded as f16), so the inputs of one node
 * keep one float type as ONNX requires.
 *
 * `typed.types` is copied, never changed: a session's typeOf() keeps
 * reporting the model's own types.
 */
export function storeFloatsAs(typed: TypedGraph, keep: ReadonlySet<string>, precision: Precision): TypedGraph {
  const types = new Map<string, TensorType>();
  const floatType = precision === 'f16' ? 'float16' : 'float32';
  for (const [name, t] of typed.types) types.set(name, isFloatType(t.type) ? { ...t, type: 'float32' } : t);
  if (precision === 'f32') return { ...typed, types };

  const { graph, values } = typed;
  const isFloat = (name: string) => !!name && isFloatType(types.get(name)?.type ?? 'int32') && !values.has(name);
  const boundary = new Set([...graph.inputs.map((i) => i.name), ...graph.outputs.map((o) => o.name), ...keep].filter(isFloat));
  for (const [name, t] of types) if (isFloatType(t.type) && !boundary.has(name)) types.set(name, { ...t, type: floatType });
  const twin = (name: string) => (boundary.has(name) ? `${name}::f16` : name);
  const cast = (from: string, to: string, onnxType: number): Node => ({
    name: `${to}::cast`,
    opType: 'Cast',
    domain: '',
    inputs: [from],
    outputs: [to],
    attrs: new Attrs(new Map([['to', onnxType]]), `Cast node '${to}::cast'`),
  });

  const nodes: Node[] = [];
  for (const input of graph.inputs) {
    if (!boundary.has(input.name)) continue;
    types.set(twin(input.name), { ...types.get(input.name)!, type: floatType });
    nodes.push(cast(input.name, twin(input.name), ONNX_FLOAT16));
  }
  for (const node of typed.nodes) {
    nodes.push({ ...node, inputs: node.inputs.map(twin), outputs: node.outputs.map(twin) });
    for (const y of node.outputs) {
      if (!boundary.has(y)) continue;
      types.set(twin(y), { ...types.get(y)!, type: floatType });
      nodes.push(cast(twin(y), y, ONNX_FLOAT));
    }
  }
  return { ...typed, types, nodes };
}
