/**
 * A Conv node's geometry: its attributes and shapes checked (typed errors
 * naming the node) and resolved into sizes, strides, dilations, padding and
 * the useful taps of each spatial axis, and what follows from those alone
 * (pointwise or not, the kernels' labels). Kernels and the split read this,
 * never the node's attributes, so validation lives in one place.
 */
import { ModelError, UnsupportedOpError } from '../../errors.js';
import type { Node } from '../../model/graph.js';
import type { OpInput } from '../types.js';

/** One spatial axis of a conv. */
interface Axis {
  size: number;
  kernel: number;
  stride: number;
  dilation: number;
  /** Padding before the first pixel. */
  begin: number;
  out: number;
  /** Taps [first, first + count) read the input at some output; the others read only padding. */
  first: number;
  count: number;
}

/** Attribute values are baked into the WGSL as 32-bit integers. */
const MAX_I32 = 2 ** 31 - 1;

export interface ConvGeometry {
  batch: number;
  cIn: number;
  cOut: number;
  groups: number;
  y: Axis;
  x: Axis;
  /** Output shape as ONNX gives it (rank 3 for a 1-D conv). */
  outDims: number[];
}

const where = (node: Node) => `Conv node '${node.name}'`;
const AUTO_PADS = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

function convAxis(node: Node, size: number, kernel: number, stride: number, dilation: number, autoPad: string, pads: [number, number]): Axis {
  const extent = (kernel - 1) * dilation + 1;
  let begin: number;
  let out: number;
  if (autoPad.startsWith('SAME')) {
    out = Math.ceil(size / stride);
    const total = Math.max(0, (out - 1) * stride + extent - size);
    begin = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
  } else {
    const [b, e] = autoPad === 'VALID' ? [0, 0] : pads;
    begin = b;
    out = Math.floor((size + b + e - extent) / stride) + 1;
    if (out < 1) throw new ModelError(`${where(node)}: kernel extent ${extent} exceeds the padded input size ${size + b + e}`);
  }
  // Tap t reads input positions t·d - begin + [0, (out-1)·s]; it matters if that range meets [0, size).
  const useful = Array.from({ length: kernel }, (_, t) => {
    const lowest = t * dilation - begin;
    return lowest < size && lowest + (out - 1) * stride >= 0;
  });
  const first = Math.max(0, useful.indexOf(true));
  const count = useful.lastIndexOf(true) + 1 - first;
  return { size, kernel, stride, dilation, begin, out, first, count };
}

export function convGeometry(node: Node, inputs: OpInput[]): ConvGeometry {
  const [x, w, b] = inputs;
  const rank = x!.dims.length;
  if (rank === 5) throw new UnsupportedOpError(`${where(node)}: 3-D convolution is not supported`);
  if (rank !== 3 && rank !== 4) throw new ModelError(`${where(node)}: input must be NCHW (rank 4) or NCL (rank 3), got [${x!.dims}]`);
  if (w!.dims.length !== rank) throw new ModelError(`${where(node)}: weight [${w!.dims}] must have the input's rank ${rank}`);
  const spatial = rank - 2;
  const [batch, cIn, ...sizes] = x!.dims as [number, number, ...number[]];
  const [cOut, cPerGroup, ...kernel] = w!.dims as [number, number, ...number[]];
  const groups = node.attrs.int('group', 1);
  if (groups < 1 || cOut % groups !== 0) {
    throw new ModelError(`${where(node)}: group ${groups} must be ≥ 1 and divide the ${cOut} output channels`);
  }
  if (cPerGroup * groups !== cIn) {
    throw new ModelError(`${where(node)}: input has ${cIn} channels, weight [${w!.dims}] with group ${groups} expects ${cPerGroup * groups}`);
  }
  if (b?.name && (b.dims.length !== 1 || b.dims[0] !== cOut)) {
    throw new ModelError(`${where(node)}: bias must have shape [${cOut}], got [${b.dims}]`);
  }
  const ints = (name: string, length: number, fallback: number[], min: number) => {
    const v = node.attrs.ints(name, fallback);
    if (v.length !== length || v.some((e) => e < min || e > MAX_I32)) {
      throw new ModelError(`${where(node)}: ${name} must be ${length} integers from ${min} to ${MAX_I32}, got [${v}]`);
    }
    return v;
  };
  const ones = Array<number>(spatial).fill(1);
  const kernelShape = ints('kernel_shape', spatial, kernel, 1);
  if (kernelShape.some((k, i) => k !== kernel[i])) {
    throw new ModelError(`${where(node)}: kernel_shape [${kernelShape}] differs from the weight's [${kernel}]`);
  }
  const stride = ints('strides', spatial, ones, 1);
  const dilation = ints('dilations', spatial, ones, 1);
  const autoPad = node.attrs.string('auto_pad', 'NOTSET');
  if (!AUTO_PADS.includes(autoPad)) {
    throw new ModelError(`${where(node)}: auto_pad must be one of ${AUTO_PADS.join(', ')}, got '${autoPad}'`);
  }
  if (autoPad !== 'NOTSET' && node.attrs.has('pads')) {
    throw new ModelError(`${where(node)}: pads and auto_pad ${autoPad} cannot both be given`);
  }
  const pads = ints('pads', 2 * spatial, Array<number>(2 * spatial).fill(0), 0);
  const axes = sizes.map((size, i) => convAxis(node, size, kernel[i]!, stride[i]!, dilation[i]!, autoPad, [pads[i]!, pads[i + spatial]!]));
  // A 1-D conv is a 2-D conv over a 1-pixel-high image.
  const flat: Axis = { size: 1, kernel: 1, stride: 1, dilation: 1, begin: 0, out: 1, first: 0, count: 1 };
  const [yAxis, xAxis] = spatial === 1 ? [flat, axes[0]!] : (axes as [Axis, Axis]);
  return { batch, cIn, cOut, groups, y: yAxis, x: xAxis, outDims: [batch, cOut, ...axes.map((a) => a.out)] };
}

/** Pointwise: every output pixel reads the same input pixel (1x1 taps left, stride 1, no net offset). */
export const isPointwise = ({ y, x }: ConvGeometry) =>
  [y, x].every((a) => a.count === 1 && a.stride === 1 && a.first * a.dilation === a.begin && a.out === a.size);

export const convLabel = ({ y, x, ...g }: ConvGeometry) =>
  isPointwise({ y, x, ...g }) ? 'conv1x1' : `conv${y.kernel}x${x.kernel}_s${x.stride}_d${x.dilation}`;

export const depthwiseLabel = ({ y, x }: ConvGeometry) => `depthwise${y.kernel}x${x.kernel}_s${x.stride}_d${x.dilation}`;
