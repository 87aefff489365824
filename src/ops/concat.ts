import { ModelError } from '../errors.js';
import { axis } from '../model/dims.js';
import type { Node } from '../model/graph.js';
import { sizeOf, typesAgree } from '../model/graph.js';
import { runWindow, splitUnits, type Strided, type Window } from '../kernels/split.js';
import type { Kernel, KernelTarget } from '../kernels/types.js';
import type { OpImpl, OpInput, TensorType } from './types.js';
import { converted, flatMain, gpuElementBytes, grid, sizesFromBuffer, storage, wgslType } from '../kernels/wgsl.js';

/**
 * Concat: one dispatch per input, each copying its input into its slice of
 * the output. Seen as [outer, size along axis * inner], input k is a block of
 * columns starting at (sizes of inputs before k) * inner in every row. An
 * output larger than one binding is written in runs of rows (or of one row's
 * elements), each binding windows of the input and output (kernels/split.ts).
 * Where outer is 1 (batch 1 along channels), the plan usually has the inputs
 * computed in their slices instead (`inPlace`, runtime/in-place.ts), and
 * these copies are the fallback.
 */

const WORKGROUP = 256;

/** The concatenation axis, normalised; the attribute is required from opset 4 (default 1 before). */
const concatAxis = (node: Node, rank: number, opset: number): number => axis(node, node.attrs.int('axis', opset < 4 ? 1 : undefined), rank);

function infer(node: Node, inputs: OpInput[], opset: number): TensorType[] {
  const where = `Concat node '${node.name}'`;
  const first = inputs[0];
  if (!first || inputs.some((x) => !x.name)) throw new ModelError(`${where}: expected one or more inputs, none missing`);
  const rank = first.dims.length;
  if (rank === 0) throw new ModelError(`${where}: cannot concatenate scalars`);
  const a = concatAxis(node, rank, opset);
  for (const x of inputs) {
    if (!typesAgree(x.type, first.type)) throw new ModelError(`${where}: inputs mix ${first.type} and ${x.type}`);
    if (x.dims.length !== rank || x.dims.some((d, k) => k !== a && d !== first.dims[k])) {
      throw new ModelError(`${where}: input '${x.name}' of shape [${x.dims}] does not match [${first.dims}] outside axis ${a}`);
    }
  }
  const dims = [...first.dims];
  dims[a] = inputs.reduce((s, x) => s + x.dims[a]!, 0);
  return [{ type: first.type, dims }];
}

function kernels(node: Node, inputs: OpInput[], [out]: TensorType[], opset: number, { limits }: KernelTarget): Kernel[] {
  const a = concatAxis(node, out!.dims.length, opset);
  const outer = sizeOf(out!.dims.slice(0, a));
  const inner = sizeOf(out!.dims.slice(a + 1));
  const rowOut = out!.dims[a]! * inner;
  const bytes = gpuElementBytes(out!.type);
  let offset = 0;
  return inputs.flatMap((x, index): Kernel[] => {
    const row = x.dims[a]! * inner;
    const start = offset * inner;
    offset += x.dims[a]!;
    if (outer * row === 0) return [];
    // One dispatch for the whole input; also what the plan's limit check refuses when a split is impossible.
    const whole = () => [copyKernel(x, out!, index, outer, row, rowOut, { x: 0, y: start })];
    const xBytes = gpuElementBytes(x.type);
    if (sizeOf(out!.dims) * bytes <= limits.maxBytes && sizeOf(x.dims) * xBytes <= limits.maxBytes) return whole();
    // Runs of whole rows, or of one row's elements when there is one row.
    const [units, length] = outer === 1 ? [row, 1] : [outer, row];
    const from: Strided = { unitBytes: length * xBytes, baseBytes: 0, elementBytes: xBytes };
    const to: Strided = { unitBytes: (outer === 1 ? 1 : rowOut) * bytes, baseBytes: start * bytes, elementBytes: bytes };
    const runs = splitUnits(units, [from, to], limits);
    if (!runs) return whole();
    return runs.map((run) => {
      const input = runWindow(from, run, limits);
      const output = runWindow(to, run, limits);
      // The run's last output row ends after this input's columns, not at the row's end.
      if (outer > 1) output.window.bytes -= (rowOut - row) * bytes;
      const [rows, elements] = outer === 1 ? [1, run[1] - run[0]] : [run[1] - run[0], row];
      return copyKernel(x, out!, index, rows, elements, rowOut, { x: input.shift, y: output.shift }, { x: input.window, y: output.window });
    });
  });
}

/**
 * Copies `rows` rows of `row` elements of input `index` into rows of `rowOut`
 * in the output, from element `shift.x` of the input (window) and `shift.y`
 * of the output (window). The sizes come from a buffer (sizesFromBuffer), so
 * the copies of a model's concats share one pipeline per pair of types
 * (ResNet-101 DeepLabv3+: 7 became 1).
 */
function copyKernel(
  x: TensorType,
  out: TensorType,
  index: number,
  rows: number,
  row: number,
  rowOut: number,
  shift: { x: number; y: number },
  windows?: { x: Window; y: Window },
): Kernel {
  const n = rows * row;
  const sizes = sizesFromBuffer({ n, row, rowOut, xShift: shift.x, yShift: shift.y }, 2);
  return {
    label: 'concat_part',
    wgsl: `${storage(0, 'X', wgslType(x.type))}
${storage(1, 'Y', wgslType(out.type))}
${sizes.declaration}
${flatMain(
  WORKGROUP,
  `${sizes.lets}
  if (i >= n) { return; }
  Y[yShift + i / row * rowOut + i % row] = ${converted(x.type, out.type, 'X[xShift + i]')};`,
)}`,
    workgroups: grid(n, WORKGROUP),
    bindings: [
      { kind: 'input', index, ...(windows ? { window: windows.x } : {}) },
      { kind: 'output', index: 0, ...(windows ? { window: windows.y } : {}) },
      sizes.binding,
    ],
  };
}

/** With only ones before the axis (batch 1 along channels), each input is one block of the output, after those before it. */
function inPlace(node: Node, inputs: TensorType[], opset: number): number[] | undefined {
  const dims = inputs[0]!.dims;
  const a = concatAxis(node, dims.length, opset);
  if (sizeOf(dims.slice(0, a)) !== 1) return undefined;
  let offset = 0;
  return inputs.map((x) => {
    const start = offset;
    offset += sizeOf(x.dims);
    return start;
  });
}

export const concatOps: Record<string, OpImpl> = {
  Concat: { infer, kernels, inPlace },
};
