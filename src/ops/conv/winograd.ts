/**
 * Winograd F(2x2, 3x3), F(3x3, 3x3) and F(4x4, 3x3) for stride-1 3x3 convs on CPU
 * adapters (Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2015): each m x m block of outputs is A^T [(G g G^T) ⊙ (B^T d B)] A,
 * d the block's n x n input patch (n = m + 2), g a 3x3 filter. The n²
 * elementwise products, summed over input channels, are n² independent GEMMs
 * of [C_out x C_in] by [C_in x tiles]: n² multiply-adds per m² outputs
 * instead of 9 m² (16 per 4 outputs, 25 per 9, or 36 per 16).
 *
 * Why here: on lavapipe every conv kernel is bound by loads (each
 * lane-divergent load is a loop over the SIMD lanes), so fewer multiply-adds
 * are as many fewer loads of the GEMM. Three dispatches per chunk of tiles
 * (MAX_SCRATCH_BYTES):
 * - the input transform, d -> B^T d B per (image, input channel, tile), into
 *   scratch V [image][n²][C_in][chunk];
 * - the n² GEMMs, which are a grouped 1x1 conv (n² groups) of V on the
 *   subgroup kernel (subgroup.ts), weights U = G g G^T packed at load, into
 *   scratch P [image][n²][C_out][chunk];
 * - the output transform, A^T P A per (image, output channel, tile), through
 *   the conv's own epilogue (bias, residual, activation, capture taps).
 *
 * Dilation d: a dilated conv is d x d undilated ones on the interleaved
 * sub-grids, so a tile covers outputs o, o + d, … o + (m-1)d of an axis,
 * read from input o - begin + {0, d, … (n-1)d}: along an axis of `out`
 * outputs, tile t starts at o = m·d·(t / d) + t % d, d·ceil(out / (m·d))
 * tiles in all.
 */
import type { ElemType, HostTensor } from '../../model/graph.js';
import type { BindingLimits } from '../../kernels/split.js';
import type { Kernel, KernelBinding } from '../../kernels/types.js';
import { f32, flatMain, fromStorage, grid, gpuElementBytes, packedParam, range, sizesFromBuffer, storage, wgslType } from '../../kernels/wgsl.js';
import { type AxisTaps, chooseSubgroupTile, GROUPED_INPUT_BASE, packedWeightIndex, paddedChannels, subgroupConvKernel } from './subgroup.js';
import type { ConvGeometry } from './geometry.js';
import { convBindings, type ConvEpilogue, type ConvIO } from './io.js';

/** One algorithm F(m x m, 3 x 3): outputs per tile side m, and its matrices (input n = m + 2 a side). */
export interface Winograd {
  m: number;
  /** B^T, n x n: the input transform. */
  bt: number[][];
  /** G, n x 3: the filter transform. */
  g: number[][];
  /** A^T, m x n: the output transform. */
  at: number[][];
}

/** F(2x2, 3x3), interpolation points 0, 1, -1 (and infinity). */
export const F2: Winograd = {
  m: 2,
  bt: [
    [1, 0, -1, 0],
    [0, 1, 1, 0],
    [0, -1, 1, 0],
    [0, 1, 0, -1],
  ],
  g: [
    [1, 0, 0],
    [1 / 2, 1 / 2, 1 / 2],
    [1 / 2, -1 / 2, 1 / 2],
    [0, 0, 1],
  ],
  at: [
    [1, 1, 1, 0],
    [0, 1, -1, -1],
  ],
};

/**
 * F(3x3, 3x3), interpolation points 0, 1, -1, 2 (and infinity): G's row of
 * a point p is (1, p, p²) / ∏(p - q) over the other finite points q, A^T's
 * column (1, p, p²), as in F(2x2) and F(4x4); B^T solves the rest.
 */
export const F3: Winograd = {
  m: 3,
  bt: [
    [2, -1, -2, 1, 0],
    [0, -2, -1, 1, 0],
    [0, 2, -3, 1, 0],
    [0, -1, 0, 1, 0],
    [0, 2, -1, -2, 1],
  ],
  g: [
    [1 / 2, 0, 0],
    [-1 / 2, -1 / 2, -1 / 2],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 6, 1 / 3, 2 / 3],
    [0, 0, 1],
  ],
  at: [
    [1, 1, 1, 1, 0],
    [0, 1, -1, 2, 0],
    [0, 1, 1, 4, 1],
  ],
};

/** F(4x4, 3x3), interpolation points 0, 1, -1, 2, -2 (and infinity). */
export const F4: Winograd = {
  m: 4,
  bt: [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
  ],
  g: [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ],
  at: [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
  ],
};

/** Input tile side n. */
const side = (f: Winograd) => f.m + 2;
/** Transform positions, n² a tile: the GEMMs. */
const positions = (f: Winograd) => side(f) ** 2;
/** Threads per workgroup of the two transforms (flat over their elements). */
const WORKGROUP = 64;

/**
 * The most GEMM work Winograd may keep, as a share of the direct conv's,
 * for it to be chosen: the two transforms cost about a GEMM step's loads
 * per tile and channel. Sub-grids that leave tiles half empty (a dilation
 * near a third of the map for F(2x2), 12 on 33) lose what Winograd saves.
 */
const MAX_WORK_RATIO = 0.7;

/**
 * F(2x2)'s work ratio beyond which its tiles are partly empty enough that
 * F(3x3) becomes a candidate whatever its weights: a full tiling gives
 * 16/36 = 0.44, 33x33 at dilation 1 0.47, at dilations 2 and 6 0.53.
 */
const F2_WASTEFUL_RATIO = 0.5;

/** Tiles along an axis of `out` outputs at dilation d, m outputs a tile. */
export const axisTiles = (out: number, d: number, m: number) => d * Math.ceil(out / (m * d));

/** GEMM multiply-adds of Winograd over those of the direct conv, per (input, output) channel pair. */
export const winogradWorkRatio = (f: Winograd, g: Pick<ConvGeometry, 'y' | 'x'>) =>
  (positions(f) * axisTiles(g.y.out, g.y.dilation, f.m) * axisTiles(g.x.out, g.x.dilation, f.m)) / (9 * g.y.out * g.x.out);

/**
 * The algorithm for a conv, or none. Candidates need a stride-1 3x3 conv,
 * every tap useful, one group, more output channels than `minChannels`
 * (fewer take the narrow kernel) and float32 weights: float16 weights
 * (--precision f16) are the model's weights as stored, which G g G^T
 * rounded to float16 would not be. F(2x2), whose transformed weights are
 * 16/9 of the conv's, is always a candidate. F(3x3) and F(4x4) (25/9 and
 * 36/9) are where those weights are no larger than the conv's input
 * (n²·C_out ≤ N·H·W), so that they cost memory on the scale of the
 * activations, not of the weights: the decoder's 3x3s of DeepLabv3+ at
 * 513x513 take F(4x4), ResNet-101's 3x3s at 33x33 neither (its weights
 * would grow 237 -> 628 MB instead of -> 347 for 4% of its time). F(3x3)
 * is also a candidate where F(2x2) tiles the map wastefully
 * (F2_WASTEFUL_RATIO): a dilated conv's sub-grids of a few pixels, as
 * ASPP's on a 33x33 map, whose sub-grids F(3x3) tiles whole at dilations 6
 * and 12 (6 and 5 pixels, 3 and 2), or ResNet's last stage at dilation 2.
 * ASPP's dilation 6 on ResNet-101 ran 110-125 ms at F(3x3) against 186-194
 * at F(2x2) (bench/ops), for 19 MB more weights. Of the candidates, the
 * one leaving the least GEMM work, if at most MAX_WORK_RATIO of the direct
 * kernel's, which does `directShare()` of 9 multiply-adds a pixel where its
 * blocks skip taps that read only padding (subgroup.ts directTapShare):
 * ASPP's dilation 18 on 33x33 did 0.65 in row-major blocks, less than
 * F(2x2)'s 0.53 / 0.7, and ran 128-133 ms against F(2x2)'s 142-157 on
 * ResNet-101; by column bands (subgroup.ts pixelBands) it does 0.44. The
 * smaller tile on a tie.
 */
export function chooseWinograd(g: ConvGeometry, weightType: ElemType, minChannels: number, directShare: () => number = () => 1): Winograd | undefined {
  const full3x3 = [g.y, g.x].every((a) => a.kernel === 3 && a.count === 3 && a.stride === 1);
  if (!full3x3 || g.groups !== 1 || g.cOut <= minChannels || weightType !== 'float32') return undefined;
  const fitsInput = (f: Winograd) => positions(f) * g.cOut <= g.batch * g.y.size * g.x.size;
  const f2Wasteful = winogradWorkRatio(F2, g) > F2_WASTEFUL_RATIO;
  const candidates = [F2, F3, F4].filter((f) => f === F2 || fitsInput(f) || (f === F3 && f2Wasteful));
  const [best] = candidates.map((f) => ({ f, ratio: winogradWorkRatio(f, g) })).sort((a, b) => a.ratio - b.ratio);
  // The direct kernel's share is counted over the map's blocks: only for a conv Winograd could take.
  return best!.ratio <= MAX_WORK_RATIO && best!.ratio <= MAX_WORK_RATIO * directShare() ? best!.f : undefined;
}

/** M · v for a matrix of numbers and a vector of WGSL expressions, as WGSL expressions (zero terms dropped, units unmultiplied). */
function linear(matrix: number[][], v: string[]): string[] {
  return matrix.map((row) => {
    const terms = row.flatMap((c, j) => (c === 0 ? [] : [`${c < 0 ? '-' : '+'} ${Math.abs(c) === 1 ? '' : `${f32(Math.abs(c))} * `}${v[j]}`]));
    return terms.join(' ').replace(/^\+ /, '');
  });
}

/**
 * G g G^T of each 3x3 filter, written into `u` (zeros) as the GEMMs'
 * weights in the subgroup kernel's packed layout (subgroup.ts
 * packedWeightIndex, one group a position = n·row + column, one tap):
 * [position][C_in][C_out padded to `mPad`]. Written here directly, in flat loops
 * without allocations (ResNet-101 has 3.5 million 3x3 filters), input
 * channels outside and output channels inside, so that each position's
 * values are written along contiguous memory: ASPP's 2048 -> 256 at F(2x2)
 * took a fifth to a third longer the other way, whose consecutive writes
 * were mPad·4 bytes apart (one-off timings, 216 -> 174 and 300 -> 210 ms).
 */
export function winogradWeights(f: Winograd, w: HostTensor, cOut: number, cIn: number, mPad: number, u: Float32Array): void {
  const n = side(f);
  const g = Float64Array.from(f.g.flat());
  const data = w.data;
  const gg = new Float64Array(n * 3);
  // Position p of a filter is `position` entries after its position 0.
  const position = packedWeightIndex(1, 0, 0, 0, 1, cIn, mPad);
  for (let ci = 0; ci < cIn; ci++)
    for (let co = 0; co < cOut; co++) {
      const base = (co * cIn + ci) * 9;
      // The filter's 9 taps and each row of G in locals: F(2x2) of 2048 -> 256 took 26 ms instead of 48 indexing them at every use (one-off timing).
      const w0 = data[base]!,
        w1 = data[base + 1]!,
        w2 = data[base + 2]!;
      const w3 = data[base + 3]!,
        w4 = data[base + 4]!,
        w5 = data[base + 5]!;
      const w6 = data[base + 6]!,
        w7 = data[base + 7]!,
        w8 = data[base + 8]!;
      for (let r = 0; r < n; r++) {
        const g0 = g[3 * r]!,
          g1 = g[3 * r + 1]!,
          g2 = g[3 * r + 2]!;
        gg[3 * r] = g0 * w0 + g1 * w3 + g2 * w6;
        gg[3 * r + 1] = g0 * w1 + g1 * w4 + g2 * w7;
        gg[3 * r + 2] = g0 * w2 + g1 * w5 + g2 * w8;
      }
      const at = packedWeightIndex(0, 0, ci, co, 1, cIn, mPad);
      for (let r = 0; r < n; r++) {
        const x0 = gg[3 * r]!,
          x1 = gg[3 * r + 1]!,
          x2 = gg[3 * r + 2]!;
        for (let c = 0; c < n; c++) u[at + (r * n + c) * position] = x0 * g[3 * c]! + x1 * g[3 * c + 1]! + x2 * g[3 * c + 2]!;
      }
    }
}

/**
 * WGSL statements: `y` = L X L^T, for L a matrix of numbers (rows x n), X
 * (`x`) an array<f32, n²> and `y` an array<f32, rows²>, both row-major;
 * `tmp` names the intermediate L X. The input transform is B^T d B, the
 * output transform A^T P A.
 */
function sandwich(l: number[][], x: string, tmp: string, y: string): string {
  const n = range(l[0]!.length);
  const t = n.flatMap((c) =>
    linear(
      l,
      n.map((r) => `${x}[${n.length * r + c}]`),
    ).map((e, r) => `  let ${tmp}${r}_${c} = ${e};`),
  );
  const out = range(l.length).flatMap((r) =>
    linear(
      l,
      n.map((c) => `${tmp}${r}_${c}`),
    ).map((e, c) => `  ${y}[${l.length * r + c}] = ${e};`),
  );
  return [...t, ...out].join('\n');
}

/**
 * WGSL placing transform thread `i` (flatMain) at tile j of the chunk (tile
 * t of the conv), channel `channel` of `channels`, image z; threads past
 * `total` return.
 */
const tileThread = (channel: string, channels: string) => `  if (i >= total) { return; }
  let j = i % count;
  let t = first + j;
  let ${channel} = i / count % ${channels};
  let z = i / (count * ${channels});`;

/** One axis of the GEMM's 1 x tiles "image". */
const unitAxis = (size: number): AxisTaps => ({ size, kernel: 1, out: size, stride: 1, dilation: 1, begin: 0, first: 0, count: 1 });

/**
 * Scratch bytes per buffer at most: a conv with more tiles runs them in
 * chunks (three dispatches each, sharing the scratch), so that Winograd adds
 * little to a model's activation memory and large maps can take it too. The
 * decoder's 3x3 conv of DeepLabv3+ at 513x513 (304 channels, 4225 tiles of
 * F(2x2)) would otherwise take 82 MB of V alone.
 */
const MAX_SCRATCH_BYTES = 16 * 2 ** 20;

/**
 * The conv's dispatches (input transform, GEMMs, output transform, per chunk
 * of tiles), or undefined when a tensor would exceed one binding (the conv
 * then takes the direct kernels, which can split).
 */
export function winogradConv(
  f: Winograd,
  g: ConvGeometry,
  w: HostTensor,
  epilogue: ConvEpilogue,
  io: ConvIO,
  lanes: number,
  limits: BindingLimits,
): Kernel[] | undefined {
  const { y, x } = g;
  const [n, n2, m] = [side(f), positions(f), f.m];
  const [ty, tx] = [axisTiles(y.out, y.dilation, m), axisTiles(x.out, x.dilation, m)];
  const tiles = ty * tx;
  const bytesPerTile = n2 * g.batch * Math.max(g.cIn, g.cOut) * 4;
  const chunk = Math.max(1, Math.min(tiles, Math.floor(Math.min(MAX_SCRATCH_BYTES, limits.maxBytes) / bytesPerTile)));
  const tile = chooseSubgroupTile(g.cOut, chunk, lanes);
  const mPad = paddedChannels(g.cOut, tile);
  // Packed only when uploaded (packedParam), so made before the size check at no cost.
  const weights = packedParam(n2 * g.cIn * mPad, 'float32', (u) => winogradWeights(f, w, g.cOut, g.cIn, mPad, u));
  // A conv whose tensors cannot fit one binding takes the direct kernels, which can split.
  const tensors = [
    weights.bytes,
    g.batch * g.cIn * y.size * x.size * gpuElementBytes(io.types.inputs[0]!),
    ...io.types.outputs.map((t) => g.batch * g.cOut * y.out * x.out * gpuElementBytes(t)),
  ];
  if (bytesPerTile > limits.maxBytes || tensors.some((b) => b > limits.maxBytes)) return undefined;
  // Scratch: V [image][position][C_in][chunk], the products [image][position][C_out][chunk].
  const v: KernelBinding = { kind: 'scratch', id: 0, bytes: n2 * g.batch * g.cIn * chunk * 4 };
  const products: KernelBinding = { kind: 'scratch', id: 1, bytes: n2 * g.batch * g.cOut * chunk * 4 };
  const gemmIO = convBindings({ types: io.types, x: v, y: products }, {}, 'f32', { binding: weights, type: 'vec4f' });
  const out = convBindings({ ...io, x: products }, epilogue, 'f32');
  const xType = io.types.inputs[0]!;
  // Tile t of an axis starts at output o0 = m·d·(t / d) + t % d.
  const origin = (t: string, d: string) => `${m}u * ${d} * (${t} / ${d}) + ${t} % ${d}`;
  const label = (stage: string) => `winograd${m}x${m}_${stage}`;

  const kernels: Kernel[] = [];
  for (let first = 0; first < tiles; first += chunk) {
    const count = Math.min(chunk, tiles - first);
    // The transforms read their sizes from a buffer: chunks, and convs that differ only in sizes, share their pipelines.
    const inputSizes = sizesFromBuffer(
      {
        total: g.batch * g.cIn * count,
        count,
        first,
        xTiles: tx,
        cIn: g.cIn,
        ySize: y.size,
        xSize: x.size,
        yBegin: y.begin,
        xBegin: x.begin,
        yDilation: y.dilation,
        xDilation: x.dilation,
      },
      2,
    );
    kernels.push({
      label: label('input'),
      wgsl: `${storage(0, 'X', wgslType(xType))}
${storage(1, 'V', 'f32')}
${inputSizes.declaration}
${flatMain(
  WORKGROUP,
  `${inputSizes.lets}
${tileThread('c', 'cIn')}
  let iy0 = i32(${origin('(t / xTiles)', 'yDilation')}) - i32(yBegin);
  let ix0 = i32(${origin('(t % xTiles)', 'xDilation')}) - i32(xBegin);
  let plane = (z * cIn + c) * ySize * xSize;
  var d: array<f32, ${n2}>;
  for (var r = 0; r < ${n}; r++) {
    let iy = iy0 + r * i32(yDilation);
    for (var q = 0; q < ${n}; q++) {
      let ix = ix0 + q * i32(xDilation);
      // Padding reads element 0 and uses zero.
      let ok = iy >= 0 && iy < i32(ySize) && ix >= 0 && ix < i32(xSize);
      d[${n} * r + q] = select(0.0f, ${fromStorage(xType, 'X[plane + select(0u, u32(iy) * xSize + u32(ix), ok)]')}, ok);
    }
  }
  var v: array<f32, ${n2}>;
${sandwich(f.bt, 'd', 't', 'v')}
  for (var k = 0u; k < ${n2}u; k++) {
    V[((z * ${n2}u + k) * cIn + c) * count + j] = v[k];
  }`,
)}`,
      workgroups: grid(g.batch * g.cIn * count, WORKGROUP),
      bindings: [io.x, v, inputSizes.binding],
    });

    kernels.push(
      subgroupConvKernel(
        {
          label: label('gemm'),
          groups: n2,
          m: g.cOut,
          cPerGroup: g.cIn,
          n: count,
          batches: g.batch * n2,
          y: unitAxis(1),
          x: unitAxis(count),
          plane: count,
          sizes: { cIn: n2 * g.cIn },
          inputBase: GROUPED_INPUT_BASE,
          declarations: gemmIO.declarations,
          bindings: gemmIO.bindings,
          load: gemmIO.load,
          // z = image·n² + position.
          store: '        Y[(z * channels + m) * n + p] = value;',
        },
        tile,
      ),
    );

    const outputSizes = sizesFromBuffer(
      { total: g.batch * g.cOut * count, count, first, xTiles: tx, cOut: g.cOut, yOut: y.out, xOut: x.out, yDilation: y.dilation, xDilation: x.dilation },
      out.bindings.length,
    );
    kernels.push({
      label: label('output'),
      wgsl: `${out.declarations}
${outputSizes.declaration}
${flatMain(
  WORKGROUP,
  `${outputSizes.lets}
${tileThread('co', 'cOut')}
  var products: array<f32, ${n2}>;
  for (var k = 0u; k < ${n2}u; k++) {
    products[k] = X[((z * ${n2}u + k) * cOut + co) * count + j];
  }
  var y: array<f32, ${m * m}>;
${sandwich(f.at, 'products', 's', 'y')}
  let oy0 = ${origin('(t / xTiles)', 'yDilation')};
  let ox0 = ${origin('(t % xTiles)', 'xDilation')};
  // One store site (the epilogue is inlined once).
  for (var b = 0u; b < ${m * m}u; b++) {
    let oy = oy0 + b / ${m}u * yDilation;
    let ox = ox0 + b % ${m}u * xDilation;
    if (oy < yOut && ox < xOut) {
      let value = y[b];
      let p = oy * xOut + ox;
      ${out.store('value', 'co', '(z * cOut + co) * yOut * xOut + p')}
    }
  }`,
)}`,
      workgroups: grid(g.batch * g.cOut * count, WORKGROUP),
      bindings: [...out.bindings, outputSizes.binding],
    });
  }
  return kernels;
}
