import type { Node } from '../model/graph.js';
import { type BindingLimits, UNLIMITED } from '../kernels/split.js';
import type { Kernel } from '../kernels/types.js';
import { relu } from '../kernels/wgsl.js';
import { checkAttrs, requireFloat } from './attrs.js';
import { depthwiseKernel, subgroupDepthwiseKernel } from './conv/depthwise.js';
import { convGeometry } from './conv/geometry.js';
import { type ConvEpilogue, wholeIO } from './conv/io.js';
import { chooseConvLowering, type ConvAdapter, loweredConv } from './conv/lowering.js';
import { NARROW_CHANNELS } from './conv/narrow.js';
import { splitConv } from './conv/split.js';
import { directTapShare, pixelBands } from './conv/subgroup.js';
import { chooseWinograd, winogradConv } from './conv/winograd.js';
import type { OpImpl, OpInput, TensorType } from './types.js';

/**
 * ONNX Conv (2-D, and 1-D as H = 1), NCHW. Five kernels:
 * - implicit GEMM (no im2col buffer): Y[co][pixel] = Σ_k W[co][k] · X(k, pixel),
 *   k running over (input channel, kernel tap), dilation and padding in the
 *   index math, on the tiled product of kernels/gemm.ts;
 * - the same product reading X as a plain channels x pixels matrix when the
 *   conv is pointwise (1x1, stride 1, no padding);
 * - on CPU adapters, the same product as one subgroup per workgroup sharing
 *   operands by broadcasts (conv/subgroup.ts), for constant weights;
 * - a direct kernel when each group has one input channel (depthwise, with
 *   any channel multiplier), where a GEMM would have K = taps only;
 * - on CPU adapters, Winograd F(2x2, 3x3), F(3x3, 3x3) or F(4x4, 3x3) for
 *   stride-1 3x3 convs where it saves GEMM work (conv/winograd.ts): 16
 *   multiply-adds per 2x2 outputs, 25 per 3x3 or 36 per 4x4 instead of 9 a
 *   pixel, at the price of two transforms and their scratch.
 * Kernel taps that only ever read padding (large ASPP dilations on small
 * maps) are dropped at load time: a 3x3 conv at dilation 36 on a 33x33 map is
 * a 1x1 conv.
 *
 * This file is the op: its shape rule, the fused epilogue, and which kernel a
 * node gets. The kernels and what they share are under conv/: geometry.ts
 * (attributes checked, per-axis geometry, useful taps), io.ts (bindings,
 * loads, the epilogue's store), depthwise.ts, lowering.ts (the implicit GEMMs
 * and weight packing), subgroup.ts (the kernel of CPU adapters), winograd.ts
 * and split.ts (convs larger than one binding).
 */

/** ReLU as the Relu kernel computes it (kernels/wgsl.ts relu), so fusing changes no bit. */
const RELU = relu('v');

/** A node's fused epilogue (model/passes.ts fuseEpilogues) as WGSL. */
function epilogueOf(node: Node): ConvEpilogue {
  const e = node.epilogue;
  return { ...(e?.activation === 'Relu' ? { activation: RELU } : {}), ...(e?.residual ? { residual: true } : {}), ...(e?.taps ? { taps: e.taps } : {}) };
}

/** The kernels of a Conv node, optionally with a fused epilogue, split where a tensor exceeds one binding. */
export function convKernels(
  node: Node,
  inputs: OpInput[],
  outputs: TensorType[],
  epilogue: ConvEpilogue = {},
  limits: BindingLimits = UNLIMITED,
  adapter: ConvAdapter = {},
): Kernel[] {
  const g = convGeometry(node, inputs);
  const io = wholeIO(inputs, outputs, epilogue);
  if (g.cIn === g.groups) {
    return [adapter.cpuSubgroupSize ? subgroupDepthwiseKernel(g, io, epilogue, adapter.cpuSubgroupSize) : depthwiseKernel(g, io, epilogue)];
  }
  const { value: w } = inputs[1]!;
  const lanes = adapter.cpuSubgroupSize;
  if (lanes && w) {
    const direct = chooseConvLowering(g.cOut, g, adapter);
    const directShare = () => (direct.kind === 'subgroup' ? directTapShare(g, direct.tile.pixels, pixelBands(g, direct.tile.pixels)) : 1);
    const winograd = chooseWinograd(g, io.types.inputs[1]!, NARROW_CHANNELS, directShare);
    const kernels = winograd && winogradConv(winograd, g, w, epilogue, io, lanes, limits);
    if (kernels) return kernels;
  }
  const lowering = (cOut: number) => chooseConvLowering(cOut / g.groups, g, adapter);
  return splitConv(g, inputs, io.types, epilogue, limits, lowering) ?? [loweredConv(g, inputs[1]!, epilogue, io, lowering(g.cOut))];
}

export const convOps: Record<string, OpImpl> = {
  Conv: {
    infer(node, inputs) {
      requireFloat(node, inputs);
      checkAttrs(node, ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides']);
      return [{ type: inputs[0]!.type, dims: convGeometry(node, inputs).outDims }];
    },
    kernels: (node, inputs, outputs, _opset, { limits, cpuSubgroupSize }) => convKernels(node, inputs, outputs, epilogueOf(node), limits, { cpuSubgroupSize }),
  },
};
