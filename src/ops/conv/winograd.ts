/**
 * Winograd F(2x2, 3x3) for stride-1 3x3 convs on CPU adapters (Lavin &
 * Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): each
 * 2x2 block of outputs is A^T [(G g G^T) ⊙ (B^T d B)] A, d the block's 4x4
 * input patch, g a 3x3 filter. The 16 elementwise products, summed over input
 * channels, are 16 independent GEMMs of [C_out x C_in] by [C_in x tiles]:
 * 16 multiply-adds per 4 outputs instead of 36.
 *
 * Why here: on lavapipe every conv kernel is bound by loads (each
 * lane-divergent load is a loop over the SIMD lanes), so the 2.25x fewer
 * multiply-adds are 2.25x fewer loads of the GEMM. Three dispatches:
 * - the input transform, d -> B^T d B per (image, input channel, tile), into
 *   scratch V [image][16][C_in][tiles];
 * - the 16 GEMMs, which are a grouped 1x1 conv (16 groups) of V on the
 *   subgroup kernel (subgroup.ts), weights U = G g G^T packed at load, into
 *   scratch M [image][16][C_out][tiles];
 * - the output transform, A^T M A per (image, output channel, tile), through
 *   the conv's own epilogue (bias, residual, activation, capture taps).
 *
 * Dilation d: a dilated conv is d x d undilated ones on the interleaved
 * sub-grids, so a tile covers outputs o and o + d of an axis, read from input
 * o - begin + {0, d, 2d, 3d}: along an axis of `out` outputs, tile t covers
 * o = 2d·(t / d) + t % d (and o + d), d·ceil(out / 2d) tiles in all.
 */
import type { ElemType, HostTensor } from '../../model/graph.js';
import type { BindingLimits } from '../../kernels/split.js';
import type { Kernel, KernelBinding } from '../../kernels/types.js';
import { fromStorage, grid, gpuElementBytes, sizesFromBuffer, storage, wgslType } from '../../kernels/wgsl.js';
import { type AxisTaps, chooseSubgroupTile, packSubgroupWeights, subgroupConvKernel } from './subgroup.js';
import type { ConvGeometry } from './geometry.js';
import { convBindings, type ConvEpilogue, type ConvIO } from './io.js';

/** Transform positions: the 4x4 of one tile. */
const POSITIONS = 16;
/** Threads per workgroup of the two transforms (flat over their elements). */
const WORKGROUP = 64;

/**
 * The most GEMM work Winograd may keep, as a share of the direct conv's,
 * for it to be chosen: 16·tiles against 9·pixels multiply-adds, and the two
 * transforms cost about a GEMM step's loads per tile and channel. Sub-grids
 * that leave tiles half empty (a dilation near a third of the map: 12 on 33)
 * lose what Winograd saves.
 */
const MAX_WORK_RATIO = 0.7;

/** Tiles along an axis of `out` outputs at dilation d. */
export const axisTiles = (out: number, d: number) => d * Math.ceil(out / (2 * d));

/** GEMM multiply-adds of Winograd over those of the direct conv, per (input, output) channel pair. */
export const winogradWorkRatio = (g: Pick<ConvGeometry, 'y' | 'x'>) =>
  (POSITIONS * axisTiles(g.y.out, g.y.dilation) * axisTiles(g.x.out, g.x.dilation)) / (9 * g.y.out * g.x.out);

/**
 * A stride-1 3x3 conv, every tap useful, one group, more output channels
 * than `minChannels` (fewer take the narrow kernel), less work as Winograd,
 * and float32 weights: float16 weights (--precision f16) are the model's
 * weights as stored, which G g G^T rounded to float16 would not be, and in
 * float32 it would take 3.6x their memory.
 */
export function winogradApplies(g: ConvGeometry, weightType: ElemType, minChannels: number): boolean {
  const full3x3 = [g.y, g.x].every((a) => a.kernel === 3 && a.count === 3 && a.stride === 1);
  return full3x3 && g.groups === 1 && g.cOut > minChannels && weightType === 'float32' && winogradWorkRatio(g) <= MAX_WORK_RATIO;
}

/** G g G^T of each 3x3 filter, as the GEMMs' weights [position][C_out][C_in][1][1] (position = 4·row + column). */
export function winogradWeights(w: HostTensor, cOut: number, cIn: number): HostTensor {
  const u = new Float32Array(POSITIONS * cOut * cIn);
  // G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]].
  const g = (f: readonly number[]) => [f[0]!, (f[0]! + f[1]! + f[2]!) / 2, (f[0]! - f[1]! + f[2]!) / 2, f[2]!];
  for (let co = 0; co < cOut; co++)
    for (let ci = 0; ci < cIn; ci++) {
      const base = (co * cIn + ci) * 9;
      const filter = (r: number) => [0, 1, 2].map((c) => w.data[base + 3 * r + c]!);
      // Columns of G g (4 rows of 3), then G applied along each row.
      const gg = [0, 1, 2].map((c) => g([0, 1, 2].map((r) => filter(r)[c]!)));
      for (let row = 0; row < 4; row++) {
        const u4 = g([0, 1, 2].map((c) => gg[c]![row]!));
        for (let col = 0; col < 4; col++) u[((row * 4 + col) * cOut + co) * cIn + ci] = u4[col]!;
      }
    }
  return { type: 'float32', dims: [POSITIONS * cOut, cIn, 1, 1], data: u };
}

/** WGSL of B^T d B for `d`, an array<f32, 16> in row-major order, into `v` (the same layout). */
function inputTransform(d: string, v: string): string {
  // B^T rows: [1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1].
  const bt = (e: string[]) => [`${e[0]} - ${e[2]}`, `${e[1]} + ${e[2]}`, `${e[2]} - ${e[1]}`, `${e[1]} - ${e[3]}`];
  const four = [0, 1, 2, 3];
  // t = B^T d, column by column; then v = t B, row by row.
  const t = four.flatMap((c) => bt(four.map((r) => `${d}[${4 * r + c}]`)).map((e, r) => `  let t${r}${c} = ${e};`));
  const out = four.flatMap((r) => bt(four.map((c) => `t${r}${c}`)).map((e, c) => `  ${v}[${4 * r + c}] = ${e};`));
  return [...t, ...out].join('\n');
}

/** One axis of the GEMM's 1 x tiles "image". */
const unitAxis = (size: number): AxisTaps => ({ size, kernel: 1, out: size, stride: 1, dilation: 1, begin: 0, first: 0, count: 1 });

/**
 * Scratch bytes per buffer at most: a conv with more tiles runs them in
 * chunks (three dispatches each, sharing the scratch), so that Winograd adds
 * little to a model's activation memory and large maps can take it too. The
 * decoder's 3x3 conv of DeepLabv3+ at 513x513 (304 channels, 4225 tiles)
 * would otherwise take 82 MB of V alone.
 */
const MAX_SCRATCH_BYTES = 16 * 2 ** 20;

/**
 * The conv's dispatches (input transform, GEMMs, output transform, per chunk
 * of tiles), or undefined when a tensor would exceed one binding (the conv
 * then takes the direct kernels, which can split).
 */
export function winogradConv(g: ConvGeometry, w: HostTensor, epilogue: ConvEpilogue, io: ConvIO, lanes: number, limits: BindingLimits): Kernel[] | undefined {
  const { y, x } = g;
  const [ty, tx] = [axisTiles(y.out, y.dilation), axisTiles(x.out, x.dilation)];
  const tiles = ty * tx;
  const bytesPerTile = POSITIONS * g.batch * Math.max(g.cIn, g.cOut) * 4;
  const chunk = Math.max(1, Math.min(tiles, Math.floor(Math.min(MAX_SCRATCH_BYTES, limits.maxBytes) / bytesPerTile)));
  const tile = chooseSubgroupTile(g.cOut, chunk, lanes);
  const weights = packSubgroupWeights(
    winogradWeights(w, g.cOut, g.cIn),
    { groups: POSITIONS, m: g.cOut, cPerGroup: g.cIn, y: unitAxis(1), x: unitAxis(1) },
    tile,
  );
  const tensors = [
    weights.byteLength,
    g.batch * g.cIn * y.size * x.size * gpuElementBytes(io.types.inputs[0]!),
    ...io.types.outputs.map((t) => g.batch * g.cOut * y.out * x.out * gpuElementBytes(t)),
  ];
  if (bytesPerTile > limits.maxBytes || tensors.some((b) => b > limits.maxBytes)) return undefined;
  // Scratch: V [image][position][C_in][chunk], the products [image][position][C_out][chunk].
  const v: KernelBinding = { kind: 'scratch', id: 0, bytes: POSITIONS * g.batch * g.cIn * chunk * 4 };
  const products: KernelBinding = { kind: 'scratch', id: 1, bytes: POSITIONS * g.batch * g.cOut * chunk * 4 };
  const gemmIO = convBindings({ types: io.types, x: v, y: products }, {}, 'f32', { binding: { kind: 'param', data: weights }, type: 'vec4f' });
  const out = convBindings({ ...io, x: products }, epilogue, 'f32');
  const xType = io.types.inputs[0]!;
  // Tile t of an axis covers outputs o0 and o0 + d.
  const origin = (t: string, d: string) => `2u * ${d} * (${t} / ${d}) + ${t} % ${d}`;

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
      label: 'winograd_input',
      wgsl: `${storage(0, 'X', wgslType(xType))}
${storage(1, 'V', 'f32')}
${inputSizes.declaration}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
${inputSizes.lets}
  let i = gid.x + gid.y * nwg.x * ${WORKGROUP}u;
  if (i >= total) { return; }
  let j = i % count;
  let t = first + j;
  let c = i / count % cIn;
  let z = i / (count * cIn);
  let iy0 = i32(${origin('(t / xTiles)', 'yDilation')}) - i32(yBegin);
  let ix0 = i32(${origin('(t % xTiles)', 'xDilation')}) - i32(xBegin);
  let plane = (z * cIn + c) * ySize * xSize;
  var d: array<f32, 16>;
  for (var r = 0; r < 4; r++) {
    let iy = iy0 + r * i32(yDilation);
    for (var q = 0; q < 4; q++) {
      let ix = ix0 + q * i32(xDilation);
      // Padding reads element 0 and uses zero.
      let ok = iy >= 0 && iy < i32(ySize) && ix >= 0 && ix < i32(xSize);
      d[4 * r + q] = select(0.0f, ${fromStorage(xType, 'X[plane + select(0u, u32(iy) * xSize + u32(ix), ok)]')}, ok);
    }
  }
  var v: array<f32, 16>;
${inputTransform('d', 'v')}
  for (var k = 0u; k < 16u; k++) {
    V[((z * 16u + k) * cIn + c) * count + j] = v[k];
  }
}`,
      workgroups: grid(g.batch * g.cIn * count, WORKGROUP),
      bindings: [io.x, v, inputSizes.binding],
    });

    kernels.push(
      subgroupConvKernel(
        {
          label: 'winograd_gemm',
          groups: POSITIONS,
          m: g.cOut,
          cPerGroup: g.cIn,
          n: count,
          batches: g.batch * POSITIONS,
          y: unitAxis(1),
          x: unitAxis(count),
          plane: count,
          sizes: { cIn: POSITIONS * g.cIn },
          inputBase: '(z / groups * cIn + z % groups * cPerGroup) * plane',
          declarations: gemmIO.declarations,
          bindings: gemmIO.bindings,
          load: gemmIO.load,
          // z = image·16 + position.
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
      label: 'winograd_output',
      wgsl: `${out.declarations}
${outputSizes.declaration}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
${outputSizes.lets}
  let i = gid.x + gid.y * nwg.x * ${WORKGROUP}u;
  if (i >= total) { return; }
  let j = i % count;
  let t = first + j;
  let co = i / count % cOut;
  let z = i / (count * cOut);
  var m: array<f32, 16>;
  for (var k = 0u; k < 16u; k++) {
    m[k] = X[((z * 16u + k) * cOut + co) * count + j];
  }
  // A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]: s = A^T m, then the outputs s A.
  var s: array<f32, 8>;
  for (var q = 0u; q < 4u; q++) {
    s[q] = m[q] + m[4u + q] + m[8u + q];
    s[4u + q] = m[4u + q] - m[8u + q] - m[12u + q];
  }
  let oy0 = ${origin('(t / xTiles)', 'yDilation')};
  let ox0 = ${origin('(t % xTiles)', 'xDilation')};
  for (var b = 0u; b < 4u; b++) {
    let r = b / 2u;
    let value = select(s[4u * r] + s[4u * r + 1u] + s[4u * r + 2u], s[4u * r + 1u] - s[4u * r + 2u] - s[4u * r + 3u], b % 2u == 1u);
    let oy = oy0 + r * yDilation;
    let ox = ox0 + b % 2u * xDilation;
    if (oy < yOut && ox < xOut) {
      let p = oy * xOut + ox;
      ${out.store('value', 'co', '(z * cOut + co) * yOut * xOut + p')}
    }
  }
}`,
      workgroups: grid(g.batch * g.cOut * count, WORKGROUP),
      bindings: [...out.bindings, outputSizes.binding],
    });
  }
  return kernels;
}
