/**
 * The visualisation stages one by one against plain CPU references written
 * here (seeded random data, odd sizes), and bilinear/nearest resizing against
 * torch.nn.functional.interpolate (fixtures by tools/make_vis_references.py).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuError, InputError } from '../src/errors.js';
import { decodeNpy } from '../src/io/npy.js';
import {
  CommandBatch,
  combineRanges,
  featureMap,
  featureMaps,
  normalize,
  normalizeShared,
  readRange,
  readRGBA,
  readTensor,
  reduceChannels,
  resize,
  toRGBA,
  uploadTensor,
  valueRange,
  type GpuTensor,
} from '../src/vis/index.js';
import { cachedPipelineCount } from '../src/gpu/pipelines.js';
import { CapturedTensor } from '../src/runtime/captured.js';
import { freeAfterAll, gpu as sharedGpu, random, relL2 } from './helpers/gpu.js';
import { reduceValues } from './helpers/reduce.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/vis');

const gpu = await sharedGpu();
const keep = freeAfterAll();

/** Uploads and remembers to free. */
function upload(dims: readonly number[], data: Float32Array): GpuTensor {
  return keep(uploadTensor(gpu, dims, data));
}
const read = async (t: GpuTensor) => readTensor(gpu, keep(t));

// ---------- CPU references ----------

/** Reduction over channels of [N,C,H,W] in float64. */
function cpuReduce(x: Float32Array, [N, C, H, W]: number[], reduction: string): Float64Array {
  const HW = H! * W!;
  const out = new Float64Array(N! * HW);
  for (let n = 0; n < N!; n++) {
    for (let p = 0; p < HW; p++) {
      const v = Array.from({ length: C! }, (_, c) => x[(n * C! + c) * HW + p]!);
      out[n * HW + p] = reduceValues(v, reduction);
    }
  }
  return out;
}

/**
 * F.interpolate as PyTorch documents it, in float64: bilinear source
 * coordinate (dst + 0.5)·in/out - 0.5 clamped at 0 (align_corners False) or
 * dst·(in-1)/(out-1) (True), neighbours i0 and min(i0+1, in-1); nearest
 * floor(dst·in/out).
 */
function cpuResize(x: Float32Array, [N, C, h, w]: number[], [H, W]: number[], mode: string, ac: boolean): Float64Array {
  const taps = (input: number, output: number) =>
    Array.from({ length: output }, (_, o) => {
      if (mode === 'nearest') return { i0: Math.min(Math.floor((o * input) / output), input - 1), i1: 0, l: 0 };
      let src = ac ? (output > 1 ? (o * (input - 1)) / (output - 1) : 0) : Math.max(((o + 0.5) * input) / output - 0.5, 0);
      if (input === output) src = o;
      const i0 = Math.floor(src);
      return { i0, i1: Math.min(i0 + 1, input - 1), l: src - i0 };
    });
  const ty = taps(h!, H!);
  const tx = taps(w!, W!);
  const out = new Float64Array(N! * C! * H! * W!);
  for (let nc = 0; nc < N! * C!; nc++) {
    const at = (y: number, xx: number) => x[nc * h! * w! + y * w! + xx]!;
    for (let oy = 0; oy < H!; oy++) {
      for (let ox = 0; ox < W!; ox++) {
        const a = ty[oy]!;
        const b = tx[ox]!;
        out[(nc * H! + oy) * W! + ox] =
          mode === 'nearest'
            ? at(a.i0, b.i0)
            : (1 - a.l) * ((1 - b.l) * at(a.i0, b.i0) + b.l * at(a.i0, b.i1)) + a.l * ((1 - b.l) * at(a.i1, b.i0) + b.l * at(a.i1, b.i1));
      }
    }
  }
  return out;
}

/** np.percentile(x, p) (linear method) in float64. */
function cpuPercentile(values: ArrayLike<number>, p: number): number {
  const a = Float64Array.from(values).sort();
  const n = a.length;
  const q = p / 100;
  const virtual = n * q + (1 + q * -1) - 1;
  const lo = Math.min(Math.max(Math.floor(virtual), 0), n - 1);
  const hi = Math.min(lo + 1, n - 1);
  return a[lo]! + (a[hi]! - a[lo]!) * (virtual - Math.floor(virtual));
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

// ---------- reduce ----------

describe('reduceChannels', () => {
  const dims = [2, 7, 5, 9];
  const data = random(2 * 7 * 5 * 9, 31, -2, 2);
  for (const reduction of ['max', 'mean', 'sum', 'min', 'std', 'l2', 'absmax', 'channel:0', 'channel:6'] as const) {
    it(`${reduction} over channels of [2,7,5,9] equals the CPU reduction`, async () => {
      const x = upload(dims, data);
      const y = reduceChannels(gpu, x, reduction);
      expect(y.dims).toEqual([2, 1, 5, 9]);
      const got = await read(y);
      expect(relL2(got, cpuReduce(data, dims, reduction))).toBeLessThan(1e-6);
      if (reduction.startsWith('channel') || reduction.endsWith('max') || reduction === 'min') {
        expect(maxAbsDiff(got, cpuReduce(data, dims, reduction))).toBe(0);
      }
    });
  }

  it('channel:K names K and C when K is out of range; unknown reductions list the valid ones', () => {
    const x = upload(dims, data);
    expect(() => reduceChannels(gpu, x, 'channel:7')).toThrow(InputError);
    expect(() => reduceChannels(gpu, x, 'channel:7')).toThrow(/K=7 .*C=7 channels \(0\.\.6\)/);
    expect(() => reduceChannels(gpu, x, 'channel:-1')).toThrow(/non-negative integer/);
    expect(() => reduceChannels(gpu, x, 'median')).toThrow(/unknown reduction 'median'.*max, mean, sum/);
    expect(() => reduceChannels(gpu, { buffer: x.buffer, dims: [7, 5, 9] }, 'max')).toThrow(/\[N,C,H,W\]/);
    expect(() => reduceChannels(gpu, { buffer: x.buffer, dims: [3, 7, 5, 9] }, 'max')).toThrow(/too small/);
  });

  it('reads only the tensor inside a larger buffer (a session slot)', async () => {
    const big = upload([1, 1, 1, 1000], random(1000, 5));
    const y = await read(reduceChannels(gpu, { buffer: big.buffer, dims: [1, 3, 2, 2] }, 'sum'));
    expect(relL2(y, cpuReduce(random(1000, 5).subarray(0, 12), [1, 3, 2, 2], 'sum'))).toBeLessThan(1e-6);
  });
});

// ---------- resize ----------

describe('resize', () => {
  const cases: [number[], [number, number]][] = [
    [
      [1, 3, 5, 7],
      [13, 17],
    ],
    [
      [2, 2, 9, 4],
      [5, 11],
    ], // down in H, up in W
    [
      [1, 1, 6, 6],
      [6, 6],
    ], // same size: a copy
    [
      [1, 2, 1, 5],
      [3, 1],
    ], // degenerate axes
  ];
  for (const [dims, size] of cases) {
    for (const [mode, ac] of [
      ['bilinear', false],
      ['bilinear', true],
      ['nearest', false],
    ] as const) {
      it(`${mode}${mode === 'bilinear' ? ` align_corners=${ac}` : ''} [${dims}] -> ${size.join('x')} equals the CPU reference`, async () => {
        const data = random(
          dims.reduce((a, b) => a * b),
          41,
          -3,
          3,
        );
        const y = resize(gpu, upload(dims, data), { size, mode, alignCorners: ac });
        expect(y.dims).toEqual([dims[0], dims[1], ...size]);
        const d = maxAbsDiff(await read(y), cpuResize(data, dims, size, mode, ac));
        expect(d).toBeLessThan(mode === 'nearest' ? 1e-30 : 3e-6);
      });
    }
  }

  const manifest = JSON.parse(readFileSync(join(FIXTURES, 'interp.json'), 'utf8')) as {
    torch: string;
    cases: { input: string; size: [number, number]; mode: 'bilinear' | 'nearest'; alignCorners: boolean; output: string }[];
  };
  const npy = (file: string) => decodeNpy(readFileSync(join(FIXTURES, file)), file);
  for (const c of manifest.cases) {
    it(`equals torch ${manifest.torch} F.interpolate: ${c.output.replace('.npy', '')}`, async () => {
      const x = npy(c.input);
      const want = npy(c.output);
      const y = resize(gpu, upload(x.dims, Float32Array.from(x.data)), { size: c.size, mode: c.mode, alignCorners: c.alignCorners });
      expect(y.dims).toEqual(want.dims);
      // ATen rounds as fma(x0, w0, x1·w1) on AVX2 CPUs, and so does the kernel where WGSL fma is fused;
      // lavapipe splits fma into a multiply and an add: within an ulp (values in [-1, 1]).
      expect(maxAbsDiff(await read(y), want.data)).toBeLessThanOrEqual(2.5e-7);
    });
  }

  it('refuses bad sizes and align_corners with nearest, as PyTorch does', () => {
    const x = upload([1, 1, 4, 4], random(16, 1));
    expect(() => resize(gpu, x, { size: [0, 3] })).toThrow(/positive integers/);
    expect(() => resize(gpu, x, { size: [3, 3], mode: 'nearest', alignCorners: true })).toThrow(/bilinear only/);
    expect(() => resize(gpu, x, { size: [3, 3], mode: 'bicubic' as 'nearest' })).toThrow(/unknown mode/);
  });
});

// ---------- normalize ----------

describe('normalize', () => {
  const dims = [3, 1, 17, 23];
  const size = 17 * 23;
  const data = random(3 * size, 77, -5, 7);
  const map = (k: number) => data.subarray(k * size, (k + 1) * size);

  it('minmax: (v - min) / (max - min) per batch index, the range computed on the GPU', async () => {
    const x = upload(dims, data);
    const range = keep(valueRange(gpu, x, 'minmax'));
    const ranges = await readRange(gpu, range);
    const y = await read(normalize(gpu, x, 'minmax'));
    for (let k = 0; k < 3; k++) {
      const lo = Math.min(...map(k));
      const hi = Math.max(...map(k));
      expect(ranges[k]).toEqual([lo, hi]);
      const want = Array.from(map(k), (v) => Math.fround(Math.fround(v - lo) / Math.fround(hi - lo)));
      expect(maxAbsDiff(y.subarray(k * size, (k + 1) * size), want)).toBeLessThanOrEqual(2 ** -23);
      expect(Math.min(...y.subarray(k * size, (k + 1) * size))).toBe(0);
      expect(Math.max(...y.subarray(k * size, (k + 1) * size))).toBe(1);
    }
  });

  it('minmax of a constant map is all 0 (no NaN); negative zero and infinities order correctly', async () => {
    const y = await read(normalize(gpu, upload([2, 1, 3, 3], new Float32Array(18).fill(4.5)), 'minmax'));
    expect([...y]).toEqual(new Array(18).fill(0));
    const special = Float32Array.from([-0, 0, -Infinity, 3, Infinity, -2]);
    expect(await readRange(gpu, keep(valueRange(gpu, upload([1, 1, 2, 3], special), 'minmax')))).toEqual([[-Infinity, Infinity]]);
  });

  for (const p of [
    [1, 99],
    [0, 100],
    [2.5, 97.5],
    [50, 50],
  ] as const) {
    it(`percentile [${p}] equals np.percentile (linear) exactly up to the final lerp, per batch index`, async () => {
      const x = upload(dims, data);
      const ranges = await readRange(gpu, keep(valueRange(gpu, x, { percentile: p })));
      for (let k = 0; k < 3; k++) {
        const want = [cpuPercentile(map(k), p[0]), cpuPercentile(map(k), p[1])];
        expect(Math.abs(ranges[k]![0] - want[0]!)).toBeLessThanOrEqual(1e-6 * Math.abs(want[0]!) + 1e-30);
        expect(Math.abs(ranges[k]![1] - want[1]!)).toBeLessThanOrEqual(1e-6 * Math.abs(want[1]!) + 1e-30);
      }
    });
  }

  it('percentiles with many ties, negatives and a large map (4 radix passes, several workgroups)', async () => {
    const n = 300 * 301;
    const v = Float32Array.from(random(n, 5, -100, 100), (x, i) => (i % 3 === 0 ? Math.round(x) : x));
    const ranges = await readRange(gpu, keep(valueRange(gpu, upload([1, 1, 300, 301], v), { percentile: [1, 99] })));
    expect(ranges[0]![0]).toBeCloseTo(cpuPercentile(v, 1), 4);
    expect(ranges[0]![1]).toBeCloseTo(cpuPercentile(v, 99), 4);
  });

  it('percentile clip: values beyond the percentiles clamp to 0 and 1', async () => {
    const x = upload(dims, data);
    const y = await read(normalize(gpu, x, { percentile: [5, 95] }));
    for (let k = 0; k < 3; k++) {
      const lo = cpuPercentile(map(k), 5);
      const hi = cpuPercentile(map(k), 95);
      const want = Array.from(map(k), (v) => Math.min(Math.max((v - lo) / (hi - lo), 0), 1));
      expect(maxAbsDiff(y.subarray(k * size, (k + 1) * size), want)).toBeLessThan(1e-5);
    }
  });

  it('a fixed range, and a range shared by several maps (least low, greatest high)', async () => {
    const x = upload(dims, data);
    const fixed = await read(normalize(gpu, x, { range: [-1, 2] }));
    expect(
      maxAbsDiff(
        fixed,
        Array.from(data, (v) => Math.min(Math.max((v + 1) / 3, 0), 1)),
      ),
    ).toBeLessThan(1e-6);

    const other = random(2 * 5 * 5, 9, 3, 20);
    const z = upload([2, 1, 5, 5], other);
    const [nx, nz] = normalizeShared(gpu, [x, z], 'minmax');
    const lo = Math.min(...data, ...other);
    const hi = Math.max(...data, ...other);
    expect(
      maxAbsDiff(
        await read(nx!),
        Array.from(data, (v) => (v - lo) / (hi - lo)),
      ),
    ).toBeLessThan(1e-6);
    expect(
      maxAbsDiff(
        await read(nz!),
        Array.from(other, (v) => (v - lo) / (hi - lo)),
      ),
    ).toBeLessThan(1e-6);

    const batch = new CommandBatch(gpu);
    const shared = keep(combineRanges(gpu, [keep(valueRange(gpu, x, 'minmax', { batch })), keep(valueRange(gpu, z, 'minmax', { batch }))], { batch }));
    batch.submit();
    expect(await readRange(gpu, shared)).toEqual([[lo, hi]]);
  });

  it('refuses malformed normalisations and mismatched ranges', () => {
    const x = upload(dims, data);
    expect(() => valueRange(gpu, x, { percentile: [99, 1] })).toThrow(/0 <= lo <= hi <= 100/);
    expect(() => valueRange(gpu, x, { range: [2, Number.NaN] })).toThrow(/finite/);
    expect(() => valueRange(gpu, x, 'zscore' as 'minmax')).toThrow(/unknown normalisation/);
    const r = keep(valueRange(gpu, upload([2, 1, 2, 2], random(8, 1)), 'minmax'));
    expect(() => normalize(gpu, x, r)).toThrow(/2 pairs for a tensor of 3 maps/);
  });
});

// ---------- colour ----------

describe('toRGBA', () => {
  it('level = floor(255 v) clamped, pixel = lut[level] (RGB and RGBA tables), read back once', async () => {
    const v = Float32Array.from(random(2 * 7 * 11, 3, -0.2, 1.2));
    v[0] = Number.NaN;
    v[1] = 1;
    v[2] = 0.99999994;
    v[3] = 1 / 255;
    const lut = Uint8Array.from(random(768, 8, 0, 256), Math.floor);
    const images = toRGBA(gpu, upload([2, 1, 7, 11], v), lut);
    keep(images);
    const [a, b] = await readRGBA(gpu, images);
    expect([a!.width, a!.height, a!.rgba.length]).toEqual([11, 7, 7 * 11 * 4]);
    const pixels = [...a!.rgba, ...b!.rgba];
    v.forEach((x, i) => {
      const level = Number.isNaN(x) ? 0 : Math.min(Math.max(Math.floor(Math.fround(255 * x)), 0), 255);
      expect(pixels.slice(i * 4, i * 4 + 4), `pixel ${i} (${x})`).toEqual([lut[level * 3], lut[level * 3 + 1], lut[level * 3 + 2], 255]);
    });
    expect(pixels.slice(4, 8)).toEqual([...lut.subarray(765, 768), 255]);
    expect(pixels.slice(8, 12)).toEqual([...lut.subarray(762, 765), 255]);

    const rgbaLut = Uint8Array.from(random(1024, 9, 0, 256), Math.floor);
    const [c] = await readRGBA(gpu, keep(toRGBA(gpu, upload([1, 1, 1, 2], Float32Array.from([0, 0.5])), rgbaLut)));
    expect([...c!.rgba]).toEqual([...rgbaLut.subarray(0, 4), ...rgbaLut.subarray(127 * 4, 128 * 4)]);
    expect(() => toRGBA(gpu, upload([1, 1, 1, 2], Float32Array.from([0, 0.5])), new Uint8Array(255))).toThrow(/256 RGB/);
  });
});

// ---------- the whole pipeline, small ----------

describe('featureMap', () => {
  it('reduce, resize, normalise and colour each batch index in one submit; the normalised map on request', async () => {
    const dims = [2, 5, 6, 7];
    const data = random(2 * 5 * 6 * 7, 101, -1, 3);
    const x = upload(dims, data);
    const lut = Uint8Array.from({ length: 768 }, (_, i) => (i * 7) % 256);
    const images = await featureMap(gpu, x, { reduce: 'mean', size: [11, 13], lut, keepNormalized: true });
    expect(images).toHaveLength(2);
    const up = cpuResize(Float32Array.from(cpuReduce(data, dims, 'mean')), [2, 1, 6, 7], [11, 13], 'bilinear', false);
    for (let n = 0; n < 2; n++) {
      const m = up.subarray(n * 143, (n + 1) * 143);
      const lo = Math.min(...m);
      const hi = Math.max(...m);
      const img = images[n]!;
      expect([img.width, img.height, img.rgba.length]).toEqual([13, 11, 143 * 4]);
      expect(img.range[0]).toBeCloseTo(lo, 5);
      expect(img.range[1]).toBeCloseTo(hi, 5);
      expect(
        maxAbsDiff(
          img.normalized!,
          Array.from(m, (v) => (v - lo) / (hi - lo)),
        ),
      ).toBeLessThan(1e-5);
      img.normalized!.forEach((v, p) => {
        const level = Math.min(Math.floor(Math.fround(255 * v)), 255);
        expect([...img.rgba.subarray(p * 4, p * 4 + 4)]).toEqual([lut[level * 3], lut[level * 3 + 1], lut[level * 3 + 2], 255]);
      });
    }
  });

  it('a shared range across batch indices and tensors makes the pictures comparable', async () => {
    const a = upload([2, 3, 4, 4], random(96, 1, 0, 1));
    const b = upload([1, 3, 4, 4], random(48, 2, 0, 10));
    const [ia, ib] = await featureMaps(gpu, [a, b], { reduce: 'max', shareRange: true, keepNormalized: true });
    const all = [...cpuReduce(random(96, 1, 0, 1), [2, 3, 4, 4], 'max'), ...cpuReduce(random(48, 2, 0, 10), [1, 3, 4, 4], 'max')];
    const range: [number, number] = [Math.min(...all), Math.max(...all)];
    for (const img of [...ia!, ...ib!]) expect(img.range).toEqual(range.map(Math.fround));
    expect(Math.max(...ia![0]!.normalized!, ...ia![1]!.normalized!)).toBeLessThan(0.2);
    expect(Math.max(...ib![0]!.normalized!)).toBe(1);
  });

  it('caches pipelines per device: a second identical call compiles nothing', async () => {
    const x = upload([1, 4, 5, 5], random(100, 4));
    await featureMap(gpu, x, { size: [9, 9], normalize: { percentile: [1, 99] } });
    const before = cachedPipelineCount(gpu.device);
    await featureMap(gpu, x, { size: [9, 9], normalize: { percentile: [1, 99] } });
    expect(cachedPipelineCount(gpu.device)).toBe(before);
  });

  it('composes by hand in one CommandBatch: stages record, readRGBA submits once', async () => {
    const dims = [1, 6, 5, 8];
    const data = random(6 * 5 * 8, 12, 0, 4);
    const x = upload(dims, data);
    const batch = new CommandBatch(gpu);
    const reduced = keep(reduceChannels(gpu, x, 'l2', { batch }));
    const up = keep(resize(gpu, reduced, { size: [9, 15], alignCorners: true }, { batch }));
    const n01 = keep(normalize(gpu, up, { range: [0, 8] }, { batch }));
    const lut = Uint8Array.from({ length: 768 }, (_, i) => Math.floor(i / 3));
    const [img] = await readRGBA(gpu, keep(toRGBA(gpu, n01, lut, { batch })), batch);
    const want = cpuResize(Float32Array.from(cpuReduce(data, dims, 'l2')), [1, 1, 5, 8], [9, 15], 'bilinear', true);
    const levels = Array.from(want, (v) => Math.min(Math.floor(255 * Math.min(v / 8, 1)), 255));
    const got = Array.from({ length: 135 }, (_, p) => img!.rgba[p * 4]!);
    expect(Math.max(...got.map((g, p) => Math.abs(g - levels[p]!)))).toBeLessThanOrEqual(1);
    expect(() => reduceChannels(gpu, x, 'max', { batch })).toThrow(/already submitted/);
  });

  it('takes a CapturedTensor as it is, on the GPU, and refuses a load-time constant one', async () => {
    // A session's capture is this object (hooks.test.ts runs real ones); built by hand here to keep the test fast.
    const values = random(32 * 5 * 5, 3, 0, 2);
    const slot = upload([1, 1, 1, 32 * 5 * 5 + 100], Float32Array.from([...values, ...new Array(100).fill(1e9)]));
    const aspp = new CapturedTensor('/classifier/aspp/project/project.2/Relu_output_0', 'float32', [1, 32, 5, 5], slot.buffer, gpu, undefined, () => false);
    const [image] = await featureMap(gpu, aspp, { reduce: 'mean', size: [65, 65], colormap: 'gray', keepNormalized: true });
    const up = cpuResize(Float32Array.from(cpuReduce(values, [1, 32, 5, 5], 'mean')), [1, 1, 5, 5], [65, 65], 'bilinear', false);
    const [lo, hi] = [Math.min(...up), Math.max(...up)];
    expect(image!.range[0]).toBeCloseTo(lo, 5);
    expect(image!.range[1]).toBeCloseTo(hi, 5); // the slot's tail beyond the tensor is not read
    expect(
      maxAbsDiff(
        image!.normalized!,
        Array.from(up, (v) => (v - lo) / (hi - lo)),
      ),
    ).toBeLessThan(1e-5);
    expect(image!.rgba.length).toBe(65 * 65 * 4);
    const constant = new CapturedTensor(
      'w',
      'float32',
      [1, 1, 2, 2],
      undefined,
      gpu,
      { type: 'float32', dims: [1, 1, 2, 2], data: new Float32Array(4) },
      () => false,
    );
    await expect(featureMap(gpu, constant)).rejects.toThrow(/no GPU buffer/);
  });

  it('errors are typed and name the option', async () => {
    const x = upload([1, 4, 5, 5], random(100, 4));
    await expect(featureMap(gpu, x, { reduce: 'channel:4' })).rejects.toThrow(InputError);
    await expect(featureMap(gpu, x, { order: 'sideways' as 'reduce-first' })).rejects.toThrow(/unknown order 'sideways'/);
    const tooBig = gpu.limits.maxStorageBufferBindingSize / 4 + 1;
    await expect(featureMap(gpu, { buffer: x.buffer, dims: [1, 1, 1, tooBig] })).rejects.toThrow(/too small|binding limit/);
    await expect(featureMap(gpu, x, { colormap: 'rainbow' as 'jet' })).rejects.toThrow(/unknown colormap 'rainbow'/);
    await expect(featureMap(gpu, x, { colormap: 'jet', lut: new Uint8Array(768) })).rejects.toThrow(/colormap or lut, not both/);
    const ints = { buffer: x.buffer, dims: [1, 4, 5, 5], type: 'int64' };
    await expect(featureMap(gpu, ints)).rejects.toThrow(/float tensors, got int64/);
    const huge = { buffer: x.buffer, dims: [1, 1, 1, Math.floor(gpu.limits.maxStorageBufferBindingSize / 4) + 1] };
    expect(() => reduceChannels(gpu, huge, 'max')).toThrow(InputError); // the buffer check comes first
    // A device whose bindings cannot hold the 100-byte output: refused as a GpuError naming the stage, the bytes and the limit.
    const tiny = { ...gpu, limits: { ...gpu.limits, maxStorageBufferBindingSize: 64 } as GPUSupportedLimits };
    const refused = featureMap(tiny, x, { reduce: 'max' });
    await expect(refused).rejects.toThrow(GpuError);
    await expect(refused).rejects.toThrow(/reduce max: 100 bytes exceed the device's storage binding limit \(maxStorageBufferBindingSize 64\)/);
  });
});
