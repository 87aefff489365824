/**
 * Concats computed in place: each input of a Concat is written by its
 * producer straight into its slice of the output, and the Concat costs no
 * dispatch and no copy. DeepLabv3+ joins its ASPP branches and its decoder's
 * features this way; on lavapipe every dispatch costs about 0.15 ms before
 * any work at 16 threads (bench/roofline.ts), and the decoder's concat at
 * 513x513 moves 40 MB. What the plan does with the result: an input's
 * buffer root (after alias ops) is not placed on its own but at its offset
 * within the output's, and the output lives from its first input's
 * producer to its last reader.
 */
import type { Node } from '../model/graph.js';
import { opKey } from '../model/graph.js';
import type { TypedGraph } from '../model/infer.js';
import type { OpImpl } from '../ops/types.js';
import { gpuElementBytes, gpuTensorBytes } from '../kernels/wgsl.js';
import type { Window } from '../kernels/split.js';

/** Where a tensor computed in place lives: `offset` bytes into the output `container`. */
export interface Part {
  container: string;
  offset: number;
}

export interface InPlace {
  /** The nodes that run no kernels: their inputs are their output already. */
  nodes: ReadonlySet<Node>;
  /** Buffer root of an input -> its place in the output of its node. */
  parts: ReadonlyMap<string, Part>;
}

/**
 * The nodes of `typed` whose op lays its inputs out as contiguous blocks of
 * its output (OpImpl.inPlace), and which can take them in place: every input
 * a tensor computed by a kernel (not a constant, not a graph input, not
 * placed inside another node's output, not itself such an output), its own
 * buffer root, stored as the output is, no two the same, and each starting
 * at a multiple of `alignment` bytes (the device's
 * minStorageBufferOffsetAlignment: kernels bind it at that offset). Others
 * keep their copies.
 */
export function planInPlace(
  typed: TypedGraph,
  impls: ReadonlyMap<string, OpImpl>,
  root: (name: string) => string,
  isConstant: (name: string) => boolean,
  alignment: number,
): InPlace {
  const { types } = typed;
  const computed = new Set(typed.nodes.filter((n) => !impls.get(opKey(n))!.alias).flatMap((n) => n.outputs));
  const nodes = new Set<Node>();
  const parts = new Map<string, Part>();
  const containers = new Set<string>();
  for (const node of typed.nodes) {
    const offsets = impls.get(opKey(node))!.inPlace?.(
      node,
      node.inputs.map((name) => types.get(name)!),
      typed.graph.opset,
    );
    if (!offsets) continue;
    const out = node.outputs[0]!;
    const roots = node.inputs.map(root);
    const outType = types.get(out)!.type;
    const elementBytes = gpuElementBytes(outType);
    const fits = node.inputs.every((name, k) => {
      const r = roots[k]!;
      return (
        !isConstant(name) &&
        computed.has(r) &&
        !parts.has(r) &&
        !containers.has(r) &&
        roots.indexOf(r) === k &&
        types.get(name)!.type === outType &&
        types.get(r)!.type === outType &&
        gpuTensorBytes(types.get(r)!) === gpuTensorBytes(types.get(name)!) &&
        gpuTensorBytes(types.get(name)!) > 0 &&
        (offsets[k]! * elementBytes) % alignment === 0
      );
    });
    if (!fits) continue;
    nodes.add(node);
    containers.add(out);
    roots.forEach((r, k) => {
      parts.set(r, { container: out, offset: offsets[k]! * elementBytes });
    });
  }
  return { nodes, parts };
}

/**
 * The bytes of buffer root `r` a binding covers, as a range of the buffer it
 * is placed in: its container's when it is a part. Two bindings of one
 * kernel overlap when they name the same tensor here with overlapping
 * windows (a whole tensor overlaps everything of it).
 */
export function extentIn(inPlace: InPlace, r: string, window: Window | undefined, bytes: number): { tensor: string; window?: Window } {
  const part = inPlace.parts.get(r);
  if (!part) return { tensor: r, ...(window ? { window } : {}) };
  return { tensor: part.container, window: { offset: part.offset + (window?.offset ?? 0), bytes: window?.bytes ?? bytes } };
}
