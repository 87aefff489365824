/**
 * ConvInteger and QLinearConv (2-D, and 1-D as H = 1, NCHW): one thread per
 * output element sums (x - x_zero_point) · (w - w_zero_point) over its window
 * in i32, exactly (an f32 sum is not: 256·3·3 products of up to 255² pass
 * 2^24). Taps in the padding read nothing, as padding with the zero point
 * contributes 0. ConvInteger writes the sum; QLinearConv adds its bias and
 * requantizes it as onnxruntime does (common.ts).
 */
import { ModelError } from '../../errors.js';
import type { Node } from '../../model/graph.js';
import { sizeOf } from '../../model/graph.js';
import type { Kernel } from '../../kernels/types.js';
import { flatMain, grid } from '../../kernels/wgsl.js';
import { checkAttrs } from '../attrs.js';
import { type ConvGeometry, convGeometry } from '../conv/geometry.js';
import type { OpImpl, OpInput } from '../types.js';
import {
  Bindings,
  checkEightBit,
  checkOperandZeroPoint,
  checkEightBitOutput,
  checkPerTensorOr,
  knownScale,
  paramReader,
  int32Store,
  qlinearOutputType,
  QUANT_WGSL,
  requantizedStore,
  requantMultiplier,
  where,
} from './common.js';

const WORKGROUP = 64;
const CONV_ATTRS = ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'];

/** Node input indices of an integer conv's operands. */
interface ConvOperands {
  x: number;
  xZeroPoint: number;
  w: number;
  wZeroPoint: number;
}

/** The geometry of an integer conv and the checks of its operands and zero points. */
function integerConv(node: Node, inputs: OpInput[], at: ConvOperands, bias?: OpInput): ConvGeometry {
  checkAttrs(node, CONV_ATTRS);
  const [x, w] = [inputs[at.x], inputs[at.w]];
  checkEightBit(node, x, 'x');
  checkEightBit(node, w, 'w');
  if (x!.dims.length < 3) throw new ModelError(`${where(node)}: x must be NCHW or NCL, got [${x!.dims}]`);
  const g = convGeometry(node, [x!, w!, ...(bias ? [bias] : [])]);
  checkOperandZeroPoint(node, inputs[at.xZeroPoint], x!.type, 1, 'tensor', 'x_zero_point');
  checkOperandZeroPoint(node, inputs[at.wZeroPoint], w!.type, g.cOut, 'output channel', 'w_zero_point');
  return g;
}

/**
 * The kernel: `acc` (i32) is the window's sum of products, then `store`
 * (WGSL statements, `co` the output channel) writes Y[i]; `extra` adds its
 * bindings after the operands'.
 */
function convKernel(label: string, g: ConvGeometry, inputs: OpInput[], at: ConvOperands, extra: (b: Bindings) => string): Kernel {
  const b = new Bindings();
  b.add({ kind: 'input', index: at.x }, 'Xq', 'i32');
  b.add({ kind: 'input', index: at.w }, 'Wq', 'i32');
  const xZeroPoint = paramReader(b, inputs, at.xZeroPoint, 'XZeroPoint');
  const wZeroPoint = paramReader(b, inputs, at.wZeroPoint, 'WZeroPoint');
  const store = extra(b);
  const { y, x, cIn, cOut, groups } = g;
  const n = sizeOf(g.outDims);
  const [cGroupIn, cGroupOut] = [cIn / groups, cOut / groups];
  return {
    label: `${label}${y.kernel}x${x.kernel}_s${x.stride}_d${x.dilation}`,
    wgsl: `${b.declarations}
${QUANT_WGSL}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  let ox = i % ${x.out}u;
  let oy = (i / ${x.out}u) % ${y.out}u;
  let co = (i / ${x.out * y.out}u) % ${cOut}u;
  let batch = i / ${x.out * y.out * cOut}u;
  let x_base = (batch * ${cIn}u + co / ${cGroupOut}u * ${cGroupIn}u) * ${y.size * x.size}u;
  let w_base = co * ${cGroupIn * y.kernel * x.kernel}u;
  let x_zero_point = ${xZeroPoint('0u')};
  let w_zero_point = ${wZeroPoint('co')};
  var acc = 0i;
  for (var ci = 0u; ci < ${cGroupIn}u; ci++) {
    for (var ky = 0u; ky < ${y.kernel}u; ky++) {
      let iy = i32(oy * ${y.stride}u + ky * ${y.dilation}u) - ${y.begin}i;
      if (iy < 0i || iy >= ${y.size}i) { continue; }
      for (var kx = 0u; kx < ${x.kernel}u; kx++) {
        let ix = i32(ox * ${x.stride}u + kx * ${x.dilation}u) - ${x.begin}i;
        if (ix < 0i || ix >= ${x.size}i) { continue; }
        let xv = Xq[x_base + ci * ${y.size * x.size}u + u32(iy) * ${x.size}u + u32(ix)] - x_zero_point;
        let wv = Wq[w_base + (ci * ${y.kernel}u + ky) * ${x.kernel}u + kx] - w_zero_point;
        acc += xv * wv;
      }
    }
  }
${store}`,
)}`,
    workgroups: grid(n, WORKGROUP),
    bindings: b.list,
  };
}

const CONV_INTEGER: ConvOperands = { x: 0, w: 1, xZeroPoint: 2, wZeroPoint: 3 };
const QLINEAR_CONV: ConvOperands = { x: 0, xZeroPoint: 2, w: 3, wZeroPoint: 5 };

/** Checks QLinearConv's scales, y_zero_point and bias; returns the requantization multipliers (one, or one per output channel). */
function qlinearConv(node: Node, inputs: OpInput[]): { g: ConvGeometry; multipliers: number[] } {
  const bias = inputs[8]?.name ? inputs[8] : undefined;
  if (bias && bias.type !== 'int32') throw new ModelError(`${where(node)}: bias B '${bias.name}' is ${bias.type}; expected int32`);
  const g = integerConv(node, inputs, QLINEAR_CONV, bias);
  const type = qlinearOutputType(inputs);
  checkEightBitOutput(node, type);
  checkOperandZeroPoint(node, inputs[7], type, 1, 'tensor', 'y_zero_point');
  const [xScale, wScale, yScale] = [knownScale(node, inputs[1], 'x_scale'), knownScale(node, inputs[4], 'w_scale'), knownScale(node, inputs[6], 'y_scale')];
  checkPerTensorOr(node, inputs[1], 1, 'tensor', 'x_scale');
  checkPerTensorOr(node, inputs[4], g.cOut, 'output channel', 'w_scale');
  checkPerTensorOr(node, inputs[6], 1, 'tensor', 'y_scale');
  return { g, multipliers: wScale.map((s) => requantMultiplier(xScale[0]!, s, yScale[0]!)) };
}

export const convOps: Record<string, OpImpl> = {
  ConvInteger: {
    infer(node, inputs) {
      return [{ type: 'int32', dims: integerConv(node, inputs, CONV_INTEGER).outDims }];
    },
    kernels(node, inputs) {
      const g = integerConv(node, inputs, CONV_INTEGER);
      return [convKernel('conv_integer', g, inputs, CONV_INTEGER, int32Store)];
    },
  },
  QLinearConv: {
    infer(node, inputs) {
      return [{ type: qlinearOutputType(inputs), dims: qlinearConv(node, inputs).g.outDims }];
    },
    kernels(node, inputs, [out]) {
      const { g, multipliers } = qlinearConv(node, inputs);
      return [
        convKernel('qlinear_conv', g, inputs, QLINEAR_CONV, (b) => {
          const bias = inputs[8]?.name ? `${b.add({ kind: 'input', index: 8 }, 'Bias', 'i32')}[co]` : '0i';
          return requantizedStore(b, inputs, multipliers, 'co', out!.type, `acc + ${bias}`);
        }),
      ];
    },
  },
};
