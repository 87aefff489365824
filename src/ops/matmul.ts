import { ModelError, UnsupportedOpError } from '../errors.js';
import { broadcastDims } from '../model/dims.js';
import type { ElemType, Node } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import type { Kernel, KernelBinding, OpImpl, OpInput } from './types.js';
import { f32, fromStorage, grid, range, storage, strides, toStorage, wgslType } from './wgsl.js';

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
${range(rm).map((i) => `      let a${i} = As[k * ${bm4}u + ${i * wy}u + ty];`).join('\n')}
${range(rn).map((j) => `      let b${j} = Bs[k * ${bn4}u + ${j * wx}u + tx];`).join('\n')}
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

/** Refuses attributes the op does not know, so none is silently ignored. */
export function checkAttrs(node: Node, known: readonly string[]): void {
  for (const name of node.attrs.names()) {
    if (!known.includes(name)) throw new UnsupportedOpError(`${node.opType} node '${node.name}': attribute '${name}' is not supported`);
  }
}

export function requireFloat(node: Node, inputs: OpInput[]): void {
  for (const x of inputs) {
    if (x.name && !isFloatType(x.type)) {
      const what = `${node.opType} node '${node.name}': input '${x.name}' has type ${x.type}`;
      throw new UnsupportedOpError(`${what}; only floating-point tensors are supported`);
    }
  }
}

/** WGSL expression for the element offset of batch `z` of an operand with per-batch-axis `strides` (0 where broadcast). */
function batchOffset(batch: readonly number[], operandStrides: readonly number[]): string {
  const inner = strides(batch);
  const terms = batch.flatMap((d, i) => (operandStrides[i] === 0 || d === 1 ? [] : [`(z / ${inner[i]}u % ${d}u) * ${operandStrides[i]}u`]));
  return terms.length ? terms.join(' + ') : '0u';
}

/** Strides of `dims` laid against the batch axes `batch` (right-aligned), 0 where `dims` broadcasts. */
function broadcastStrides(dims: readonly number[], batch: readonly number[], elementsPerBatch: number): number[] {
  const s = strides(dims).map((x) => x * elementsPerBatch);
  return batch.map((_, i) => {
    const d = i - (batch.length - dims.length);
    return d < 0 || dims[d] === 1 ? 0 : s[d]!;
  });
}

/**
 * A general strided product: A(m, k) at aOffset + m·am + k·ak, B(k, n) at
 * bOffset + k·bk + n·bn, Y row-major [batches][M][N], each stored as its
 * `type`. `epilogue` maps the f32 sum `acc` to the f32 result (may use m, n
 * and extra bindings).
 */
interface StridedProduct {
  label: string;
  m: number;
  n: number;
  k: number;
  batch: number[];
  a: { type: ElemType; strides: number[]; am: number; ak: number };
  b: { type: ElemType; strides: number[]; bk: number; bn: number };
  y: ElemType;
  extra?: { declarations: string; binding: KernelBinding };
  epilogue: string;
}

function stridedKernel(p: StridedProduct): Kernel {
  const quad = (ok: (r: string) => string, at: (r: string) => string) =>
    `  var v = vec4f();
  for (var r = 0u; r < 4u; r++) {
    if (${ok('r')}) { v[r] = ${at('r')}; }
  }
  return v;`;
  const extra = p.extra ? [p.extra.binding] : [];
  return gemmKernel({
    label: p.label,
    m: p.m,
    n: p.n,
    k: p.k,
    batches: sizeOf(p.batch),
    tile: chooseTile(p.m),
    declarations: [
      storage(0, 'A', wgslType(p.a.type)),
      storage(1, 'B', wgslType(p.b.type)),
      ...(p.extra ? [p.extra.declarations] : []),
      storage(2 + extra.length, 'Y', wgslType(p.y)),
    ].join('\n'),
    bindings: [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }, ...extra, { kind: 'output', index: 0 }],
    loadA: quad(
      (r) => `k < ${p.k}u && m + ${r} < ${p.m}u`,
      (r) => fromStorage(p.a.type, `A[${batchOffset(p.batch, p.a.strides)} + (m + ${r}) * ${p.a.am}u + k * ${p.a.ak}u]`),
    ),
    loadB: quad(
      (r) => `k < ${p.k}u && n + ${r} < ${p.n}u`,
      (r) => fromStorage(p.b.type, `B[${batchOffset(p.batch, p.b.strides)} + k * ${p.b.bk}u + (n + ${r}) * ${p.b.bn}u]`),
    ),
    store: `  Y[(z * ${p.m}u + m) * ${p.n}u + n] = ${toStorage(p.y, p.epilogue)};`,
  });
}

const where = (node: Node) => `${node.opType} node '${node.name}'`;

/** Numpy matmul shapes: 1-D operands are promoted (and the added axis dropped from the result), batch axes broadcast. */
function matmulShape(node: Node, a: readonly number[], b: readonly number[]) {
  if (a.length === 0 || b.length === 0) throw new ModelError(`${where(node)}: operands must have rank ≥ 1, got [${a}] and [${b}]`);
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const [m, k] = a2.slice(-2) as [number, number];
  const [kb, n] = b2.slice(-2) as [number, number];
  if (k !== kb) throw new ModelError(`${where(node)}: inner dimensions differ: [${a}] x [${b}]`);
  const aBatch = a2.slice(0, -2);
  const bBatch = b2.slice(0, -2);
  const batch = broadcastDims(node, [aBatch, bBatch]);
  const out = [...batch, ...(a.length === 1 ? [] : [m]), ...(b.length === 1 ? [] : [n])];
  return { m, n, k, batch, aBatch, bBatch, out };
}

const matMul: OpImpl = {
  infer(node, inputs) {
    requireFloat(node, inputs);
    checkAttrs(node, []);
    const [a, b] = inputs;
    return [{ type: a!.type, dims: matmulShape(node, a!.dims, b!.dims).out }];
  },
  kernels(node, [a, b], [out]) {
    const { m, n, k, batch, aBatch, bBatch } = matmulShape(node, a!.dims, b!.dims);
    return [
      stridedKernel({
        label: 'matmul',
        m,
        n,
        k,
        batch,
        a: { type: a!.type, strides: broadcastStrides(aBatch, batch, m * k), am: k, ak: 1 },
        b: { type: b!.type, strides: broadcastStrides(bBatch, batch, k * n), bk: n, bn: 1 },
        y: out!.type,
        epilogue: 'acc',
      }),
    ];
  },
};

/** Gemm's product shape and C's strides over [M, N] (0 where C broadcasts). */
function gemmShape(node: Node, inputs: OpInput[], opset: number) {
  const [a, b, c] = inputs;
  if (a!.dims.length !== 2 || b!.dims.length !== 2) {
    throw new ModelError(`${where(node)}: A and B must be matrices, got [${a!.dims}] and [${b!.dims}]`);
  }
  const flag = (name: string) => {
    const v = node.attrs.int(name, 0);
    if (v !== 0 && v !== 1) throw new ModelError(`${where(node)}: ${name} must be 0 or 1, got ${v}`);
    return v === 1;
  };
  const transA = flag('transA');
  const transB = flag('transB');
  const [m, k] = transA ? [a!.dims[1]!, a!.dims[0]!] : [a!.dims[0]!, a!.dims[1]!];
  const [kb, n] = transB ? [b!.dims[1]!, b!.dims[0]!] : [b!.dims[0]!, b!.dims[1]!];
  if (k !== kb) throw new ModelError(`${where(node)}: inner dimensions differ: A' is ${m}x${k}, B' is ${kb}x${n}`);
  let cStrides: [number, number] | undefined;
  if (c?.name) {
    const cd = c.dims;
    // Before opset 7, C broadcasts only with broadcast=1 (default 0); since then, always.
    const exact = opset < 7 && node.attrs.int('broadcast', 0) === 0;
    const target = [m, n].slice(2 - cd.length);
    const fits = exact ? cd.length === 2 && cd[0] === m && cd[1] === n : cd.length <= 2 && cd.every((d, i) => d === target[i] || d === 1);
    if (!fits) throw new ModelError(`${where(node)}: C of shape [${cd}] does not broadcast to [${m},${n}]`);
    const [cm, cn] = [...Array(2 - cd.length).fill(1), ...cd] as [number, number];
    cStrides = [cm === 1 ? 0 : cn, cn === 1 ? 0 : 1];
  }
  return { m, n, k, transA, transB, cStrides };
}

const gemm: OpImpl = {
  infer(node, inputs, opset) {
    requireFloat(node, inputs);
    checkAttrs(node, ['alpha', 'beta', 'transA', 'transB', ...(opset < 7 ? ['broadcast'] : [])]);
    const { m, n } = gemmShape(node, inputs, opset);
    return [{ type: inputs[0]!.type, dims: [m, n] }];
  },
  kernels(node, inputs, [out], opset) {
    const [a, b, c] = inputs;
    const { m, n, k, transA, transB, cStrides } = gemmShape(node, inputs, opset);
    const alpha = node.attrs.float('alpha', 1);
    const beta = node.attrs.float('beta', 1);
    const scaled = alpha === 1 ? 'acc' : `${f32(alpha)} * acc`;
    return [
      stridedKernel({
        label: 'gemm',
        m,
        n,
        k,
        batch: [],
        a: { type: a!.type, strides: [], am: transA ? 1 : k, ak: transA ? m : 1 },
        b: { type: b!.type, strides: [], bk: transB ? 1 : n, bn: transB ? k : 1 },
        y: out!.type,
        extra: cStrides && { declarations: storage(2, 'C', wgslType(c!.type)), binding: { kind: 'input', index: 2 } },
        epilogue: cStrides ? `${scaled} + ${f32(beta)} * ${fromStorage(c!.type, `C[m * ${cStrides[0]}u + n * ${cStrides[1]}u]`)}` : scaled,
      }),
    ];
  },
};

export const matmulOps: Record<string, OpImpl> = { MatMul: matMul, Gemm: gemm };
