/**
 * Composition (src/vis/compose.ts): overlay and panel on the GPU against CPU
 * references written here, on seeded random pictures of odd sizes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import type { Gpu } from '../src/gpu/device.js';
import { CommandBatch, featureMaps, overlay, panel, readRGBA, toRGBA, uploadImage, uploadTensor, type GpuImages } from '../src/vis/index.js';
import { gpu as sharedGpu, random } from './helpers/gpu.js';

let gpu: Gpu;
const owned: { buffer: GPUBuffer }[] = [];
const own = <T extends { buffer: GPUBuffer }>(x: T): T => {
  owned.push(x);
  return x;
};
beforeAll(async () => {
  gpu = await sharedGpu();
});
afterAll(() => {
  for (const x of owned) x.buffer.destroy();
});

/** Seeded random bytes. */
const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from(random(n, seed, 0, 256), (v) => Math.floor(v));

/** RGB to RGBA with alpha 255. */
function rgbToRgba(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array((rgb.length / 3) * 4);
  for (let i = 0; i < rgb.length / 3; i++) out.set([rgb[3 * i]!, rgb[3 * i + 1]!, rgb[3 * i + 2]!, 255], 4 * i);
  return out;
}

/** Uploads `count` RGBA images of width x height stacked in `rgba` as one GpuImages. */
function uploadStack(rgba: Uint8Array, width: number, height: number, count: number): GpuImages {
  const im = own(uploadImage(gpu, rgba, width, height * count));
  return { ...im, count, height };
}

/**
 * The blend's CPU reference in float64 on the f32 weights the shader uses.
 * Returns the exact level, or both candidates where the value lies within
 * f32 error of a half (the shader computes in f32).
 */
function blendRef(b: number, t: number, alpha: number): number[] {
  const a = Math.fround(alpha);
  const v = Math.fround(1 - a) * b + a * t;
  const frac = v - Math.floor(v);
  if (Math.abs(frac - 0.5) < 1e-3) return [Math.floor(v), Math.ceil(v)];
  return [Math.min(255, Math.max(0, Math.floor(v + 0.5)))];
}

function expectBlend(out: Uint8Array, base: Uint8Array, top: Uint8Array, alpha: number): void {
  expect(out.length).toBe(top.length);
  let bad = 0;
  for (let i = 0; i < out.length; i++) if (!blendRef(base[i % base.length]!, top[i]!, alpha).includes(out[i]!)) bad++;
  expect(bad).toBe(0);
}

describe('uploadImage', () => {
  it('uploads RGBA as is and RGB with alpha 255', async () => {
    const [w, h] = [7, 5];
    const rgba = bytes(w * h * 4, 1);
    const rgb = bytes(w * h * 3, 2);
    const [a] = await readRGBA(gpu, own(uploadImage(gpu, rgba, w, h)));
    const [b] = await readRGBA(gpu, own(uploadImage(gpu, rgb, w, h)));
    expect([a!.width, a!.height]).toEqual([w, h]);
    expect(Array.from(a!.rgba)).toEqual(Array.from(rgba));
    expect(Array.from(b!.rgba)).toEqual(Array.from(rgbToRgba(rgb)));
    // A view into a larger buffer at an odd offset uploads its own bytes only.
    const view = new Uint8Array(w * h * 4 + 3).fill(9).subarray(3);
    view.set(rgba);
    const [c] = await readRGBA(gpu, own(uploadImage(gpu, view, w, h)));
    expect(Array.from(c!.rgba)).toEqual(Array.from(rgba));
  });

  it('refuses a size that does not fit the data', () => {
    expect(() => uploadImage(gpu, new Uint8Array(10), 2, 2)).toThrow(InputError);
    expect(() => uploadImage(gpu, new Uint8Array(10), 2, 2)).toThrow(/2x2 image needs 12 \(RGB\) or 16 \(RGBA\) bytes, got 10/);
    expect(() => uploadImage(gpu, new Uint8Array(0), 0, 0)).toThrow(/positive integers/);
    expect(() => uploadImage(gpu, new Uint8Array(12), 1.5, 2)).toThrow(InputError);
  });
});

describe('overlay', () => {
  const [w, h] = [37, 23];
  const baseRgba = bytes(w * h * 4, 11);
  const topRgba = bytes(w * h * 4, 12);

  it.each([0, 1, 0.5, 0.3, 0.37, 0.6])('equals round((1-a)*base + a*top) per channel at alpha %s', async (alpha) => {
    const out = own(overlay(gpu, own(uploadImage(gpu, baseRgba, w, h)), own(uploadImage(gpu, topRgba, w, h)), alpha));
    expect([out.count, out.height, out.width]).toEqual([1, h, w]);
    const [img] = await readRGBA(gpu, out);
    expectBlend(img!.rgba, baseRgba, topRgba, alpha);
    if (alpha === 0) expect(Array.from(img!.rgba)).toEqual(Array.from(baseRgba));
    if (alpha === 1) expect(Array.from(img!.rgba)).toEqual(Array.from(topRgba));
  });

  it('rounds halves up (alpha 0.5 is exact in f32)', async () => {
    // 0.5*1 + 0.5*2 = 1.5 -> 2; 0.5*254 + 0.5*255 = 254.5 -> 255; 0.5*0 + 0.5*3 = 1.5 -> 2
    const base = Uint8Array.of(1, 254, 0, 10);
    const top = Uint8Array.of(2, 255, 3, 10);
    const [img] = await readRGBA(gpu, own(overlay(gpu, own(uploadImage(gpu, base, 1, 1)), own(uploadImage(gpu, top, 1, 1)), 0.5)));
    expect(Array.from(img!.rgba)).toEqual([2, 255, 2, 10]);
  });

  it('blends one base under each of several top images', async () => {
    const tops = bytes(w * h * 4 * 3, 13);
    const out = own(overlay(gpu, own(uploadImage(gpu, baseRgba, w, h)), uploadStack(tops, w, h, 3), 0.45));
    expect(out.count).toBe(3);
    const images = await readRGBA(gpu, out);
    expect(images).toHaveLength(3);
    expectBlend(new Uint8Array(images.flatMap((im) => Array.from(im.rgba))), baseRgba, tops, 0.45);
  });

  it('overlays a colormapped map on the input image in one batch with the other stages', async () => {
    const map = own(uploadTensor(gpu, [1, 1, h, w], random(w * h, 14, 0, 1)));
    const lut = new Uint8Array(768).map((_, k) => Math.floor(k / 3)); // gray
    const input = bytes(w * h * 3, 15);
    const batch = new CommandBatch(gpu);
    const colour = batch.adopt(toRGBA(gpu, map, lut, { batch }).buffer);
    const blended = overlay(gpu, own(uploadImage(gpu, input, w, h)), { buffer: colour, count: 1, height: h, width: w }, 0.4, { batch });
    batch.adopt(blended.buffer);
    const strip = await panel(gpu, [blended], { gap: 0, batch });
    const levels = Float32Array.from(random(w * h, 14, 0, 1), (v) => Math.min(255, Math.floor(Math.fround(255 * v))));
    const grey = new Uint8Array(w * h * 4).map((_, i) => (i % 4 === 3 ? 255 : levels[i >> 2]!));
    expectBlend(strip.rgba, rgbToRgba(input), grey, 0.4);
  });

  it('refuses an alpha outside [0, 1] and images of different sizes', () => {
    const a = own(uploadImage(gpu, baseRgba, w, h));
    const b = own(uploadImage(gpu, bytes(h * w * 4, 16), h, w));
    for (const alpha of [-0.1, 1.01, Number.NaN, Infinity]) {
      expect(() => overlay(gpu, a, a, alpha)).toThrow(InputError);
      expect(() => overlay(gpu, a, a, alpha)).toThrow(/alpha must be a number in \[0, 1\]/);
    }
    expect(() => overlay(gpu, a, a, '0.5' as unknown as number)).toThrow(InputError);
    expect(() => overlay(gpu, a, b, 0.5)).toThrow(InputError);
    expect(() => overlay(gpu, a, b, 0.5)).toThrow(/base image is 37x23 but the top image is 23x37/);
    // Two bases under three tops: neither one base nor one per top.
    const two = uploadStack(bytes(w * h * 8, 17), w, h, 2);
    const three = uploadStack(bytes(w * h * 12, 18), w, h, 3);
    expect(() => overlay(gpu, two, three, 0.5)).toThrow(/2x 37x23 but the top image is 3x 37x23/);
    expect(() => overlay(gpu, { ...a, count: 2 }, a, 0.5)).toThrow(/too small/);
  });
});

describe('panel', () => {
  /** The CPU reference: tiles left to right, `gap` columns of `bg` between them. */
  function panelRef(tiles: { rgba: Uint8Array; width: number }[], height: number, gap: number, bg: number[]): Uint8Array {
    const width = tiles.reduce((s, t) => s + t.width, 0) + gap * (tiles.length - 1);
    const out = new Uint8Array(width * height * 4);
    for (let p = 0; p < width * height; p++) out.set(bg.length === 4 ? bg : [...bg, 255], p * 4);
    let x0 = 0;
    for (const t of tiles) {
      for (let y = 0; y < height; y++) out.set(t.rgba.subarray(y * t.width * 4, (y + 1) * t.width * 4), (y * width + x0) * 4);
      x0 += t.width + gap;
    }
    return out;
  }

  const h = 9;
  const a = bytes(5 * h * 4, 21);
  const b = bytes(7 * h * 3, 22);
  const c = bytes(3 * h * 4 * 2, 23); // two 3-wide images in one entry

  it.each([
    [0, [0, 0, 0]],
    [2, [10, 20, 30]],
    [3, [1, 2, 3, 4]],
  ])('places the images side by side with gap %s of background %j', async (gap, bg) => {
    const strip = await panel(gpu, [own(uploadImage(gpu, a, 5, h)), own(uploadImage(gpu, b, 7, h)), uploadStack(c, 3, h, 2)], { gap, background: bg });
    const tiles = [
      { rgba: a, width: 5 },
      { rgba: rgbToRgba(b), width: 7 },
      { rgba: c.subarray(0, 3 * h * 4), width: 3 },
      { rgba: c.subarray(3 * h * 4), width: 3 },
    ];
    expect([strip.width, strip.height]).toEqual([5 + 7 + 3 + 3 + 3 * gap, h]);
    expect(Array.from(strip.rgba)).toEqual(Array.from(panelRef(tiles, h, gap, bg)));
  });

  it('defaults to a 4-pixel white gap and takes a single image as is', async () => {
    const strip = await panel(gpu, [own(uploadImage(gpu, a, 5, h)), own(uploadImage(gpu, a, 5, h))]);
    expect(Array.from(strip.rgba)).toEqual(
      Array.from(
        panelRef(
          [
            { rgba: a, width: 5 },
            { rgba: a, width: 5 },
          ],
          h,
          4,
          [255, 255, 255, 255],
        ),
      ),
    );
    const one = await panel(gpu, [own(uploadImage(gpu, a, 5, h))], { gap: 7 });
    expect([one.width, one.height]).toEqual([5, h]);
    expect(Array.from(one.rgba)).toEqual(Array.from(a));
  });

  it('refuses images of different heights and bad options', async () => {
    const im = own(uploadImage(gpu, a, 5, h));
    const short = own(uploadImage(gpu, bytes(5 * 8 * 4, 24), 5, 8));
    await expect(panel(gpu, [im, short])).rejects.toThrow(InputError);
    await expect(panel(gpu, [im, short])).rejects.toThrow(/every image must be 9 pixels high \(as image 0, 5x9\), but image 1 is 5x8/);
    await expect(panel(gpu, [])).rejects.toThrow(/no images/);
    for (const gap of [-1, 1.5, Number.NaN]) await expect(panel(gpu, [im], { gap })).rejects.toThrow(/gap must be a non-negative integer/);
    for (const background of [
      [0, 0],
      [0, 0, 256],
      [0, 0, 0, -1],
      [0.5, 0, 0],
    ]) {
      await expect(panel(gpu, [im], { background })).rejects.toThrow(/background must be/);
    }
  });
});

describe('featureMaps with an overlay', () => {
  it('blends in the same submit exactly as overlay() blends the plain pictures', async () => {
    const dims = [2, 5, 6, 7];
    const t = own(uploadTensor(gpu, dims, random(2 * 5 * 42, 91, -1, 1)));
    const base = own(uploadImage(gpu, bytes(11 * 13 * 4, 92), 13, 11));
    const options = { reduce: 'mean' as const, size: [11, 13] as [number, number] };
    const plain = await featureMaps(gpu, [t], options);
    const blended = await featureMaps(gpu, [t], { ...options, overlay: { base, alpha: 0.4 } });
    expect(blended[0]!.map((im) => im.range)).toEqual(plain[0]!.map((im) => im.range));
    for (const [n, im] of plain[0]!.entries()) {
      const expected = await readRGBA(gpu, own(overlay(gpu, base, own(uploadImage(gpu, im.rgba, 13, 11)), 0.4)));
      expect(blended[0]![n]!.rgba).toEqual(expected[0]!.rgba);
    }
    await expect(featureMaps(gpu, [t], { ...options, overlay: { base, alpha: 2 } })).rejects.toThrow(InputError);
  });
});
