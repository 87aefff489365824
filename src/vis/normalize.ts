import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { sizeOf } from '../model/graph.js';
import { flatMain, grid, storage } from '../kernels/wgsl.js';
import { binding, checkTensor, CommandBatch, record, type GpuTensor, type TensorLike, type StageOptions } from './tensor.js';

/**
 * Normalisation of maps to [0, 1] before a colormap:
 *  - `'minmax'`: (v - min) / (max - min), the recipe's (cv2.normalize NORM_MINMAX);
 *  - `{ percentile: [lo, hi] }`: clip to the values at the lo-th and hi-th
 *    percentiles (NumPy's `np.percentile`, linear method), e.g. [1, 99];
 *  - `{ range: [lo, hi] }`: a fixed range.
 * Values outside the range clamp to 0 or 1; a map whose range is empty
 * (constant) becomes all 0.
 */
export type Normalization = 'minmax' | { percentile: readonly [number, number] } | { range: readonly [number, number] };

/**
 * Value ranges on the GPU: float32 pairs (lo, hi), one per map (`count` of
 * them) or one shared by all. Computing them reads back nothing.
 */
export interface GpuRange {
  readonly buffer: GPUBuffer;
  readonly count: number;
}

const THREADS = 256;

/**
 * The range kernels' split of a map: workgroup (chunk, map), each thread
 * visiting `per` elements (16, more for maps past 268M elements so the
 * chunks fit in one dispatch dimension).
 */
function chunking(size: number): { per: number; chunk: number; chunks: number } {
  const per = Math.max(16, Math.ceil(size / (THREADS * 65535)));
  return { per, chunk: THREADS * per, chunks: Math.ceil(size / (THREADS * per)) };
}

/** Order-preserving float <-> u32 keys (negative floats flipped), so ranks and atomics work on bits. */
const KEYS = `fn toKey(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
fn fromKey(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}`;

/** Maps of an [N,...] tensor: N maps of the remaining elements each. */
function maps(gpu: Gpu, t: TensorLike, what: string): { count: number; size: number } {
  if (t.dims.length < 2) throw new InputError(`${what}: expected a tensor [N, ...], got [${t.dims.join(',')}]`);
  checkTensor(gpu, t, what);
  return { count: t.dims[0]!, size: sizeOf(t.dims.slice(1)) };
}

function checkNormalization(n: Normalization): void {
  if (n === 'minmax') return;
  if (typeof n === 'object' && n && 'percentile' in n) {
    const [lo, hi] = n.percentile;
    if (!(lo >= 0 && hi <= 100 && lo <= hi)) throw new InputError(`normalize: percentiles must satisfy 0 <= lo <= hi <= 100, got [${n.percentile.join(', ')}]`);
    return;
  }
  if (typeof n === 'object' && n && 'range' in n) {
    const [lo, hi] = n.range;
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo <= hi))
      throw new InputError(`normalize: range must be finite [lo, hi] with lo <= hi, got [${n.range.join(', ')}]`);
    return;
  }
  throw new InputError(`normalize: unknown normalisation ${JSON.stringify(n)} (use 'minmax', { percentile: [lo, hi] } or { range: [lo, hi] })`);
}

function minMax(batch: CommandBatch, t: TensorLike, count: number, size: number, out: GPUBuffer): void {
  const { per, chunk, chunks } = chunking(size);
  const keys = batch.temporary(count * 8, 'minmax keys');
  const reduce = `${storage(0, 'X', 'f32', 'read')}
@group(0) @binding(1) var<storage, read_write> K: array<atomic<u32>>;
${KEYS}
var<workgroup> lo: array<f32, ${THREADS}>;
var<workgroup> hi: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let n = wg.y;
  // Start from an element of the map (the chunk's first, or the map's last for a short chunk).
  var mn = X[n * ${size}u + min(wg.x * ${chunk}u + l, ${size - 1}u)];
  var mx = mn;
  for (var k = 0u; k < ${per}u; k++) {
    let e = wg.x * ${chunk}u + k * ${THREADS}u + l;
    if (e < ${size}u) {
      let v = X[n * ${size}u + e];
      mn = min(mn, v);
      mx = max(mx, v);
    }
  }
  lo[l] = mn;
  hi[l] = mx;
  for (var s = ${THREADS / 2}u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (l < s) {
      lo[l] = min(lo[l], lo[l + s]);
      hi[l] = max(hi[l], hi[l + s]);
    }
  }
  if (l == 0u) {
    // Both as maxima of keys (the zero-filled buffer is below every key): min v = -max(-v).
    atomicMax(&K[n * 2u], toKey(-lo[0]));
    atomicMax(&K[n * 2u + 1u], toKey(hi[0]));
  }
}`;
  batch.dispatch({ label: `minmax_${count}x${size}`, wgsl: reduce, workgroups: [chunks, count, 1] }, [binding(t), keys]);
  const finish = `${storage(0, 'K', 'u32', 'read')}
${storage(1, 'R', 'f32', 'read_write')}
${KEYS}
${flatMain(
  64,
  `  if (i >= ${count}u) { return; }
  R[i * 2u] = -fromKey(K[i * 2u]);
  R[i * 2u + 1u] = fromKey(K[i * 2u + 1u]);`,
)}`;
  batch.dispatch({ label: 'minmax_finish', wgsl: finish, workgroups: grid(count, 64) }, [keys, out]);
}

/**
 * The ranks NumPy's linear percentile interpolates between, and the weight:
 * virtual index n·q + (1 - q) - 1 (alpha = beta = 1), as numpy/lib/function_base.py computes it.
 */
export function percentileRank(n: number, p: number): { below: number; above: number; gamma: number } {
  const q = p / 100;
  const virtual = n * q + (1 + q * (1 - 1 - 1)) - 1;
  const prev = Math.floor(virtual);
  const gamma = virtual - prev;
  if (virtual >= n - 1) return { below: n - 1, above: n - 1, gamma };
  if (virtual < 0) return { below: 0, above: 0, gamma };
  return { below: prev, above: prev + 1, gamma };
}

/**
 * Percentiles by radix select on the order keys, exactly: four passes over
 * the bytes of the key, most significant first. Each pass histograms the
 * elements whose key matches a target's prefix so far (workgroup-local
 * histograms merged with atomics), then one thread per map walks the 256
 * bins to fix the next byte of each target. Four targets per map (the two
 * ranks each percentile interpolates between); targets sharing a prefix
 * share a histogram.
 */
function percentiles(batch: CommandBatch, t: TensorLike, count: number, size: number, p: readonly [number, number], out: GPUBuffer): void {
  const { per, chunk, chunks } = chunking(size);
  const [lo, hi] = [percentileRank(size, p[0]), percentileRank(size, p[1])];
  const ranks = [lo.below, lo.above, hi.below, hi.above];
  // State per (map, target): key prefix found so far, rank left inside it.
  const state = batch.upload(
    Uint32Array.from({ length: count * 8 }, (_, j) => (j % 2 ? ranks[(j >> 1) % 4]! : 0)),
    'percentile state',
  );
  const histograms = batch.temporary(4 * count * 4 * 256 * 4, 'percentile histograms');
  const readPrefixes = `  let s = n * 8u;
  let p0 = S[s];
  let p1 = S[s + 2u];
  let p2 = S[s + 4u];
  let p3 = S[s + 6u];
  // The first target with each prefix owns its histogram.
  var own = array<u32, 4>(0u, select(1u, 0u, p1 == p0), select(select(2u, 1u, p2 == p1), 0u, p2 == p0),
    select(select(select(3u, 2u, p3 == p2), 1u, p3 == p1), 0u, p3 == p0));`;
  // One pipeline per kernel for all four passes: the pass's byte (shift, mask) and histogram come from P.
  const histogram = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'S', 'u32', 'read')}
@group(0) @binding(2) var<storage, read_write> G: array<atomic<u32>>;
${storage(3, 'P', 'u32', 'read')}
${KEYS}
var<workgroup> h: array<atomic<u32>, 1024>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let n = wg.y;
  let shift = P[0];
  let mask = P[1];
  for (var j = l; j < 1024u; j += ${THREADS}u) { atomicStore(&h[j], 0u); }
${readPrefixes}
  workgroupBarrier();
  for (var k = 0u; k < ${per}u; k++) {
    let e = wg.x * ${chunk}u + k * ${THREADS}u + l;
    if (e < ${size}u) {
      let key = toKey(X[n * ${size}u + e]);
      let m = key & mask;
      let digit = (key >> shift) & 255u;
      if (m == p0) { atomicAdd(&h[digit], 1u); }
      if (own[1] == 1u && m == p1) { atomicAdd(&h[256u + digit], 1u); }
      if (own[2] == 2u && m == p2) { atomicAdd(&h[512u + digit], 1u); }
      if (own[3] == 3u && m == p3) { atomicAdd(&h[768u + digit], 1u); }
    }
  }
  workgroupBarrier();
  for (var j = l; j < 1024u; j += ${THREADS}u) {
    let c = atomicLoad(&h[j]);
    if (c != 0u) { atomicAdd(&G[P[2] + n * 1024u + j], c); }
  }
}`;
  const pick = `${storage(0, 'S', 'u32', 'read_write')}
${storage(1, 'G', 'u32', 'read')}
${storage(2, 'P', 'u32', 'read')}
${flatMain(
  64,
  `  if (i >= ${count}u) { return; }
  let n = i;
${readPrefixes}
  var prefix = array<u32, 4>(p0, p1, p2, p3);
  var next: array<u32, 8>;
  for (var t = 0u; t < 4u; t++) {
    let base = P[2] + n * 1024u + own[t] * 256u;
    let rank = S[s + t * 2u + 1u];
    var below = 0u;
    var digit = 255u;
    for (var b = 0u; b < 256u; b++) {
      let c = G[base + b];
      if (below + c > rank) { digit = b; break; }
      below += c;
    }
    next[t * 2u] = prefix[t] | (digit << P[0]);
    next[t * 2u + 1u] = rank - below;
  }
  for (var j = 0u; j < 8u; j++) { S[s + j] = next[j]; }`,
)}`;
  for (let d = 0; d < 4; d++) {
    const shift = 24 - 8 * d;
    const mask = d === 0 ? 0 : (0xffffffff << (32 - 8 * d)) >>> 0;
    const params = batch.upload(Uint32Array.from([shift, mask, d * count * 1024]), `percentile pass ${d}`);
    batch.dispatch({ label: `percentile_histogram_${count}x${size}`, wgsl: histogram, workgroups: [chunks, count, 1] }, [
      binding(t),
      state,
      histograms,
      params,
    ]);
    batch.dispatch({ label: `percentile_select_${count}`, wgsl: pick, workgroups: grid(count, 64) }, [state, histograms, params]);
  }
  // NumPy's _lerp: a + (b - a)·t, or b - (b - a)·(1 - t) from t = 0.5 on; the weights come from W.
  const finish = `${storage(0, 'S', 'u32', 'read')}
${storage(1, 'R', 'f32', 'read_write')}
${storage(2, 'W', 'f32', 'read')}
${KEYS}
fn lerp(a: f32, b: f32, t: f32) -> f32 {
  let d = b - a;
  return select(a + d * t, b - d * (1.0f - t), t >= 0.5f);
}
${flatMain(
  64,
  `  if (i >= ${count}u) { return; }
  let s = i * 8u;
  R[i * 2u] = lerp(fromKey(S[s]), fromKey(S[s + 2u]), W[0]);
  R[i * 2u + 1u] = lerp(fromKey(S[s + 4u]), fromKey(S[s + 6u]), W[1]);`,
)}`;
  const weights = batch.upload(Float32Array.from([lo.gamma, hi.gamma]), 'percentile weights');
  batch.dispatch({ label: `percentile_finish_${count}`, wgsl: finish, workgroups: grid(count, 64) }, [state, out, weights]);
}

/**
 * The range of each batch index of `t` ([N, ...]: one map per batch index,
 * all its elements) for `normalization`, on the GPU. The caller owns the
 * returned buffer.
 */
export function valueRange(gpu: Gpu, t: TensorLike, normalization: Normalization, options: StageOptions = {}): GpuRange {
  checkNormalization(normalization);
  const { count, size } = maps(gpu, t, 'valueRange');
  return record(gpu, options, (batch) => {
    const out = batch.buffer(count * 8, 'value range');
    if (normalization === 'minmax') minMax(batch, t, count, size, out);
    else if ('percentile' in normalization) percentiles(batch, t, count, size, normalization.percentile, out);
    else
      gpu.device.queue.writeBuffer(
        out,
        0,
        Float32Array.from({ length: count * 2 }, (_, j) => normalization.range[j % 2]!),
      );
    return { buffer: out, count };
  });
}

/**
 * One range covering several: the least low and the greatest high of all
 * their pairs, so maps normalised with it are comparable (the caller owns it).
 */
export function combineRanges(gpu: Gpu, ranges: readonly GpuRange[], options: StageOptions = {}): GpuRange {
  if (ranges.length === 0) throw new InputError('combineRanges: no ranges given');
  const total = ranges.reduce((a, r) => a + r.count, 0);
  return record(gpu, options, (batch) => {
    const all = batch.temporary(total * 8, 'ranges');
    let offset = 0;
    for (const r of ranges) {
      batch.copy(r.buffer, all, r.count * 8, offset);
      offset += r.count * 8;
    }
    const out = batch.buffer(8, 'shared range');
    const code = `${storage(0, 'A', 'f32', 'read')}
${storage(1, 'R', 'f32', 'read_write')}
${flatMain(
  1,
  `  if (i > 0u) { return; }
  var lo = A[0];
  var hi = A[1];
  for (var j = 1u; j < ${total}u; j++) {
    lo = min(lo, A[j * 2u]);
    hi = max(hi, A[j * 2u + 1u]);
  }
  R[0] = lo;
  R[1] = hi;`,
)}`;
    batch.dispatch({ label: 'combine_ranges', wgsl: code, workgroups: [1, 1, 1] }, [all, out]);
    return { buffer: out, count: 1 };
  });
}

/**
 * Normalises `t` to [0, 1]: clamp((v - lo) / (hi - lo), 0, 1) with each
 * batch index's own range (`normalization`), or with `range` (one pair for
 * all, or one per batch index). Returns a new tensor of t's shape.
 */
export function normalize(gpu: Gpu, t: TensorLike, normalization: Normalization | GpuRange, options: StageOptions = {}): GpuTensor {
  const { count, size } = maps(gpu, t, 'normalize');
  if (typeof normalization === 'object' && 'buffer' in normalization && normalization.count !== 1 && normalization.count !== count) {
    throw new InputError(`normalize: a range of ${normalization.count} pairs for a tensor of ${count} maps (give 1 or ${count})`);
  }
  return record(gpu, options, (batch) => {
    const range =
      typeof normalization === 'object' && 'buffer' in normalization
        ? normalization
        : (() => {
            const r = valueRange(gpu, t, normalization, { batch });
            batch.adopt(r.buffer);
            return r;
          })();
    const total = count * size;
    const n = range.count === 1 ? '0u' : `i / ${size}u`;
    const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'f32', 'read_write')}
${storage(2, 'R', 'f32', 'read')}
${flatMain(
  THREADS,
  `  if (i >= ${total}u) { return; }
  let n = ${n};
  let lo = R[n * 2u];
  let hi = R[n * 2u + 1u];
  let v = X[i];
  var y = 0.0f;
  // v >= hi is exactly 1, whatever the division's rounding (the recipe's maximum maps to 255).
  if (hi > lo) { y = select(clamp((v - lo) / (hi - lo), 0.0f, 1.0f), 1.0f, v >= hi); }
  Y[i] = select(0.0f, y, y == y);`,
)}`;
    const out = batch.buffer(total * 4, 'normalized');
    batch.dispatch({ label: `normalize_${count}x${size}_${range.count}`, wgsl: code, workgroups: grid(total, THREADS) }, [
      binding(t),
      out,
      { buffer: range.buffer, bytes: range.count * 8 },
    ]);
    return { buffer: out, dims: [...t.dims] };
  });
}

/**
 * Normalises several tensors with one shared range: each tensor's range per
 * batch index, combined (least low, greatest high), applied to all.
 */
export function normalizeShared(gpu: Gpu, tensors: readonly TensorLike[], normalization: Normalization, options: StageOptions = {}): GpuTensor[] {
  return record(gpu, options, (batch) => {
    const ranges = tensors.map((t) => valueRange(gpu, t, normalization, { batch }));
    const shared = combineRanges(gpu, ranges, { batch });
    for (const r of [...ranges, shared]) batch.adopt(r.buffer);
    return tensors.map((t) => normalize(gpu, t, shared, { batch }));
  });
}

/** Reads ranges back: a few bytes (for a colour bar's labels, or tests). */
export async function readRange(gpu: Gpu, range: GpuRange): Promise<[number, number][]> {
  const [raw] = await new CommandBatch(gpu).readAfterSubmit([{ buffer: range.buffer, bytes: range.count * 8 }]);
  const v = new Float32Array(raw!);
  return Array.from({ length: range.count }, (_, k) => [v[k * 2]!, v[k * 2 + 1]!]);
}
