/**
 * The whole feature-map pipeline against the recipe reimplemented with
 * NumPy and torch (tools/make_vis_references.py): reduce over channels,
 * F.interpolate to 513x513, min-max, np.uint8(255 * x). The references are
 * the uint8 level maps before the colormap; the picture must be within one
 * level on 99.9% of pixels. The picture is coloured with `jet` (OpenCV's
 * COLORMAP_JET, as the recipe's cv2.applyColorMap), so the check is on the
 * final RGB: each pixel must be jet at the reference level, or one level off.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/device.js';
import { decodeNpy } from '../src/io/npy.js';
import { colormap, featureMap, uploadTensor, type GpuTensor, type Reduction, type ReductionOrder } from '../src/vis/index.js';
import { gpu as sharedGpu, random } from './helpers/gpu.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/vis');

interface Recipe {
  torch: string;
  numpy: string;
  inputs: Record<string, { dims: number[]; seed: number; lo: number; hi: number; relu: boolean; sum: number; first: number[] }>;
  references: { tensor: string; reduce: Reduction; order: ReductionOrder; size: [number, number]; alignCorners: boolean; rowStep: number; min: number; max: number; levels: string }[];
}
const jet = colormap('jet');
const recipe = JSON.parse(readFileSync(join(FIXTURES, 'recipe.json'), 'utf8')) as Recipe;

/** The reference levels: gunzip, .npy, then undo the planar predictor (left + up - up-left, mod 256). */
function referenceLevels(file: string): { rows: number; cols: number; levels: Uint8Array } {
  const residual = decodeNpy(gunzipSync(readFileSync(join(FIXTURES, file))), file);
  const [rows, cols] = residual.dims as [number, number];
  const levels = new Uint8Array(rows * cols);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const left = x > 0 ? levels[y * cols + x - 1]! : 0;
      const up = y > 0 ? levels[(y - 1) * cols + x]! : 0;
      const upLeft = x > 0 && y > 0 ? levels[(y - 1) * cols + x - 1]! : 0;
      levels[y * cols + x] = (residual.data[y * cols + x]! + left + up - upLeft) & 255;
    }
  }
  return { rows, cols, levels };
}

let gpu: Gpu;
const tensors = new Map<string, GpuTensor>();
const inputs = new Map<string, Float32Array>();
beforeAll(async () => {
  gpu = await sharedGpu();
  for (const [name, spec] of Object.entries(recipe.inputs)) {
    const data = random(spec.dims.reduce((a, b) => a * b), spec.seed, spec.lo, spec.hi).map((v) => (spec.relu ? Math.max(v, 0) : v));
    inputs.set(name, data);
    tensors.set(name, uploadTensor(gpu, spec.dims, data));
  }
});
afterAll(() => {
  for (const t of tensors.values()) t.buffer.destroy();
});

describe(`featureMap against the recipe in NumPy ${recipe.numpy} / torch ${recipe.torch}`, () => {
  it('regenerates the reference inputs bit for bit (same seeded generator as the script)', () => {
    for (const [name, spec] of Object.entries(recipe.inputs)) {
      const data = inputs.get(name)!;
      expect([...data.subarray(0, 4)]).toEqual(spec.first);
      let sum = 0;
      for (const v of data) sum += v;
      expect(Math.abs(sum - spec.sum) / spec.sum).toBeLessThan(1e-9);
    }
  });

  for (const ref of recipe.references) {
    const dims = recipe.inputs[ref.tensor]!.dims;
    it(`${ref.reduce}, ${ref.order}: [${dims}] -> ${ref.size.join('x')} is within one level of the recipe on 99.9% of pixels`, async () => {
      const want = referenceLevels(ref.levels);
      const t0 = performance.now();
      const [image] = await featureMap(gpu, tensors.get(ref.tensor)!, {
        reduce: ref.reduce,
        order: ref.order,
        size: ref.size,
        alignCorners: ref.alignCorners,
        normalize: 'minmax',
        colormap: 'jet',
      });
      const ms = performance.now() - t0;
      expect([image!.height, image!.width]).toEqual(ref.size);
      expect(want.cols).toBe(ref.size[1]);
      expect(want.rows).toBe(Math.ceil(ref.size[0] / ref.rowStep));
      expect(image!.range[0]).toBeCloseTo(ref.min, 5);
      expect(image!.range[1]).toBeCloseTo(ref.max, 5);

      let within = 0;
      let exact = 0;
      let opaque = true;
      for (let r = 0; r < want.rows; r++) {
        for (let x = 0; x < want.cols; x++) {
          const p = (r * ref.rowStep * ref.size[1] + x) * 4;
          const level = want.levels[r * want.cols + x]!;
          const is = (l: number) => l >= 0 && l <= 255 && [0, 1, 2].every((k) => image!.rgba[p + k] === jet[l * 3 + k]);
          if (is(level)) exact++;
          if (is(level) || is(level - 1) || is(level + 1)) within++;
          if (image!.rgba[p + 3] !== 255) opaque = false;
        }
      }
      const n = want.rows * want.cols;
      console.log(
        `${ref.tensor} ${ref.reduce} ${ref.order}: ${n} pixels, ${((100 * exact) / n).toFixed(3)}% exact, ${((100 * within) / n).toFixed(3)}% within 1 level; ${ms.toFixed(0)} ms`,
      );
      expect(within / n).toBeGreaterThanOrEqual(0.999);
      expect(opaque).toBe(true);
    });
  }
});
