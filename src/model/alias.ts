import { type HostTensor, opKey } from './graph.js';
import type { TypedGraph } from './infer.js';

/** Where alias ops (Reshape, Flatten, Squeeze…: output 0 is input 0 in another shape) leave each tensor. */
export interface Aliases {
  /** The tensor whose buffer `name` shares: itself unless an alias op made it. */
  root(name: string): string;
  /** The load-time constants, with the outputs of alias ops over constants added: the constant in its new shape. */
  values: ReadonlyMap<string, HostTensor>;
}

/**
 * Follows the alias ops of `typed` (`isAlias` tells them by opKey): the
 * one place that decides which tensors share a buffer, for the buffer plan
 * and for the storage precision, which gives such tensors one type.
 */
export function resolveAliases(typed: TypedGraph, isAlias: (opType: string) => boolean): Aliases {
  const values = new Map(typed.values);
  const rootOf = new Map<string, string>();
  const root = (name: string): string => rootOf.get(name) ?? name;
  for (const node of typed.nodes) {
    if (!isAlias(opKey(node))) continue;
    const [x, y] = [node.inputs[0]!, node.outputs[0]!];
    const value = values.get(x);
    if (value) values.set(y, { ...value, dims: typed.types.get(y)!.dims });
    else rootOf.set(y, root(x));
  }
  return { root, values };
}
