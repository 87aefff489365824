/**
 * The com.microsoft QLinear ops that onnxruntime's static quantizer writes
 * in QOperator form around QLinearConv: QLinearAdd (residual adds),
 * QLinearConcat (ASPP and decoder concatenations) and
 * QLinearGlobalAveragePool (ASPP's image pooling). Each computes as
 * onnxruntime's CPU provider does on x86-64, so that the 8-bit results are
 * bit-equal to it; the float steps are spelled out at each op.
 */
import { ModelError } from '../../errors.js';
import { axis as normaliseAxis, broadcastDims } from '../../model/dims.js';
import { sizeOf, type ElemType, type Node } from '../../model/graph.js';
import { quantizeValue } from '../../model/quant.js';
import { param, type Kernel } from '../../kernels/types.js';
import { collapseAxes, f32, flatMain, grid, stridedIndex, strides, wgslType } from '../../kernels/wgsl.js';
import type { OpImpl, OpInput, TensorType } from '../types.js';
import { Bindings, checkEightBit, checkZeroPoint, i32Literal, knownScale, QUANT_RANGES, QUANT_WGSL, rangeLiterals, where } from './common.js';

const WORKGROUP = 256;

/** A per-tensor scale known at load time (these ops take no per-axis parameters). */
function scalarScale(node: Node, x: OpInput | undefined, what: string): number {
  const values = knownScale(node, x, what);
  if (values.length !== 1) throw new ModelError(`${where(node)}: ${what} '${x!.name}' has ${values.length} values; expected one`);
  return values[0]!;
}

/** A per-tensor zero point of `type` known at load time; 0 when omitted. */
function scalarZeroPoint(node: Node, x: OpInput | undefined, type: ElemType, what: string): number {
  checkZeroPoint(node, x, type, what);
  if (!x?.name) return 0;
  if (!x.value) throw new ModelError(`${where(node)}: ${what} '${x.name}' must be known at load time`);
  if (x.value.data.length !== 1) throw new ModelError(`${where(node)}: ${what} '${x.name}' has ${x.value.data.length} values; expected one`);
  return x.value.data[0]!;
}

/** The WGSL of node input `index` read at output element `i`, broadcast from its own shape to `out`. */
function broadcastRead(b: Bindings, inputs: OpInput[], index: number, name: string, out: TensorType): string {
  const x = inputs[index]!;
  const padded = [...new Array<number>(out.dims.length - x.dims.length).fill(1), ...x.dims];
  const own = strides(padded);
  const view = collapseAxes(
    out.dims,
    padded.map((d, a) => (d === 1 ? 0 : own[a]!)),
  );
  b.add({ kind: 'input', index }, name, wgslType(x.type));
  return `f32(${name}[${stridedIndex(view)}])`;
}

/**
 * Whether onnxruntime's broadcaster hands the kernel operand `x` as one value
 * per run: a run is the output's innermost stretch over which both operands
 * step alike, and an operand broadcast along it is a scalar there.
 */
function scalarPerRun(x: OpInput, out: TensorType): boolean {
  if (sizeOf(x.dims) === 1) return true;
  const padded = [...new Array<number>(out.dims.length - x.dims.length).fill(1), ...x.dims];
  const innermost = out.dims.reduce((last, d, a) => (d > 1 ? a : last), -1);
  return innermost >= 0 && padded[innermost] === 1;
}

/**
 * QLinearAdd (A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale,
 * C_zero_point), as onnxruntime's AVX2 kernel: with a = A/C and b = B/C scale
 * ratios and the fixed part f = C_zp - (a·A_zp + b·B_zp), each in float32,
 * C = saturate(round_half_even(fma(A, a, fma(B, b, f)))); an operand that is
 * one value per run (see scalarPerRun) is folded into f with a separate
 * multiply and add instead of a fused one.
 */
const qlinearAdd: OpImpl = {
  infer(node, inputs) {
    const [a, , , b] = inputs;
    checkEightBit(node, a, 'A');
    checkEightBit(node, b, 'B');
    if (a!.type !== b!.type) throw new ModelError(`${where(node)}: A is ${a!.type} and B is ${b!.type}; expected one type`);
    parameters(node, inputs);
    return [{ type: a!.type, dims: broadcastDims(node, [a!.dims, b!.dims]) }];
  },
  kernels(node, inputs, [out]) {
    const p = parameters(node, inputs);
    const n = sizeOf(out!.dims);
    const bindings = new Bindings();
    const a = broadcastRead(bindings, inputs, 0, 'A', out!);
    const b = broadcastRead(bindings, inputs, 3, 'B', out!);
    bindings.add({ kind: 'output', index: 0 }, 'C', 'i32');
    const [ratioA, ratioB] = [f32(p.ratioA), f32(p.ratioB)];
    const [scalarA, scalarB] = [scalarPerRun(inputs[0]!, out!), scalarPerRun(inputs[3]!, out!)];
    // Both one value per run only when both are one value: the kernel then takes A as the scalar, as onnxruntime's dispatch does.
    const foldA = scalarA;
    const foldB = scalarB && !scalarA;
    let value = `${f32(p.fixed)}`;
    if (foldA) value = `(${value} + ${a} * ${ratioA})`;
    if (foldB) value = `(${value} + ${b} * ${ratioB})`;
    if (!foldB) value = `fma(${b}, ${ratioB}, ${value})`;
    if (!foldA) value = `fma(${a}, ${ratioA}, ${value})`;
    const [lo, hi] = rangeLiterals(out!.type);
    return [
      {
        label: 'qlinear_add',
        wgsl: `${bindings.declarations}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  C[i] = i32(clamp(round(${value}), f32(${lo}), f32(${hi})));`,
)}`,
        workgroups: grid(n, WORKGROUP),
        bindings: bindings.list,
      },
    ];
  },
};

/** QLinearAdd's scale ratios and fixed part, in float32 as onnxruntime computes them. */
function parameters(node: Node, inputs: OpInput[]) {
  const type = inputs[0]!.type;
  const [scaleA, scaleB, scaleC] = [scalarScale(node, inputs[1], 'A_scale'), scalarScale(node, inputs[4], 'B_scale'), scalarScale(node, inputs[6], 'C_scale')];
  const [zeroA, zeroB, zeroC] = [
    scalarZeroPoint(node, inputs[2], type, 'A_zero_point'),
    scalarZeroPoint(node, inputs[5], type, 'B_zero_point'),
    scalarZeroPoint(node, inputs[7], type, 'C_zero_point'),
  ];
  const ratioA = Math.fround(scaleA / scaleC);
  const ratioB = Math.fround(scaleB / scaleC);
  const fixed = Math.fround(zeroC - Math.fround(Math.fround(ratioA * zeroA) + Math.fround(ratioB * zeroB)));
  return { ratioA, ratioB, fixed };
}

/**
 * QLinearConcat (Y_scale, Y_zero_point, then X, X_scale, X_zero_point per
 * input): each input requantized to the output's scale through a table of
 * its 256 values, as onnxruntime builds it: saturate(round_half_even(
 * (X_scale·(x - X_zp)) / Y_scale) + Y_zp) in float32, then concatenated. One
 * dispatch per input writes its slab of the output.
 */
const qlinearConcat: OpImpl = {
  infer(node, inputs) {
    const { type, dims } = concatShape(node, inputs);
    return [{ type, dims }];
  },
  kernels(node, inputs, [out]) {
    const { axis } = concatShape(node, inputs);
    const type = out!.type;
    const [lo, hi] = QUANT_RANGES[type]!;
    const scaleY = scalarScale(node, inputs[0], 'Y_scale');
    const zeroY = scalarZeroPoint(node, inputs[1], type, 'Y_zero_point');
    const inner = sizeOf(out!.dims.slice(axis + 1));
    const outBlock = out!.dims[axis]! * inner;
    let offset = 0;
    const kernels: Kernel[] = [];
    for (let k = 2; k < inputs.length; k += 3) {
      const x = inputs[k]!;
      const scaleX = scalarScale(node, inputs[k + 1], `X_scale of input ${x.name}`);
      const zeroX = scalarZeroPoint(node, inputs[k + 2], type, `X_zero_point of input ${x.name}`);
      const table = Int32Array.from({ length: hi - lo + 1 }, (_, j) => quantizeValue(Math.fround(scaleX * (lo + j - zeroX)), scaleY, zeroY, [lo, hi]));
      const n = sizeOf(x.dims);
      const block = x.dims[axis]! * inner;
      const b = new Bindings();
      b.add({ kind: 'input', index: k }, 'X', 'i32');
      b.add({ kind: 'output', index: 0 }, 'Y', 'i32');
      b.add(param(table), 'T', 'i32');
      kernels.push({
        label: 'qlinear_concat',
        wgsl: `${b.declarations}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  Y[(i / ${block}u) * ${outBlock}u + ${offset}u + i % ${block}u] = T[X[i] - ${i32Literal(lo)}];`,
)}`,
        workgroups: grid(n, WORKGROUP),
        bindings: b.list,
      });
      offset += block;
    }
    return kernels;
  },
};

function concatShape(node: Node, inputs: OpInput[]): { type: ElemType; axis: number; dims: number[] } {
  if (inputs.length < 5 || (inputs.length - 2) % 3 !== 0) {
    throw new ModelError(`${where(node)}: has ${inputs.length} inputs; expected Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input`);
  }
  const xs = inputs.filter((_, k) => k >= 2 && (k - 2) % 3 === 0);
  for (const x of xs) checkEightBit(node, x, 'X');
  const type = inputs[1]?.name ? inputs[1].type : xs[0]!.type;
  const rank = xs[0]!.dims.length;
  const axis = normaliseAxis(node, node.attrs.int('axis'), rank);
  const dims = [...xs[0]!.dims];
  dims[axis] = 0;
  for (const x of xs) {
    if (x.type !== type) throw new ModelError(`${where(node)}: input '${x.name}' is ${x.type}; expected ${type}, the output's type`);
    if (x.dims.length !== rank || x.dims.some((d, a) => a !== axis && d !== dims[a])) {
      throw new ModelError(`${where(node)}: input '${x.name}' has shape [${x.dims}]; expected [${dims.map((d, a) => (a === axis ? '*' : d))}]`);
    }
    dims[axis] += x.dims[axis]!;
  }
  return { type, axis, dims };
}

/**
 * QLinearGlobalAveragePool (X, x_scale, x_zero_point, y_scale,
 * y_zero_point) over NCHW (channels_last 0): the exact int32 sum of each
 * channel minus x_zp·HW, requantized with the multiplier
 * x_scale / (y_scale·HW) in float32, as onnxruntime's MLAS does.
 */
const qlinearGlobalAveragePool: OpImpl = {
  infer(node, inputs) {
    const x = inputs[0];
    checkEightBit(node, x, 'X');
    if (node.attrs.int('channels_last', 0) !== 0) throw new ModelError(`${where(node)}: channels_last=1 is not supported (NCHW only)`);
    if (x!.dims.length < 3) throw new ModelError(`${where(node)}: X has shape [${x!.dims}]; expected [N,C,spatial…]`);
    multiplier(node, inputs);
    return [{ type: x!.type, dims: [...x!.dims.slice(0, 2), ...x!.dims.slice(2).map(() => 1)] }];
  },
  kernels(node, inputs, [out]) {
    const x = inputs[0]!;
    const { scale, zeroX, zeroY } = multiplier(node, inputs);
    const image = sizeOf(x.dims.slice(2));
    const channels = x.dims[0]! * x.dims[1]!;
    const [lo, hi] = rangeLiterals(out!.type);
    const b = new Bindings();
    b.add({ kind: 'input', index: 0 }, 'X', 'i32');
    b.add({ kind: 'output', index: 0 }, 'Y', 'i32');
    return [
      {
        label: `qlinear_global_average_pool_${image}`,
        wgsl: `${b.declarations}
${QUANT_WGSL}
${flatMain(
  64,
  `  if (i >= ${channels}u) { return; }
  var acc = ${i32Literal(-zeroX * image)};
  for (var k = 0u; k < ${image}u; k++) { acc += X[i * ${image}u + k]; }
  Y[i] = requantize(acc, ${f32(scale)}, ${i32Literal(zeroY)}, ${lo}, ${hi});`,
)}`,
        workgroups: grid(channels, 64),
        bindings: b.list,
      },
    ];
  },
};

function multiplier(node: Node, inputs: OpInput[]) {
  const type = inputs[0]!.type;
  const image = sizeOf(inputs[0]!.dims.slice(2));
  const scaleX = scalarScale(node, inputs[1], 'x_scale');
  const scaleY = scalarScale(node, inputs[3], 'y_scale');
  const zeroX = scalarZeroPoint(node, inputs[2], type, 'x_zero_point');
  const zeroY = scalarZeroPoint(node, inputs[4], type, 'y_zero_point');
  return { scale: Math.fround(scaleX / Math.fround(scaleY * image)), zeroX, zeroY };
}

export const microsoftQuantOps: Record<string, OpImpl> = {
  'com.microsoft.QLinearAdd': qlinearAdd,
  'com.microsoft.QLinearConcat': qlinearConcat,
  'com.microsoft.QLinearGlobalAveragePool': qlinearGlobalAveragePool,
};
