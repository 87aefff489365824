/**
 * The recipe's two orders: reduce then upsample (fast) and upsample then
 * reduce (exact; one fused kernel that never materialises the upsampled
 * [C,H,W] tensor). Mean and sum commute with bilinear upsampling; max does not.
 */
import { describe, expect, it } from 'vitest';
import { featureMap, readTensor, reduceChannels, reduceResized, resize, uploadTensor, type GpuTensor } from '../src/vis/index.js';
import { freeAfterAll, gpu as sharedGpu, random, relL2 } from './helpers/gpu.js';
import { reduceValues } from './helpers/reduce.js';

const gpu = await sharedGpu();
const keep = freeAfterAll();
const upload = (dims: number[], data: Float32Array) => keep(uploadTensor(gpu, dims, data));
const read = (t: GpuTensor) => readTensor(gpu, keep(t));

/** Source taps of one output coordinate as PyTorch documents F.interpolate, in float64. */
function tap(o: number, input: number, output: number, mode: string, ac: boolean): { i0: number; i1: number; l: number } {
  if (mode === 'nearest') return { i0: Math.min(Math.floor((o * input) / output), input - 1), i1: 0, l: 0 };
  if (input === output) return { i0: o, i1: o, l: 0 };
  const src = ac ? (output > 1 ? (o * (input - 1)) / (output - 1) : 0) : Math.max(((o + 0.5) * input) / output - 0.5, 0);
  const i0 = Math.floor(src);
  return { i0, i1: Math.min(i0 + 1, input - 1), l: src - i0 };
}

/** reduce(resize(x)) at output pixel (oy, ox) of batch index n, on the CPU in float64. */
function cpuReduceResizedAt(
  x: Float32Array,
  [, C, h, w]: number[],
  [H, W]: number[],
  mode: string,
  ac: boolean,
  reduction: string,
  n: number,
  oy: number,
  ox: number,
): number {
  const a = tap(oy, h!, H!, mode, ac);
  const b = tap(ox, w!, W!, mode, ac);
  const v = Array.from({ length: C! }, (_, c) => {
    const at = (y: number, xx: number) => x[((n * C! + c) * h! + y) * w! + xx]!;
    if (mode === 'nearest') return at(a.i0, b.i0);
    return (1 - a.l) * ((1 - b.l) * at(a.i0, b.i0) + b.l * at(a.i0, b.i1)) + a.l * ((1 - b.l) * at(a.i1, b.i0) + b.l * at(a.i1, b.i1));
  });
  return reduceValues(v, reduction);
}

/**
 * The range of max over channels of the bilinear (half-pixel) resize of
 * batch 0, over the whole picture, on the CPU in float64: separable, one
 * channel plane at a time, so the 2-million-pixel reference stays cheap.
 */
function cpuMaxResizedRange(x: Float32Array, [, C, h, w]: number[], [H, W]: number[]): [number, number] {
  const rows = Array.from({ length: H! }, (_, oy) => tap(oy, h!, H!, 'linear', false));
  const cols = Array.from({ length: W! }, (_, ox) => tap(ox, w!, W!, 'linear', false));
  const best = new Float64Array(H! * W!).fill(-Infinity);
  const band = new Float64Array(w!);
  for (let c = 0; c < C!; c++) {
    const plane = x.subarray(c * h! * w!, (c + 1) * h! * w!);
    rows.forEach(({ i0, i1, l }, oy) => {
      for (let ix = 0; ix < w!; ix++) band[ix] = (1 - l) * plane[i0 * w! + ix]! + l * plane[i1 * w! + ix]!;
      cols.forEach((b, ox) => {
        const v = (1 - b.l) * band[b.i0]! + b.l * band[b.i1]!;
        if (v > best[oy * W! + ox]!) best[oy * W! + ox] = v;
      });
    });
  }
  let [lo, hi] = [Infinity, -Infinity];
  for (const v of best) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  return [lo, hi];
}

describe('upsample-first: the fused resize + reduce kernel', () => {
  const dims = [2, 5, 7, 9];
  const size: [number, number] = [13, 11];
  const data = random(2 * 5 * 7 * 9, 55, -2, 2);
  for (const reduction of ['max', 'mean', 'sum', 'min', 'std', 'l2', 'absmax', 'channel:3']) {
    for (const [mode, ac] of [
      ['bilinear', false],
      ['bilinear', true],
      ['nearest', false],
    ] as const) {
      it(`${reduction}, ${mode}${mode === 'bilinear' ? ` align_corners=${ac}` : ''}: [2,5,7,9] -> 13x11 equals reduce(interpolate(x)) on the CPU`, async () => {
        const y = reduceResized(gpu, upload(dims, data), reduction, { size, mode, alignCorners: ac });
        expect(y.dims).toEqual([2, 1, 13, 11]);
        const got = await read(y);
        const want = Array.from({ length: 2 * 13 * 11 }, (_, i) =>
          cpuReduceResizedAt(data, dims, size, mode, ac, reduction, Math.floor(i / 143), Math.floor((i % 143) / 11), i % 11),
        );
        expect(relL2(got, want)).toBeLessThan(2e-6);
      });
    }
  }
});

describe('the reduction-order facts', () => {
  for (const ac of [false, true]) {
    for (const reduction of ['mean', 'sum'] as const) {
      it(`${reduction} commutes with bilinear upsampling (align_corners=${ac}): both orders agree within float error`, async () => {
        const dims = [1, 64, 17, 23];
        const x = upload(dims, random(64 * 17 * 23, 8, -1, 3));
        const options = { size: [61, 47] as [number, number], alignCorners: ac };
        const upFirst = await read(reduceResized(gpu, x, reduction, options));
        const reduced = keep(reduceChannels(gpu, x, reduction));
        const reduceFirst = await read(resize(gpu, reduced, options));
        expect(relL2(upFirst, reduceFirst)).toBeLessThan(1e-6);
        const scale = Math.max(...reduceFirst.map(Math.abs));
        const worst = Math.max(...upFirst.map((v, i) => Math.abs(v - reduceFirst[i]!)));
        expect(worst).toBeLessThan(1e-5 * scale);
      });
    }
  }

  it('max does not: two channels whose peaks sit apart give 1 one way and 0.75 the other', async () => {
    // Channel 0 = [1, 0], channel 1 = [0, 1]; widen 2 -> 4 (align_corners=False: sources 0, 0.25, 0.75, 1).
    const x = upload([1, 2, 1, 2], Float32Array.from([1, 0, 0, 1]));
    const options = { size: [1, 4] as [number, number] };
    const reduceFirst = await read(resize(gpu, keep(reduceChannels(gpu, x, 'max')), options));
    const upFirst = await read(reduceResized(gpu, x, 'max', options));
    expect([...reduceFirst]).toEqual([1, 1, 1, 1]);
    expect([...upFirst]).toEqual([1, 0.75, 0.75, 1]);
  });

  it('max does not on random features either: max of interpolations <= interpolation of maxima, strictly almost everywhere', async () => {
    const dims = [1, 32, 11, 13];
    const x = upload(dims, random(32 * 11 * 13, 21, 0, 1));
    const options = { size: [41, 49] as [number, number] };
    const upFirst = await read(reduceResized(gpu, x, 'max', options));
    const reduceFirst = await read(resize(gpu, keep(reduceChannels(gpu, x, 'max')), options));
    const excess = Math.max(...upFirst.map((v, i) => v - reduceFirst[i]!));
    const below = upFirst.filter((v, i) => v < reduceFirst[i]! - 1e-3).length;
    expect(excess).toBeLessThanOrEqual(1e-6);
    expect(below / upFirst.length).toBeGreaterThan(0.5);
    expect(relL2(upFirst, reduceFirst)).toBeGreaterThan(0.01);
  });
});

describe('upsample-first at Cityscapes size', () => {
  it('[1,256,129,257] -> 1024x2048 runs fused within the device limits (a materialised tensor would be 2 GiB)', async () => {
    const dims = [1, 256, 129, 257];
    const data = random(256 * 129 * 257, 1234, -0.5, 1.5).map((v) => Math.max(v, 0));
    const x = upload(dims, data);
    const t0 = performance.now();
    const [image] = await featureMap(gpu, x, { reduce: 'max', order: 'upsample-first', size: [1024, 2048], keepNormalized: true });
    const ms = performance.now() - t0;
    console.log(
      `upsample-first max [1,256,129,257] -> 1024x2048 on ${gpu.description}: ${(ms / 1000).toFixed(2)} s (featureMap: fused kernel, range, normalise, colour, read-back)`,
    );
    expect([image!.width, image!.height, image!.rgba.length]).toEqual([2048, 1024, 2048 * 1024 * 4]);

    // The range over the whole picture, and the map normalised by the CPU's own range on 2000 pixels, corners and edges included.
    const [lo, hi] = cpuMaxResizedRange(data, dims, [1024, 2048]);
    expect(Math.abs(image!.range[0] - lo) / (hi - lo)).toBeLessThan(1e-6);
    expect(Math.abs(image!.range[1] - hi) / (hi - lo)).toBeLessThan(1e-6);
    const pixels = [0, 2047, 1023 * 2048, 1024 * 2048 - 1, ...Array.from(random(1996, 77, 0, 1024 * 2048), Math.floor)];
    const errors = pixels.map((p) => {
      const want = cpuReduceResizedAt(data, dims, [1024, 2048], 'bilinear', false, 'max', 0, Math.floor(p / 2048), p % 2048);
      return Math.abs(image!.normalized![p]! - (want - lo) / (hi - lo));
    });
    expect(Math.max(...errors)).toBeLessThan(1e-5);
  });
});
