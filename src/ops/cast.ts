import { UnsupportedOpError } from '../errors.js';
import { ONNX_TYPE_CODES } from '../model/fold.js';
import { isFloatType, sizeOf, type ElemType } from '../model/graph.js';
import { runWindow, shifted, splitUnits, type Strided } from '../kernels/split.js';
import type { Kernel } from '../kernels/types.js';
import type { OpImpl } from './types.js';
import { flatMain, fromStorage, gpuElementBytes, grid, storage, toStorage, wgslType } from '../kernels/wgsl.js';

/**
 * Cast between float types computed at run time: the joins a session adds
 * between float32 feeds, outputs and captures and float16 activations at
 * --precision f16 (model/precision.ts), and a model's own float casts.
 * Casts of integers are evaluated at load time (model/fold.ts), as they
 * belong to shape computations.
 */

const WORKGROUP = 256;

/**
 * Rounding to a narrower float type whose tensor is still stored as f32 (at
 * --precision f32 a float16 tensor is held in f32, as at load time),
 * nearest even like the folder's (model/fold.ts). Inf and NaN are told apart
 * by their bits, not by comparisons, which WGSL lets compilers assume never
 * meet them.
 */
const ROUNDING: Partial<Record<ElemType, { name: string; wgsl: string }>> = {
  // In integer arithmetic: Mesa folds f32(f16(x)) back to x.
  float16: {
    name: 'round_to_f16',
    wgsl: `
fn round_to_f16(x: f32) -> f32 {
  let bits = bitcast<u32>(x);
  let magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) { return x; }
  // From 65520 up, float16 rounds to infinity.
  if (magnitude >= 0x477ff000u) { return bitcast<f32>((bits & 0x80000000u) | 0x7f800000u); }
  // Below 2^-14 float16 is subnormal, in steps of 2^-24 (scaling by a power of two is exact; round() is to nearest even).
  if (magnitude < 0x38800000u) { return round(x * 16777216.0f) / 16777216.0f; }
  // Normal: keep 10 of float32's 23 mantissa bits, to nearest even.
  return bitcast<f32>((bits + 0xfffu + ((bits >> 13u) & 1u)) & 0xffffe000u);
}`,
  },
  bfloat16: {
    name: 'round_to_bf16',
    wgsl: `
fn round_to_bf16(x: f32) -> f32 {
  let bits = bitcast<u32>(x);
  if ((bits & 0x7f800000u) == 0x7f800000u) { return x; }
  // bfloat16 is the high half of a float32: round the low half away, to nearest even.
  return bitcast<f32>((bits + 0x7fffu + ((bits >> 16u) & 1u)) & 0xffff0000u);
}`,
  },
};

export const castOps: Record<string, OpImpl> = {
  Cast: {
    infer(node, [x]) {
      const to = ONNX_TYPE_CODES[node.attrs.int('to')];
      if (!to || !isFloatType(to) || !isFloatType(x!.type)) {
        throw new UnsupportedOpError(
          `Cast node '${node.name}': a cast of ${x!.type} to ${to ?? `type ${node.attrs.int('to')}`} is evaluated only at load time, but input '${x!.name}' is computed at run time (the GPU casts between float types only)`,
        );
      }
      return [{ type: to, dims: [...x!.dims] }];
    },
    // An output cast to float32 doubles its bytes (1x21x1024x2048 logits: 176 MB), so it splits into element runs that fit one binding.
    kernels(node, [x], [out], _opset, { limits }) {
      const target = ONNX_TYPE_CODES[node.attrs.int('to')]!;
      const rounding = gpuElementBytes(out!.type) === 4 ? ROUNDING[target] : undefined;
      const count = sizeOf(out!.dims);
      const elements = (type: ElemType): Strided => ({ unitBytes: gpuElementBytes(type), baseBytes: 0, elementBytes: gpuElementBytes(type) });
      const [from, to] = [elements(x!.type), elements(out!.type)];
      const runs =
        count * Math.max(from.unitBytes, to.unitBytes) <= limits.maxBytes ? [[0, count] as [number, number]] : splitUnits(count, [from, to], limits)!;
      return runs.map((run): Kernel => {
        const [input, output] = [runWindow(from, run, limits), runWindow(to, run, limits)];
        const n = run[1] - run[0];
        return {
          label: `cast_${wgslType(x!.type)}_${wgslType(out!.type)}`,
          wgsl: `${storage(0, 'X', wgslType(x!.type))}
${storage(1, 'Y', wgslType(out!.type))}
${rounding?.wgsl ?? ''}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  let x = ${fromStorage(x!.type, `X[${shifted(input.shift)}i]`)};
  Y[${shifted(output.shift)}i] = ${toStorage(out!.type, rounding ? `${rounding.name}(x)` : 'x')};`,
)}`,
          workgroups: grid(n, WORKGROUP),
          bindings: [
            { kind: 'input', index: 0, ...(runs.length > 1 ? { window: input.window } : {}) },
            { kind: 'output', index: 0, ...(runs.length > 1 ? { window: output.window } : {}) },
          ],
        };
      });
    },
  },
};
