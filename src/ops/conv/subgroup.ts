import type { HostTensor } from '../../model/graph.js';
import type { Kernel, KernelBinding } from '../../kernels/types.js';
import { grid, range, sizesFromBuffer } from '../../kernels/wgsl.js';

/**
 * Conv for CPU adapters (Mesa's lavapipe): an implicit GEMM, M = output
 * channels, N = output pixels, K = (useful tap, input channel), whose
 * workgroup is one subgroup and which shares operands through subgroup
 * broadcasts instead of workgroup memory.
 *
 * Why: llvmpipe runs a subgroup as the lanes of one SIMD register. Every
 * storage or workgroup load whose address is not a constant becomes a loop
 * over the lanes (extract the address, bounds check, branch, scalar load,
 * insert), about 40 cycles for 8 lanes, even when all lanes read the same
 * address; a broadcast from a constant lane is a register shuffle. The tiled
 * GEMM loads each A and B value once per lane from workgroup memory; here a
 * lane loads only its own 4·rows/(4·lanes) output channels' weights (vec4s
 * of the packed [tap][input channel][output channel] buffer) and 1/lanes of
 * the workgroup's pixels, then takes every pixel from the lane that loaded
 * it. Per K step a lane does rows/lanes/4 vec4 loads and pixels/lanes scalar
 * loads for rows·pixels/lanes FMAs. No barriers, no workgroup memory.
 */
export interface SubgroupTile {
  /** Invocations per workgroup: exactly one subgroup. */
  lanes: number;
  /** Output channels per workgroup: 4 per lane, `quads` times. */
  quads: number;
  /** Output pixels per workgroup, a multiple of `lanes`. */
  pixels: number;
}

export const tileChannels = (t: SubgroupTile) => 4 * t.lanes * t.quads;

/**
 * Tiles for llvmpipe's 8 lanes: 64 channels x 32 pixels (256 FMAs per lane
 * per K step against 2 vec4 and 4 scalar loads) ran DeepLab's convs fastest;
 * more accumulators spill, fewer pay more loads per FMA. Where the channels
 * would leave much of a 64-channel tile empty, a 96 x 16 tile or a 32 x 32
 * one may cost less: of the three, the one whose K steps over all the
 * conv's channels cost least by `stepCost`. So 32 or fewer channels take
 * 32 x 32; 65-96 and 257-288 take 96 x 16: the default model's 96-channel
 * classifier ran its Winograd GEMMs 8-14% faster than on 64 x 32 tiles
 * a third empty (scratch A/B, kernel minima of 13 runs, interleaved). The
 * pixels are then spread evenly over the blocks the tile needs, in whole
 * lanes: 36 Winograd tiles (ASPP's dilation 6 on a 17x17 map) take two
 * blocks of 24 rather than 32 and 4, which ran the default model's 512 ->
 * 128 there 12% faster (kernel minima of 15 runs, interleaved); tiny maps
 * (the image-pooling branch's 1x1) one block of no more than they have.
 */
export function chooseSubgroupTile(m: number, n: number, lanes: number): SubgroupTile {
  const candidates = [
    { quads: 1, pixels: 4 * lanes },
    { quads: 2, pixels: 4 * lanes },
    { quads: 3, pixels: 2 * lanes },
  ];
  const cost = (t: { quads: number; pixels: number }) => (Math.ceil(m / (4 * lanes * t.quads)) * stepCost(t.quads, t.pixels, lanes)) / t.pixels;
  const best = candidates.reduce((a, b) => (cost(b) < cost(a) ? b : a));
  const blocks = Math.ceil(n / best.pixels);
  return { lanes, quads: best.quads, pixels: Math.ceil(n / blocks / lanes) * lanes };
}

/**
 * The cycles of one K step of a workgroup, roughly: a lane-divergent load
 * is a loop over the lanes (about 40 cycles for 8), each pixel a broadcast
 * and 4 FMA instructions a quad. Only its ratios between tiles matter.
 */
const stepCost = (quads: number, pixels: number, lanes: number) => 40 * (quads + pixels / lanes) + pixels * (1 + 4 * quads);

/** One spatial axis, as the kernel indexes it: the useful taps [first, first + count). */
export interface AxisTaps {
  size: number;
  kernel: number;
  out: number;
  stride: number;
  dilation: number;
  begin: number;
  first: number;
  count: number;
}

/** What the kernel needs of a conv, per product z = (image, group). */
export interface SubgroupConv {
  label: string;
  groups: number;
  /** Output channels and input channels per group; output pixels per image. */
  m: number;
  cPerGroup: number;
  n: number;
  /** Products: images x groups. */
  batches: number;
  y: AxisTaps;
  x: AxisTaps;
  /** Elements per input plane. */
  plane: number;
  /** WGSL offset of input plane 0 of the group of product `z`. */
  inputBase: string;
  declarations: string;
  bindings: KernelBinding[];
  /** WGSL of element `i` of X (the input) or W (the packed weights, vec4s) in f32. */
  load: (name: 'X' | 'W', i: string) => string;
  /** Statements storing `value` for output channel `m` (within the group) and pixel `p` of product `z`. */
  store: string;
  /**
   * Sizes `inputBase` and `store` name (the subgroup kernel reads them, and
   * its own, from a buffer; see subgroupConvKernel); the narrow kernel,
   * whose code depends on the geometry, takes no names and bakes all in.
   */
  sizes?: Record<string, number>;
}

/** Output channels padded to whole tiles. */
export const paddedChannels = (m: number, tile: SubgroupTile) => Math.ceil(m / tileChannels(tile)) * tileChannels(tile);

/**
 * WGSL `inputBase` of a product z = (image, group) over NCHW planes of
 * `plane` elements, by the names the kernel reads (`cIn`, all the input's
 * channels, given in SubgroupConv.sizes).
 */
export const GROUPED_INPUT_BASE = '(z / groups * cIn + z % groups * cPerGroup) * plane';

/** Where packSubgroupWeights puts weight (group, useful tap of `taps`, input channel ci of `cPerGroup`, output channel co of `mPad`). */
export const packedWeightIndex = (group: number, tap: number, ci: number, co: number, taps: number, cPerGroup: number, mPad: number) =>
  ((group * taps + tap) * cPerGroup + ci) * mPad + co;

/** Where a packed layout puts a weight: entry group·group + co·co + ci·ci + tap·tap, per (group, output channel, input channel, useful tap). */
export interface PackedStrides {
  group: number;
  co: number;
  ci: number;
  tap: number;
}

/**
 * Writes every weight of a useful tap (tap = ty * x.count + tx, among the
 * useful ones) of ONNX weights [C_out][C_in/group][KH][KW] into `packed`
 * where `strides` put it (each conv kernel's packer lays them out its own
 * way). One loop with the layout as numbers, not a function called per
 * weight, in blocks of channels: on 1x1 and 3x3 weights of ResNet's
 * sizes it packed 4.4-5.6 ns a weight against 7.2-11.4 through a callback
 * channel by channel (scratch timing, interleaved processes). ResNet-101
 * has about 28 million weights on direct kernels, but its warm session
 * build stayed at 2.0-2.1 s: packing overlaps the copies into the buffers'
 * fresh memory, which set its pace.
 */
export function packUsefulWeights(
  w: HostTensor,
  c: Pick<SubgroupConv, 'groups' | 'm' | 'cPerGroup' | 'y' | 'x'>,
  packed: Float32Array,
  strides: PackedStrides,
): void {
  const { y, x } = c;
  const data = w.data;
  // In blocks of input by output channels: the weights are read along input channels and the packers write along output channels,
  // so channel by channel one side would touch a new page at every weight.
  for (let group = 0; group < c.groups; group++)
    for (let ci0 = 0; ci0 < c.cPerGroup; ci0 += PACKING_BLOCK)
      for (let co0 = 0; co0 < c.m; co0 += PACKING_BLOCK)
        for (let ci = ci0; ci < Math.min(ci0 + PACKING_BLOCK, c.cPerGroup); ci++)
          for (let co = co0; co < Math.min(co0 + PACKING_BLOCK, c.m); co++) {
            const from = ((group * c.m + co) * c.cPerGroup + ci) * y.kernel * x.kernel;
            const to = group * strides.group + co * strides.co + ci * strides.ci;
            for (let ty = 0; ty < y.count; ty++)
              for (let tx = 0; tx < x.count; tx++) packed[to + (ty * x.count + tx) * strides.tap] = data[from + (y.first + ty) * x.kernel + x.first + tx]!;
          }
}

/** Channels a side of packUsefulWeights' blocks. */
const PACKING_BLOCK = 32;

/** The floats packSubgroupWeights makes. */
export const subgroupWeightsLength = (c: Pick<SubgroupConv, 'groups' | 'm' | 'cPerGroup' | 'y' | 'x'>, tile: SubgroupTile) =>
  c.groups * c.cPerGroup * subgroupChannelLength(c.y.count * c.x.count, c.m, tile);

/** Of those, the floats of one input channel: its useful taps times the output channels padded to the tile. */
export const subgroupChannelLength = (taps: number, m: number, tile: SubgroupTile) => taps * paddedChannels(m, tile);

/** Writes weights [C_out][C_in/group][KH][KW] into `packed` (zeros, subgroupWeightsLength long) as [group][useful tap][input channel][output channel padded to the tile]. */
export function packSubgroupWeights(
  w: HostTensor,
  c: Pick<SubgroupConv, 'groups' | 'm' | 'cPerGroup' | 'y' | 'x'>,
  tile: SubgroupTile,
  packed: Float32Array,
): void {
  const mPad = paddedChannels(c.m, tile);
  const taps = c.y.count * c.x.count;
  // The strides of packedWeightIndex, which is linear: its value with one index at 1 and the others at 0.
  const at = (group: number, tap: number, ci: number, co: number) => packedWeightIndex(group, tap, ci, co, taps, c.cPerGroup, mPad);
  packUsefulWeights(w, c, packed, { group: at(1, 0, 0, 0), co: at(0, 0, 0, 1), ci: at(0, 0, 1, 0), tap: at(0, 1, 0, 0) });
}

/**
 * WGSL setting `${tap}First` and `${tap}End`: the taps of axis `a` (named
 * `axis` among the sizes) that some output of the block reads inside the
 * input, for the block's outputs from index `lo` to `hi` along the axis.
 * Output o reads input o·stride - begin + (first + t)·dilation at tap t, so
 * those taps are a range. Where dilation is large against the map, as in
 * ASPP's branches at output stride 16, most taps of a block read only
 * padding (dilation 12 on a 17x17 map: 43% of the rows' taps), and the
 * block skips them rather than multiply zeros. A one-tap axis needs none.
 */
function blockTaps(a: AxisTaps, axis: 'y' | 'x', tap: string, lo: string, hi: string): string {
  if (a.count === 1) return `  let ${tap}First = 0u;\n  let ${tap}End = 1u;`;
  const at = (o: string) => `i32(${o} * ${axis}Stride) - i32(${axis}Begin) + i32(${axis}First * ${axis}Dilation)`;
  const d = `i32(${axis}Dilation)`;
  // Taps t with lowest + t·d >= 0 and highest + t·d < size; i32 division truncates, hence the ceiling and floor by cases.
  return `  let ${axis}Lowest = ${at(lo)};
  let ${axis}Highest = ${at(hi)};
  let ${tap}From = select(-${axis}Highest / ${d}, (-${axis}Highest + ${d} - 1) / ${d}, -${axis}Highest > 0);
  let ${tap}Below = i32(${axis}Size) - 1 - ${axis}Lowest;
  let ${tap}To = select((${tap}Below - ${d} + 1) / ${d}, ${tap}Below / ${d}, ${tap}Below >= 0) + 1;
  let ${tap}First = u32(clamp(${tap}From, 0, ${a.count}));
  let ${tap}End = u32(clamp(${tap}To, i32(${tap}First), ${a.count}));`;
}

/** Outputs [from, to] of each tap of an axis that read inside the input: output o of tap t reads o·stride - begin + (first + t)·dilation. */
function readsInside(a: AxisTaps): { from: number; to: number }[] {
  return range(a.count).map((t) => {
    const shift = (a.first + t) * a.dilation - a.begin;
    return { from: Math.max(0, Math.ceil(-shift / a.stride)), to: Math.min(a.out - 1, Math.floor((a.size - 1 - shift) / a.stride)) };
  });
}

/** How many of the taps (readsInside) read inside for some output in [lo, hi]. */
const tapsReading = (ranges: { from: number; to: number }[], lo: number, hi: number) => ranges.filter((r) => Math.max(r.from, lo) <= Math.min(r.to, hi)).length;

/**
 * The columns where the set of x taps that read inside the input changes
 * (in (0, out), ascending): the kernel may order pixels by the bands they
 * bound (pixelBands).
 */
export function columnBands(x: AxisTaps): number[] {
  const edges = readsInside(x).flatMap(({ from, to }) => [from, to + 1]);
  return [...new Set(edges)].filter((c) => c > 0 && c < x.out).sort((a, b) => a - b);
}

/**
 * The share of the kernel's 9 (or kernel-size) multiply-adds per pixel that
 * blocks of `pixels` outputs still do once they skip the taps they read
 * only in padding (blockTaps), with the pixels in row-major order or, given
 * `bands` (columnBands), band by band: what Winograd's GEMM work is
 * weighed against (winograd.ts chooseWinograd), and what chooses the
 * order. ASPP's dilation 18 on a 33x33 map: 0.65 row-major, 0.44 by bands.
 * Counted per block from each tap's range of outputs that read inside the
 * input, so that it stays cheap on large maps (an 8193x8193 input has
 * millions of blocks a conv).
 */
export function directTapShare(g: { y: AxisTaps; x: AxisTaps }, pixels: number, bands: readonly number[] = []): number {
  const { y, x } = g;
  const [rows, columns] = [readsInside(y), readsInside(x)];
  const n = y.out * x.out;
  const at = bandedPixel(y.out, x.out, bands);
  let done = 0;
  for (let p = 0; p < n; p += pixels) {
    const [first, last] = [at(p), at(Math.min(p + pixels, n) - 1)];
    const box = blockBox(first, last, y.out);
    done += tapsReading(rows, box.rows[0], box.rows[1]) * tapsReading(columns, box.columns[0], box.columns[1]) * (Math.min(p + pixels, n) - p);
  }
  return done / (n * y.kernel * x.kernel);
}

/** Where pixel q of the kernel's order lies: its row, column and band (the band's columns [start, end)). */
interface BandedPixel {
  row: number;
  column: number;
  start: number;
  end: number;
}

/** Pixel q in band order: band k (columns [c_k, c_k+1)) holds its pixels row-major from pixel yOut·c_k on. No bands: row-major. */
const bandedPixel = (yOut: number, xOut: number, bands: readonly number[]) => {
  const edges = [0, ...bands, xOut];
  return (q: number): BandedPixel => {
    let k = 0;
    while (q >= yOut * edges[k + 1]!) k++;
    const [start, end] = [edges[k]!, edges[k + 1]!];
    const local = q - yOut * start;
    return { row: Math.floor(local / (end - start)), column: start + (local % (end - start)), start, end };
  };
};

/**
 * The rows and columns a block from pixel `first` to `last` covers, at
 * most: within one band its rows, and its columns if in one row, else the
 * band's; across bands every row and the bands' columns.
 */
function blockBox(first: BandedPixel, last: BandedPixel, yOut: number): { rows: [number, number]; columns: [number, number] } {
  if (first.start !== last.start) return { rows: [0, yOut - 1], columns: [first.start, last.end - 1] };
  return { rows: [first.row, last.row], columns: first.row === last.row ? [first.column, last.column] : [first.start, first.end - 1] };
}

/**
 * Bands to order a conv's pixels by, or none: blocks of consecutive pixels
 * of a band skip the column taps that read padding, as row-major blocks,
 * which span whole rows, cannot. Taken where they leave at most
 * BANDS_MAX_SHARE of the row-major order's multiply-adds: ASPP's dilations
 * on maps not much larger than the dilation. ResNet-101's ASPP convs (2048
 * -> 256 channels on 33x33) at dilation 18 ran 84-91 ms instead of 121-125,
 * at 24 64-67 instead of 102-106; the default model's dilation 12 on 17x17
 * (512 -> 128) 3.2 ms instead of 4.0 (kernel minima and medians of 9 runs,
 * interleaved in one process).
 */
export function pixelBands(g: { y: AxisTaps; x: AxisTaps }, pixels: number): number[] {
  const bands = columnBands(g.x);
  if (!bands.length || g.x.count === 1) return [];
  // Bands save at most what their column taps, averaged over the columns, save against a whole row's: where that is too little (a 3x3 at
  // dilation 1, whose bands are the border columns), the blocks need not be counted, which took half a second for an 8193x8193 map.
  const columns = readsInside(g.x);
  const edges = [0, ...bands, g.x.out];
  const bandTaps = range(bands.length + 1).reduce((sum, k) => sum + (edges[k + 1]! - edges[k]!) * tapsReading(columns, edges[k]!, edges[k + 1]! - 1), 0);
  if (bandTaps > BANDS_MAX_SHARE * g.x.out * tapsReading(columns, 0, g.x.out - 1)) return [];
  return directTapShare(g, pixels, bands) <= BANDS_MAX_SHARE * directTapShare(g, pixels) ? bands : [];
}

/** See pixelBands. */
const BANDS_MAX_SHARE = 0.85;

/**
 * WGSL lets `${name}Row` and `${name}Column` of pixel `q` of the kernel's
 * order, and `${name}Start` and `${name}End`, its band's columns: `bands`
 * band edges named band1, band2, … among the sizes (none: row-major, one
 * band of every column).
 */
function pixelAt(name: string, q: string, bands: number): string {
  if (!bands) return `  let ${name}Start = 0u;\n  let ${name}End = xOut;\n  let ${name}Row = ${q} / xOut;\n  let ${name}Column = ${q} % xOut;`;
  const edges = [...range(bands).map((k) => `band${k + 1}`), 'xOut'];
  const [start, end] = range(bands).reduce(
    ([s, e], k) => [`select(${s}, ${edges[k]}, ${q} >= yOut * ${edges[k]})`, `select(${e}, ${edges[k + 1]}, ${q} >= yOut * ${edges[k]})`],
    ['0u', edges[0]!],
  );
  return `  let ${name}Start = ${start};
  let ${name}End = ${end};
  let ${name}Local = ${q} - yOut * ${name}Start;
  let ${name}Row = ${name}Local / (${name}End - ${name}Start);
  let ${name}Column = ${name}Start + ${name}Local % (${name}End - ${name}Start);`;
}

/**
 * The kernel. The tile, the tap counts and the epilogue shape its code;
 * every other size of the conv (map, strides, dilations, padding, channels,
 * blocks) is read from a small buffer at the start, so convs that differ
 * only in those share one pipeline. On lavapipe nearly all of a cold session
 * build is llvmpipe compiling each pipeline at its first dispatch (0.2-0.4 s
 * for this kernel): ResNet-101's 34 conv pipelines became 7, its cold build
 * 13.8 -> 3.9 s, at the same kernel time overall
 * (bench/results/conv-sizes-before-after.json). The tap counts stay in the
 * code: they are the tap loops' bounds, which a 1x1 conv's code drops.
 */
export function subgroupConvKernel(c: SubgroupConv, tile: SubgroupTile): Kernel {
  const { lanes, quads, pixels } = tile;
  const { y, x } = c;
  /** Pixels each lane loads per K step. */
  const loads = pixels / lanes;
  const mPad4 = paddedChannels(c.m, tile) / 4;
  const pixelBlocks = Math.ceil(c.n / pixels);
  const bands = pixelBands(c, pixels);
  const channelBlocks = mPad4 / (quads * lanes);
  const blocks = pixelBlocks * channelBlocks * c.batches;
  const sizes: Record<string, number> = {
    ...c.sizes,
    blocks,
    pixelBlocks,
    channelBlocks,
    groups: c.groups,
    channels: c.m,
    cPerGroup: c.cPerGroup,
    mPad4,
    n: c.n,
    plane: c.plane,
    ySize: y.size,
    xSize: x.size,
    xOut: x.out,
    yStride: y.stride,
    xStride: x.stride,
    yBegin: y.begin,
    xBegin: x.begin,
    yFirst: y.first,
    xFirst: x.first,
    yDilation: y.dilation,
    xDilation: x.dilation,
    yOut: y.out,
    ...Object.fromEntries(bands.map((b, k) => [`band${k + 1}`, b])),
  };
  const fromBuffer = sizesFromBuffer(sizes, c.bindings.length);
  const acc = (q: number, p: number) => `acc${q}_${p}`;
  // Workgroup pixel p was loaded by lane p % lanes as its value number p / lanes.
  const fmas = range(pixels).map(
    (p) => `        let b${p} = vec4f(subgroupBroadcast(v${Math.floor(p / lanes)}, ${p % lanes}u));
${range(quads)
  .map((q) => `        ${acc(q, p)} = fma(w${q}, b${p}, ${acc(q, p)});`)
  .join('\n')}`,
  );
  const wgsl = `enable subgroups;
${c.declarations}
${fromBuffer.declaration}

@compute @workgroup_size(${lanes})
fn main(@builtin(subgroup_invocation_id) lane: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u) {
${fromBuffer.lets}
  let block = wg.x + wg.y * nwg.x;
  if (block >= blocks) { return; }
  let z = block / (pixelBlocks * channelBlocks);
  let m0 = block / pixelBlocks % channelBlocks * ${4 * quads * lanes}u;
  let pBase = block % pixelBlocks * ${pixels}u;
  let xBase = ${c.inputBase};
  // This lane's vec4s of output channels: m0 / 4 + lane + q * lanes.
  let tapStride = cPerGroup * mPad4;
  let wBase = z % groups * ${y.count * x.count}u * tapStride + m0 / 4u + lane;
${range(loads)
  .map(
    (j) => `  let p${j} = pBase + ${j * lanes}u + lane;
${pixelAt(`pixel${j}`, `p${j}`, bands.length)}
  let iy${j} = i32(pixel${j}Row * yStride) - i32(yBegin);
  let ix${j} = i32(pixel${j}Column * xStride) - i32(xBegin);`,
  )
  .join('\n')}
${
  y.count * x.count > 1
    ? `  // The rows and columns the block covers: within one band its rows, and its columns if in one row, else the band's; across bands every row.
  let pLast = min(pBase + ${pixels - 1}u, n - 1u);
${pixelAt('first', 'pBase', bands.length)}
${pixelAt('last', 'pLast', bands.length)}
  let oneBand = firstStart == lastStart;
  let oneRow = oneBand && firstRow == lastRow;
`
    : ''
}${range(quads)
  .flatMap((q) => range(pixels).map((p) => `  var ${acc(q, p)} = vec4f();`))
  .join('\n')}
${blockTaps(y, 'y', 'ty', 'select(0u, firstRow, oneBand)', 'select(yOut - 1u, lastRow, oneBand)')}
${blockTaps(x, 'x', 'tx', 'select(firstStart, firstColumn, oneRow)', 'select(lastEnd - 1u, lastColumn, oneRow)')}
  for (var ty = tyFirst; ty < tyEnd; ty++) {
    for (var tx = txFirst; tx < txEnd; tx++) {
${range(loads)
  .map(
    (j) => `      let y${j} = iy${j} + i32((yFirst + ty) * yDilation);
      let x${j} = ix${j} + i32((xFirst + tx) * xDilation);
      // Padding and pixels past the end read element 0 and use zero.
      let ok${j} = p${j} < n && y${j} >= 0 && y${j} < i32(ySize) && x${j} >= 0 && x${j} < i32(xSize);
      let o${j} = xBase + select(0u, u32(y${j}) * xSize + u32(x${j}), ok${j});`,
  )
  .join('\n')}
      let wTap = wBase + (ty * ${x.count}u + tx) * tapStride;
      for (var ci = 0u; ci < cPerGroup; ci++) {
${range(quads)
  .map((q) => `        let w${q} = ${c.load('W', `wTap + ci * mPad4 + ${q * lanes}u`)};`)
  .join('\n')}
${range(loads)
  .map((j) => `        let v${j} = select(0.0f, ${c.load('X', `o${j} + ci * plane`)}, ok${j});`)
  .join('\n')}
${fmas.join('\n')}
      }
    }
  }
  // One store site (the epilogue is inlined once, which keeps compile times short).
  var outputs = array<vec4f, ${quads * pixels}>(${range(quads)
    .flatMap((q) => range(pixels).map((p) => acc(q, p)))
    .join(', ')});
  for (var b = 0u; b < ${quads * pixels}u; b++) {
    let q = pBase + b % ${pixels}u;
    if (q >= n) { continue; }
${
  bands.length
    ? `${pixelAt('out', 'q', bands.length)}
    let p = outRow * xOut + outColumn;`
    : '    let p = q;'
}
    for (var r = 0u; r < 4u; r++) {
      let m = m0 + (b / ${pixels}u * ${lanes}u + lane) * 4u + r;
      if (m < channels) {
        let value = outputs[b][r];
${c.store}
      }
    }
  }
}`;
  return { label: bands.length ? `${c.label}_bands` : c.label, wgsl, workgroups: grid(blocks * lanes, lanes), bindings: [...c.bindings, fromBuffer.binding] };
}
