import { ModelError } from '../errors.js';
import type { Node } from '../model/graph.js';
import { sizeOf } from '../model/graph.js';
import type { Kernel } from '../kernels/types.js';
import type { OpImpl, OpInput, TensorType } from './types.js';
import { collapseAxes, converted, flatMain, grid, storage, stridedIndex, strides, wgslType } from '../kernels/wgsl.js';

/** Transpose: a strided gather, one thread per output element. */

const WORKGROUP = 256;

/** The permutation of the node (default: reversed axes), checked against the rank. */
function permutation(node: Node, rank: number): number[] {
  const perm = node.attrs.ints(
    'perm',
    Array.from({ length: rank }, (_, a) => rank - 1 - a),
  );
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
      const source = collapseAxes(
        out!.dims,
        perm.map((p) => inStrides[p]!),
      );
      const n = sizeOf(out!.dims);
      return [
        {
          label: `transpose_${source.dims.length}d`,
          wgsl: `${storage(0, 'X', wgslType(x!.type))}
${storage(1, 'Y', wgslType(out!.type))}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  Y[i] = ${converted(x!.type, out!.type, `X[${stridedIndex(source)}]`)};`,
)}`,
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
