import { sizeOf, type TensorType } from '../model/graph.js';
import type { Kernel } from './types.js';
import { flatMain, fromStorage, grid, storage, toStorage, wgslType } from './wgsl.js';

const WORKGROUP = 256;

/** The kernel computing `expr` (in terms of `x`) elementwise from input 0 (`x`) to output 0. */
export function unaryKernel(label: string, expr: string, x: TensorType, out: TensorType): Kernel {
  const n = sizeOf(out.dims);
  return {
    label,
    wgsl: `${storage(0, 'X', wgslType(x.type))}
${storage(1, 'Y', wgslType(out.type))}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  let x = ${fromStorage(x.type, 'X[i]')};
  Y[i] = ${toStorage(out.type, expr)};`,
)}`,
    workgroups: grid(n, WORKGROUP),
    bindings: [
      { kind: 'input', index: 0 },
      { kind: 'output', index: 0 },
    ],
  };
}
