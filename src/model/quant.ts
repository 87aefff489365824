/**
 * Linear quantization as ONNX defines it (QuantizeLinear, DequantizeLinear
 * and the QLinear ops): the checks of scales and zero points, shared by the
 * GPU ops (ops/quant/) and the CPU evaluators below, which fold QDQ models'
 * int8 weights followed by DequantizeLinear into float weights at load time.
 * Scalar float arithmetic is float32, as ONNX's reference and onnxruntime
 * compute it (Math.fround after each operation: an operation on two float32
 * values done in float64 and rounded once is the correctly rounded float32
 * result).
 */
import { ModelError, UnsupportedOpError } from '../errors.js';
import { axis as normaliseAxis } from './dims.js';
import type { ElemType, HostTensor, Node, TypedInput } from './graph.js';
import { isFloatType, sizeOf } from './graph.js';
import { roundHalfEven } from './numeric.js';

/** The integer types a quantized tensor may have, with their ranges. */
export const QUANT_RANGES: Readonly<Partial<Record<ElemType, readonly [number, number]>>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  uint16: [0, 65535],
  int16: [-32768, 32767],
};

/** ONNX TensorProto.DataType codes of the quantized types (QuantizeLinear's output_dtype). */
const QUANT_TYPE_CODES: Readonly<Record<number, ElemType>> = { 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16' };

export const where = (node: Node): string => `${node.opType} node '${node.name}'`;

/** The range of quantized type `type`, or a ModelError saying what `what` (an input) should be. */
export function quantRange(node: Node, type: ElemType, what: string): readonly [number, number] {
  const range = QUANT_RANGES[type];
  if (!range) throw new ModelError(`${where(node)}: ${what} is ${type}; expected ${Object.keys(QUANT_RANGES).join(', ')}`);
  return range;
}

/** Refuses a scale that is not float, or, when known at load time, a value that is not positive and finite. */
export function checkScale(node: Node, scale: TypedInput | undefined, what: string): void {
  if (!scale?.name) throw new ModelError(`${where(node)}: input ${what} is missing`);
  if (!isFloatType(scale.type)) throw new ModelError(`${where(node)}: ${what} '${scale.name}' is ${scale.type}; expected a float tensor`);
  const bad = scale.value && Array.from(scale.value.data).find((s) => !(s > 0 && Number.isFinite(s)));
  if (bad !== undefined) throw new ModelError(`${where(node)}: ${what} '${scale.name}' holds ${bad}; scales must be positive and finite`);
}

/**
 * Refuses a zero point whose type is not `type` (the type of the tensor it
 * belongs to), or, when known at load time, holds a value outside that type's
 * range. An omitted one (no input) is 0.
 */
export function checkZeroPoint(node: Node, zeroPoint: TypedInput | undefined, type: ElemType, what: string): void {
  if (!zeroPoint?.name) return;
  if (zeroPoint.type !== type) throw new ModelError(`${where(node)}: ${what} '${zeroPoint.name}' is ${zeroPoint.type}; expected ${type}`);
  const [lo, hi] = type === 'int32' ? [0, 0] : quantRange(node, type, what);
  const bad = zeroPoint.value && Array.from(zeroPoint.value.data).find((z) => !(Number.isInteger(z) && z >= lo && z <= hi));
  if (bad !== undefined) {
    throw new ModelError(
      `${where(node)}: ${what} '${zeroPoint.name}' holds ${bad}, outside ${type === 'int32' ? 'the only value int32 allows, 0' : `${type}'s range [${lo}, ${hi}]`}`,
    );
  }
}

/** A scale or zero point covers the whole tensor when it has one element, whatever its rank. */
export const isPerTensor = (t: { dims: readonly number[] }): boolean => sizeOf(t.dims) === 1;

/** Where a per-axis scale or zero point applies: element i of the tensor uses entry ⌊i / inner⌋ mod length. */
export interface QuantAxis {
  axis: number;
  length: number;
  inner: number;
}

/** What a QuantizeLinear or DequantizeLinear node computes. */
export interface LinearQuant {
  /** The quantized side's type: QuantizeLinear's output, DequantizeLinear's input. */
  type: ElemType;
  /** The axis of per-axis scales and zero points; undefined when they are per tensor. */
  axis?: QuantAxis;
}

/** Attributes QuantizeLinear and DequantizeLinear may carry (block_size only as 0, output_dtype only a quantized type). */
const LINEAR_ATTRS = ['axis', 'saturate', 'block_size', 'output_dtype'];

/**
 * Checks a QuantizeLinear/DequantizeLinear node (inputs x, scale, zero point)
 * and says what it computes: per tensor (one-element scale) or, from opset 13,
 * per axis (1-D scale of the axis's length, the zero point alike).
 */
export function linearQuant(node: Node, inputs: TypedInput[], opset: number): LinearQuant {
  const [x, scale, zeroPoint] = inputs;
  for (const name of node.attrs.names()) {
    if (!LINEAR_ATTRS.includes(name)) throw new UnsupportedOpError(`${where(node)}: attribute '${name}' is not supported`);
  }
  if (node.attrs.int('block_size', 0) !== 0) throw new UnsupportedOpError(`${where(node)}: blocked quantization (block_size) is not supported`);
  if (!x?.name) throw new ModelError(`${where(node)}: input x is missing`);
  const quantize = node.opType === 'QuantizeLinear';
  checkScale(node, scale, quantize ? 'y_scale' : 'x_scale');
  const zpName = quantize ? 'y_zero_point' : 'x_zero_point';
  let type: ElemType;
  if (quantize) {
    if (!isFloatType(x.type)) throw new ModelError(`${where(node)}: x '${x.name}' is ${x.type}; expected a float tensor`);
    const code = node.attrs.has('output_dtype') ? node.attrs.int('output_dtype') : undefined;
    const declared = code === undefined ? undefined : QUANT_TYPE_CODES[code];
    if (code !== undefined && !declared) throw new UnsupportedOpError(`${where(node)}: output_dtype ${code} is not supported (uint8, int8, uint16, int16 are)`);
    type = zeroPoint?.name ? zeroPoint.type : (declared ?? 'uint8');
    if (declared && declared !== type) throw new ModelError(`${where(node)}: output_dtype is ${declared} but ${zpName} '${zeroPoint!.name}' is ${type}`);
    quantRange(node, type, zpName);
  } else {
    type = x.type;
    if (type !== 'int32') quantRange(node, type, `x '${x.name}'`);
  }
  checkZeroPoint(node, zeroPoint, type, zpName);
  const params = [scale!, ...(zeroPoint?.name ? [zeroPoint] : [])];
  if (params.every(isPerTensor)) return { type };
  if (opset < 13) throw new ModelError(`${where(node)}: scale and zero point must have one element before opset 13 (per-axis quantization came with it)`);
  const a = normaliseAxis(node, node.attrs.int('axis', 1), x.dims.length);
  const length = x.dims[a]!;
  for (const p of params) {
    if (p.dims.length !== 1 || p.dims[0] !== length) {
      throw new ModelError(
        `${where(node)}: '${p.name}' has shape [${p.dims}]; per-axis on axis ${a} of x [${x.dims}] needs [${length}] (or one element for per tensor)`,
      );
    }
  }
  return { type, axis: { axis: a, length, inner: sizeOf(x.dims.slice(a + 1)) } };
}

/** Entry of a per-axis (or per-tensor) parameter that element `i` uses. */
const entry = (axis: QuantAxis | undefined) => (axis ? (i: number) => Math.floor(i / axis.inner) % axis.length : () => 0);

/** round_half_even(x / scale) + zero point, saturated to `range`, in float32 as ONNX's reference computes it. */
export function quantizeValue(x: number, scale: number, zeroPoint: number, [lo, hi]: readonly [number, number]): number {
  return Math.min(hi, Math.max(lo, roundHalfEven(Math.fround(x / scale)) + zeroPoint));
}

/** (x - zero point) * scale in float32: the difference rounded to float32 first, as ONNX's reference converts it. */
export const dequantizeValue = (x: number, scale: number, zeroPoint: number): number => Math.fround(Math.fround(x - zeroPoint) * scale);

type QuantEvaluator = (node: Node, inputs: TypedInput[], opset: number) => HostTensor[];

function known(node: Node, x: TypedInput | undefined): HostTensor | undefined {
  if (!x?.name) return undefined;
  if (!x.value) throw new ModelError(`${where(node)}: input '${x.name}' must be known at load time`);
  return x.value;
}

/** CPU evaluation of QuantizeLinear/DequantizeLinear on load-time inputs (model/fold.ts). */
export const quantEvaluators: Record<'QuantizeLinear' | 'DequantizeLinear', QuantEvaluator> = {
  QuantizeLinear: (node, inputs, opset) => {
    const { type, axis } = linearQuant(node, inputs, opset);
    const [x, scale, zeroPoint] = [known(node, inputs[0])!, known(node, inputs[1])!, known(node, inputs[2])];
    const at = entry(axis);
    const range = QUANT_RANGES[type]!;
    const data = Float64Array.from(x.data, (v, i) => quantizeValue(v, scale.data[at(i)]!, zeroPoint?.data[at(i)] ?? 0, range));
    return [{ type, dims: [...x.dims], data }];
  },
  DequantizeLinear: (node, inputs, opset) => {
    const { axis } = linearQuant(node, inputs, opset);
    const [x, scale, zeroPoint] = [known(node, inputs[0])!, known(node, inputs[1])!, known(node, inputs[2])];
    const at = entry(axis);
    const data = Float32Array.from(x.data, (v, i) => dequantizeValue(v, scale.data[at(i)]!, zeroPoint?.data[at(i)] ?? 0));
    return [{ type: 'float32', dims: [...x.dims], data }];
  },
};
