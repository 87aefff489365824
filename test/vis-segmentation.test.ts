/**
 * The segmentation output against CPU references written here: argmax over
 * the class axis with np.argmax's ties (first maximum) and NaN (first NaN),
 * coloured with the VOC, Cityscapes or a custom palette; bad inputs.
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { CommandBatch, palette, readClassMap, readRGBA, segmentation, segmentationMask, uploadTensor, type GpuTensor } from '../src/vis/index.js';
import { freeAfterAll, gpu as sharedGpu, random } from './helpers/gpu.js';

const gpu = await sharedGpu();
const keep = freeAfterAll();

function upload(dims: readonly number[], data: ArrayLike<number>): GpuTensor {
  return keep(uploadTensor(gpu, dims, data));
}

/** np.argmax(x, axis=1) of [N,K,H,W]: the first maximum; the first NaN if any. */
function cpuArgmax(x: Float32Array, [N, K, H, W]: number[]): Uint32Array {
  const HW = H! * W!;
  const out = new Uint32Array(N! * HW);
  for (let n = 0; n < N!; n++) {
    for (let p = 0; p < HW; p++) {
      let best = -Infinity;
      let arg = -1;
      for (let k = 0; k < K!; k++) {
        const v = x[(n * K! + k) * HW + p]!;
        if (Number.isNaN(v)) {
          arg = k;
          break;
        }
        if (arg < 0 || v > best) {
          best = v;
          arg = k;
        }
      }
      out[n * HW + p] = arg;
    }
  }
  return out;
}

/** Logits with many exact ties: values from {-1, 0, 1, 2}. */
const tiedLogits = (n: number, seed: number) => Float32Array.from(random(n, seed, 0, 4), (v) => Math.floor(v) - 1);

describe('segmentationMask', () => {
  it('argmax over classes with ties to the lowest class, coloured with the VOC palette, in one read-back', async () => {
    const dims = [2, 21, 7, 9];
    const x = tiedLogits(2 * 21 * 63, 11);
    const expected = cpuArgmax(x, dims);
    // The data really has ties at the maximum.
    let tied = 0;
    for (let p = 0; p < 2 * 63; p++) {
      const n = Math.floor(p / 63);
      const values = Array.from({ length: 21 }, (_, k) => x[(n * 21 + k) * 63 + (p % 63)]!);
      if (values.filter((v) => v === Math.max(...values)).length > 1) tied++;
    }
    expect(tied).toBeGreaterThan(100);

    const images = await segmentation(gpu, upload(dims, x), { palette: 'voc' });
    expect(images).toHaveLength(2);
    const voc = palette('voc', 21);
    for (let n = 0; n < 2; n++) {
      const { width, height, rgba, classes } = images[n]!;
      expect([width, height]).toEqual([9, 7]);
      expect(Array.from(classes)).toEqual(Array.from(expected.subarray(n * 63, (n + 1) * 63)));
      for (let p = 0; p < 63; p++) {
        const k = classes[p]!;
        expect(Array.from(rgba.subarray(p * 4, p * 4 + 4))).toEqual([voc[3 * k]!, voc[3 * k + 1]!, voc[3 * k + 2]!, 255]);
      }
    }
    // VOC's devkit colours: background black, aeroplane (128,0,0), person (192,128,128).
    expect(Array.from(voc.subarray(0, 6))).toEqual([0, 0, 0, 128, 0, 0]);
    expect(Array.from(voc.subarray(45, 48))).toEqual([192, 128, 128]);
  });

  it('all classes equal: class 0; a NaN wins where it first appears, as np.argmax', async () => {
    const K = 4;
    // Pixel 0: all equal. Pixel 1: max 5 at classes 1 and 3. Pixel 2: NaN at class 2 after a larger value. Pixel 3: NaN at class 0.
    const perPixel = [
      [3, 3, 3, 3],
      [0, 5, -1, 5],
      [1, 9, NaN, NaN],
      [NaN, 7, 8, 9],
    ];
    const x = new Float32Array(K * 4);
    for (const [p, v] of perPixel.entries()) for (const [k, value] of v.entries()) x[k * 4 + p] = value;
    const [image] = await segmentation(gpu, upload([1, K, 2, 2], x), { palette: 'voc' });
    expect(Array.from(image!.classes)).toEqual([0, 1, 2, 0]);
    expect(Array.from(cpuArgmax(x, [1, K, 2, 2]))).toEqual([0, 1, 2, 0]);
  });

  it('Cityscapes palette for 19 train ids; a custom RGB palette; ignored classes transparent', async () => {
    const dims = [1, 19, 5, 6];
    const x = random(19 * 30, 5);
    const expected = cpuArgmax(x, dims);
    const t = upload(dims, x);
    const [city] = await segmentation(gpu, t, { palette: 'cityscapes', ignore: [0, 13] });
    const cs = palette('cityscapes');
    expect(Array.from(cs.subarray(0, 3))).toEqual([128, 64, 128]); // road
    expect(Array.from(city!.classes)).toEqual(Array.from(expected));
    for (let p = 0; p < 30; p++) {
      const k = expected[p]!;
      const want = k === 0 || k === 13 ? [0, 0, 0, 0] : [cs[3 * k]!, cs[3 * k + 1]!, cs[3 * k + 2]!, 255];
      expect(Array.from(city!.rgba.subarray(p * 4, p * 4 + 4))).toEqual(want);
    }
    // A custom palette may define more classes than the logits have.
    const custom = Uint8Array.from({ length: 20 * 3 }, (_, j) => (j * 7) % 256);
    const [own] = await segmentation(gpu, t, { palette: custom, ignore: 18 });
    for (let p = 0; p < 30; p++) {
      const k = expected[p]!;
      const want = k === 18 ? [0, 0, 0, 0] : [custom[3 * k]!, custom[3 * k + 1]!, custom[3 * k + 2]!, 255];
      expect(Array.from(own!.rgba.subarray(p * 4, p * 4 + 4))).toEqual(want);
    }
  });

  it('records into a CommandBatch: the masks and the u32 class map stay on the GPU until read', async () => {
    const dims = [1, 3, 4, 4];
    const x = tiedLogits(48, 3);
    const batch = new CommandBatch(gpu);
    const seg = segmentationMask(gpu, upload(dims, x), { palette: 'voc' }, { batch });
    expect(seg.classes.dims).toEqual([1, 1, 4, 4]);
    expect(seg.classes.type).toBe('uint32');
    const [image] = await readRGBA(gpu, seg.images, batch);
    const classes = await readClassMap(gpu, seg.classes);
    expect(Array.from(classes)).toEqual(Array.from(cpuArgmax(x, dims)));
    const voc = palette('voc', 3);
    expect(image!.rgba[0]).toBe(voc[3 * classes[0]!]);
    seg.images.buffer.destroy();
    seg.classes.buffer.destroy();
  });

  it('refuses bad palettes, ignore classes and shapes with InputError', () => {
    const t20 = upload([1, 20, 2, 2], random(80, 1));
    const t3 = upload([1, 3, 2, 2], random(12, 2));
    expect(() => segmentationMask(gpu, t20, { palette: 'cityscapes' })).toThrow(/cityscapes.*1 to 19 classes, got 20/);
    expect(() => segmentationMask(gpu, t3, { palette: 'ade' as 'voc' })).toThrow(/unknown palette 'ade'/);
    expect(() => segmentationMask(gpu, t3, { palette: new Uint8Array(8) })).toThrow(/8 bytes for K=3/);
    expect(() => segmentationMask(gpu, t3, { palette: new Uint8Array(6) })).toThrow(InputError);
    expect(() => segmentationMask(gpu, t3, { palette: 'voc', ignore: [1, 3] })).toThrow(/ignore classes 3 .*K=3/);
    expect(() => segmentationMask(gpu, t3, undefined as never)).toThrow(InputError);
    expect(() => segmentationMask(gpu, upload([3, 2, 2], random(12, 3)), { palette: 'voc' })).toThrow(/\[N,C,H,W\]/);
  });
});
