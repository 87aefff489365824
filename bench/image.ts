/**
 * How fast the image guards answer (test/image.test.ts checks what they
 * answer): a PNG bomb and a real 20000x20000 PNG refused by their declared
 * size, a JPEG declaring 20000x20000 decoded under a raised limit until its
 * data ends, and the crop of a 4000x2 strip to 64x64, which resamples only
 * the kept window of its 128000-pixel-wide resize. Writes
 * bench/results/image.json.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { readImage, type Image } from '../src/io/image.js';
import { toInputTensor } from '../src/preprocess/input-tensor.js';
import { timeRuns, timeStats } from '../src/runtime/timing.js';
import { blackPng, jpegDeclaring, png } from '../test/helpers/images.js';

const RUNS = 5;
const root = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'segscope-bench-image-'));
const write = (name: string, bytes: Uint8Array) => {
  writeFileSync(join(tmp, name), bytes);
  return join(tmp, name);
};
/** Median ms of `RUNS` calls of `work`, which must fail (a refusal) when `refused`. */
async function median(work: () => Promise<unknown>, refused: boolean): Promise<number> {
  const attempt = () =>
    work().then(
      () => {
        if (refused) throw new Error('expected a refusal');
      },
      (e: unknown) => {
        if (!refused) throw e;
      },
    );
  return timeStats(await timeRuns(attempt, RUNS, 1)).median;
}

try {
  const bomb = write('bomb.png', png(100_000, 100_000, deflateSync(Buffer.alloc(1000))));
  const huge = write('huge.png', blackPng(20_000, 20_000));
  const declared = write('declared.jpg', jpegDeclaring(readFileSync(join(root, 'test/fixtures/images/rgb.jpg')), 20_000, 20_000));
  const strip: Image = { width: 4000, height: 2, channels: 3, data: new Uint8Array(2 * 4000 * 3).fill(128), bitDepth: 8, format: 'png', path: 'strip.png' };
  const results = {
    runs: RUNS,
    png_bomb_100000x100000_refused_ms: await median(() => readImage(bomb), true),
    png_20000x20000_refused_ms: await median(() => readImage(huge), true),
    jpeg_declaring_20000x20000_decoded_until_its_end_ms: await median(() => readImage(declared, { maxPixels: 500_000_000 }), true),
    crop_4000x2_to_64x64_ms: await median(async () => toInputTensor(strip, { size: [64, 64], fit: 'crop' }), false),
  };
  console.log(results);
  writeFileSync(join(root, 'bench/results/image.json'), `${JSON.stringify(results, null, 2)}\n`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
