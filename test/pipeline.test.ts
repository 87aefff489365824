/** The README's library example, end to end: image -> model -> capture -> feature map -> PNG. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { featureMap, loadModel, readImage, toInputTensor, writePng } from '../src/index.js';
import { gpu } from './helpers/gpu.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');

describe('image to feature-map picture', () => {
  it('runs the README example on a fixture model and image', async () => {
    const model = await loadModel(join(FIXTURES, 'deeplabv3plus_os16.onnx'), { gpu: await gpu() });
    const session = await model.session({ input: [1, 3, 65, 65] });
    const { tensor } = toInputTensor(await readImage(join(FIXTURES, 'images/exif6.jpg')), { size: [65, 65], fit: 'crop' });
    const { captured } = await session.run(tensor, { capture: ['classifier.aspp.project'] });
    const [map] = await featureMap(model.gpu, [...captured.values()][0]!, { reduce: 'max', size: [65, 65], colormap: 'jet' });
    expect(map!.width).toBe(65);
    expect(map!.height).toBe(65);
    expect(map!.rgba.length).toBe(65 * 65 * 4);
    // Min-max normalised: the picture spans the colormap, from jet's dark blue to its dark red.
    const levels = new Set<number>();
    for (let i = 0; i < map!.rgba.length; i += 4) levels.add((map!.rgba[i]! << 16) | (map!.rgba[i + 1]! << 8) | map!.rgba[i + 2]!);
    expect(levels.has(0x000080)).toBe(true);
    expect(levels.has(0x800000)).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'segscope-pipeline-'));
    await writePng(join(dir, 'aspp_max.png'), map!.rgba, map!.width, map!.height);
    const back = await readImage(join(dir, 'aspp_max.png'));
    expect(back.width).toBe(65);
    expect(back.data[0]).toBe(map!.rgba[0]);
    session.destroy();
  });
});
