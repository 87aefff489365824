/**
 * QuantizeLinear and DequantizeLinear, per tensor or per axis: one thread
 * per element. On load-time inputs they fold on the CPU instead
 * (model/quant.ts), with the same checks and float32 arithmetic.
 */
import { sizeOf } from '../../model/graph.js';
import { linearQuant, type QuantAxis } from '../../model/quant.js';
import type { Kernel } from '../../kernels/types.js';
import { flatMain, fromStorage, grid, toStorage, wgslType } from '../../kernels/wgsl.js';
import type { OpImpl, OpInput, TensorType } from '../types.js';
import { Bindings, paramReader, QUANT_WGSL, rangeLiterals } from './common.js';

const WORKGROUP = 256;

/** The kernel `Y[i] = expr`, `expr` reading `x` (input 0), `scale` and `zero_point` (inputs 1 and 2) of element i. */
function linearKernel(label: string, inputs: OpInput[], out: TensorType, axis: QuantAxis | undefined, expr: string): Kernel {
  const x = inputs[0]!;
  const n = sizeOf(out.dims);
  const b = new Bindings();
  b.add({ kind: 'input', index: 0 }, 'X', wgslType(x.type));
  const scale = paramReader(b, inputs, 1, 'Scale');
  const zeroPoint = paramReader(b, inputs, 2, 'ZeroPoint');
  b.add({ kind: 'output', index: 0 }, 'Y', wgslType(out.type));
  const c = axis ? `(i / ${axis.inner}u) % ${axis.length}u` : '0u';
  return {
    label: `${label}${axis ? '_axis' : ''}`,
    wgsl: `${b.declarations}
${QUANT_WGSL}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  let x = ${fromStorage(x.type, 'X[i]')};
  let scale = ${scale(c)};
  let zero_point = ${zeroPoint(c)};
  Y[i] = ${expr};`,
)}`,
    workgroups: grid(n, WORKGROUP),
    bindings: b.list,
  };
}

export const linearOps: Record<string, OpImpl> = {
  QuantizeLinear: {
    infer(node, inputs, opset) {
      return [{ type: linearQuant(node, inputs, opset).type, dims: [...inputs[0]!.dims] }];
    },
    kernels(node, inputs, [out], opset) {
      const { type, axis } = linearQuant(node, inputs, opset);
      const [lo, hi] = rangeLiterals(type);
      // round(x / scale) is an integer-valued f32: adding the zero point and clamping stay exact in the 8- and 16-bit ranges.
      const q = `i32(clamp(round(x / scale) + f32(zero_point), f32(${lo}), f32(${hi})))`;
      return [linearKernel('quantize_linear', inputs, out!, axis, q)];
    },
  },
  DequantizeLinear: {
    infer(node, inputs, opset) {
      linearQuant(node, inputs, opset);
      return [{ type: inputs[1]!.type, dims: [...inputs[0]!.dims] }];
    },
    kernels(node, inputs, [out], opset) {
      const { axis } = linearQuant(node, inputs, opset);
      return [linearKernel('dequantize_linear', inputs, out!, axis, toStorage(out!.type, 'i32_to_f32(x - zero_point) * scale'))];
    },
  },
};
