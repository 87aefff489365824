import type { HostTensor } from '../../model/graph.js';
import type { Kernel } from '../../kernels/types.js';
import { grid, range } from '../../kernels/wgsl.js';
import type { ConvGeometry } from './geometry.js';
import { packUsefulWeights, type SubgroupConv } from './subgroup.js';

/**
 * Convs to at most 4 output channels (per group) on CPU adapters: the heads
 * of salient-object, matting and binary-segmentation networks (a 3x3 conv
 * from 64 channels to 1 at 512x512). The subgroup GEMM (subgroup.ts) spreads
 * output channels over its lanes, 32 at least, so such a conv wasted 31/32 of
 * its work; here the lanes split the pixels instead.
 *
 * Each lane computes a block of rows x columns output pixels for all (up to
 * 4) output channels, and per input channel loads each input pixel its block
 * reads once, feeding every tap that uses it: a 3x3 conv over a 2x8 block
 * loads 4x10 pixels for 16 x 9 multiply-adds, instead of 9 loads per output.
 * On lavapipe every load whose address is not a constant is a loop over the
 * SIMD lanes (subgroup.ts), so loads, not FMAs, are what this saves. Which
 * input pixels are inside the image, and where, does not depend on the input
 * channel: it is worked out once, before the channel loop. A channel's
 * weights reach the lanes as in the depthwise kernel: lane l loads weights l,
 * l + lanes, … and each is broadcast from its lane.
 */
export interface NarrowTile {
  /** Invocations per workgroup: exactly one subgroup, side by side along the output's rows. */
  lanes: number;
  /** Output rows and columns per lane. */
  rows: number;
  columns: number;
}

/** At most this many output channels per group go to the narrow kernel. */
export const NARROW_CHANNELS = 4;

/**
 * 8 columns a lane, and 2 rows for one channel of a conv more than one tap
 * high: 4x10 loads for 144 FMAs in a 3x3 conv. Measured on lavapipe (64 to 1
 * channel at 512x512, 32 to 3 at 256x256, 256 to 4 at 129x129, a 1x1 to 1):
 * one channel in 2 rows ran the 3x3 1.7x faster than in 1, while 4 channels
 * (16 vec4 accumulators in 2 rows) ran 1.5-2x slower than in 1 row, and so
 * did a 1x1, which reuses nothing. Columns shrink on narrow maps so that
 * lanes are not left without pixels.
 */
export function chooseNarrowTile(m: number, g: Pick<ConvGeometry, 'y' | 'x'>, lanes: number): NarrowTile {
  const rows = narrowWidth(m) === 1 && g.y.count > 1 ? 2 : 1;
  return { lanes, rows: Math.min(rows, g.y.out), columns: Math.max(1, Math.min(8, Math.ceil(g.x.out / lanes))) };
}

/** 1: one output channel, computed in scalars; 4: up to 4, in vec4s (padded with zero weights). */
export const narrowWidth = (m: number): 1 | 4 => (m === 1 ? 1 : 4);

/** Weights entries per input channel: the useful taps, padded to whole loads of all lanes. */
export const narrowTapsPadded = (taps: number, lanes: number) => Math.ceil(taps / lanes) * lanes;

/** The floats packNarrowWeights makes. */
export const narrowWeightsLength = (c: Pick<SubgroupConv, 'groups' | 'm' | 'cPerGroup' | 'y' | 'x'>, lanes: number) =>
  c.groups * c.cPerGroup * narrowChannelLength(c.y.count * c.x.count, c.m, lanes);

/** Of those, the floats of one input channel: its useful taps, padded, times the output width. */
export const narrowChannelLength = (taps: number, m: number, lanes: number) => narrowTapsPadded(taps, lanes) * narrowWidth(m);

/** Writes weights [C_out][C_in/group][KH][KW] into `packed` (zeros, narrowWeightsLength long) as [group][input channel][useful tap, padded][output channel, padded to the width]. */
export function packNarrowWeights(w: HostTensor, c: Pick<SubgroupConv, 'groups' | 'm' | 'cPerGroup' | 'y' | 'x'>, lanes: number, packed: Float32Array): void {
  const width = narrowWidth(c.m);
  const tapsPadded = narrowTapsPadded(c.y.count * c.x.count, lanes);
  packUsefulWeights(w, c, packed, { group: c.cPerGroup * tapsPadded * width, co: 1, ci: tapsPadded * width, tap: width });
}

/**
 * The kernel. `c.load('W', i)` gives packed entry i (f32 at width 1, vec4 at
 * 4); `c.store` stores `value` for output channel `m` (within the group) and
 * pixel `p` of product `z`.
 */
export function narrowConvKernel(c: SubgroupConv, tile: NarrowTile): Kernel {
  const { lanes, rows, columns } = tile;
  const { y, x } = c;
  const width = narrowWidth(c.m);
  const zero = width === 1 ? '0.0f' : 'vec4f()';
  const taps = y.count * x.count;
  const tapsPadded = narrowTapsPadded(taps, lanes);
  const rowBlocks = Math.ceil(y.out / rows);
  const columnBlocks = Math.ceil(x.out / (columns * lanes));
  const blocks = rowBlocks * columnBlocks * c.batches;
  // Offsets from the block's first input row (column) of the input rows (columns) its taps read, each once.
  const rowOffset = (q: number, ty: number) => q * y.stride + (y.first + ty) * y.dilation;
  const columnOffset = (r: number, tx: number) => r * x.stride + (x.first + tx) * x.dilation;
  const rowOffsets = [...new Set(range(rows).flatMap((q) => range(y.count).map((ty) => rowOffset(q, ty))))];
  const columnOffsets = [...new Set(range(columns).flatMap((r) => range(x.count).map((tx) => columnOffset(r, tx))))];
  // Each input pixel the block reads, with the (output pixel, tap) pairs that use it.
  const reads = new Map<string, { i: number; j: number; uses: { acc: string; tap: number }[] }>();
  for (let q = 0; q < rows; q++)
    for (let r = 0; r < columns; r++)
      for (let ty = 0; ty < y.count; ty++)
        for (let tx = 0; tx < x.count; tx++) {
          const i = rowOffsets.indexOf(rowOffset(q, ty));
          const j = columnOffsets.indexOf(columnOffset(r, tx));
          const key = `${i}_${j}`;
          const read = reads.get(key) ?? { i, j, uses: [] };
          read.uses.push({ acc: `acc${q}_${r}`, tap: ty * x.count + tx });
          reads.set(key, read);
        }
  const pixels = [...reads.values()];
  const wgsl = `enable subgroups;
${c.declarations}

@compute @workgroup_size(${lanes})
fn main(@builtin(subgroup_invocation_id) lane: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let block = wg.x + wg.y * nwg.x;
  if (block >= ${blocks}u) { return; }
  let z = block / ${rowBlocks * columnBlocks}u;
  let oy0 = block / ${columnBlocks}u % ${rowBlocks}u * ${rows}u;
  let ox0 = (block % ${columnBlocks}u * ${lanes}u + lane) * ${columns}u;
  let xBase = ${c.inputBase};
  let wBase = z % ${c.groups}u * ${c.cPerGroup * tapsPadded}u + lane;
  let iy = i32(oy0 * ${y.stride}u) - ${y.begin};
  let ix = i32(ox0 * ${x.stride}u) - ${x.begin};
${rowOffsets.map((d, i) => `  let row${i} = iy + ${d};`).join('\n')}
${columnOffsets.map((d, j) => `  let column${j} = ix + ${d};`).join('\n')}
  // Padding reads element 0 of the plane and uses zero.
${pixels
  .map(
    ({ i, j }) => `  let ok${i}_${j} = row${i} >= 0 && row${i} < ${y.size} && column${j} >= 0 && column${j} < ${x.size};
  let at${i}_${j} = select(0u, u32(row${i}) * ${x.size}u + u32(column${j}), ok${i}_${j});`,
  )
  .join('\n')}
${range(rows)
  .flatMap((q) => range(columns).map((r) => `  var acc${q}_${r} = ${zero};`))
  .join('\n')}
  for (var ci = 0u; ci < ${c.cPerGroup}u; ci++) {
    let plane = xBase + ci * ${c.plane}u;
    let wChannel = wBase + ci * ${tapsPadded}u;
${range(tapsPadded / lanes)
  .map((l) => `    let w${l} = ${c.load('W', `wChannel + ${l * lanes}u`)};`)
  .join('\n')}
${range(taps)
  .map((t) => `    let tap${t} = subgroupBroadcast(w${Math.floor(t / lanes)}, ${t % lanes}u);`)
  .join('\n')}
${pixels
  .map(
    ({ i, j, uses }) => `    {
      let v = select(0.0f, ${c.load('X', `plane + at${i}_${j}`)}, ok${i}_${j});
${uses.map(({ acc, tap }) => `      ${acc} = fma(tap${tap}, ${width === 1 ? 'v' : 'vec4f(v)'}, ${acc});`).join('\n')}
    }`,
  )
  .join('\n')}
  }
  // One store site (the epilogue is inlined once, which keeps compile times short).
  var outputs = array<${width === 1 ? 'f32' : 'vec4f'}, ${rows * columns}>(${range(rows)
    .flatMap((q) => range(columns).map((r) => `acc${q}_${r}`))
    .join(', ')});
  for (var b = 0u; b < ${rows * columns}u; b++) {
    let oy = oy0 + b / ${columns}u;
    let ox = ox0 + b % ${columns}u;
    if (oy >= ${y.out}u || ox >= ${x.out}u) { continue; }
    let p = oy * ${x.out}u + ox;
${
  width === 1
    ? `    let m = 0u;
    let value = outputs[b];
${c.store}`
    : `    for (var m = 0u; m < ${c.m}u; m++) {
      let value = outputs[b][m];
${c.store}
    }`
}
  }
}`;
  return { label: c.label, wgsl, workgroups: grid(blocks * lanes, lanes), bindings: c.bindings };
}
