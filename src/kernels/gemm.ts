import type { Kernel, KernelBinding } from './types.js';
import { grid, range } from './wgsl.js';

/**
 * The tiled matrix product every GEMM-shaped op shares (MatMul, Gemm, Conv as
 * an implicit GEMM): Y[z][m][n] = Σ_k A[z](k, m) · B[z](k, n).
 *
 * A workgroup computes a BM x BN tile of Y. Each step it stages a BK-deep
 * slice of A and of B in workgroup memory (as vec4s: 4 consecutive m, or 4
 * consecutive n), then every thread accumulates its own 4·rm x 4·rn
 * register tile from it with vec4 FMAs, so each staged value is reused
 * 4·rn (A) or 4·rm (B) times from registers.
 */

export interface GemmTile {
  /** Threads along n and along m. */
  wx: number;
  wy: number;
  /** vec4 blocks per thread along m and along n. */
  rm: number;
  rn: number;
  /** Depth of the staged k slice. */
  bk: number;
}

export const tileRows = (t: GemmTile) => 4 * t.rm * t.wy;

export interface GemmProgram {
  label: string;
  m: number;
  n: number;
  k: number;
  /** Independent products (batch x groups), computed side by side. */
  batches: number;
  tile: GemmTile;
  /** Storage bindings and helpers the functions below use; binding i is `bindings[i]`. */
  declarations: string;
  bindings: KernelBinding[];
  /** Body of `fn loadA(z: u32, k: u32, m: u32) -> vec4f`: A(k, m..m+3), zero where out of range (k runs up to K rounded up to BK). */
  loadA: string;
  /** Body of `fn loadB(z: u32, k: u32, n: u32) -> vec4f`: B(k, n..n+3), zero where out of range (likewise). */
  loadB: string;
  /** Body of `fn store(z: u32, m: u32, n: u32, acc: f32)`, called for in-range m and n only. */
  store: string;
}

export function gemmKernel(p: GemmProgram): Kernel {
  const { wx, wy, rm, rn, bk } = p.tile;
  const threads = wx * wy;
  const [bm4, bn4] = [rm * wy, rn * wx];
  const [bm, bn] = [4 * bm4, 4 * bn4];
  const tilesN = Math.ceil(p.n / bn);
  const tilesM = Math.ceil(p.m / bm);
  const tiles = tilesN * tilesM * p.batches;
  const blocks = range(rm).flatMap((i) => range(rn).map((j) => [i, j] as const));
  const acc = (i: number, j: number, c: number) => `acc${i}_${j}_${c}`;
  // Block (i, j): acc(i, j, c) += rows a_i times column c of b_j.
  const fmas = blocks
    .flatMap(([i, j]) => ['x', 'y', 'z', 'w'].map((c, ci) => `      ${acc(i, j, ci)} = fma(a${i}, vec4f(b${j}.${c}), ${acc(i, j, ci)});`))
    .join('\n');

  // Each thread stages slots t, t + threads, … of a slice. A loop rather than
  // unrolled copies: each inlined load is a large piece of code on CPU adapters.
  const stage = (shared: string, vec4s: number, perK: number, load: string, base: string) =>
    `    for (var s = t; s < ${vec4s}u; s += ${threads}u) { ${shared}[s] = ${load}(z, k0 + s / ${perK}u, ${base} + s % ${perK}u * 4u); }`;

  const wgsl = `${p.declarations}
var<workgroup> As: array<vec4f, ${bk * bm4}>;
var<workgroup> Bs: array<vec4f, ${bk * bn4}>;

fn loadA(z: u32, k: u32, m: u32) -> vec4f {
${p.loadA}
}

fn loadB(z: u32, k: u32, n: u32) -> vec4f {
${p.loadB}
}

fn store(z: u32, m: u32, n: u32, acc: f32) {
${p.store}
}

@compute @workgroup_size(${threads})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let tile = wg.x + wg.y * nwg.x;
  if (tile >= ${tiles}u) { return; }
  let n0 = (tile % ${tilesN}u) * ${bn}u;
  let m0 = (tile / ${tilesN}u % ${tilesM}u) * ${bm}u;
  let z = tile / ${tilesN * tilesM}u;
  let tx = t % ${wx}u;
  let ty = t / ${wx}u;
${blocks.flatMap(([i, j]) => range(4).map((c) => `  var ${acc(i, j, c)} = vec4f();`)).join('\n')}
  for (var k0 = 0u; k0 < ${p.k}u; k0 += ${bk}u) {
${stage('As', bk * bm4, bm4, 'loadA', 'm0')}
${stage('Bs', bk * bn4, bn4, 'loadB', 'n0')}
    workgroupBarrier();
    for (var k = 0u; k < ${bk}u; k++) {
${range(rm)
  .map((i) => `      let a${i} = As[k * ${bm4}u + ${i * wy}u + ty];`)
  .join('\n')}
${range(rn)
  .map((j) => `      let b${j} = Bs[k * ${bn4}u + ${j * wx}u + tx];`)
  .join('\n')}
${fmas}
    }
    workgroupBarrier();
  }
  // One store site (the epilogue is inlined once, which keeps compile times short on CPU adapters).
  var outputs = array<vec4f, ${4 * rm * rn}>(${blocks.flatMap(([i, j]) => range(4).map((c) => acc(i, j, c))).join(', ')});
  for (var b = 0u; b < ${4 * rm * rn}u; b++) {
    let m = m0 + (b / ${4 * rn}u * ${wy}u + ty) * 4u;
    let n = n0 + (b / 4u % ${rn}u * ${wx}u + tx) * 4u + b % 4u;
    if (n >= ${p.n}u) { continue; }
    for (var r = 0u; r < 4u; r++) {
      if (m + r < ${p.m}u) { store(z, m + r, n, outputs[b][r]); }
    }
  }
}`;
  return { label: p.label, wgsl, workgroups: grid(tiles * threads, threads), bindings: p.bindings };
}

/**
 * The tile for a product with M rows: 8x8 threads, each accumulating 16 rows
 * x 8 columns (128x64 tiles). Large register tiles pay off on a CPU adapter
 * too: on Mesa's lavapipe a divergent workgroup-memory load costs about as
 * much as a dozen FMAs, and 16x8 outputs per thread ran DeepLab's 3x3 and 1x1
 * convs about 2x faster than 4x4 (64x64 tiles of 256 threads). Products of at
 * most 64 rows get 8-row thread tiles (64x64) instead of more rows of zeros.
 * 4-row ones (32x64) would waste less on very narrow products, but lavapipe
 * compiled them to 2.5x more code, and compile time dominates small layers.
 */
export function chooseTile(m: number): GemmTile {
  return { wx: 8, wy: 8, rm: m <= 64 ? 2 : 4, rn: 2, bk: 8 };
}
