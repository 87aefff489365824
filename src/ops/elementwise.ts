import { ModelError, UnsupportedOpError } from '../errors.js';
import { axis, broadcastDims } from '../model/dims.js';
import type { ElemType, Node } from '../model/graph.js';
import { isFloatType, sizeOf, typesAgree } from '../model/graph.js';
import { unaryKernel } from '../kernels/unary.js';
import type { Kernel, KernelBinding } from '../kernels/types.js';
import type { OpImpl, OpInput, TensorType } from './types.js';
import { collapseAxes, f32, flatMain, fromStorage, grid, relu, storage, stridedIndex, strides, toStorage, wgslType } from '../kernels/wgsl.js';

/**
 * Elementwise math with numpy broadcasting: one thread per output element,
 * each operand read at an index whose broadcast strides are baked into the
 * shader. Same-shape operands read `X[i]`, per-channel ones `X[i / HW % C]`,
 * scalar constants are inlined as literals.
 */

const WORKGROUP = 256;
/** WebGPU guarantees 8 storage buffers per shader stage; one is the output. */
const MAX_INPUTS_PER_KERNEL = 7;

/** How the kernel reads the operands of one dispatch. */
interface Reads {
  /** WGSL expression of each operand at output element `i`. */
  values: string[];
  decls: string[];
  bindings: KernelBinding[];
}

/** A WGSL literal of the scalar type, parenthesised so `a - (-1.0f)` stays valid. */
function literal(v: number, type: ElemType): string {
  const s = isFloatType(type) ? f32(v) : `${Math.trunc(v) | 0}i`;
  return v < 0 ? `(${s})` : s;
}

/** The value of a one-element constant input. */
const scalarValue = (x: OpInput): number | undefined => (x.value?.data.length === 1 ? x.value.data[0] : undefined);

/** Operand readers for node inputs `indices`, each broadcast from `dims[k]` to the output. */
function reads(inputs: OpInput[], dims: number[][], indices: number[], out: TensorType): Reads {
  const r: Reads = { values: [], decls: [], bindings: [] };
  for (const index of indices) {
    const x = inputs[index]!;
    const scalar = scalarValue(x);
    // NaN has no WGSL literal: such a constant is bound like any other.
    if (scalar !== undefined && !Number.isNaN(scalar)) {
      r.values.push(literal(scalar, x.type));
      continue;
    }
    const padded = [...new Array<number>(out.dims.length - dims[index]!.length).fill(1), ...dims[index]!];
    const own = strides(padded);
    const view = collapseAxes(
      out.dims,
      padded.map((d, a) => (d === 1 ? 0 : own[a]!)),
    );
    const name = `X${r.bindings.length}`;
    r.decls.push(storage(r.bindings.length, name, wgslType(x.type)));
    r.values.push(fromStorage(x.type, `${name}[${stridedIndex(view)}]`));
    r.bindings.push({ kind: 'input', index });
  }
  return r;
}

/**
 * Integer tensors compute in i32 on the GPU; 8- and 16-bit results wrap to
 * their type's range like the CPU's (uint8 200 + 100 = 44).
 */
function wrapInteger(type: ElemType, expr: string): string {
  switch (type) {
    case 'uint8':
      return `((${expr}) & 255i)`;
    case 'uint16':
      return `((${expr}) & 65535i)`;
    case 'int8':
      return `(((${expr}) << 24u) >> 24u)`;
    case 'int16':
      return `(((${expr}) << 16u) >> 16u)`;
    default:
      return expr;
  }
}

/**
 * The dispatch `Y[i] = expr`; `helpers` are WGSL functions `expr` calls.
 * `v`: `expr` reads its operand as `v`, computed once from `value` (a fused
 * Relu's input); `tap` names a node output that also receives it, because a
 * capture keeps it (model/graph.ts Epilogue.taps).
 */
function kernel(label: string, out: TensorType, r: Reads, expr: string, helpers = '', v?: { value: string; tap?: { index: number; type: ElemType } }): Kernel {
  const n = sizeOf(out.dims);
  const tap = v?.tap;
  const named = v ? `\n  let v = ${v.value};${tap ? `\n  S[i] = ${toStorage(tap.type, 'v')};` : ''}` : '';
  return {
    label,
    wgsl: `${r.decls.join('\n')}
${storage(r.bindings.length, 'Y', wgslType(out.type))}${tap ? `\n${storage(r.bindings.length + 1, 'S', wgslType(tap.type))}` : ''}
${helpers}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }${named}
  Y[i] = ${toStorage(out.type, wrapInteger(out.type, expr))};`,
)}`,
    workgroups: grid(n, WORKGROUP),
    bindings: [...r.bindings, { kind: 'output', index: 0 }, ...(tap ? [{ kind: 'output', index: tap.index } as const] : [])],
  };
}

/** Arithmetic whose operands all have the output's type. */
interface Arithmetic {
  /** Binary ops take exactly two inputs; the others one or more. */
  binary?: true;
  floatOnly?: true;
  combine(a: string, b: string): string;
  /** Applied once to the combined value of all `n` operands. */
  finish?(acc: string, n: number): string;
}

const add = (a: string, b: string) => `(${a} + ${b})`;

const arithmetic: Record<string, Arithmetic> = {
  Add: { binary: true, combine: add },
  Sub: { binary: true, combine: (a, b) => `(${a} - ${b})` },
  Mul: { binary: true, combine: (a, b) => `(${a} * ${b})` },
  // i32 division truncates toward zero, as ONNX runtimes do for integers.
  Div: { binary: true, combine: (a, b) => `(${a} / ${b})` },
  Max: { combine: (a, b) => `max(${a}, ${b})` },
  Min: { combine: (a, b) => `min(${a}, ${b})` },
  Sum: { combine: add },
  Mean: { floatOnly: true, combine: add, finish: (acc, n) => `${acc} / ${f32(n)}` },
};

/**
 * Operand shapes for broadcasting. Before opset 7 the binary ops broadcast
 * only with `broadcast=1`, aligning B with A at `axis` (default: trailing).
 */
function operandDims(node: Node, inputs: OpInput[], opset: number): number[][] {
  const dims = inputs.map((x) => x.dims);
  if (opset >= 7 || !node.attrs.has('broadcast')) return dims;
  const [a, b] = dims as [number[], number[]];
  if (node.attrs.int('broadcast') === 0) {
    if (a.length !== b.length || a.some((d, k) => d !== b[k])) {
      throw new ModelError(`${node.opType} node '${node.name}': shapes [${a}] and [${b}] differ and broadcast=0`);
    }
    return dims;
  }
  const at = node.attrs.has('axis') ? axis(node, node.attrs.int('axis'), a.length) : a.length - b.length;
  if (at < 0 || at + b.length > a.length) {
    throw new ModelError(`${node.opType} node '${node.name}': B of shape [${b}] does not fit A of shape [${a}] at axis ${at}`);
  }
  return [a, [...b, ...new Array<number>(a.length - at - b.length).fill(1)]];
}

/** Checks the input count and that every input is numeric (and float for `floatOnly`). */
function checkInputs(node: Node, inputs: OpInput[], binary: boolean, floatOnly: boolean): void {
  const where = `${node.opType} node '${node.name}'`;
  if (inputs.some((x) => !x.name)) throw new ModelError(`${where}: an input is missing`);
  if (binary ? inputs.length !== 2 : inputs.length < 1) {
    throw new ModelError(`${where}: expected ${binary ? '2 inputs' : 'at least 1 input'}, got ${inputs.length}`);
  }
  for (const x of inputs) {
    if (x.type === 'string' || x.type === 'bool' || (floatOnly && !isFloatType(x.type))) {
      throw new ModelError(`${where}: input '${x.name}' is ${x.type}; expected ${floatOnly ? 'a float' : 'a numeric'} tensor`);
    }
  }
}

function arithmeticOp(op: Arithmetic): OpImpl {
  return {
    infer(node, inputs, opset) {
      checkInputs(node, inputs, op.binary ?? false, op.floatOnly ?? false);
      const mixed = inputs.find((x) => !typesAgree(x.type, inputs[0]!.type));
      if (mixed) throw new ModelError(`${node.opType} node '${node.name}': inputs mix ${inputs[0]!.type} and ${mixed.type}`);
      return [{ type: inputs[0]!.type, dims: broadcastDims(node, operandDims(node, inputs, opset)) }];
    },
    kernels(node, inputs, outputs, opset) {
      const out = outputs[0];
      const dims = operandDims(node, inputs, opset);
      const n = inputs.length;
      // Inputs beyond one dispatch's bindings are folded in by further dispatches, Y carrying the partial result.
      const kernels: Kernel[] = [];
      for (let start = 0; start < n; start += MAX_INPUTS_PER_KERNEL) {
        const chunk = Array.from({ length: Math.min(MAX_INPUTS_PER_KERNEL, n - start) }, (_, k) => start + k);
        const r = reads(inputs, dims, chunk, out!);
        const operands = start === 0 ? r.values : [fromStorage(out!.type, 'Y[i]'), ...r.values];
        const acc = operands.reduce(op.combine);
        const last = start + MAX_INPUTS_PER_KERNEL >= n;
        const value = last && op.finish ? op.finish(acc, n) : acc;
        // A fused Relu (model/passes.ts fuseEpilogues) applies once, to the final value, which a capture may keep too.
        if (last && node.epilogue?.activation === 'Relu') {
          const tap = node.epilogue.taps?.beforeActivation;
          kernels.push(kernel(node.opType, out!, r, relu('v'), '', { value, tap: tap === undefined ? undefined : { index: tap, type: outputs[tap]!.type } }));
        } else kernels.push(kernel(node.opType, out!, r, value));
      }
      return kernels;
    },
  };
}

/**
 * numpy's float power. Integral exponents go by squaring: exact where the
 * result is representable (an integer base cubed stays an integer, where
 * exp2(y * log2(x)) may give 26.999998) and defined for negative bases, which
 * WGSL's pow is not. Other exponents use pow, NaN for negative bases as in numpy.
 */
const POW_F32 = `
fn pow_f32(x: f32, y: f32) -> f32 {
  if (y != floor(y) || abs(y) > 1024.0f) { return pow(x, y); }
  var r = 1.0f;
  var b = x;
  var e = u32(abs(y));
  while (e != 0u) {
    if ((e & 1u) != 0u) { r *= b; }
    b *= b;
    e >>= 1u;
  }
  return select(r, 1.0f / r, y < 0.0f);
}`;

/** Integer power by squaring; negative exponents give 1/x^|y| truncated. */
const POW_I32 = `
fn pow_i32(x: i32, y: i32) -> i32 {
  if (y < 0i) {
    if (x == 1i) { return 1i; }
    if (x == -1i) { return select(1i, -1i, (y & 1i) != 0i); }
    return 0i;
  }
  var r = 1i;
  var b = x;
  var e = y;
  while (e != 0i) {
    if ((e & 1i) != 0i) { r *= b; }
    b *= b;
    e >>= 1u;
  }
  return r;
}`;

/** Constant exponents with a cheaper form (x^2 and x^0.5 appear in hand-written norms). */
const POW_SHORTCUTS: Record<number, (x: string) => string> = {
  2: (x) => `(${x} * ${x})`,
  0.5: (x) => `sqrt(${x})`,
};

/** Pow: base and exponent may differ in type; the result has the base's type. */
const powOp: OpImpl = {
  infer(node, inputs, opset) {
    checkInputs(node, inputs, true, false);
    return [{ type: inputs[0]!.type, dims: broadcastDims(node, operandDims(node, inputs, opset)) }];
  },
  kernels(node, inputs, [out], opset) {
    const [x, y] = inputs as [OpInput, OpInput];
    const r = reads(inputs, operandDims(node, inputs, opset), [0, 1], out!);
    const [base, exponent] = r.values as [string, string];
    const constant = scalarValue(y);
    const shortcut = constant === undefined ? undefined : POW_SHORTCUTS[constant];
    if (isFloatType(x.type) && shortcut) return [kernel('Pow', out!, r, shortcut(base))];
    if (!isFloatType(x.type) && !isFloatType(y.type)) return [kernel('Pow', out!, r, `pow_i32(${base}, ${exponent})`, POW_I32)];
    const power = `pow_f32(f32(${base}), f32(${exponent}))`;
    // A float power of an integer base truncates toward zero, as a cast does.
    return [kernel('Pow', out!, r, isFloatType(x.type) ? power : `i32(${power})`, POW_F32)];
  },
};

/**
 * erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, a few float32
 * ulps near ±1). WGSL has no erf; exact GELU needs it.
 */
const ERF = `
fn erf_f32(x: f32) -> f32 {
  let t = 1.0f / (1.0f + 0.3275911f * abs(x));
  let p = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  return sign(x) * (1.0f - p * exp(-x * x));
}`;

/** Float-only unary math, as WGSL expressions of `x`, with any helper functions they call. */
const unary: Record<string, { expr: string; helpers?: string }> = {
  Neg: { expr: '-x' },
  Abs: { expr: 'abs(x)' },
  Exp: { expr: 'exp(x)' },
  Log: { expr: 'log(x)' },
  Sqrt: { expr: 'sqrt(x)' },
  Reciprocal: { expr: '1.0f / x' },
  Floor: { expr: 'floor(x)' },
  Ceil: { expr: 'ceil(x)' },
  // WGSL's round() takes halves to even, as ONNX's Round.
  Round: { expr: 'round(x)' },
  Erf: { expr: 'erf_f32(x)', helpers: ERF },
};

function unaryOp(expr: string, helpers = ''): OpImpl {
  return {
    infer(node, [x]) {
      if (!x?.name) throw new ModelError(`${node.opType} node '${node.name}': the input is missing`);
      if (!isFloatType(x.type)) {
        throw new UnsupportedOpError(`${node.opType} node '${node.name}': input '${x.name}' is ${x.type}; only float tensors are supported`);
      }
      return [{ type: x.type, dims: [...x.dims] }];
    },
    kernels(node, [x], [out]) {
      const k = unaryKernel(node.opType, expr, x!, out!);
      return [{ ...k, wgsl: `${k.wgsl}\n${helpers}` }];
    },
  };
}

export const elementwiseOps: Record<string, OpImpl> = {
  ...Object.fromEntries(Object.entries(arithmetic).map(([op, a]) => [op, arithmeticOp(a)])),
  Pow: powOp,
  ...Object.fromEntries(Object.entries(unary).map(([op, u]) => [op, unaryOp(u.expr, u.helpers)])),
};
