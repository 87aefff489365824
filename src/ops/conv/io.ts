/**
 * Where conv kernels read and write, and how: the bindings of a conv's
 * tensors (whole, or windows of them in one part of a split conv), each
 * declared by its storage type and loaded in f32, the offsets of input planes
 * and outputs, and the store of the fused epilogue (bias, residual,
 * activation) with its capture taps. Every conv kernel (depthwise.ts,
 * lowering.ts) binds and stores through here, so precision, windows and the
 * epilogue are handled once.
 */
import type { ElemType, EpilogueTaps } from '../../model/graph.js';
import { shifted } from '../../kernels/split.js';
import type { KernelBinding } from '../../kernels/types.js';
import { fromStorage, storage, toStorage, wgslType } from '../../kernels/wgsl.js';
import type { OpInput, TensorType } from '../types.js';
import type { ConvGeometry } from './geometry.js';

/** A fused epilogue: the runtime may fold a following activation or residual Add into the conv. */
export interface ConvEpilogue {
  /** WGSL expression of `v` (the conv output, bias and residual included), e.g. `clamp(v, 0.0f, 6.0f)`. */
  activation?: string;
  /** Adds node input 3, a tensor of the output's shape, before the activation. */
  residual?: boolean;
  /** Node outputs that also receive intermediate values of the fused chain (model/graph.ts Epilogue.taps). */
  taps?: EpilogueTaps;
}

/** What a kernel computes on per element it loads from a binding: one value, or 4 (kernels compute in f32 whatever the storage). */
type Element = 'f32' | 'vec4f';

/**
 * What a conv's tensors are stored as: its inputs (X, W, B, R by index) and
 * its output. They may differ: at --precision f16 a node may read a float32
 * graph input or write a float32 graph output (model/precision.ts).
 */
export interface TensorTypes {
  inputs: ElemType[];
  /** Y, then the tapped intermediates (Epilogue.taps), by output index. */
  outputs: ElemType[];
}

/** Where a conv kernel reads and writes: the node's tensors, or windows and slices of them in one part of a split conv. */
export interface ConvIO {
  types: TensorTypes;
  x: KernelBinding;
  bias?: KernelBinding;
  /** The fused residual, a tensor of the output's shape. */
  residual?: KernelBinding;
  y: KernelBinding;
  /** Where the conv's own result (bias included, before the residual) is also written, for a capture; accumulated over input parts like Y. */
  beforeResidual?: KernelBinding;
  /** Where the value the activation is applied to is also written, for a capture. */
  beforeActivation?: KernelBinding;
  /** Adds what the output holds already: a later input-channel part of a split conv. */
  accumulate?: boolean;
  /** Elements into the X window where the part's input begins, and into the Y, R and tap windows where its output begins. */
  xShift?: number;
  yShift?: number;
  rShift?: number;
  beforeResidualShift?: number;
  beforeActivationShift?: number;
}

/** The node's own tensors, whole. */
export const wholeIO = (inputs: OpInput[], outputs: TensorType[], epilogue: ConvEpilogue): ConvIO => ({
  types: { inputs: inputs.map((x) => x.type), outputs: outputs.map((y) => y.type) },
  x: { kind: 'input', index: 0 },
  ...(inputs[2]?.name ? { bias: { kind: 'input', index: 2 } as const } : {}),
  ...(epilogue.residual ? { residual: { kind: 'input', index: 3 } as const } : {}),
  y: { kind: 'output', index: 0 },
  ...tapBindings(epilogue.taps),
});

/** The output bindings of the tapped intermediates (whole tensors). */
const tapBindings = (taps: EpilogueTaps = {}): Pick<ConvIO, 'beforeResidual' | 'beforeActivation'> =>
  Object.fromEntries(Object.entries(taps).map(([tap, index]) => [tap, { kind: 'output', index } as const]));

/** The WGSL element of a binding of `t` values that a kernel loads as `element`. */
const storedElement = (t: ElemType, element: Element) => (element === 'f32' ? wgslType(t) : t === 'float16' ? 'vec4<f16>' : 'vec4f');

/** WGSL of `expr`, an element of a binding of `t` values, as `element`. */
const loadedAs = (t: ElemType, element: Element, expr: string) => (element === 'f32' ? fromStorage(t, expr) : t === 'float16' ? `vec4f(${expr})` : expr);

/** The node input a param binding packs: the weights W or the bias B. */
const PACKED_INPUT: Readonly<Record<string, number>> = { W: 1, Bias: 2 };

/**
 * Bindings and declarations in binding order: X, weights?, bias?, residual?,
 * Y, then the taps P (before the residual) and S (before the activation);
 * `load` gives element `i` of one of them in f32. Each tensor is declared as
 * its type, and so are the weights and bias a conv packs itself as params
 * (lowering.ts, split.ts): they are the node's inputs W and B rearranged, and
 * the packer stores them as those inputs are (kernels/wgsl.ts storedFloats).
 * A scratch buffer (the stages of winograd.ts, which bind one as X or Y) is
 * float32.
 */
export function convBindings(io: ConvIO, epilogue: ConvEpilogue, x: Element, weights?: { binding: KernelBinding; type: Element }) {
  const optional = (name: string, b: KernelBinding | undefined): [string, Element, KernelBinding][] => (b ? [[name, 'f32', b]] : []);
  const list: [string, Element, KernelBinding][] = [
    ['X', x, io.x],
    ...(weights ? [['W', weights.type, weights.binding] as [string, Element, KernelBinding]] : []),
    ...optional('Bias', io.bias),
    ...optional('R', io.residual),
    ['Y', 'f32', io.y],
    ...optional('P', io.beforeResidual),
    ...optional('S', io.beforeActivation),
  ];
  const typeOf = (name: string, b: KernelBinding): ElemType =>
    b.kind === 'scratch' ? 'float32' : b.kind === 'output' ? io.types.outputs[b.index]! : io.types.inputs[b.kind === 'input' ? b.index : PACKED_INPUT[name]!]!;
  const declarations = list.map(([name, element, b], i) => storage(i, name, storedElement(typeOf(name, b), element))).join('\n');
  const bindings = list.map(([, , b]) => b);
  const load = (name: 'X' | 'W' | 'Bias' | 'R' | 'Y' | 'P', i: string) => {
    const [, element, b] = list.find(([n]) => n === name)!;
    return loadedAs(typeOf(name, b), element, `${name}[${i}]`);
  };
  /**
   * Statements storing `acc` (output channel `co`, flat output index `o` of
   * the part). The taps store the very values the sum goes through: v is
   * (acc + bias) + residual, evaluated as without them.
   */
  const store = (acc: string, co: string, o: string) => {
    const at = (shift?: number) => `${shifted(shift)}${o}`;
    const own = [acc, ...(io.bias ? [load('Bias', co)] : [])];
    const tap = (name: string, b: KernelBinding | undefined, shift: number | undefined, value: () => string) =>
      b ? `${name}[${at(shift)}] = ${toStorage(typeOf(name, b), value())};\n    ` : '';
    const beforeResidual = () => (io.accumulate ? `${acc} + ${load('P', at(io.beforeResidualShift))}` : own.join(' + '));
    return `let v = ${[...own, ...(io.residual ? [load('R', at(io.rShift))] : []), ...(io.accumulate ? [load('Y', at(io.yShift))] : [])].join(' + ')};
    ${tap('P', io.beforeResidual, io.beforeResidualShift, beforeResidual)}${tap('S', io.beforeActivation, io.beforeActivationShift, () => 'v')}Y[${at(io.yShift)}] = ${toStorage(io.types.outputs[0]!, epilogue.activation ?? 'v')};`;
  };
  return { declarations, bindings, load, store };
}

/** WGSL offset of input plane `ci` (within the group) of product z = (image, group). */
export const inputPlane = (g: ConvGeometry, io: ConvIO, ci: string) =>
  `${shifted(io.xShift)}(z / ${g.groups}u * ${g.cIn}u + z % ${g.groups}u * ${g.cIn / g.groups}u + ${ci}) * ${g.y.size * g.x.size}u`;

/** WGSL offset of output element (channel `co` of all, pixel `p`) of product z, in the part (convBindings' store adds the windows' shifts). */
export const outputIndex = (g: ConvGeometry, co: string, p: string) => `(z / ${g.groups}u * ${g.cOut}u + ${co}) * ${g.y.out * g.x.out}u + ${p}`;
