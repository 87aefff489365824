import { ValueNeededError } from '../errors.js';
import type { Node } from '../model/graph.js';
import type { OpInput } from './types.js';

/** The values of a compile-time input (shape, axes, scales), or a ValueNeededError naming it. */
export function constInts(node: Node, inputs: OpInput[], index: number): number[] {
  const v = inputs[index]?.value;
  if (!v) {
    const name = inputs[index]?.name ?? '';
    throw new ValueNeededError(`${node.opType} node '${node.name}': input ${index} ('${name}') must be known at load time`, [name]);
  }
  return Array.from(v.data);
}
