/**
 * The explorer's pure parts, in Node: the value under the cursor against the
 * GPU's channel reductions (the map it points at), the pixel-to-element
 * mapping, and the copied command's shell quoting read back by a real shell.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { visCommand } from '../src/explorer/command.js';
import { shellQuote } from '../src/workflow/command-line.js';
import { tensorPoint, valueAt } from '../src/explorer/hover.js';
import { readTensor, reduceChannels, uploadTensor } from '../src/vis/index.js';
import { gpu, random } from './helpers/gpu.js';

describe('the value under the cursor', () => {
  const dims = [2, 37, 5, 6];
  const data = random(2 * 37 * 5 * 6, 7, -3, 3);

  it.each(['max', 'min', 'absmax', 'sum', 'mean', 'std', 'l2', 'channel:11'])('is the GPU reduction %s at that element, in float32', async (reduction) => {
    const g = await gpu();
    const t = uploadTensor(g, dims, data);
    const reduced = reduceChannels(g, t, reduction);
    const map = await readTensor(g, reduced);
    reduced.buffer.destroy();
    t.buffer.destroy();
    for (const [n, y, x] of [
      [0, 0, 0],
      [1, 4, 5],
      [1, 2, 3],
    ] as const) {
      const { value, point } = valueAt({ type: 'float32', dims, data }, reduction, n, y, x);
      const expected = map[(n * 5 + y) * 6 + x]!;
      expect(Math.abs(value - expected), `${reduction} at ${n},${y},${x}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(expected)));
      if (['max', 'min', 'absmax'].includes(reduction)) {
        const v = data[((n * 37 + point.c!) * 5 + y) * 6 + x]!;
        expect(reduction === 'absmax' ? Math.abs(v) : v).toBe(value);
      }
      if (reduction === 'channel:11') expect(point.c).toBe(11);
    }
  });

  it('maps a map pixel to the tensor element whose cell holds its centre', () => {
    // 257 pixels over 17 elements: pixel p covers element floor((p + 0.5) * 17 / 257).
    expect(tensorPoint(0, 0, [257, 257], [1, 8, 17, 17])).toEqual({ y: 0, x: 0 });
    expect(tensorPoint(256, 256, [257, 257], [1, 8, 17, 17])).toEqual({ y: 16, x: 16 });
    expect(tensorPoint(15, 14, [257, 257], [1, 8, 17, 17])).toEqual({ y: 0, x: 1 });
    expect(tensorPoint(3, 7, [8, 4], [1, 1, 2, 2])).toEqual({ y: 1, x: 1 });
  });
});

describe('Copy as command', () => {
  it('quotes every word so that a POSIX shell reads it back unchanged', () => {
    const words = ['plain', "it's", '<script>x</script>', '/a b/c', '$HOME', '`id`', 'a"b', '*', ''];
    const echoed = execFileSync('sh', ['-c', `printf '%s\\0' ${words.map(shellQuote).join(' ')}`], { encoding: 'utf8' });
    expect(echoed.split('\0').slice(0, -1)).toEqual(words);
  });

  it('states every setting that differs from vis defaults, and nothing else', () => {
    const base = { model: 'm.onnx', image: 'a b.png', layer: 'classifier.aspp.project', reduce: 'max', options: {} };
    expect(visCommand(base)).toBe("segscope vis m.onnx 'a b.png' --layer classifier.aspp.project --reduce max --out segscope-vis");
    expect(
      visCommand({
        ...base,
        labels: 'masks',
        inputSize: [129, 129],
        reduce: 'channel:3',
        options: { order: 'upsample-first', colormap: 'viridis', normalize: 'p1-99', overlay: 0.35, grid: 16 },
        out: 'out',
      }),
    ).toBe(
      "segscope vis m.onnx 'a b.png' --layer classifier.aspp.project --reduce channel:3 --order upsample-first --colormap viridis --normalize p1-99 --overlay 0.35 --grid 16 --input-size 129x129 --labels masks --out out",
    );
  });
});
