import { ModelError } from '../../errors.js';
import { isFloatType, type Node } from '../../model/graph.js';
import type { OpInput } from '../types.js';

/** `segscope::X node 'name'`, the start of every error about the node. */
export const where = (node: Node): string => `${node.opType} node '${node.name}'`;

/**
 * The node's inputs `names` (its first inputs, in order), each present and of
 * a float type; a ModelError naming the node and the input otherwise.
 */
export function floatInputs(node: Node, inputs: OpInput[], names: readonly string[]): OpInput[] {
  return names.map((name, k) => {
    const x = inputs[k];
    if (!x?.name) throw new ModelError(`${where(node)}: input ${k} (${name}) is missing`);
    if (!isFloatType(x.type)) throw new ModelError(`${where(node)}: input ${k} (${name}, '${x.name}') must be a float tensor, got ${x.type}`);
    return x;
  });
}

/** Throws unless `x` has shape `dims`. */
export function expectDims(node: Node, what: string, x: OpInput, dims: readonly number[], why = ''): void {
  if (x.dims.length !== dims.length || x.dims.some((d, a) => d !== dims[a])) {
    throw new ModelError(`${where(node)}: ${what} '${x.name}' has shape [${x.dims}], expected [${dims}]${why && ` (${why})`}`);
  }
}

/** Refuses attributes outside `known`, so that a misspelt one is never ignored. */
export function knownAttrs(node: Node, known: readonly string[]): void {
  for (const name of node.attrs.names()) {
    if (!known.includes(name)) throw new ModelError(`${where(node)}: unknown attribute '${name}' (expected ${known.join(', ') || 'none'})`);
  }
}
