/**
 * Convs whose input, output or packed weights exceed one binding, run as
 * parts over windows of them (kernels/split.ts), each part lowered like any
 * conv (lowering.ts) on its slice of the weights. Only which windows and
 * slices: the kernels themselves are the other files'.
 */
import type { ElemType, HostTensor } from '../../model/graph.js';
import { type BindingLimits, runWindow, splitUnits, type Strided } from '../../kernels/split.js';
import { param, type Kernel } from '../../kernels/types.js';
import { gpuElementBytes, storedFloats } from '../../kernels/wgsl.js';
import type { OpInput } from '../types.js';
import type { ConvGeometry } from './geometry.js';
import type { ConvEpilogue, ConvIO, TensorTypes } from './io.js';
import { type ConvLowering, loweredConv, packedBytes } from './lowering.js';

/**
 * A conv whose input, output or packed weights are larger than one binding,
 * as GEMMs over windows of them: image by image, output channels in runs
 * whose planes fit, and within each, input channels in runs whose planes and
 * weights fit. Later input runs add to what the earlier ones wrote; bias and
 * residual go in the first, the activation in the last. Each part gets its slice of the weights, packed at
 * load like any conv's. Needs one group and constant weights and bias;
 * undefined when nothing needs splitting or it cannot be split.
 */
export function splitConv(
  g: ConvGeometry,
  inputs: OpInput[],
  types: TensorTypes,
  epilogue: ConvEpilogue,
  limits: BindingLimits,
  lowering: (cOut: number) => ConvLowering,
): Kernel[] | undefined {
  /** Image n onwards of a tensor of `type` with `channels` planes of `pixels` an image, walked by channel. */
  const planes =
    (type: ElemType, channels: number, pixels: number) =>
    (n: number): Strided => {
      const elementBytes = gpuElementBytes(type);
      return { unitBytes: pixels * elementBytes, baseBytes: n * channels * pixels * elementBytes, elementBytes };
    };
  const xPlanes = planes(types.inputs[0]!, g.cIn, g.y.size * g.x.size);
  // Y, and the residual, which may be stored at another width, split alike over output channels.
  const outPlanes = [types.outputs[0]!, ...(epilogue.residual ? [types.inputs[3]!] : [])].map((t) => planes(t, g.cOut, g.y.out * g.x.out));
  // The taps get windows over the same runs, which they do not choose: the parts, and so every value, are those of a run without captures.
  const { beforeResidual, beforeActivation } = epilogue.taps ?? {};
  const tapPlanes = (index: number | undefined) => (index === undefined ? undefined : planes(types.outputs[index]!, g.cOut, g.y.out * g.x.out));
  const [residualTap, activationTap] = [tapPlanes(beforeResidual), tapPlanes(beforeActivation)];
  const taps = g.y.count * g.x.count;
  const fits = (bytes: number) => bytes <= limits.maxBytes;
  const wType = types.inputs[1]!;
  const whole = packedBytes(lowering(g.cOut), g.cIn / g.groups, taps, g.cOut / g.groups, wType).total;
  // Nothing to split when every tensor fits (it ends where an image after its last would begin), and the packed weights do.
  if ([xPlanes, ...outPlanes].every((t) => fits(t(g.batch).baseBytes)) && fits(g.groups * whole)) return undefined;
  const [, w, b] = inputs;
  if (g.groups !== 1 || !w!.value || (b?.name && !b.value)) return undefined;
  const kernels: Kernel[] = [];
  for (let n = 0; n < g.batch; n++) {
    const x = xPlanes(n);
    const outs = outPlanes.map((t) => t(n));
    const outRuns = splitUnits(g.cOut, outs, limits);
    if (!outRuns) return undefined;
    for (const co of outRuns) {
      const [y, r] = outs.map((t) => runWindow(t, co, limits));
      const [p, s] = [residualTap, activationTap].map((t) => t && runWindow(t(n), co, limits));
      // An input channel's packed weights, with room for the padding of k.
      const partLowering = lowering(co[1] - co[0]);
      const { perChannel, padding } = packedBytes(partLowering, 0, taps, co[1] - co[0], wType);
      const weights: Strided = { unitBytes: perChannel, baseBytes: 0, elementBytes: gpuElementBytes(wType) };
      const inRuns = splitUnits(g.cIn, [x, weights], { ...limits, maxBytes: limits.maxBytes - padding });
      if (!inRuns) return undefined;
      inRuns.forEach((ci, i) => {
        const first = i === 0;
        const last = i === inRuns.length - 1;
        const input = runWindow(x, ci, limits);
        const weight = sliceWeights(w!.value!, co, ci);
        const io: ConvIO = {
          types,
          x: { kind: 'input', index: 0, window: input.window },
          ...(first && b?.name ? { bias: param(storedFloats(b.value!.data.slice(co[0], co[1]), types.inputs[2]!)) } : {}),
          ...(first && r ? { residual: { kind: 'input', index: 3, window: r.window } as const, rShift: r.shift } : {}),
          y: { kind: 'output', index: 0, window: y!.window },
          // Every part adds to the conv's own result; the value before the activation exists in the last.
          ...(p ? { beforeResidual: { kind: 'output', index: beforeResidual!, window: p.window } as const, beforeResidualShift: p.shift } : {}),
          ...(s && last ? { beforeActivation: { kind: 'output', index: beforeActivation!, window: s.window } as const, beforeActivationShift: s.shift } : {}),
          accumulate: !first,
          xShift: input.shift,
          yShift: y!.shift,
        };
        const part = { ...g, batch: 1, cIn: ci[1] - ci[0], cOut: co[1] - co[0] };
        kernels.push(loweredConv(part, { ...w!, dims: [...weight.dims], value: weight }, last ? epilogue : {}, io, partLowering));
      });
    }
  }
  return kernels;
}

/** W[co0:co1, ci0:ci1] of ONNX weights [C_out][C_in][KH][KW]. */
function sliceWeights(w: HostTensor, [co0, co1]: [number, number], [ci0, ci1]: [number, number]): HostTensor {
  const [, cIn, ...kernel] = w.dims as [number, number, ...number[]];
  const taps = kernel.reduce((a, d) => a * d, 1);
  const data = new Float32Array((co1 - co0) * (ci1 - ci0) * taps);
  for (let co = co0; co < co1; co++) {
    const from = (co * cIn + ci0) * taps;
    data.set(w.data.slice(from, from + (ci1 - ci0) * taps), (co - co0) * (ci1 - ci0) * taps);
  }
  return { type: w.type, dims: [co1 - co0, ci1 - ci0, ...kernel], data };
}
