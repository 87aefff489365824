/**
 * Convs that are not depthwise, as implicit GEMMs (no im2col buffer), and the
 * choice between their two kernels: the tiled GEMM of kernels/gemm.ts on
 * GPUs, the subgroup kernel (subgroup.ts) on CPU adapters. Each packs
 * constant weights its own way at load time, stored as the weight tensor is
 * (float16 at --precision f16: half the memory, widened where loaded); the
 * packed sizes are here too, for the split (split.ts) to decide what fits one
 * binding.
 */
import type { ElemType, HostTensor } from '../../model/graph.js';
import { chooseTile, gemmKernel, type GemmTile, tileRows } from '../../kernels/gemm.js';
import { shifted } from '../../kernels/split.js';
import type { Kernel } from '../../kernels/types.js';
import { gpuElementBytes, packedParam } from '../../kernels/wgsl.js';
import type { OpInput } from '../types.js';
import { convLabel, type ConvGeometry, isPointwise } from './geometry.js';
import { convBindings, type ConvEpilogue, type ConvIO, inputPlane, outputIndex } from './io.js';
import {
  chooseNarrowTile,
  NARROW_CHANNELS,
  narrowConvKernel,
  narrowChannelLength,
  narrowWeightsLength,
  narrowWidth,
  type NarrowTile,
  packNarrowWeights,
} from './narrow.js';
import {
  chooseSubgroupTile,
  GROUPED_INPUT_BASE,
  packSubgroupWeights,
  packUsefulWeights,
  subgroupChannelLength,
  type SubgroupConv,
  subgroupConvKernel,
  type SubgroupTile,
  subgroupWeightsLength,
} from './subgroup.js';

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

/** How a conv with constant weights runs: the tiled GEMM, or on CPU adapters the subgroup kernel, or the narrow one for at most 4 output channels. */
export type ConvLowering = { kind: 'tiled'; tile: GemmTile } | { kind: 'subgroup'; tile: SubgroupTile } | { kind: 'narrow'; tile: NarrowTile };

/**
 * The kernel for m output channels (per group) of a conv of geometry g. On lavapipe every non-constant load is a loop over the SIMD
 * lanes, so the subgroup kernel, which loads each operand once per subgroup
 * rather than once per lane, ran DeepLab's convs 3-9x faster than the tiled
 * GEMM (the 1x1 conv of a 1x1 map 14x), and the narrow kernel, which reuses
 * each loaded pixel for every tap, runs convs to a few channels, which the
 * subgroup kernel's 32-channel tiles would mostly waste, 4-11x faster at
 * 3x3 (bench/results/narrow-conv-before-after.json); on
 * GPUs the tiled GEMM's shared-memory reuse is what pays.
 */
export function chooseConvLowering(m: number, g: Pick<ConvGeometry, 'y' | 'x'>, adapter: ConvAdapter): ConvLowering {
  const lanes = adapter.cpuSubgroupSize;
  if (!lanes) return { kind: 'tiled', tile: chooseTile(m) };
  if (m <= NARROW_CHANNELS) return { kind: 'narrow', tile: chooseNarrowTile(m, g, lanes) };
  return { kind: 'subgroup', tile: chooseSubgroupTile(m, g.y.out * g.x.out, lanes) };
}

/** The conv as its kernels and weight packers see one group of it. */
const perGroup = (g: ConvGeometry) => ({ groups: g.groups, m: g.cOut / g.groups, cPerGroup: g.cIn / g.groups, y: g.y, x: g.x });

/** The padded GEMM sizes of packed weights: k to the tile depth, m to the tile height. */
const packedShape = (k: number, m: number, tile: GemmTile) => ({
  kPad: Math.ceil(Math.max(k, 1) / tile.bk) * tile.bk,
  mPad: Math.ceil(m / tileRows(tile)) * tileRows(tile),
});

/** Writes weights into `packed` (zeros) as the GEMM's A: [group][k][m], k padded to the tile depth and m to the tile height (`kPad`, `mPad`), so loads need no checks. */
function packWeights(g: ConvGeometry, w: HostTensor, kPad: number, mPad: number, packed: Float32Array): void {
  const taps = g.y.count * g.x.count;
  packUsefulWeights(w, perGroup(g), packed, { group: kPad * mPad, co: 1, ci: taps * mPad, tap: mPad });
}

/** Packed bytes of an m-channel conv's weights stored as `type`, over cIn input channels: in all, and per input channel with what the k padding may add. */
export function packedBytes(lowering: ConvLowering, cIn: number, taps: number, m: number, type: ElemType) {
  const bytes = gpuElementBytes(type);
  if (lowering.kind === 'narrow') {
    const perChannel = narrowChannelLength(taps, m, lowering.tile.lanes) * bytes;
    return { total: cIn * perChannel, perChannel, padding: 0 };
  }
  if (lowering.kind === 'subgroup') {
    const perChannel = subgroupChannelLength(taps, m, lowering.tile) * bytes;
    return { total: cIn * perChannel, perChannel, padding: 0 };
  }
  const { kPad, mPad } = packedShape(cIn * taps, m, lowering.tile);
  return { total: kPad * mPad * bytes, perChannel: taps * mPad * bytes, padding: lowering.tile.bk * mPad * bytes };
}

/**
 * The conv of constant weights `w` on a CPU adapter's kernel: what both
 * kernels need of it, the weights packed as the kernel reads them, and the
 * store of `value` for channel `m` of the group at pixel `p`.
 */
function cpuConv(g: ConvGeometry, w: HostTensor, epilogue: ConvEpilogue, io: ConvIO, lowering: ConvLowering & { kind: 'subgroup' | 'narrow' }): Kernel {
  const { y, x } = g;
  const shape = perGroup(g);
  const narrow = lowering.kind === 'narrow';
  const weights = narrow
    ? packedParam(narrowWeightsLength(shape, lowering.tile.lanes), io.types.inputs[1]!, (packed) => packNarrowWeights(w, shape, lowering.tile.lanes, packed))
    : packedParam(subgroupWeightsLength(shape, lowering.tile), io.types.inputs[1]!, (packed) => packSubgroupWeights(w, shape, lowering.tile, packed));
  const { declarations, bindings, load, store } = convBindings(io, epilogue, 'f32', {
    binding: weights,
    type: narrow && narrowWidth(shape.m) === 1 ? 'f32' : 'vec4f',
  });
  const conv: SubgroupConv = {
    ...shape,
    label: convLabel(g),
    n: y.out * x.out,
    batches: g.batch * g.groups,
    plane: y.size * x.size,
    declarations,
    bindings,
    load,
    ...(narrow
      ? {
          inputBase: inputPlane(g, io, '0u'),
          store: `        let co = z % ${g.groups}u * ${shape.m}u + m;
        ${store('value', 'co', outputIndex(g, 'co', 'p'))}`,
        }
      : {
          // The subgroup kernel reads sizes by name (groups, channels, cPerGroup and plane are its own).
          sizes: { cIn: g.cIn, cOut: g.cOut, outPixels: y.out * x.out },
          inputBase: `${shifted(io.xShift)}${GROUPED_INPUT_BASE}`,
          store: `        let co = z % groups * channels + m;
        ${store('value', 'co', '(z / groups * cOut + co) * outPixels + p')}`,
        }),
  };
  return narrow ? narrowConvKernel(conv, lowering.tile) : subgroupConvKernel(conv, lowering.tile);
}

/** A conv on the kernel `lowering` picks; runtime weights always on the tiled GEMM, which reads their ONNX layout. */
export function loweredConv(g: ConvGeometry, w: OpInput, epilogue: ConvEpilogue, io: ConvIO, lowering: ConvLowering): Kernel {
  return lowering.kind !== 'tiled' && w.value ? cpuConv(g, w.value, epilogue, io, lowering) : gemmConvKernel(g, w, epilogue, io);
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
  const packing = weight && packedShape(k, m, tile);
  const plane = y.size * x.size;
  const pointwise = isPointwise(g);
  // A pointwise conv whose planes hold a multiple of 4 pixels reads 4 pixels at once (n is a multiple of 4).
  const vec4Pixels = pointwise && plane % 4 === 0;
  const { declarations, bindings, load, store } = convBindings(io, epilogue, vec4Pixels ? 'vec4f' : 'f32', {
    binding: packing
      ? packedParam(g.groups * packing.kPad * packing.mPad, io.types.inputs[1]!, (packed) => packWeights(g, weight, packing.kPad, packing.mPad, packed))
      : { kind: 'input', index: 1 },
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
