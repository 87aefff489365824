/**
 * The real values an 8-bit tensor of a quantized model stands for: its
 * scale and zero point, as the node that produced it declares them. A
 * captured quantized tensor is drawn and read from these (its dequantized
 * value), as the next DequantizeLinear would see it.
 */
import { opKey, producers } from './graph.js';
import type { TypedGraph } from './infer.js';

/** Where a tensor's scale and zero point are: tensor names (constants, or computed at run time by DynamicQuantizeLinear). */
export interface TensorQuantization {
  scale: string;
  /** Absent: zero point 0. */
  zeroPoint?: string;
  /** The axis of a per-axis scale (QuantizeLinear's `axis`); undefined when the scale has one element. */
  axis?: number;
}

/** Input positions of an op's output scale and zero point. */
const OUTPUT_SCALE: Readonly<Record<string, readonly [number, number]>> = {
  QuantizeLinear: [1, 2],
  QLinearConv: [6, 7],
  QLinearMatMul: [6, 7],
  'com.microsoft.QLinearAdd': [6, 7],
  'com.microsoft.QLinearMul': [6, 7],
  'com.microsoft.QLinearConcat': [0, 1],
  'com.microsoft.QLinearGlobalAveragePool': [3, 4],
  'com.microsoft.QLinearAveragePool': [3, 4],
  'com.microsoft.QLinearSigmoid': [3, 4],
  'com.microsoft.QLinearLeakyRelu': [3, 4],
};

/**
 * Ops whose 8-bit output is quantized as their input 0 is: they move,
 * pick or interpolate values without rescaling them (onnxruntime's
 * quantizer leaves them on the 8-bit tensor).
 */
const SAME_AS_INPUT = new Set(['MaxPool', 'Resize', 'Upsample', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Identity', 'Slice', 'Pad']);

/**
 * The scale and zero point of 8-bit tensor `name` of `typed`, following
 * value-preserving ops back to the quantizing node; undefined when the
 * tensor is not 8-bit or no quantizing node declares them.
 */
export function tensorQuantization(typed: TypedGraph, name: string): TensorQuantization | undefined {
  const type = typed.types.get(name)?.type;
  if (type !== 'uint8' && type !== 'int8') return undefined;
  const producer = producers(typed.graph.nodes);
  for (let node = producer.get(name); node; node = producer.get(node.inputs[0]!)) {
    const at = OUTPUT_SCALE[opKey(node)];
    if (at) {
      const [scale, zeroPoint] = [node.inputs[at[0]]!, node.inputs[at[1]]];
      const perAxis = node.opType === 'QuantizeLinear' && (typed.types.get(scale)?.dims.reduce((a, b) => a * b, 1) ?? 1) > 1;
      const rank = typed.types.get(node.outputs[0]!)!.dims.length;
      const axis = perAxis ? (node.attrs.int('axis', 1) + rank) % rank : undefined;
      return { scale, ...(zeroPoint ? { zeroPoint } : {}), ...(axis === undefined ? {} : { axis }) };
    }
    if (!SAME_AS_INPUT.has(opKey(node))) return undefined;
  }
  return undefined;
}
