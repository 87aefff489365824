/**
 * The vis stages that read a whole captured tensor (channel reductions, the
 * segmentation argmax) on tensors larger than one binding: they read runs of
 * channels (reduce.ts channelRuns) and must give the one-pass result bit for
 * bit. The binding limit is lowered on a copy of the device description so
 * that small tensors split the way 150 MiB logits do on a 128 MiB adapter.
 */
import { describe, expect, it } from 'vitest';
import { GpuError } from '../src/errors.js';
import type { Gpu } from '../src/gpu/device.js';
import { featureMap, readClassMap, readTensor, reduceChannels, segmentation, segmentationMask, uploadTensor, type GpuTensor } from '../src/vis/index.js';
import { channelRuns } from '../src/vis/reduce.js';
import { freeAfterAll, gpu as sharedGpu, random } from './helpers/gpu.js';

const gpu = await sharedGpu();
const keep = freeAfterAll();
/** The same device, planning as if bindings stopped at `maxBytes`. */
const limited = (maxBytes: number): Gpu => ({
  ...gpu,
  limits: {
    maxStorageBufferBindingSize: maxBytes,
    minStorageBufferOffsetAlignment: gpu.limits.minStorageBufferOffsetAlignment,
    maxBufferSize: gpu.limits.maxBufferSize,
  } as GPUSupportedLimits,
});

const dims = [2, 7, 5, 9];
// A 5x9 plane is 180 bytes: runs of 1 to 3 channels, most starting unaligned.
const small = limited(600);
const upload = (d: readonly number[], data: Float32Array): GpuTensor => keep(uploadTensor(gpu, d, data));

describe('vis stages on tensors larger than one binding', () => {
  it('split the tensor into several runs per image', () => {
    const runs = channelRuns(small, upload(dims, random(2 * 7 * 45, 1)))!;
    expect(runs.filter((r) => r.image === 0).length).toBeGreaterThan(2);
    expect(runs.every((r) => r.window.bytes <= 600 && r.window.offset! % gpu.limits.minStorageBufferOffsetAlignment === 0)).toBe(true);
    expect(channelRuns(gpu, upload(dims, random(2 * 7 * 45, 1)))).toBeUndefined();
  });

  for (const reduction of ['max', 'mean', 'sum', 'min', 'std', 'l2', 'absmax', 'channel:0', 'channel:4', 'channel:6'] as const) {
    it(`reduceChannels ${reduction} in runs equals the one-pass kernel bit for bit`, async () => {
      const x = upload(dims, random(2 * 7 * 45, 2, -3, 3));
      const whole = await readTensor(gpu, keep(reduceChannels(gpu, x, reduction)));
      const split = await readTensor(gpu, keep(reduceChannels(small, x, reduction)));
      expect(split).toEqual(whole);
    });
  }

  it('the segmentation argmax in runs keeps the first maximum and the first NaN, as the one-pass kernel', async () => {
    const logits = random(2 * 7 * 45, 3, -1, 1);
    // Ties across runs, and NaNs in early and late channels.
    for (let p = 0; p < 45; p += 4) logits[5 * 45 + p] = logits[1 * 45 + p]!;
    logits[3 * 45 + 7] = NaN;
    logits[6 * 45 + 8] = NaN;
    logits[7 * 45 + 2 * 45 + 9] = NaN;
    const x = upload(dims, logits);
    const masks = (g: Gpu) => segmentationMask(g, x, { palette: 'voc' });
    const [whole, split] = [masks(gpu), masks(small)];
    expect(await readClassMap(small, split.classes)).toEqual(await readClassMap(gpu, whole.classes));
    const [a, b] = await Promise.all([segmentation(gpu, x, { palette: 'voc' }), segmentation(small, x, { palette: 'voc' })]);
    expect(b.map((i) => i.rgba)).toEqual(a.map((i) => i.rgba));
    for (const t of [whole, split]) {
      t.classes.buffer.destroy();
      t.images.buffer.destroy();
    }
  });

  it('featureMap reduces first in runs; upsample-first, which cannot split, is refused with the limit', async () => {
    // The stages after the reduction bind a 24x28 map and a 1 KB colour table: a 4 KB limit splits only the input.
    const x = upload([1, 12, 20, 20], random(12 * 400, 4));
    const options = { reduce: 'mean' as const, size: [24, 28] as [number, number] };
    const [whole, split] = [await featureMap(gpu, x, options), await featureMap(limited(4096), x, options)];
    expect(split.map((i) => i.rgba)).toEqual(whole.map((i) => i.rgba));
    const upsampleFirst = featureMap(limited(4096), x, { ...options, order: 'upsample-first' });
    await expect(upsampleFirst).rejects.toThrow(GpuError);
    await expect(upsampleFirst).rejects.toThrow(
      "featureMap (order 'upsample-first' reads the whole tensor at once; 'reduce-first' reads it in runs of channels): [1,12,20,20] (19200 bytes) exceeds the device's storage binding limit (maxStorageBufferBindingSize 4096)",
    );
  });
});
