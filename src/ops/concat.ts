import { ModelError } from '../errors.js';
import { axis } from '../model/dims.js';
import type { Node } from '../model/graph.js';
import { sizeOf } from '../model/graph.js';
import type { Kernel, OpImpl, OpInput, TensorType } from './types.js';
import { collapseAxes, flatMain, grid, storage, stridedIndex, wgslType } from './wgsl.js';

/**
 * Concat: one dispatch per input, each copying its input into its slice of
 * the output. Seen as [outer, size along axis * inner], input k is a block of
 * columns starting at (sizes of inputs before k) * inner in every row.
 */

const WORKGROUP = 256;

/** The concatenation axis, normalised; the attribute is required from opset 4 (default 1 before). */
const concatAxis = (node: Node, rank: number, opset: number): number =>
  axis(node, node.attrs.int('axis', opset < 4 ? 1 : undefined), rank);

function infer(node: Node, inputs: OpInput[], opset: number): TensorType[] {
  const where = `Concat node '${node.name}'`;
  const first = inputs[0];
  if (!first || inputs.some((x) => !x.name)) throw new ModelError(`${where}: expected one or more inputs, none missing`);
  const rank = first.dims.length;
  if (rank === 0) throw new ModelError(`${where}: cannot concatenate scalars`);
  const a = concatAxis(node, rank, opset);
  for (const x of inputs) {
    if (x.type !== first.type) throw new ModelError(`${where}: inputs mix ${first.type} and ${x.type}`);
    if (x.dims.length !== rank || x.dims.some((d, k) => k !== a && d !== first.dims[k])) {
      throw new ModelError(`${where}: input '${x.name}' of shape [${x.dims}] does not match [${first.dims}] outside axis ${a}`);
    }
  }
  const dims = [...first.dims];
  dims[a] = inputs.reduce((s, x) => s + x.dims[a]!, 0);
  return [{ type: first.type, dims }];
}

function kernels(node: Node, inputs: OpInput[], [out]: TensorType[], opset: number): Kernel[] {
  const a = concatAxis(node, out!.dims.length, opset);
  const outer = sizeOf(out!.dims.slice(0, a));
  const inner = sizeOf(out!.dims.slice(a + 1));
  const rowOut = out!.dims[a]! * inner;
  const t = wgslType(out!.type);
  let offset = 0;
  return inputs.flatMap((x, index): Kernel[] => {
    const row = x.dims[a]! * inner;
    const start = offset * inner;
    offset += x.dims[a]!;
    const n = outer * row;
    if (n === 0) return [];
    const target = stridedIndex(collapseAxes([outer, row], [rowOut, 1]));
    return [
      {
        label: 'concat_part',
        wgsl: `${storage(0, 'X', t, 'read')}
${storage(1, 'Y', t, 'read_write')}
${flatMain(WORKGROUP, `  if (i >= ${n}u) { return; }
  Y[${start}u + ${target}] = X[i];`)}`,
        workgroups: grid(n, WORKGROUP),
        bindings: [
          { kind: 'input', index },
          { kind: 'output', index: 0 },
        ],
      },
    ];
  });
}

export const concatOps: Record<string, OpImpl> = {
  Concat: { infer, kernels },
};
