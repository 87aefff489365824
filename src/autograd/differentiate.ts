import { InputError, UnsupportedOpError } from '../errors.js';
import { type Graph, INTERNAL_OP_PREFIX, isFloatType, producers, type ValueInfo } from '../model/graph.js';
import type { TypedGraph } from '../model/infer.js';
import { GraphBuilder } from './builder.js';
import { RULES } from './rules.js';

/**
 * Reverse-mode differentiation as a graph transform: the forward graph, a
 * seed node for the target, and the backward nodes of every node between the
 * explained tensors and the output, in one graph that the engine plans,
 * fuses and runs like any model (memory planned like the forward pass).
 *
 * The target is pytorch-grad-cam's SemanticSegmentationTarget: the sum, over
 * a mask of pixels, of one class's logit in the output [N,K,H,W]. Its
 * gradient (the seed) is that mask in channel `class` and zero elsewhere,
 * made on the GPU by SegmentationSeed from three inputs fed at run time: the
 * class index, a mask, and whether to use the prediction (argmax == class)
 * instead of the mask; so one compiled program serves every class and mask.
 */

/** The inputs the differentiated graph adds to the model's. */
export const SEED_INPUTS = {
  classIndex: 'segscope/target_class',
  mask: 'segscope/target_mask',
  usePrediction: 'segscope/target_use_prediction',
} as const;

export interface Differentiated {
  /** The model's graph with the seed and backward nodes; outputs: the model's output, then each gradient. */
  graph: Graph;
  /** The explained tensor -> the name of its gradient in `graph`. */
  gradients: Map<string, string>;
}

/**
 * Differentiates `output` (a float [N,K,H,W] output of `typed`) with respect
 * to each tensor of `wrt`. InputError when a tensor does not reach the
 * output; UnsupportedOpError naming the op and node when a node between
 * them has no backward rule.
 */
export function differentiate(typed: TypedGraph, output: string, wrt: readonly string[]): Differentiated {
  const { graph } = typed;
  const model = graph.source || 'model';
  const outType = typed.types.get(output);
  if (!graph.outputs.some((o) => o.name === output) || !outType) {
    throw new InputError(`output '${output}' is not an output of ${model}; its outputs are ${graph.outputs.map((o) => `'${o.name}'`).join(', ')}`);
  }
  if (outType.dims.length !== 4 || !isFloatType(outType.type)) {
    throw new InputError(`output '${output}' has shape [${outType.dims.join(',')}]: a class target needs [N,K,H,W] float logits`);
  }

  // Tensors the output depends on (walking back), and tensors that depend on an explained one (walking forward).
  const producer = producers(typed.nodes);
  const feedsOutput = new Set<string>([output]);
  for (const node of [...typed.nodes].reverse()) {
    if (node.outputs.some((o) => feedsOutput.has(o))) for (const i of node.inputs) if (i) feedsOutput.add(i);
  }
  const dependsOnWrt = new Set<string>(wrt);
  for (const node of typed.nodes) {
    if (node.inputs.some((i) => dependsOnWrt.has(i))) for (const o of node.outputs) if (o) dependsOnWrt.add(o);
  }
  for (const name of wrt) {
    if (!typed.types.has(name)) throw new InputError(`tensor '${name}' is not in ${model}`);
    if (!feedsOutput.has(name))
      throw new InputError(`tensor '${name}' does not reach output '${output}': the output does not depend on it, so it has no gradient`);
    if (!producer.has(name) && !graph.inputs.some((i) => i.name === name)) {
      throw new InputError(`tensor '${name}' is a constant of ${model}: only computed tensors have gradients`);
    }
  }

  const b = new GraphBuilder(typed);
  const [seed] = b.emit(`${INTERNAL_OP_PREFIX}SegmentationSeed`, [output, SEED_INPUTS.classIndex, SEED_INPUTS.mask, SEED_INPUTS.usePrediction], {}, 'target');
  const incoming = new Map<string, string[]>([[output, [seed!]]]);
  const add = (tensor: string, grad: string) => incoming.set(tensor, [...(incoming.get(tensor) ?? []), grad]);
  const wrtSet = new Set(wrt);
  for (const node of [...typed.nodes].reverse()) {
    const reached = node.outputs.filter((o) => incoming.has(o));
    if (!reached.length) continue;
    // Nodes upstream of every explained tensor need no gradient.
    const wanted = (k: number) => !!node.inputs[k] && dependsOnWrt.has(node.inputs[k]!) && feedsOutput.has(node.inputs[k]!);
    if (!node.inputs.some((_, k) => wanted(k))) continue;
    if (reached.some((o) => o !== node.outputs[0])) {
      throw new UnsupportedOpError(
        `${node.opType} node '${node.name}': the gradient reaches its output '${reached.find((o) => o !== node.outputs[0])}', and only a first output has a backward rule`,
      );
    }
    const rule = RULES[node.opType];
    if (!rule) {
      throw new UnsupportedOpError(
        `${node.opType} node '${node.name}' has no backward rule: it lies between ${[...wrtSet].map((w) => `'${w}'`).join(', ')} and output '${output}'`,
      );
    }
    const dy = b.sum(incoming.get(node.outputs[0]!)!, node.name);
    // Summed once: an explained tensor's gradient is read from here at the end.
    incoming.set(node.outputs[0]!, [dy]);
    rule(node, dy, b, wanted).forEach((grad, k) => {
      if (grad && wanted(k)) add(node.inputs[k]!, grad);
    });
  }

  const gradients = new Map<string, string>();
  for (const name of wrt) {
    const grads = incoming.get(name);
    if (!grads) throw new InputError(`tensor '${name}' received no gradient from output '${output}'`);
    gradients.set(name, b.sum(grads, name));
  }
  const [N, , H, W] = outType.dims as [number, number, number, number];
  const seedInputs: ValueInfo[] = [
    { name: SEED_INPUTS.classIndex, type: 'float32', dims: [1] },
    { name: SEED_INPUTS.mask, type: 'float32', dims: [N, 1, H, W] },
    { name: SEED_INPUTS.usePrediction, type: 'float32', dims: [1] },
  ];
  return {
    graph: {
      ...graph,
      nodes: [...graph.nodes, ...b.nodes],
      initializers: new Map([...graph.initializers, ...b.initializers]),
      inputs: [...graph.inputs, ...seedInputs],
      outputs: [
        graph.outputs.find((o) => o.name === output)!,
        ...[...gradients].map(([x, name]) => ({ name, type: 'float32' as const, dims: typed.types.get(x)!.dims })),
      ],
    },
    gradients,
  };
}
