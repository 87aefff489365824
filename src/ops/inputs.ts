import { ModelError } from '../errors.js';
import type { Node } from '../model/graph.js';
import type { OpInput } from './types.js';

/** A compile-time integer input (shape, axes), or a ModelError naming it. */
export function constInts(node: Node, inputs: OpInput[], index: number): number[] {
  const v = inputs[index]?.value;
  if (!v) {
    throw new ModelError(`${node.opType} node '${node.name}': input ${index} ('${inputs[index]?.name ?? ''}') must be known at load time`);
  }
  return Array.from(v.data);
}
