import { ModelError } from '../errors.js';
import type { Node } from '../model/graph.js';
import { sizeOf } from '../model/graph.js';
import type { Kernel, OpImpl, OpInput, TensorType } from './types.js';
import { flatMain, grid, storage, strides, wgslType } from './wgsl.js';

/**
 * Transpose, and the strided index math the data-movement and elementwise
 * ops share: thread `i` walks a row-major shape and reads (or writes) the
 * element at `sum(coord[a] * stride[a])` of another buffer.
 */

const WORKGROUP = 256;

/** A shape walked row-major, and the stride each of its axes has in another buffer (0: broadcast). */
export interface StridedView {
  dims: number[];
  strides: number[];
}

/**
 * Drops size-1 axes and merges neighbours the other buffer walks
 * contiguously (outer stride = inner stride * inner size, which two broadcast
 * axes satisfy too), so the shader does as few divisions as possible: a
 * per-channel [C,1,1] operand against [1,C,H,W] becomes dims [C, H*W] with
 * strides [1, 0].
 */
export function collapseAxes(dims: readonly number[], srcStrides: readonly number[]): StridedView {
  const view: StridedView = { dims: [], strides: [] };
  dims.forEach((d, a) => {
    if (d === 1) return;
    const last = view.dims.length - 1;
    if (last >= 0 && view.strides[last] === srcStrides[a]! * d) {
      view.dims[last] *= d;
      view.strides[last] = srcStrides[a]!;
    } else {
      view.dims.push(d);
      view.strides.push(srcStrides[a]!);
    }
  });
  return view;
}

/**
 * WGSL u32 expression of `sum(coord[a] * strides[a])`, the coordinates being
 * those of the flat index `i` (< the view's size: callers guard it) in
 * `view.dims`. Axes of stride 0 cost nothing.
 */
export function stridedIndex(view: StridedView, i = 'i'): string {
  const total = sizeOf(view.dims);
  const rowMajor = strides(view.dims);
  const terms = view.dims.flatMap((d, a) => {
    const s = view.strides[a]!;
    if (s === 0) return [];
    const step = rowMajor[a]!;
    let coord = step === 1 ? i : `(${i} / ${step}u)`;
    // The outermost axis needs no modulo: i / step < d already.
    if (step * d < total) coord = `(${coord} % ${d}u)`;
    return [s === 1 ? coord : `${coord} * ${s}u`];
  });
  return terms.join(' + ') || '0u';
}

/** The permutation of the node (default: reversed axes), checked against the rank. */
function permutation(node: Node, rank: number): number[] {
  const perm = node.attrs.ints('perm', Array.from({ length: rank }, (_, a) => rank - 1 - a));
  const seen = new Set(perm);
  if (perm.length !== rank || seen.size !== rank || perm.some((p) => !Number.isInteger(p) || p < 0 || p >= rank)) {
    throw new ModelError(`Transpose node '${node.name}': perm [${perm}] is not a permutation of the ${rank} axes of the input`);
  }
  return perm;
}

export const transposeOps: Record<string, OpImpl> = {
  Transpose: {
    infer: (node, [x]) => [{ type: x!.type, dims: permutation(node, x!.dims.length).map((p) => x!.dims[p]!) }],
    kernels: (node: Node, [x]: OpInput[], [out]: TensorType[]): Kernel[] => {
      const inStrides = strides(x!.dims);
      const perm = permutation(node, x!.dims.length);
      const source = collapseAxes(out!.dims, perm.map((p) => inStrides[p]!));
      const n = sizeOf(out!.dims);
      const t = wgslType(x!.type);
      return [
        {
          label: `transpose_${source.dims.length}d`,
          wgsl: `${storage(0, 'X', t, 'read')}
${storage(1, 'Y', t, 'read_write')}
${flatMain(WORKGROUP, `  if (i >= ${n}u) { return; }
  Y[i] = X[${stridedIndex(source)}];`)}`,
          workgroups: grid(n, WORKGROUP),
          bindings: [
            { kind: 'input', index: 0 },
            { kind: 'output', index: 0 },
          ],
        },
      ];
    },
  },
};
