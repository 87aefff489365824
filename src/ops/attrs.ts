import { UnsupportedOpError } from '../errors.js';
import type { Node } from '../model/graph.js';
import { isFloatType } from '../model/graph.js';
import type { OpInput } from './types.js';

/** Refuses attributes the op does not know, so none is silently ignored. */
export function checkAttrs(node: Node, known: readonly string[]): void {
  for (const name of node.attrs.names()) {
    if (!known.includes(name)) throw new UnsupportedOpError(`${node.opType} node '${node.name}': attribute '${name}' is not supported`);
  }
}

export function requireFloat(node: Node, inputs: OpInput[]): void {
  for (const x of inputs) {
    if (x.name && !isFloatType(x.type)) {
      const what = `${node.opType} node '${node.name}': input '${x.name}' has type ${x.type}`;
      throw new UnsupportedOpError(`${what}; only floating-point tensors are supported`);
    }
  }
}
