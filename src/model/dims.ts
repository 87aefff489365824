import { ModelError } from '../errors.js';
import type { Node } from './graph.js';
import { sizeOf } from './graph.js';

/** Shape arithmetic shared by the GPU ops' shape rules and CPU constant folding. */

/** Normalises a possibly negative axis, or throws naming the node. */
export function axis(node: Node, a: number, rank: number): number {
  if (a < -rank || a >= rank) throw new ModelError(`${node.opType} node '${node.name}': axis ${a} is out of range for rank ${rank}`);
  return a < 0 ? a + rank : a;
}

export function reshapeDims(node: Node, input: readonly number[], shape: number[], allowZero: boolean): number[] {
  const dims = shape.map((d, i) => (d === 0 && !allowZero ? input[i]! : d));
  const unknown = dims.indexOf(-1);
  if (unknown !== dims.lastIndexOf(-1)) throw new ModelError(`Reshape node '${node.name}': more than one -1 in shape [${shape}]`);
  const known = dims.reduce((a, d) => (d === -1 ? a : a * d), 1);
  if (unknown >= 0) {
    if (known === 0 || sizeOf(input) % known !== 0) {
      throw new ModelError(`Reshape node '${node.name}': cannot reshape [${input}] to [${shape}]`);
    }
    dims[unknown] = sizeOf(input) / known;
  }
  if (dims.some((d) => d < 0) || sizeOf(dims) !== sizeOf(input)) {
    throw new ModelError(`Reshape node '${node.name}': cannot reshape [${input}] to [${shape}]`);
  }
  return dims;
}

export function squeezeDims(node: Node, dims: readonly number[], axes: number[] | undefined): number[] {
  const drop = new Set((axes ?? dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => axis(node, a, dims.length)));
  for (const a of drop) {
    if (dims[a] !== 1) throw new ModelError(`Squeeze node '${node.name}': axis ${a} has size ${dims[a]}, not 1`);
  }
  return dims.filter((_, i) => !drop.has(i));
}

export function unsqueezeDims(node: Node, dims: readonly number[], axes: number[]): number[] {
  const rank = dims.length + axes.length;
  const insert = new Set(axes.map((a) => axis(node, a, rank)));
  if (insert.size !== axes.length) throw new ModelError(`Unsqueeze node '${node.name}': repeated axes [${axes}]`);
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(insert.has(i) ? 1 : dims[j++]!);
  return out;
}

export function flattenDims(node: Node, dims: readonly number[], a: number): number[] {
  // Flatten's axis may equal the rank (everything in the first dimension); a negative one counts from the rank.
  if (a < -dims.length || a > dims.length) throw new ModelError(`Flatten node '${node.name}': axis ${a} is out of range for rank ${dims.length}`);
  const k = a < 0 ? a + dims.length : a;
  return [sizeOf(dims.slice(0, k)), sizeOf(dims.slice(k))];
}

/** Numpy-style broadcast of several shapes, or a ModelError naming the node. */
export function broadcastDims(node: Node, shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s[s.length - rank + i] ?? 1;
      if (k === d || k === 1) continue;
      if (d !== 1) {
        throw new ModelError(`${node.opType} node '${node.name}': shapes ${shapes.map((s) => `[${s.join(',')}]`).join(' and ')} do not broadcast`);
      }
      d = k;
    }
    out.push(d);
  }
  return out;
}
