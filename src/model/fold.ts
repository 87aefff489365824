import { ModelError, UnsupportedOpError } from '../errors.js';
import { axis, broadcastDims, flattenDims, reshapeDims, squeezeDims, unsqueezeDims } from './dims.js';
import type { ElemType, HostTensor, Node, TypedInput } from './graph.js';
import { hostTensor, isFloatType, sizeOf } from './graph.js';
import { roundHalfEven } from './numeric.js';
import { quantEvaluators } from './quant.js';

/**
 * CPU evaluation of the ops that make up exporters' shape subgraphs
 * (Shape→Gather→Cast→Mul→Floor→Unsqueeze→Concat computing Resize sizes,
 * ConstantOfShape/Range/Where for dynamic axes). They run once, at session
 * build, on tiny integer tensors.
 */
export type Evaluator = (node: Node, inputs: TypedInput[], opset: number) => HostTensor[];

/** Ops that fold from their inputs' types alone, even when the values are only known at run time. */
export const FOLDS_FROM_TYPE = new Set(['Shape', 'Size']);

/** ONNX TensorProto.DataType codes (Cast's `to`) and the element types they name. */
export const ONNX_TYPE_CODES: Record<number, ElemType> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};

function knownValue(node: Node, x: TypedInput | undefined, what: string): HostTensor {
  if (!x?.value) throw new ModelError(`${node.opType} node '${node.name}': ${what} must be known at load time`);
  return x.value;
}

const ints = (node: Node, x: TypedInput | undefined, what: string): number[] => Array.from(knownValue(node, x, what).data);

/**
 * Folding builds plain arrays on the CPU; the tensors it creates are shape
 * subgraph values, tiny next to this. A corrupt shape (ConstantOfShape of
 * [65536, 65536]) is refused before the array is allocated.
 */
const MAX_FOLDED = 2 ** 24;

function checkFoldSize(node: Node, dims: readonly number[]): void {
  const n = sizeOf(dims);
  if (!(n <= MAX_FOLDED)) {
    throw new ModelError(
      `${node.opType} node '${node.name}': folding it would create ${n} elements ([${dims.join(',')}]) at load time; segscope folds at most 2^24`,
    );
  }
}

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);

/** `x` rounded (to nearest even) to the precision of a float with `mantissa` bits and exponent bias `bias`. */
function roundToFloat(x: number, mantissa: number, bias: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const exponent = Math.max(Math.floor(Math.log2(Math.abs(x))), 1 - bias);
  const ulp = 2 ** (exponent - mantissa);
  const y = roundHalfEven(x / ulp) * ulp;
  const max = (2 - 2 ** -mantissa) * 2 ** bias;
  return Math.abs(y) > max ? Math.sign(y) * Infinity : y;
}

/** float16 and bfloat16 are held as float32 (see HostTensor), rounded to their precision. */
const narrowFloat: Partial<Record<ElemType, (x: number) => number>> = {
  float16: (x) => roundToFloat(x, 10, 15),
  bfloat16: (x) => {
    // bfloat16 is the high half of a float32: round the low half away, to nearest even.
    f32View[0] = x;
    if (Number.isNaN(x)) return x;
    const bits = f32Bits[0]!;
    f32Bits[0] = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
    return f32View[0]!;
  },
};

/** Converts values to the element type (float rounding, integer truncation, bool). */
function cast(type: ElemType, dims: readonly number[], data: ArrayLike<number>): HostTensor {
  const narrow = narrowFloat[type];
  const out = isFloatType(type)
    ? Float32Array.from(data, (v) => (narrow ? narrow(Math.fround(v)) : v))
    : Float64Array.from(data, (v) => (type === 'bool' ? (v !== 0 ? 1 : 0) : Math.trunc(v) + 0)); // + 0: integers have no -0
  return { type: isFloatType(type) ? 'float32' : type, dims: [...dims], data: out };
}

/** Element index in a broadcast input for a flat output index. */
function broadcastIndexer(inDims: readonly number[], outDims: readonly number[]): (i: number) => number {
  const rank = outDims.length;
  const padded = [...new Array<number>(rank - inDims.length).fill(1), ...inDims];
  return (i) => {
    let src = 0;
    let stride = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const coord = i % outDims[d]!;
      i = Math.floor(i / outDims[d]!);
      if (padded[d] !== 1) src += coord * stride;
      stride *= padded[d]!;
    }
    return src;
  };
}

function elementwise(resultType: (inputs: TypedInput[]) => ElemType, f: (...v: number[]) => number): Evaluator {
  return (node, inputs) => {
    const values = inputs.map((x, i) => knownValue(node, x, `input ${i}`));
    const dims = broadcastDims(
      node,
      values.map((v) => v.dims),
    );
    // Folding weights (a Mul by a scale) may be large; only broadcasting can grow a tensor past its inputs.
    if (values.every((v) => v.data.length < sizeOf(dims))) checkFoldSize(node, dims);
    const index = values.map((v) => broadcastIndexer(v.dims, dims));
    const out = new Array<number>(sizeOf(dims));
    for (let i = 0; i < out.length; i++) out[i] = f(...values.map((v, k) => v.data[index[k]!(i)]!));
    return [cast(resultType(inputs), dims, out)];
  };
}

const sameType = (inputs: TypedInput[]) => inputs[0]!.type;
const boolType = () => 'bool' as const;
const arithmetic =
  (f: (a: number, b: number, integer: boolean) => number): Evaluator =>
  (node, inputs, opset) =>
    elementwise(sameType, (a, b) => f(a, b, !isFloatType(inputs[0]!.type)))(node, inputs, opset);

/** Copies the sub-block [starts, starts+sizes) with `steps` out of a row-major tensor. */
function slice(x: HostTensor, starts: number[], steps: number[], outDims: number[]): HostTensor {
  const inStrides = x.dims.map((_, d) => sizeOf(x.dims.slice(d + 1)));
  const out = new Array<number>(sizeOf(outDims));
  for (let i = 0; i < out.length; i++) {
    let rest = i;
    let src = 0;
    for (let d = outDims.length - 1; d >= 0; d--) {
      const c = rest % outDims[d]!;
      rest = Math.floor(rest / outDims[d]!);
      src += (starts[d]! + c * steps[d]!) * inStrides[d]!;
    }
    out[i] = x.data[src]!;
  }
  return hostTensor(x.type, outDims, out);
}

const evaluateSlice: Evaluator = (node, inputs, opset) => {
  const x = knownValue(node, inputs[0], 'data');
  const rank = x.dims.length;
  const opt = (i: number) => (inputs[i]?.name ? ints(node, inputs[i], `input ${i}`) : undefined);
  const starts = opset < 10 ? node.attrs.ints('starts') : opt(1)!;
  const ends = opset < 10 ? node.attrs.ints('ends') : opt(2)!;
  const axes = (opset < 10 ? node.attrs.ints('axes', []) : opt(3)) ?? [];
  const stepsIn = (opset < 10 ? undefined : opt(4)) ?? starts.map(() => 1);
  if (ends.length !== starts.length || (axes.length && axes.length !== starts.length) || stepsIn.length !== starts.length) {
    throw new ModelError(
      `Slice node '${node.name}': starts, ends, axes and steps have lengths ${starts.length}, ${ends.length}, ${axes.length}, ${stepsIn.length}`,
    );
  }
  const axisList = axes.length ? axes.map((a) => axis(node, a, rank)) : starts.map((_, i) => i);
  const begin = x.dims.map(() => 0);
  const step = x.dims.map(() => 1);
  const outDims = [...x.dims];
  axisList.forEach((a, k) => {
    const n = x.dims[a]!;
    const s = stepsIn[k]!;
    if (s === 0) throw new ModelError(`Slice node '${node.name}': step 0 on axis ${a}`);
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
    const b = s > 0 ? clamp(starts[k]!, 0, n) : clamp(starts[k]!, -1, n - 1);
    const e = s > 0 ? clamp(ends[k]!, 0, n) : clamp(ends[k]!, -1, n - 1);
    begin[a] = b;
    step[a] = s;
    outDims[a] = Math.max(0, Math.ceil((e - b) / s));
  });
  return [slice(x, begin, step, outDims)];
};

const evaluateGather: Evaluator = (node, inputs) => {
  const x = knownValue(node, inputs[0], 'data');
  const idx = knownValue(node, inputs[1], 'indices');
  const a = axis(node, node.attrs.int('axis', 0), x.dims.length);
  const n = x.dims[a]!;
  const outer = sizeOf(x.dims.slice(0, a));
  const inner = sizeOf(x.dims.slice(a + 1));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const raw of idx.data) {
      if (raw < -n || raw >= n) throw new ModelError(`Gather node '${node.name}': index ${raw} is out of range for size ${n}`);
      const j = raw < 0 ? raw + n : raw;
      for (let k = 0; k < inner; k++) out.push(x.data[(o * n + j) * inner + k]!);
    }
  }
  return [hostTensor(x.type, [...x.dims.slice(0, a), ...idx.dims, ...x.dims.slice(a + 1)], out)];
};

const evaluateConcat: Evaluator = (node, inputs) => {
  const parts = inputs.map((x, i) => knownValue(node, x, `input ${i}`));
  const rank = parts[0]!.dims.length;
  const a = axis(node, node.attrs.int('axis'), rank);
  const outer = sizeOf(parts[0]!.dims.slice(0, a));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const block = sizeOf(p.dims.slice(a));
      for (let k = 0; k < block; k++) out.push(p.data[o * block + k]!);
    }
  }
  const dims = [...parts[0]!.dims];
  dims[a] = parts.reduce((s, p) => s + p.dims[a]!, 0);
  return [hostTensor(parts[0]!.type, dims, out)];
};

const evaluateTranspose: Evaluator = (node, inputs) => {
  const x = knownValue(node, inputs[0], 'data');
  const rank = x.dims.length;
  const perm = node.attrs.ints(
    'perm',
    x.dims.map((_, i) => rank - 1 - i),
  );
  const outDims = perm.map((p) => x.dims[p]!);
  const inStrides = x.dims.map((_, d) => sizeOf(x.dims.slice(d + 1)));
  const out = new Array<number>(sizeOf(outDims));
  for (let i = 0; i < out.length; i++) {
    let rest = i;
    let src = 0;
    for (let d = rank - 1; d >= 0; d--) {
      src += (rest % outDims[d]!) * inStrides[perm[d]!]!;
      rest = Math.floor(rest / outDims[d]!);
    }
    out[i] = x.data[src]!;
  }
  return [hostTensor(x.type, outDims, out)];
};

const reshaped = (x: HostTensor, dims: number[]): HostTensor[] => [{ type: x.type, dims, data: x.data }];

const axesInput = (node: Node, inputs: TypedInput[]): number[] | undefined =>
  node.attrs.has('axes') ? node.attrs.ints('axes') : inputs[1]?.name ? ints(node, inputs[1], 'axes') : undefined;

export const evaluators: Partial<Record<string, Evaluator>> = {
  Constant: (node) => {
    const attrs = node.attrs;
    if (attrs.has('value')) return [attrs.tensor('value')];
    if (attrs.has('value_float')) return [hostTensor('float32', [], [attrs.float('value_float')])];
    if (attrs.has('value_floats')) return [hostTensor('float32', [attrs.floats('value_floats').length], attrs.floats('value_floats'))];
    if (attrs.has('value_int')) return [hostTensor('int64', [], [attrs.int('value_int')])];
    if (attrs.has('value_ints')) return [hostTensor('int64', [attrs.ints('value_ints').length], attrs.ints('value_ints'))];
    throw new ModelError(
      `Constant node '${node.name}': only value, value_float(s) and value_int(s) are supported (got ${attrs.names().join(', ') || 'no attribute'})`,
    );
  },
  Shape: (node, [x], opset) => {
    const rank = x!.dims.length;
    const clampAxis = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
    const start = opset >= 15 ? clampAxis(node.attrs.int('start', 0)) : 0;
    const end = opset >= 15 ? clampAxis(node.attrs.int('end', rank)) : rank;
    const dims = x!.dims.slice(start, Math.max(start, end));
    return [hostTensor('int64', [dims.length], dims)];
  },
  Size: (_, [x]) => [hostTensor('int64', [], [sizeOf(x!.dims)])],
  Gather: evaluateGather,
  Slice: evaluateSlice,
  Concat: evaluateConcat,
  Transpose: evaluateTranspose,
  Cast: (node, [x]) => {
    const to = ONNX_TYPE_CODES[node.attrs.int('to')];
    if (!to) throw new UnsupportedOpError(`Cast node '${node.name}': target type ${node.attrs.int('to')} is not supported`);
    const v = knownValue(node, x, 'input');
    return [cast(to, v.dims, v.data)];
  },
  ConstantOfShape: (node, [shape]) => {
    const dims = ints(node, shape, 'shape');
    if (dims.some((d) => d < 0)) throw new ModelError(`ConstantOfShape node '${node.name}': negative dimension in [${dims}]`);
    checkFoldSize(node, dims);
    const fill = node.attrs.has('value') ? node.attrs.tensor('value') : hostTensor('float32', [1], [0]);
    return [cast(fill.type, dims, new Array<number>(sizeOf(dims)).fill(fill.data[0] ?? 0))];
  },
  Range: (node, [start, limit, delta]) => {
    const [s, l, d] = [start, limit, delta].map((x, i) => knownValue(node, x, `input ${i}`).data[0]!) as [number, number, number];
    const n = Math.max(Math.ceil((l - s) / d), 0);
    checkFoldSize(node, [n]);
    return [
      cast(
        start!.type,
        [n],
        Array.from({ length: n }, (_, i) => s + i * d),
      ),
    ];
  },
  Expand: (node, [x, shape]) => {
    const v = knownValue(node, x, 'input');
    const dims = broadcastDims(node, [v.dims, ints(node, shape, 'shape')]);
    checkFoldSize(node, dims);
    const index = broadcastIndexer(v.dims, dims);
    return [
      cast(
        v.type,
        dims,
        Array.from({ length: sizeOf(dims) }, (_, i) => v.data[index(i)]!),
      ),
    ];
  },
  Reshape: (node, [x, shape]) => {
    const v = knownValue(node, x, 'data');
    return reshaped(v, reshapeDims(node, v.dims, ints(node, shape, 'shape'), node.attrs.int('allowzero', 0) === 1));
  },
  Flatten: (node, [x]) => reshaped(knownValue(node, x, 'input'), flattenDims(node, x!.dims, node.attrs.int('axis', 1))),
  Squeeze: (node, inputs) => reshaped(knownValue(node, inputs[0], 'data'), squeezeDims(node, inputs[0]!.dims, axesInput(node, inputs))),
  Unsqueeze: (node, inputs) => {
    const axes = axesInput(node, inputs);
    if (!axes) throw new ModelError(`Unsqueeze node '${node.name}': axes are missing`);
    return reshaped(knownValue(node, inputs[0], 'data'), unsqueezeDims(node, inputs[0]!.dims, axes));
  },
  Identity: (node, [x]) => [knownValue(node, x, 'input')],
  Add: arithmetic((a, b) => a + b),
  Sub: arithmetic((a, b) => a - b),
  Mul: arithmetic((a, b) => a * b),
  Div: arithmetic((a, b, integer) => (integer ? Math.trunc(a / b) : a / b)),
  // fmod=0: the remainder takes the divisor's sign (Python); fmod=1: the dividend's (C fmod).
  Mod: (node, inputs, opset) => arithmetic((a, b) => (node.attrs.int('fmod', 0) ? a % b : a - Math.floor(a / b) * b))(node, inputs, opset),
  Min: elementwise(sameType, Math.min),
  Max: elementwise(sameType, Math.max),
  Neg: elementwise(sameType, (a) => -a),
  Abs: elementwise(sameType, Math.abs),
  Floor: elementwise(sameType, Math.floor),
  Ceil: elementwise(sameType, Math.ceil),
  Sqrt: elementwise(sameType, Math.sqrt),
  Equal: elementwise(boolType, (a, b) => +(a === b)),
  Less: elementwise(boolType, (a, b) => +(a < b)),
  Greater: elementwise(boolType, (a, b) => +(a > b)),
  Not: elementwise(boolType, (a) => +!a),
  And: elementwise(boolType, (a, b) => +(a && b)),
  Or: elementwise(boolType, (a, b) => +(a || b)),
  Where: elementwise(
    (inputs) => inputs[1]!.type,
    (c, a, b) => (c ? a : b),
  ),
  // QDQ models' int8 weights followed by DequantizeLinear become float weights for the float kernels.
  ...quantEvaluators,
};
