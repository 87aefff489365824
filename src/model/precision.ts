import { Attrs, isFloatType, type Node, type TensorType } from './graph.js';
import type { TypedGraph } from './infer.js';
import { resolveAliases } from './alias.js';

/** What float tensors and weights are stored as on the GPU. Kernels compute in f32 either way. */
export type Precision = 'f32' | 'f16';
export const PRECISIONS: readonly Precision[] = ['f32', 'f16'];

/** ONNX TensorProto.DataType FLOAT, Cast's `to`. */
const ONNX_FLOAT = 1;

/**
 * Sets the type every float tensor is stored as on the GPU. Kernels declare
 * each binding by its own tensor's type and compute in f32, so a node may
 * read float16 and write float32 or the other way round.
 *
 * 'f32': float32, a float16 model's tensors too (its weights were widened at
 * load; this is how segscope has always run them).
 *
 * 'f16': float16, halving the memory and traffic of activations and weights,
 * except the tensors the host sees:
 * - graph inputs stay float32, read as such by their consumers;
 * - a graph output no node reads is written as float32 by its producer;
 * - a kept tensor (a capture) or a graph output that nodes read is computed
 *   as float16 under the name '<tensor>::f16', which its readers use, and a
 *   Cast node writes the float32 tensor from it. Capturing a tensor
 *   therefore never changes what the rest of the network computes.
 * Tensors joined by alias ops (Reshape, Flatten…), which share one buffer,
 * share one type: float32 when any of them is an input or such an output.
 * Constants are relabelled too, and stored as float16: the weights and biases
 * of Conv, Gemm and MatMul, and whatever a kernel packs from constants (a
 * conv's rearranged weights, BatchNorm's per-channel coefficients) is packed
 * as its constants are typed here (kernels/wgsl.ts storedFloats), and widened
 * to f32 where a kernel loads it. For a float16 model these are its own
 * values, exactly; a float32 model's are rounded once to float16 (after
 * BatchNorm is folded into its convs, model/passes.ts), like any activation.
 * Either way the weight memory halves. Tables an op derives from shapes
 * rather than from the model's values (Resize's interpolation weights)
 * stay f32.
 *
 * `typed.types` is copied, never changed: a session's typeOf() keeps
 * reporting the model's own types.
 */
export function storeFloatsAs(typed: TypedGraph, keep: ReadonlySet<string>, precision: Precision, isAlias: (opType: string) => boolean): TypedGraph {
  const types = new Map<string, TensorType>();
  for (const [name, t] of typed.types) types.set(name, isFloatType(t.type) ? { ...t, type: 'float32' } : t);
  if (precision === 'f32') return { ...typed, types };

  const { graph, values, nodes } = typed;
  const read = new Set(nodes.flatMap((n) => n.inputs));
  const { root } = resolveAliases(typed, isAlias);
  const float32Roots = new Set([...graph.inputs.map((i) => i.name), ...graph.outputs.map((o) => o.name).filter((o) => !read.has(o))].map(root));
  for (const [name, t] of types) if (isFloatType(t.type) && !float32Roots.has(root(name))) types.set(name, { ...t, type: 'float16' });

  const twinned = new Set([...keep, ...graph.outputs.map((o) => o.name)].filter((t) => types.get(t)?.type === 'float16' && !values.has(t)));
  const twin = (name: string) => (twinned.has(name) ? `${name}::f16` : name);
  const planned: Node[] = [];
  for (const node of nodes) {
    planned.push({ ...node, inputs: node.inputs.map(twin), outputs: node.outputs.map(twin) });
    for (const y of node.outputs.filter((t) => twinned.has(t))) {
      types.set(twin(y), types.get(y)!);
      types.set(y, { ...types.get(y)!, type: 'float32' });
      planned.push({
        name: `${y}::cast`,
        opType: 'Cast',
        domain: '',
        inputs: [twin(y)],
        outputs: [y],
        attrs: new Attrs(new Map([['to', ONNX_FLOAT]]), `Cast node '${y}::cast'`),
      });
    }
  }
  return { ...typed, types, nodes: planned };
}
