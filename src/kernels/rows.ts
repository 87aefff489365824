/** Kernels with one workgroup per row: the row's threads combine their values in workgroup memory (Softmax, long reductions). */
import { grid } from './wgsl.js';

/** Threads of a one-workgroup-per-row kernel; rows at least this long get one. */
export const ROW_THREADS = 128;

/**
 * Shader header for one workgroup per row: `main` gets the row index `row`
 * (it may exceed the row count; the guard is workgroup-uniform, so an early
 * return is fine) and the thread index `t`. Dispatch with `rowGrid`.
 */
export function rowMain(body: string): string {
  return `
var<workgroup> partials: array<f32, ${ROW_THREADS}>;
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32) {
  let row = wid.x + wid.y * nwg.x;
${body}
}`;
}

export const rowGrid = (rows: number) => grid(rows, 1);

/**
 * WGSL statements (inside `rowMain`) that combine the `var` `v` of every
 * thread of the workgroup by a tree in workgroup memory; every thread ends
 * with the total in `v`.
 */
export function combineAcross(v: string, combine: (a: string, b: string) => string): string {
  return `  partials[t] = ${v};
  for (var s = ${ROW_THREADS / 2}u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (t < s) { partials[t] = ${combine('partials[t]', 'partials[t + s]')}; }
  }
  workgroupBarrier();
  ${v} = partials[0];
  workgroupBarrier();`;
}
