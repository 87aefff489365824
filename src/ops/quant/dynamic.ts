/**
 * DynamicQuantizeLinear: uint8 quantization with a scale and zero point
 * computed from the tensor's own range, as ONNX's reference computes them in
 * float32:
 *   y_scale = (max(0, max(x)) - min(0, min(x))) / 255 (1 / 255 when that range is 0),
 *   y_zero_point = round_half_even(saturate(0 - min(0, min(x)) / y_scale)),
 *   y = saturate(round_half_even(x / y_scale) + y_zero_point).
 * (onnxruntime gives y_scale 1 for an all-zero tensor, where the reference
 * gives 1 / 255; y and y_zero_point are 0 either way.)
 * Three dispatches: each workgroup folds a chunk of x into its min and max,
 * one workgroup folds those and computes the scale and zero point, then one
 * thread per element quantizes. The scale and zero point are GPU tensors,
 * read by the nodes after it (ConvInteger, MatMulInteger, Mul…).
 */
import { ModelError } from '../../errors.js';
import { isFloatType, sizeOf } from '../../model/graph.js';
import { combineAcross, ROW_THREADS, rowGrid, rowMain } from '../../kernels/rows.js';
import type { Kernel, KernelBinding } from '../../kernels/types.js';
import { flatMain, fromStorage, grid, toStorage, wgslType } from '../../kernels/wgsl.js';
import type { OpImpl } from '../types.js';
import { Bindings, where } from './common.js';

/** Elements of x each workgroup of the first pass folds. */
const CHUNK = ROW_THREADS * 32;
const WORKGROUP = 256;

const minimum = (a: string, b: string) => `min(${a}, ${b})`;
const maximum = (a: string, b: string) => `max(${a}, ${b})`;

/** Folds `lo` and `hi` of every thread of the workgroup; both start at 0, which the range always includes. */
const foldRange = (loop: string) => `  var lo = 0.0f;
  var hi = 0.0f;
${loop}
${combineAcross('lo', minimum)}
${combineAcross('hi', maximum)}`;

export const dynamicOps: Record<string, OpImpl> = {
  DynamicQuantizeLinear: {
    infer(node, [x]) {
      if (!x?.name) throw new ModelError(`${where(node)}: input x is missing`);
      if (!isFloatType(x.type)) throw new ModelError(`${where(node)}: x '${x.name}' is ${x.type}; expected a float tensor`);
      return [
        { type: 'uint8', dims: [...x.dims] },
        { type: x.type, dims: [] },
        { type: 'uint8', dims: [] },
      ];
    },
    kernels(node, [x], outputs) {
      const n = sizeOf(x!.dims);
      const chunks = Math.max(1, Math.ceil(n / CHUNK));
      const partials: KernelBinding = { kind: 'scratch', id: 0, bytes: 8 * chunks };
      const params: KernelBinding = { kind: 'scratch', id: 1, bytes: 8 };

      const first = new Bindings();
      first.add({ kind: 'input', index: 0 }, 'X', wgslType(x!.type));
      first.add(partials, 'Partials', 'f32');
      const ranges: Kernel = {
        label: 'dynamic_quantize_range',
        wgsl: `${first.declarations}
${rowMain(`  if (row >= ${chunks}u) { return; }
  let end = min(${n}u, (row + 1u) * ${CHUNK}u);
${foldRange(`  for (var k = row * ${CHUNK}u + t; k < end; k += ${ROW_THREADS}u) {
    let x = ${fromStorage(x!.type, 'X[k]')};
    lo = min(lo, x);
    hi = max(hi, x);
  }`)}
  if (t == 0u) {
    Partials[2u * row] = lo;
    Partials[2u * row + 1u] = hi;
  }`)}`,
        workgroups: rowGrid(chunks),
        bindings: first.list,
      };

      // The scale and zero point go to the scratch the last pass reads, and to the node's outputs that are named.
      const second = new Bindings();
      second.add(partials, 'Partials', 'f32');
      second.add(params, 'Params', 'f32');
      const stores = [1, 2]
        .filter((k) => node.outputs[k])
        .map((k) => {
          const name = second.add({ kind: 'output', index: k }, k === 1 ? 'YScale' : 'YZeroPoint', wgslType(outputs[k]!.type));
          return `    ${name}[0] = ${k === 1 ? toStorage(outputs[1]!.type, 'scale') : 'i32(zero_point)'};`;
        });
      const parameters: Kernel = {
        label: 'dynamic_quantize_parameters',
        wgsl: `${second.declarations}
${rowMain(`${foldRange(`  for (var k = t; k < ${chunks}u; k += ${ROW_THREADS}u) {
    lo = min(lo, Partials[2u * k]);
    hi = max(hi, Partials[2u * k + 1u]);
  }`)}
  if (t == 0u) {
    let scale = select(hi - lo, 1.0f, hi == lo) / 255.0f;
    let zero_point = round(clamp(0.0f - lo / scale, 0.0f, 255.0f));
    Params[0] = scale;
    Params[1] = zero_point;
${stores.join('\n')}
  }`)}`,
        workgroups: rowGrid(1),
        bindings: second.list,
      };

      const third = new Bindings();
      third.add({ kind: 'input', index: 0 }, 'X', wgslType(x!.type));
      third.add(params, 'Params', 'f32');
      third.add({ kind: 'output', index: 0 }, 'Y', 'i32');
      const quantize: Kernel = {
        label: 'dynamic_quantize',
        wgsl: `${third.declarations}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  let x = ${fromStorage(x!.type, 'X[i]')};
  Y[i] = i32(clamp(round(x / Params[0]) + Params[1], 0.0f, 255.0f));`,
)}`,
        workgroups: grid(n, WORKGROUP),
        bindings: third.list,
      };
      return [ranges, parameters, quantize];
    },
  },
};
