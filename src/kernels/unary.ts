import { sizeOf, type TensorType } from '../model/graph.js';
import type { Kernel } from './types.js';
import { flatMain, fromStorage, grid, storage, toStorage, wgslType } from './wgsl.js';

const WORKGROUP = 256;

/** The kernel computing `expr` (in terms of `x`) elementwise from input 0 (`x`) to output 0. */
export function unaryKernel(label: string, expr: string, x: TensorType, out: TensorType): Kernel {
  return mapKernel(label, expr, [['x', x]], out);
}

/**
 * The kernel computing `expr` elementwise from inputs of the output's shape
 * to output 0: `operands[k]`, named `[name, type]`, is node input k, loaded
 * into the f32 variable `name` (bound as its upper-case name; not `y`).
 */
export function mapKernel(label: string, expr: string, operands: [string, TensorType][], out: TensorType): Kernel {
  const n = sizeOf(out.dims);
  const declarations = operands.map(([name, t], k) => storage(k, name.toUpperCase(), wgslType(t.type)));
  const loads = operands.map(([name, t]) => `  let ${name} = ${fromStorage(t.type, `${name.toUpperCase()}[i]`)};`);
  return {
    label,
    wgsl: `${declarations.join('\n')}
${storage(operands.length, 'Y', wgslType(out.type))}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
${loads.join('\n')}
  Y[i] = ${toStorage(out.type, expr)};`,
)}`,
    workgroups: grid(n, WORKGROUP),
    bindings: [...operands.map((_, index) => ({ kind: 'input' as const, index })), { kind: 'output', index: 0 }],
  };
}
