import { Attrs, type AttrValue, type HostTensor, INTERNAL_OP_PREFIX, type Node, type TensorType, type TypedInput } from '../model/graph.js';
import type { TypedGraph } from '../model/infer.js';

/**
 * What a backward rule builds with: the forward graph's types and constant
 * values, and a sink for new nodes and constants. The names it makes start
 * with 'segscope/' (not the op types' 'segscope::', which passes read as a
 * fused node's suffix) and skip any the model already uses.
 */
export class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly initializers = new Map<string, HostTensor>();
  private count = 0;

  constructor(readonly typed: TypedGraph) {}

  get opset(): number {
    return this.typed.graph.opset;
  }

  typeOf(name: string): TensorType {
    const t = this.typed.types.get(name);
    if (!t) throw new Error(`autograd: tensor '${name}' has no type`);
    return t;
  }

  /** A node input as ops see it at compile time (with its value when known). */
  input(name: string): TypedInput {
    if (!name) return { name, type: 'float32', dims: [] };
    return { name, ...this.typeOf(name), value: this.typed.values.get(name) };
  }

  /** Adds a node; returns its output names. `for` names the forward node it differentiates, for errors and profiles. */
  emit(opType: string, inputs: string[], attrs: Record<string, AttrValue>, forNode: string, outputs = 1): string[] {
    const name = this.fresh(`grad${forNode.startsWith('/') ? '' : '/'}${forNode}/${opType.replace(INTERNAL_OP_PREFIX, '')}`);
    const outs = Array.from({ length: outputs }, (_, k) => `${name}:${k}`);
    this.nodes.push({ name, opType, domain: '', inputs, outputs: outs, attrs: new Attrs(new Map(Object.entries(attrs)), `node '${name}' (${opType})`) });
    return outs;
  }

  /** A constant tensor as a new initializer; returns its name. */
  constant(hint: string, value: HostTensor): string {
    const name = this.fresh(`const/${hint}`);
    this.initializers.set(name, value);
    return name;
  }

  /** A name no tensor or node of the model has: segscope/<what>_<k>. */
  private fresh(what: string): string {
    let name: string;
    do name = `segscope/${what}_${this.count++}`;
    while (this.typed.types.has(name) || this.typed.graph.nodes.some((n) => n.name === name));
    return name;
  }

  /** An int64 constant (shapes, axes). */
  ints(hint: string, values: readonly number[]): string {
    return this.constant(hint, { type: 'int64', dims: [values.length], data: Float64Array.from(values) });
  }

  /** The sum of gradients reaching one tensor from several consumers. */
  sum(grads: readonly string[], forNode: string): string {
    let total = grads[0]!;
    for (const g of grads.slice(1)) [total] = this.emit('Add', [total, g], {}, forNode);
    return total;
  }

  /**
   * `grad`, shaped `out` like a broadcasting op's output, summed back to the
   * shape `dims` of the input it came from: over the axes that input
   * broadcast along, then reshaped when its rank is lower (numpy's rule).
   */
  unbroadcast(grad: string, out: readonly number[], dims: readonly number[], forNode: string): string {
    const lead = out.length - dims.length;
    const axes = out.flatMap((d, a) => (a < lead || (dims[a - lead] === 1 && d !== 1) ? [a] : []));
    if (!axes.length && !lead) return grad;
    const [summed] = axes.length
      ? this.opset >= 13
        ? this.emit('ReduceSum', [grad, this.ints('axes', axes)], { keepdims: 1 }, forNode)
        : this.emit('ReduceSum', [grad], { axes, keepdims: 1 }, forNode)
      : [grad];
    return lead ? this.emit('Reshape', [summed!, this.ints('shape', dims)], {}, forNode)[0]! : summed!;
  }
}
