import { ValueNeededError } from '../errors.js';
import { ONNX_TYPE_CODES } from '../model/fold.js';
import { isFloatType, sizeOf, type ElemType } from '../model/graph.js';
import { runWindow, shifted, splitUnits, type Strided } from '../kernels/split.js';
import type { Kernel } from '../kernels/types.js';
import type { OpImpl } from './types.js';
import { flatMain, fromStorage, gpuElementBytes, grid, I32_TO_F32, storage, toStorage, wgslType } from '../kernels/wgsl.js';

/**
 * Casts to a float type computed at run time: the joins a session adds
 * between float32 feeds, outputs and captures and float16 activations at
 * --precision f16 (model/precision.ts), a model's own float casts, and
 * integers to float, as dynamically quantized models cast ConvInteger's
 * int32 sums before scaling them, floats to integers, truncated toward
 * zero as ONNX defines it (a value outside the integer type is undefined
 * there; the GPU saturates it to i32), and integers to a type holding all
 * their values. Other casts of integers are evaluated at load time
 * (model/fold.ts), as they belong to shape computations.
 */

/**
 * Integer types whose every value an i32 holds, as the GPU stores them
 * (kernels/wgsl.ts), with their ranges; int64 and the wide unsigned types
 * are truncated there.
 */
const I32_EXACT: Readonly<Partial<Record<ElemType, readonly [number, number]>>> = {
  bool: [0, 1],
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1],
};

/** Whether every value of integer type `from` is one of `to`: the cast copies (PyTorch's quantized exports cast uint8 to uint8). */
function widens(from: ElemType, to: ElemType): boolean {
  const [a, b] = [I32_EXACT[from], I32_EXACT[to]];
  return !!a && !!b && to !== 'bool' && b[0] <= a[0] && a[1] <= b[1];
}

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
      // Floats to integers: DynamicQuantizeLinear written out as ONNX ops casts its rounded, clipped values to uint8.
      const toFloat = to && isFloatType(to) && (isFloatType(x!.type) || I32_EXACT[x!.type]);
      const toInteger = to && to !== 'bool' && I32_EXACT[to] && (isFloatType(x!.type) || widens(x!.type, to));
      if (!toFloat && !toInteger) {
        throw new ValueNeededError(
          `Cast node '${node.name}': a cast of ${x!.type} to ${to ?? `type ${node.attrs.int('to')}`} is evaluated only at load time, but input '${x!.name}' is computed at run time (the GPU casts floats and integers of up to 32 bits to float types, floats to integers of up to 32 bits, and integers to types holding all their values)`,
          [x!.name],
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
${!isFloatType(x!.type) && isFloatType(out!.type) ? I32_TO_F32 : ''}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  let x = ${isFloatType(x!.type) ? fromStorage(x!.type, `X[${shifted(input.shift)}i]`) : isFloatType(out!.type) ? `i32_to_f32(X[${shifted(input.shift)}i])` : `X[${shifted(input.shift)}i]`};
  Y[${shifted(output.shift)}i] = ${isFloatType(out!.type) ? toStorage(out!.type, rounding ? `${rounding.name}(x)` : 'x') : isFloatType(x!.type) ? 'i32(x)' : 'x'};`,
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
