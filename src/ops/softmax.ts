import { ModelError } from '../errors.js';
import { axis } from '../model/dims.js';
import type { ElemType, Node } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import { combineAcross, ROW_THREADS, rowGrid, rowMain } from '../kernels/rows.js';
import type { Kernel } from '../kernels/types.js';
import type { OpImpl, TensorType } from './types.js';
import { collapseAxes, f32, flatMain, fromStorage, grid, storage, stridedIndex, toStorage, wgslType } from '../kernels/wgsl.js';

/**
 * Softmax and LogSoftmax over rows: `length` values `inner` apart. Before
 * opset 13 the input is coerced to 2-D at `axis` (default 1), so a row is
 * everything from `axis` on; from 13 on a row runs along the single axis
 * `axis` (default -1). Numerically stable: the row's max is subtracted first.
 */

const THREADS = 256;

interface Rows {
  count: number;
  length: number;
  inner: number;
  /** What the input and the output are stored as; the passes compute in f32. */
  xType: ElemType;
  yType: ElemType;
}

function rowsOf(node: Node, { dims, type }: TensorType, yType: ElemType, opset: number): Rows {
  const a = axis(node, node.attrs.int('axis', opset < 13 ? 1 : -1), dims.length);
  const length = opset < 13 ? sizeOf(dims.slice(a)) : dims[a]!;
  const inner = opset < 13 ? 1 : sizeOf(dims.slice(a + 1));
  return { count: sizeOf(dims) / length, length, inner, xType: type, yType };
}

/** Output of one element from `x`, the row max `m` and the sum `s` of exp(x - m). */
const outputs: Record<string, string> = {
  Softmax: 'exp(x - m) / s',
  LogSoftmax: '(x - m) - log(s)',
};

/**
 * The three passes over a row (max, sum of exponentials, output) by one
 * thread, or by a workgroup whose threads stride the row and combine their
 * partial max and sum in workgroup memory.
 */
function passes(op: string, { length, inner, xType, yType }: Rows, parallel: boolean): string {
  const loop = (body: string) =>
    `  for (var k = ${parallel ? 't' : '0u'}; k < ${length}u; k += ${parallel ? ROW_THREADS : 1}u) {
    let j = base + k * ${inner}u;
    let x = ${fromStorage(xType, 'X[j]')};
${body}
  }`;
  return `${loop('    m = max(m, x);')}
${parallel ? combineAcross('m', (a, b) => `max(${a}, ${b})`) : ''}
${loop('    s += exp(x - m);')}
${parallel ? combineAcross('s', (a, b) => `${a} + ${b}`) : ''}
${loop(`    Y[j] = ${toStorage(yType, outputs[op]!)};`)}`;
}

function softmaxKernel(op: string, rows: Rows): Kernel {
  const { count, length, inner, xType, yType } = rows;
  // Long rows get a workgroup each, so a coerced opset-11 softmax over a whole image is not one thread's work.
  const parallel = length >= ROW_THREADS;
  const row = parallel ? 'row' : 'i';
  const body = `  if (${row} >= ${count}u) { return; }
  let base = ${stridedIndex(collapseAxes([count / inner, inner], [length * inner, 1]), row)};
  var m = ${f32(-Infinity)};
  var s = 0.0f;
${passes(op, rows, parallel)}`;
  return {
    label: `${op.toLowerCase()}_${parallel ? 'workgroup' : 'thread'}`,
    wgsl: `${storage(0, 'X', wgslType(xType))}
${storage(1, 'Y', wgslType(yType))}
${parallel ? rowMain(body) : flatMain(THREADS, body)}`,
    workgroups: parallel ? rowGrid(count) : grid(count, THREADS),
    bindings: [
      { kind: 'input', index: 0 },
      { kind: 'output', index: 0 },
    ],
  };
}

function softmaxOp(op: string): OpImpl {
  return {
    infer(node, [x], opset) {
      if (!isFloatType(x!.type)) throw new ModelError(`${op} node '${node.name}': expects a float tensor, got ${x!.type}`);
      rowsOf(node, x!, x!.type, opset);
      return [{ type: x!.type, dims: [...x!.dims] }];
    },
    kernels: (node, [x], [y], opset) => [softmaxKernel(op, rowsOf(node, x!, y!.type, opset))],
  };
}

export const softmaxOps: Record<string, OpImpl> = Object.fromEntries(Object.keys(outputs).map((op) => [op, softmaxOp(op)]));
