/**
 * What the quantized ops share: their scale and zero-point checks (from
 * model/quant.ts, which the CPU folder uses too), how a kernel reads a scale
 * or zero point (a literal when it is one known value, else a binding), and
 * the WGSL of requantization as onnxruntime's CPU provider computes it, so
 * that results are bit-equal to it.
 */
import { ModelError, ValueNeededError } from '../../errors.js';
import type { ElemType, Node } from '../../model/graph.js';
import { isFloatType } from '../../model/graph.js';
import { checkScale, checkZeroPoint, isPerTensor, QUANT_RANGES, where } from '../../model/quant.js';
import { param, type KernelBinding } from '../../kernels/types.js';
import { f32, fromStorage, I32_TO_F32, type StorageType, storage, wgslType } from '../../kernels/wgsl.js';
import type { OpInput } from '../types.js';

export { checkScale, checkZeroPoint, isPerTensor, QUANT_RANGES, quantRange, where } from '../../model/quant.js';

/** The types of the integer products' operands (ConvInteger, MatMulInteger, QLinearConv, QLinearMatMul). */
const EIGHT_BIT: readonly ElemType[] = ['uint8', 'int8'];

/** Refuses an operand of an integer product that is not 8-bit. */
export function checkEightBit(node: Node, x: OpInput | undefined, what: string): void {
  if (!x?.name) throw new ModelError(`${where(node)}: input ${what} is missing`);
  if (!EIGHT_BIT.includes(x.type)) throw new ModelError(`${where(node)}: ${what} '${x.name}' is ${x.type}; expected uint8 or int8`);
}

/** Refuses a QLinear op's output type (its y_zero_point's) that is not 8-bit, as its operands. */
export function checkEightBitOutput(node: Node, type: ElemType): void {
  if (!EIGHT_BIT.includes(type)) throw new ModelError(`${where(node)}: y_zero_point is ${type}; expected uint8 or int8`);
}

/**
 * The values of a scale the host needs (the requantization multiplier),
 * checked; a scale computed at run time cannot be one.
 */
export function knownScale(node: Node, scale: OpInput | undefined, what: string): number[] {
  checkScale(node, scale, what);
  if (!scale!.value)
    throw new ValueNeededError(`${where(node)}: ${what} '${scale!.name}' must be known at load time (the requantization multiplier is computed on the host)`, [
      scale!.name,
    ]);
  return Array.from(scale!.value.data);
}

/** Refuses a parameter that is neither one value nor `length` values along the tensor's axis (`axis` names it). */
export function checkPerTensorOr(node: Node, p: OpInput | undefined, length: number, axis: string, what: string): void {
  if (!p?.name || isPerTensor(p)) return;
  if (p.dims.length !== 1 || p.dims[0] !== length) {
    throw new ModelError(`${where(node)}: ${what} '${p.name}' has shape [${p.dims}]; expected one element or [${length}] (one per ${axis})`);
  }
}

/** Checks a zero point of an 8-bit operand: its type, its known values, and its shape (one value, or one per `axis`). */
export function checkOperandZeroPoint(node: Node, zeroPoint: OpInput | undefined, type: ElemType, length: number, axis: string, what: string): void {
  checkZeroPoint(node, zeroPoint, type, what);
  checkPerTensorOr(node, zeroPoint, length, axis, what);
}

/**
 * onnxruntime's requantization multiplier x_scale · w_scale / y_scale, in
 * float32 with the product rounded first, as its QLinearConv and
 * QLinearMatMul compute it (ComputeOutputScale).
 */
export const requantMultiplier = (xScale: number, wScale: number, yScale: number): number => Math.fround(Math.fround(xScale * wScale) / yScale);

/**
 * WGSL helpers of exact integer arithmetic in floats: i32_to_f32
 * (kernels/wgsl.ts), and requantize: saturate(round_half_even(f32(acc) ·
 * multiplier) + zero_point) to [lo, hi], as onnxruntime's
 * MlasRequantizeOutput: f32 multiply and round() (half to even) are exact in
 * WGSL, and clamping before adding the zero point keeps the float in i32
 * range.
 */
export const QUANT_WGSL = `${I32_TO_F32}
fn requantize(acc: i32, multiplier: f32, zero_point: i32, lo: i32, hi: i32) -> i32 {
  let v = round(i32_to_f32(acc) * multiplier);
  return i32(clamp(v, f32(lo - zero_point), f32(hi - zero_point))) + zero_point;
}`;

/** WGSL literal of an i32, parenthesised when negative so `x - (-3i)` stays valid. */
export const i32Literal = (v: number): string => (v < 0 ? `(${v}i)` : `${v}i`);

/** The bindings of one kernel and their declarations, in binding order. */
export class Bindings {
  readonly list: KernelBinding[] = [];
  private readonly decls: string[] = [];

  /** Binds `binding` as the array `name` of `type`; returns `name`. */
  add(binding: KernelBinding, name: string, type: StorageType | 'u32'): string {
    this.decls.push(storage(this.list.length, name, type));
    this.list.push(binding);
    return name;
  }

  get declarations(): string {
    return this.decls.join('\n');
  }
}

/**
 * How a kernel reads node input `index`, a scale (f32) or zero point (i32),
 * at entry `at` when it has several values (entry 0 when it has one): a
 * literal when it is one known value (0 when omitted); known values as
 * exact f32 or i32 params, which a float16 storage of constants
 * (--precision f16) would round; a runtime tensor from its binding.
 */
export function paramReader(b: Bindings, inputs: OpInput[], index: number, name: string): (at: string) => string {
  const p = inputs[index];
  if (!p?.name) return () => '0i';
  const float = isFloatType(p.type);
  const one = isPerTensor(p);
  if (p.value) {
    const data = p.value.data;
    if (one) return () => (float ? f32(data[0]!) : i32Literal(data[0]!));
    b.add(param(float ? Float32Array.from(data) : Int32Array.from(data)), name, float ? 'f32' : 'i32');
    return (at) => `${name}[${at}]`;
  }
  b.add({ kind: 'input', index }, name, wgslType(p.type));
  return (at) => fromStorage(p.type, `${name}[${one ? '0u' : at}]`);
}

/** The range of an 8-bit type as WGSL literals, for requantize's lo and hi. */
export function rangeLiterals(type: ElemType): [string, string] {
  const [lo, hi] = QUANT_RANGES[type]!;
  return [i32Literal(lo), i32Literal(hi)];
}

/** QLinearConv's and QLinearMatMul's output type: their y_zero_point's (input 7), else the first operand's (ONNX's reference). */
export const qlinearOutputType = (inputs: OpInput[]): ElemType => (inputs[7]?.name ? inputs[7].type : inputs[0]!.type);

/** The store of ConvInteger's and MatMulInteger's int32 sum as it is. */
export function int32Store(b: Bindings): string {
  b.add({ kind: 'output', index: 0 }, 'Y', 'i32');
  return '  Y[i] = acc;';
}

/**
 * The store of QLinearConv's and QLinearMatMul's sum `acc` requantized to
 * `out`: by the one multiplier, or by entry `entry` of a table of them, then
 * y_zero_point (input 7).
 */
export function requantizedStore(b: Bindings, inputs: OpInput[], multipliers: number[], entry: string, out: ElemType, acc: string): string {
  const multiplier = multipliers.length === 1 ? f32(multipliers[0]!) : `${b.add(param(Float32Array.from(multipliers)), 'Multiplier', 'f32')}[${entry}]`;
  const yZeroPoint = paramReader(b, inputs, 7, 'YZeroPoint')('0u');
  b.add({ kind: 'output', index: 0 }, 'Y', 'i32');
  const [lo, hi] = rangeLiterals(out);
  return `  Y[i] = requantize(${acc}, ${multiplier}, ${yZeroPoint}, ${lo}, ${hi});`;
}
