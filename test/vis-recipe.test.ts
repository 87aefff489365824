/**
 * The whole feature-map pipeline against the recipe reimplemented with
 * NumPy and torch (tools/make_vis_references.py): reduce over channels,
 * F.interpolate to 513x513, min-max, np.uint8(255 * x). The references are
 * the uint8 level maps before the colormap; the picture must be within one
 * level on 99.9% of pixels. The picture is coloured with `jet` (OpenCV's
 * COLORMAP_JET, as the recipe's cv2.applyColorMap), so the check is on the
 * final RGB: each pixel must be jet at the reference level, or one level off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/device.js';
import { featureMap, uploadTensor, type GpuTensor } from '../src/vis/index.js';
import { gpu as sharedGpu } from './helpers/gpu.js';
import { compareWithRecipe, recipe, recipeInput } from './helpers/recipe.js';

let gpu: Gpu;
const tensors = new Map<string, GpuTensor>();
const inputs = new Map<string, Float32Array>();
beforeAll(async () => {
  gpu = await sharedGpu();
  for (const [name, spec] of Object.entries(recipe.inputs)) {
    const data = recipeInput(spec);
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
      expect(image!.range[0]).toBeCloseTo(ref.min, 5);
      expect(image!.range[1]).toBeCloseTo(ref.max, 5);

      const { n, exact, within, opaque } = compareWithRecipe(image!.rgba, ref);
      console.log(
        `${ref.tensor} ${ref.reduce} ${ref.order}: ${n} pixels, ${((100 * exact) / n).toFixed(3)}% exact, ${((100 * within) / n).toFixed(3)}% within 1 level; ${ms.toFixed(0)} ms`,
      );
      expect(within / n).toBeGreaterThanOrEqual(0.999);
      expect(opaque).toBe(true);
    });
  }
});
