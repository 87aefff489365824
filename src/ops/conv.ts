import { ModelError, UnsupportedOpError } from '../errors.js';
import type { ElemType, EpilogueTaps, HostTensor, Node } from '../model/graph.js';
import { chooseSubgroupTile, packSubgroupWeights, paddedChannels, subgroupConvKernel, type SubgroupTile } from './conv-subgroup.js';
import { checkAttrs, requireFloat } from './attrs.js';
import { chooseTile, gemmKernel, type GemmTile, tileRows } from '../kernels/gemm.js';
import { type BindingLimits, runWindow, shifted, splitUnits, type Strided, UNLIMITED } from '../kernels/split.js';
import type { Kernel, KernelBinding } from '../kernels/types.js';
import type { OpImpl, OpInput, TensorType } from './types.js';
import { fromStorage, gpuElementBytes, grid, range, storage, toStorage, wgslType } from '../kernels/wgsl.js';

/**
 * ONNX Conv (2-D, and 1-D as H = 1), NCHW. Four kernels:
 * - implicit GEMM (no im2col buffer): Y[co][pixel] = Σ_k W[co][k] · X(k, pixel),
 *   k running over (input channel, kernel tap), dilation and padding in the
 *   index math, on the tiled product of kernels/gemm.ts;
 * - the same product reading X as a plain channels x pixels matrix when the
 *   conv is pointwise (1x1, stride 1, no padding);
 * - on CPU adapters, the same product as one subgroup per workgroup sharing
 *   operands by broadcasts (conv-subgroup.ts), for constant weights;
 * - a direct kernel when each group has one input channel (depthwise, with
 *   any channel multiplier), where a GEMM would have K = taps only.
 * Kernel taps that only ever read padding (large ASPP dilations on small
 * maps) are dropped at load time: a 3x3 conv at dilation 36 on a 33x33 map is
 * a 1x1 conv.
 */

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

/** ReLU as the Relu kernel computes it (activation.ts), so fusing changes no bit. */
const RELU = 'max(v, 0.0f)';

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

function convAxis(
  node: Node,
  size: number,
  kernel: number,
  stride: number,
  dilation: number,
  autoPad: string,
  pads: [number, number],
): Axis {
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
  const axes = sizes.map((size, i) =>
    convAxis(node, size, kernel[i]!, stride[i]!, dilation[i]!, autoPad, [pads[i]!, pads[i + spatial]!]),
  );
  // A 1-D conv is a 2-D conv over a 1-pixel-high image.
  const flat: Axis = { size: 1, kernel: 1, stride: 1, dilation: 1, begin: 0, out: 1, first: 0, count: 1 };
  const [yAxis, xAxis] = spatial === 1 ? [flat, axes[0]!] : (axes as [Axis, Axis]);
  return { batch, cIn, cOut, groups, y: yAxis, x: xAxis, outDims: [batch, cOut, ...axes.map((a) => a.out)] };
}

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
interface TensorTypes {
  inputs: ElemType[];
  /** Y, then the tapped intermediates (Epilogue.taps), by output index. */
  outputs: ElemType[];
}

/** Where a conv kernel reads and writes: the node's tensors, or windows and slices of them in one part of a split conv. */
interface ConvIO {
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
const wholeIO = (inputs: OpInput[], outputs: TensorType[], epilogue: ConvEpilogue): ConvIO => ({
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

/**
 * Bindings and declarations in binding order: X, weights, bias?, residual?,
 * Y, then the taps P (before the residual) and S (before the activation);
 * `load` gives element `i` of one of them in f32. Each tensor is declared as
 * its type, the weights and bias a conv packs itself as float32 params.
 */
function convBindings(io: ConvIO, epilogue: ConvEpilogue, x: Element, weights: { binding: KernelBinding; type: Element }) {
  const optional = (name: string, b: KernelBinding | undefined): [string, Element, KernelBinding][] => (b ? [[name, 'f32', b]] : []);
  const list: [string, Element, KernelBinding][] = [
    ['X', x, io.x],
    ['W', weights.type, weights.binding],
    ...optional('Bias', io.bias),
    ...optional('R', io.residual),
    ['Y', 'f32', io.y],
    ...optional('P', io.beforeResidual),
    ...optional('S', io.beforeActivation),
  ];
  const typeOf = (b: KernelBinding): ElemType => (b.kind === 'input' ? io.types.inputs[b.index]! : b.kind === 'output' ? io.types.outputs[b.index]! : 'float32');
  const declarations = list.map(([name, element, b], i) => storage(i, name, storedElement(typeOf(b), element))).join('\n');
  const bindings = list.map(([, , b]) => b);
  const load = (name: 'X' | 'W' | 'Bias' | 'R' | 'Y' | 'P', i: string) => {
    const [, element, b] = list.find(([n]) => n === name)!;
    return loadedAs(typeOf(b), element, `${name}[${i}]`);
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
      b ? `${name}[${at(shift)}] = ${toStorage(typeOf(b), value())};\n    ` : '';
    const beforeResidual = () => (io.accumulate ? `${acc} + ${load('P', at(io.beforeResidualShift))}` : own.join(' + '));
    return `let v = ${[...own, ...(io.residual ? [load('R', at(io.rShift))] : []), ...(io.accumulate ? [load('Y', at(io.yShift))] : [])].join(' + ')};
    ${tap('P', io.beforeResidual, io.beforeResidualShift, beforeResidual)}${tap('S', io.beforeActivation, io.beforeActivationShift, () => 'v')}Y[${at(io.yShift)}] = ${toStorage(io.types.outputs[0]!, epilogue.activation ?? 'v')};`;
  };
  return { declarations, bindings, load, store };
}

const depthwiseLabel = ({ y, x }: ConvGeometry) => `depthwise${y.kernel}x${x.kernel}_s${x.stride}_d${x.dilation}`;

/**
 * Depthwise (one input channel per group, any channel multiplier): one thread
 * per output; a workgroup covers part of one output plane, so the plane's
 * weights are workgroup-uniform loads. (Several outputs per thread unroll into
 * many more input loads, which multiplies compile time on CPU adapters for no
 * measurable gain.)
 */
function depthwiseKernel(g: ConvGeometry, io: ConvIO, epilogue: ConvEpilogue): Kernel {
  const { y, x } = g;
  const WORKGROUP = 64;
  const perGroup = g.cOut / g.groups;
  const outputs = y.out * x.out;
  const blocksPerPlane = Math.ceil(outputs / WORKGROUP);
  const blocks = g.batch * g.cOut * blocksPerPlane;
  const { declarations, bindings, load, store } = convBindings(io, epilogue, 'f32', { binding: { kind: 'input', index: 1 }, type: 'f32' });
  return {
    label: depthwiseLabel(g),
    wgsl: `${declarations}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let block = wg.x + wg.y * nwg.x;
  let p = block % ${blocksPerPlane}u * ${WORKGROUP}u + t;
  if (block >= ${blocks}u || p >= ${outputs}u) { return; }
  let plane = block / ${blocksPerPlane}u;
  let co = plane % ${g.cOut}u;
  let b = plane / ${g.cOut}u;
  let xBase = (b * ${g.cIn}u + co / ${perGroup}u) * ${y.size * x.size}u;
  let iy0 = i32(p / ${x.out}u * ${y.stride}u) - ${y.begin};
  let ix0 = i32(p % ${x.out}u * ${x.stride}u) - ${x.begin};
  var acc = 0.0f;
  for (var ky = ${y.first}u; ky < ${y.first + y.count}u; ky++) {
    let iy = iy0 + i32(ky * ${y.dilation}u);
    if (iy < 0 || iy >= ${y.size}) { continue; }
    for (var kx = ${x.first}u; kx < ${x.first + x.count}u; kx++) {
      let ix = ix0 + i32(kx * ${x.dilation}u);
      if (ix >= 0 && ix < ${x.size}) { acc += ${load('W', `(co * ${y.kernel}u + ky) * ${x.kernel}u + kx`)} * ${load('X', `xBase + u32(iy) * ${x.size}u + u32(ix)`)}; }
    }
  }
  ${store('acc', 'co', `plane * ${outputs}u + p`)}
}`,
    workgroups: grid(blocks * WORKGROUP, WORKGROUP),
    bindings,
  };
}

/**
 * What conv kernels may assume about the adapter; the runtime fills it in.
 * `cpuSubgroupSize`: the subgroup size of a CPU adapter (lavapipe: 8, its
 * SIMD width) that has the 'subgroups' feature enabled and one fixed
 * subgroup size (adapter.info.subgroupMinSize === subgroupMaxSize); leave it
 * undefined on GPUs, where 8-invocation workgroups would waste the machine.
 */
export interface ConvAdapter {
  cpuSubgroupSize?: number;
}

/** How a conv with constant weights runs: the tiled GEMM, or the subgroup kernel of CPU adapters. */
export type ConvLowering = { kind: 'tiled'; tile: GemmTile } | { kind: 'subgroup'; tile: SubgroupTile };

/**
 * The kernel for a product of m output channels by n output pixels. On
 * lavapipe every non-constant load is a loop over the SIMD lanes, so the
 * subgroup kernel, which loads each operand once per subgroup rather than
 * once per lane, ran DeepLab's convs 3-9x faster than the tiled GEMM (the
 * 1x1 conv of a 1x1 map 14x); on GPUs the tiled GEMM's shared-memory reuse is
 * what pays.
 */
export function chooseConvLowering(m: number, n: number, adapter: ConvAdapter): ConvLowering {
  return adapter.cpuSubgroupSize ? { kind: 'subgroup', tile: chooseSubgroupTile(m, n, adapter.cpuSubgroupSize) } : { kind: 'tiled', tile: chooseTile(m) };
}

/**
 * Depthwise on a CPU adapter: a workgroup is one subgroup of `lanes`, over a
 * run of one output plane, each lane PIXELS pixels of it. Lane l loads taps
 * l, l + lanes, … of the plane's weights once, and every tap's weight reaches
 * all lanes by a broadcast from a constant lane: on lavapipe each load whose
 * address is not a constant is a loop over the lanes (conv-subgroup.ts), and
 * the one-thread-per-output kernel loaded every weight in every lane.
 */
function subgroupDepthwiseKernel(g: ConvGeometry, io: ConvIO, epilogue: ConvEpilogue, lanes: number): Kernel {
  const { y, x } = g;
  const PIXELS = 4;
  const perGroup = g.cOut / g.groups;
  const outputs = y.out * x.out;
  const span = lanes * PIXELS;
  const blocksPerPlane = Math.ceil(outputs / span);
  const blocks = g.batch * g.cOut * blocksPerPlane;
  const taps = y.count * x.count;
  const loads = Math.ceil(taps / lanes);
  const { declarations, bindings, load, store } = convBindings(io, epilogue, 'f32', { binding: { kind: 'input', index: 1 }, type: 'f32' });
  // Useful tap j is (ky, kx) = (first.y + j / count.x, first.x + j % count.x).
  const weightLoads = range(loads).map((r) => {
    const j = `min(${r * lanes}u + lane, ${taps - 1}u)`;
    return `  let w${r} = ${load('W', `(co * ${y.kernel}u + ${y.first}u + ${j} / ${x.count}u) * ${x.kernel}u + ${x.first}u + ${j} % ${x.count}u`)};`;
  });
  const tapSums = range(taps).map((j) => {
    const [ty, tx] = [Math.floor(j / x.count), j % x.count];
    const dy = (y.first + ty) * y.dilation;
    const dx = (x.first + tx) * x.dilation;
    return `  {
    let w = subgroupBroadcast(w${Math.floor(j / lanes)}, ${j % lanes}u);
${range(PIXELS)
  .map(
    (q) => `    let y${q} = iy${q} + ${dy};
    let x${q} = ix${q} + ${dx};
    acc${q} += w * select(0.0f, ${load('X', `xBase + u32(clamp(y${q}, 0, ${y.size - 1})) * ${x.size}u + u32(clamp(x${q}, 0, ${x.size - 1}))`)}, ok${q} && y${q} >= 0 && y${q} < ${y.size} && x${q} >= 0 && x${q} < ${x.size});`,
  )
  .join('\n')}
  }`;
  });
  return {
    label: depthwiseLabel(g),
    wgsl: `enable subgroups;
${declarations}

@compute @workgroup_size(${lanes})
fn main(@builtin(subgroup_invocation_id) lane: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let block = wg.x + wg.y * nwg.x;
  if (block >= ${blocks}u) { return; }
  let plane = block / ${blocksPerPlane}u;
  let first = block % ${blocksPerPlane}u * ${span}u + lane;
  let co = plane % ${g.cOut}u;
  let b = plane / ${g.cOut}u;
  let xBase = (b * ${g.cIn}u + co / ${perGroup}u) * ${y.size * x.size}u;
${weightLoads.join('\n')}
${range(PIXELS)
  .map(
    (q) => `  let p${q} = first + ${q * lanes}u;
  let ok${q} = p${q} < ${outputs}u;
  let iy${q} = i32(p${q} / ${x.out}u * ${y.stride}u) - ${y.begin};
  let ix${q} = i32(p${q} % ${x.out}u * ${x.stride}u) - ${x.begin};
  var acc${q} = 0.0f;`,
  )
  .join('\n')}
${tapSums.join('\n')}
${range(PIXELS).map((q) => `  if (ok${q}) {
    ${store(`acc${q}`, 'co', `plane * ${outputs}u + p${q}`)}
  }`).join('\n')}
}`,
    workgroups: grid(blocks * lanes, lanes),
    bindings,
  };
}

/** Pointwise: every output pixel reads the same input pixel (1x1 taps left, stride 1, no net offset). */
const isPointwise = ({ y, x }: ConvGeometry) =>
  [y, x].every((a) => a.count === 1 && a.stride === 1 && a.first * a.dilation === a.begin && a.out === a.size);

/** The padded GEMM sizes of packed weights: k to the tile depth, m to the tile height. */
const packedShape = (k: number, m: number, tile: GemmTile) => ({
  kPad: Math.ceil(Math.max(k, 1) / tile.bk) * tile.bk,
  mPad: Math.ceil(m / tileRows(tile)) * tileRows(tile),
});

/** Weights as the GEMM's A: [group][k][m], k padded to the tile depth and m to the tile height with zeros, so loads need no checks. */
function packWeights(g: ConvGeometry, w: HostTensor, tile: GemmTile, k: number) {
  const { y, x } = g;
  const m = g.cOut / g.groups;
  const cPerGroup = g.cIn / g.groups;
  const { kPad, mPad } = packedShape(k, m, tile);
  const packed = new Float32Array(g.groups * kPad * mPad);
  for (let group = 0; group < g.groups; group++) {
    for (let co = 0; co < m; co++) {
      for (let ci = 0; ci < cPerGroup; ci++) {
        for (let ty = 0; ty < y.count; ty++) {
          for (let tx = 0; tx < x.count; tx++) {
            const kk = (ci * y.count + ty) * x.count + tx;
            const src = (((group * m + co) * cPerGroup + ci) * y.kernel + y.first + ty) * x.kernel + x.first + tx;
            packed[(group * kPad + kk) * mPad + co] = w.data[src]!;
          }
        }
      }
    }
  }
  return { packed, kPad, mPad };
}

/** Packed weight bytes of an m-channel conv over cIn input channels: in all, and per input channel with what the k padding may add. */
function packedBytes(lowering: ConvLowering, cIn: number, taps: number, m: number) {
  if (lowering.kind === 'subgroup') {
    const perChannel = taps * paddedChannels(m, lowering.tile) * 4;
    return { total: cIn * perChannel, perChannel, padding: 0 };
  }
  const { kPad, mPad } = packedShape(cIn * taps, m, lowering.tile);
  return { total: kPad * mPad * 4, perChannel: taps * mPad * 4, padding: lowering.tile.bk * mPad * 4 };
}

const convLabel = ({ y, x, ...g }: ConvGeometry) => (isPointwise({ y, x, ...g }) ? 'conv1x1' : `conv${y.kernel}x${x.kernel}_s${x.stride}_d${x.dilation}`);

/** WGSL offset of input plane `ci` (within the group) of product z = (image, group). */
const inputPlane = (g: ConvGeometry, io: ConvIO, ci: string) =>
  `${shifted(io.xShift)}(z / ${g.groups}u * ${g.cIn}u + z % ${g.groups}u * ${g.cIn / g.groups}u + ${ci}) * ${g.y.size * g.x.size}u`;

/** WGSL offset of output element (channel `co` of all, pixel `p`) of product z, in the part (convBindings' store adds the windows' shifts). */
const outputIndex = (g: ConvGeometry, co: string, p: string) => `(z / ${g.groups}u * ${g.cOut}u + ${co}) * ${g.y.out * g.x.out}u + ${p}`;

/** The conv of constant weights `w` on the subgroup kernel. */
function subgroupConv(g: ConvGeometry, w: HostTensor, epilogue: ConvEpilogue, io: ConvIO, tile: SubgroupTile): Kernel {
  const { y, x } = g;
  const shape = { groups: g.groups, m: g.cOut / g.groups, cPerGroup: g.cIn / g.groups, y, x };
  const { declarations, bindings, load, store } = convBindings(io, epilogue, 'f32', {
    binding: { kind: 'param', data: packSubgroupWeights(w, shape, tile) },
    type: 'vec4f',
  });
  return subgroupConvKernel(
    {
      ...shape,
      label: convLabel(g),
      n: y.out * x.out,
      batches: g.batch * g.groups,
      plane: y.size * x.size,
      inputBase: inputPlane(g, io, '0u'),
      declarations,
      bindings,
      load,
      store: `        let co = z % ${g.groups}u * ${shape.m}u + m;
        ${store('outputs[b][r]', 'co', outputIndex(g, 'co', 'p'))}`,
    },
    tile,
  );
}

/** A conv on the kernel `lowering` picks; runtime weights always on the tiled GEMM, which reads their ONNX layout. */
function loweredConv(g: ConvGeometry, w: OpInput, epilogue: ConvEpilogue, io: ConvIO, lowering: ConvLowering): Kernel {
  return lowering.kind === 'subgroup' && w.value ? subgroupConv(g, w.value, epilogue, io, lowering.tile) : gemmConvKernel(g, w, epilogue, io);
}

/** Implicit-GEMM conv: M = output channels per group, N = output pixels, K = input channels per group x useful taps. */
function gemmConvKernel(g: ConvGeometry, w: OpInput, epilogue: ConvEpilogue, io: ConvIO): Kernel {
  const { y, x } = g;
  const m = g.cOut / g.groups;
  const n = y.out * x.out;
  const cPerGroup = g.cIn / g.groups;
  const taps = y.count * x.count;
  const k = cPerGroup * taps;
  const batches = g.batch * g.groups;
  const tile = chooseTile(m);
  const weight = w.value;
  const packing = weight && packWeights(g, weight, tile, k);
  const plane = y.size * x.size;
  const pointwise = isPointwise(g);
  // A pointwise conv whose planes hold a multiple of 4 pixels reads 4 pixels at once (n is a multiple of 4).
  const vec4Pixels = pointwise && plane % 4 === 0;
  const { declarations, bindings, load, store } = convBindings(io, epilogue, vec4Pixels ? 'vec4f' : 'f32', {
    binding: packing ? { kind: 'param', data: packing.packed } : { kind: 'input', index: 1 },
    type: packing ? 'vec4f' : 'f32',
  });
  // k -> (input channel within the group, tap row, tap column) among the useful taps.
  const decompose = `let ci = k / ${taps}u;
  let ky = ${y.first}u + k % ${taps}u / ${x.count}u;
  let kx = ${x.first}u + k % ${x.count}u;`;
  const loadA = packing
    ? `  return ${load('W', `((z % ${g.groups}u * ${packing.kPad}u + k) * ${packing.mPad}u + m) / 4u`)};`
    : `  // Runtime weights: read the ONNX layout [C_out][C_in/group][KH][KW] directly.
  var v = vec4f();
  if (k >= ${k}u) { return v; }
  ${decompose}
  for (var r = 0u; r < 4u; r++) {
    if (m + r < ${m}u) { v[r] = ${load('W', `(((z % ${g.groups}u * ${m}u + m + r) * ${cPerGroup}u + ci) * ${y.kernel}u + ky) * ${x.kernel}u + kx`)}; }
  }
  return v;`;
  const planeOffset = (ci: string) => inputPlane(g, io, ci);
  const loadB = vec4Pixels
    ? `  if (k >= ${k}u || n >= ${n}u) { return vec4f(); }
  return ${load('X', `(${planeOffset('k')} + n) / 4u`)};`
    : pointwise
    ? `  var v = vec4f();
  if (k >= ${k}u) { return v; }
  let base = ${planeOffset('k')} + n;
  for (var c = 0u; c < 4u; c++) {
    if (n + c < ${n}u) { v[c] = ${load('X', 'base + c')}; }
  }
  return v;`
    : `  var v = vec4f();
  if (k >= ${k}u) { return v; }
  ${decompose}
  let base = ${planeOffset('ci')};
  for (var c = 0u; c < 4u; c++) {
    let p = n + c;
    let iy = i32(p / ${x.out}u * ${y.stride}u + ky * ${y.dilation}u) - ${y.begin};
    let ix = i32(p % ${x.out}u * ${x.stride}u + kx * ${x.dilation}u) - ${x.begin};
    if (p < ${n}u && iy >= 0 && iy < ${y.size} && ix >= 0 && ix < ${x.size}) { v[c] = ${load('X', `base + u32(iy) * ${x.size}u + u32(ix)`)}; }
  }
  return v;`;
  return gemmKernel({
    label: convLabel(g),
    m,
    n,
    k,
    batches,
    tile,
    declarations,
    bindings,
    loadA,
    loadB,
    store: `  let co = z % ${g.groups}u * ${m}u + m;
  ${store('acc', 'co', outputIndex(g, 'co', 'n'))}`,
  });
}

/** A node's fused epilogue (model/passes.ts fuseEpilogues) as WGSL. */
function epilogueOf(node: Node): ConvEpilogue {
  const e = node.epilogue;
  return { ...(e?.activation === 'Relu' ? { activation: RELU } : {}), ...(e?.residual ? { residual: true } : {}), ...(e?.taps ? { taps: e.taps } : {}) };
}

/** The kernels of a Conv node, optionally with a fused epilogue, split where a tensor exceeds one binding. */
export function convKernels(
  node: Node,
  inputs: OpInput[],
  outputs: TensorType[],
  epilogue: ConvEpilogue = {},
  limits: BindingLimits = UNLIMITED,
  adapter: ConvAdapter = {},
): Kernel[] {
  const g = convGeometry(node, inputs);
  const io = wholeIO(inputs, outputs, epilogue);
  if (g.cIn === g.groups) {
    return [adapter.cpuSubgroupSize ? subgroupDepthwiseKernel(g, io, epilogue, adapter.cpuSubgroupSize) : depthwiseKernel(g, io, epilogue)];
  }
  const lowering = (cOut: number) => chooseConvLowering(cOut / g.groups, g.y.out * g.x.out, adapter);
  return splitConv(g, inputs, io.types, epilogue, limits, lowering) ?? [loweredConv(g, inputs[1]!, epilogue, io, lowering(g.cOut))];
}

/**
 * A conv whose input, output or packed weights are larger than one binding,
 * as GEMMs over windows of them: image by image, output channels in runs
 * whose planes fit, and within each, input channels in runs whose planes and
 * weights fit. Later input runs add to what the earlier ones wrote; bias and
 * residual go in the first, the activation in the last. Each part gets its slice of the weights, packed at
 * load like any conv's. Needs one group and constant weights and bias;
 * undefined when nothing needs splitting or it cannot be split.
 */
function splitConv(
  g: ConvGeometry,
  inputs: OpInput[],
  types: TensorTypes,
  epilogue: ConvEpilogue,
  limits: BindingLimits,
  lowering: (cOut: number) => ConvLowering,
): Kernel[] | undefined {
  /** Image n onwards of a tensor of `type` with `channels` planes of `pixels` an image, walked by channel. */
  const planes = (type: ElemType, channels: number, pixels: number) => (n: number): Strided => {
    const elementBytes = gpuElementBytes(type);
    return { unitBytes: pixels * elementBytes, baseBytes: n * channels * pixels * elementBytes, elementBytes };
  };
  const xPlanes = planes(types.inputs[0]!, g.cIn, g.y.size * g.x.size);
  // Y, and the residual, which may be stored at another width, split alike over output channels.
  const outPlanes = [types.outputs[0]!, ...(epilogue.residual ? [types.inputs[3]!] : [])].map((t) => planes(t, g.cOut, g.y.out * g.x.out));
  // The taps get windows over the same runs, which they do not choose: the parts, and so every value, are those of a run without captures.
  const { beforeResidual, beforeActivation } = epilogue.taps ?? {};
  const tapPlanes = (index: number | undefined) => (index === undefined ? undefined : planes(types.outputs[index]!, g.cOut, g.y.out * g.x.out));
  const [residualTap, activationTap] = [tapPlanes(beforeResidual), tapPlanes(beforeActivation)];
  const taps = g.y.count * g.x.count;
  const fits = (bytes: number) => bytes <= limits.maxBytes;
  const whole = packedBytes(lowering(g.cOut), g.cIn / g.groups, taps, g.cOut / g.groups).total;
  // Nothing to split when every tensor fits (it ends where an image after its last would begin), and the packed weights do.
  if ([xPlanes, ...outPlanes].every((t) => fits(t(g.batch).baseBytes)) && fits(g.groups * whole)) return undefined;
  const [, w, b] = inputs;
  if (g.groups !== 1 || !w!.value || (b?.name && !b.value)) return undefined;
  const kernels: Kernel[] = [];
  for (let n = 0; n < g.batch; n++) {
    const x = xPlanes(n);
    const outs = outPlanes.map((t) => t(n));
    const outRuns = splitUnits(g.cOut, outs, limits);
    if (!outRuns) return undefined;
    for (const co of outRuns) {
      const [y, r] = outs.map((t) => runWindow(t, co, limits));
      const [p, s] = [residualTap, activationTap].map((t) => t && runWindow(t(n), co, limits));
      // An input channel's packed weights, with room for the padding of k.
      const partLowering = lowering(co[1] - co[0]);
      const { perChannel, padding } = packedBytes(partLowering, 0, taps, co[1] - co[0]);
      const weights: Strided = { unitBytes: perChannel, baseBytes: 0, elementBytes: 4 };
      const inRuns = splitUnits(g.cIn, [x, weights], { ...limits, maxBytes: limits.maxBytes - padding });
      if (!inRuns) return undefined;
      inRuns.forEach((ci, i) => {
        const first = i === 0;
        const last = i === inRuns.length - 1;
        const input = runWindow(x, ci, limits);
        const weight = sliceWeights(w!.value!, co, ci);
        const io: ConvIO = {
          types,
          x: { kind: 'input', index: 0, window: input.window },
          ...(first && b?.name ? { bias: { kind: 'param', data: Float32Array.from(b.value!.data.slice(co[0], co[1])) } as const } : {}),
          ...(first && r ? { residual: { kind: 'input', index: 3, window: r.window } as const, rShift: r.shift } : {}),
          y: { kind: 'output', index: 0, window: y!.window },
          // Every part adds to the conv's own result; the value before the activation exists in the last.
          ...(p ? { beforeResidual: { kind: 'output', index: beforeResidual!, window: p.window } as const, beforeResidualShift: p.shift } : {}),
          ...(s && last ? { beforeActivation: { kind: 'output', index: beforeActivation!, window: s.window } as const, beforeActivationShift: s.shift } : {}),
          accumulate: !first,
          xShift: input.shift,
          yShift: y!.shift,
        };
        const part = { ...g, batch: 1, cIn: ci[1] - ci[0], cOut: co[1] - co[0] };
        kernels.push(loweredConv(part, { ...w!, dims: [...weight.dims], value: weight }, last ? epilogue : {}, io, partLowering));
      });
    }
  }
  return kernels;
}

/** W[co0:co1, ci0:ci1] of ONNX weights [C_out][C_in][KH][KW]. */
function sliceWeights(w: HostTensor, [co0, co1]: [number, number], [ci0, ci1]: [number, number]): HostTensor {
  const [, cIn, ...kernel] = w.dims as [number, number, ...number[]];
  const taps = kernel.reduce((a, d) => a * d, 1);
  const data = new Float32Array((co1 - co0) * (ci1 - ci0) * taps);
  for (let co = co0; co < co1; co++) {
    const from = (co * cIn + ci0) * taps;
    data.set(w.data.slice(from, from + (ci1 - ci0) * taps), (co - co0) * (ci1 - ci0) * taps);
  }
  return { type: w.type, dims: [co1 - co0, ci1 - ci0, ...kernel], data };
}

export const convOps: Record<string, OpImpl> = {
  Conv: {
    infer(node, inputs) {
      requireFloat(node, inputs);
      checkAttrs(node, ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides']);
      return [{ type: inputs[0]!.type, dims: convGeometry(node, inputs).outDims }];
    },
    kernels: (node, inputs, outputs, _opset, { limits, cpuSubgroupSize }) => convKernels(node, inputs, outputs, epilogueOf(node), limits, { cpuSubgroupSize }),
  },
};
