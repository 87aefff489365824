import { ModelError, UnsupportedOpError } from '../errors.js';
import type { Node } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import { param, type Kernel, type KernelBinding } from '../kernels/types.js';
import type { OpImpl, OpInput, TensorType } from './types.js';
import { collapseAxes, f32, flatMain, fromStorage, grid, storage, storedFloats, stridedIndex, toStorage, wgslType } from '../kernels/wgsl.js';

/**
 * Inference BatchNormalization on channel axis 1, as the per-channel affine
 * map y = a[c] * x + b[c] with a = scale / sqrt(var + eps), b = B - mean * a.
 * Constant statistics give a and b on the CPU, stored as the statistics are
 * (float16 at --precision f16, as a conv's folded BN weights are); runtime
 * ones get a small dispatch computing them first, in f32. (A graph pass
 * folds BN into a preceding Conv when it can; this kernel is for the rest.)
 */

const WORKGROUP = 256;

const STATS = ['scale', 'B', 'mean', 'var'] as const;

/** Refuses the training variants: they compute batch statistics and extra outputs. */
function checkInference(node: Node, opset: number): void {
  const where = `BatchNormalization node '${node.name}'`;
  if (node.attrs.int('training_mode', 0) !== 0) {
    throw new UnsupportedOpError(`${where}: training_mode=${node.attrs.int('training_mode')} is not supported (inference only)`);
  }
  // Before opset 7, is_test=0 (the default) means training; exporters set is_test=1.
  if (opset < 7 && node.attrs.int('is_test', 0) !== 1) {
    throw new UnsupportedOpError(`${where}: is_test=${node.attrs.int('is_test', 0)} (training) is not supported; expected is_test=1`);
  }
  if (node.attrs.int('spatial', 1) !== 1) {
    throw new UnsupportedOpError(`${where}: spatial=0 (per-element statistics) is not supported`);
  }
  const extra = node.outputs.slice(1).filter(Boolean);
  if (extra.length) throw new UnsupportedOpError(`${where}: training outputs (${extra.join(', ')}) are not supported`);
  // momentum (and opset 1's consumed_inputs) only concern training: no effect here.
}

function infer(node: Node, inputs: OpInput[], opset: number): TensorType[] {
  checkInference(node, opset);
  const where = `BatchNormalization node '${node.name}'`;
  const x = inputs[0];
  if (!x?.name || inputs.length < 5 || inputs.slice(1, 5).some((s) => !s.name)) {
    throw new ModelError(`${where}: expected inputs X, scale, B, mean, var`);
  }
  if (!isFloatType(x.type) || x.dims.length < 2) {
    throw new ModelError(`${where}: X must be a float tensor of rank >= 2 (N, C, ...), got ${x.type} [${x.dims}]`);
  }
  const channels = x.dims[1]!;
  inputs.slice(1, 5).forEach((s, k) => {
    if (s.dims.length !== 1 || s.dims[0] !== channels) {
      throw new ModelError(`${where}: ${STATS[k]} '${s.name}' has shape [${s.dims}], expected [${channels}] (the channels of X)`);
    }
  });
  return [{ type: x.type, dims: [...x.dims] }];
}

/** [a..., b...] computed on the CPU from constant statistics. */
function coefficients(stats: Float32Array[], eps: number): Float32Array<ArrayBuffer> {
  const [scale, bias, mean, variance] = stats as [Float32Array, Float32Array, Float32Array, Float32Array];
  const c = scale.length;
  const ab = new Float32Array(2 * c);
  for (let k = 0; k < c; k++) {
    const a = scale[k]! / Math.sqrt(variance[k]! + eps);
    ab[k] = a;
    ab[c + k] = bias[k]! - mean[k]! * a;
  }
  return ab;
}

/** The dispatch writing [a..., b...] into scratch 0 (f32 whatever the statistics' storage) from runtime statistics. */
function coefficientKernel(stats: OpInput[], eps: number): Kernel {
  const channels = stats[0]!.dims[0]!;
  const [scale, bias, mean, variance] = STATS.map((s, k) => fromStorage(stats[k]!.type, `S_${s}[i]`));
  return {
    label: 'batchnorm_coefficients',
    wgsl: `${STATS.map((s, k) => storage(k, `S_${s}`, wgslType(stats[k]!.type))).join('\n')}
${storage(4, 'AB', 'f32')}
${flatMain(
  64,
  `  if (i >= ${channels}u) { return; }
  let a = ${scale} / sqrt(${variance} + ${f32(eps)});
  AB[i] = a;
  AB[${channels}u + i] = ${bias} - ${mean} * a;`,
)}`,
    workgroups: grid(channels, 64),
    bindings: [...STATS.map((_, k): KernelBinding => ({ kind: 'input', index: k + 1 })), { kind: 'scratch', id: 0, bytes: 8 * channels }],
  };
}

function kernels(node: Node, inputs: OpInput[], [out]: TensorType[]): Kernel[] {
  const x = inputs[0]!;
  const dims = x.dims;
  const channels = dims[1]!;
  const eps = node.attrs.float('epsilon', 1e-5);
  const stats = inputs.slice(1, 5);
  const values = stats.map((s) => s.value);
  const known = values.every((v) => v !== undefined);
  const abType = known ? stats[0]!.type : 'float32';
  const ab: KernelBinding = known
    ? param(
        storedFloats(
          coefficients(
            values.map((v) => Float32Array.from(v!.data)),
            eps,
          ),
          abType,
        ),
      )
    : { kind: 'scratch', id: 0, bytes: 8 * channels };
  // The channel of element i of [N, C, inner]: stride 1 along C, 0 elsewhere.
  const channel = stridedIndex(collapseAxes([dims[0]!, channels, sizeOf(dims.slice(2))], [0, 1, 0]));
  const n = sizeOf(out!.dims);
  const apply: Kernel = {
    label: 'batchnorm',
    wgsl: `${storage(0, 'X', wgslType(x.type))}
${storage(1, 'AB', wgslType(abType))}
${storage(2, 'Y', wgslType(out!.type))}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  let c = ${channel};
  Y[i] = ${toStorage(out!.type, `${fromStorage(x.type, 'X[i]')} * ${fromStorage(abType, 'AB[c]')} + ${fromStorage(abType, `AB[${channels}u + c]`)}`)};`,
)}`,
    workgroups: grid(n, WORKGROUP),
    bindings: [{ kind: 'input', index: 0 }, ab, { kind: 'output', index: 0 }],
  };
  return known ? [apply] : [coefficientKernel(stats, eps), apply];
}

export const batchNormOps: Record<string, OpImpl> = {
  BatchNormalization: { infer, kernels },
};
