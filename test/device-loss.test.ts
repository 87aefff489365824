/**
 * A GPU lost in the middle of `segscope vis` (a driver reset, a removed
 * GPU): a clear error, exit status 1, and no partial files — every file left
 * is a whole PNG from an image finished before the loss. The loss is made by
 * test/helpers/lose-device.mjs, preloaded into the child, at submits early,
 * halfway and late in the run. (That the library opens a new device and
 * session afterwards is in gpu.test.ts.)
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readImage } from '../src/io/image.js';
import { errors, ROOT, segscopeWithEnv } from './helpers/cli.js';

const MODEL = join(ROOT, 'test/fixtures/deeplabv3plus_os16.onnx');
const IMAGES = ['rgb.png', 'one.jpg', 'rgb.png'].map((f) => join(ROOT, 'test/fixtures/images', f));

async function visLosingAt(submit: number) {
  const out = mkdtempSync(join(tmpdir(), 'segscope-lost-'));
  const env = { NODE_OPTIONS: `--import=${join(ROOT, 'test/helpers/lose-device.mjs')}`, LOSE_DEVICE_AT_SUBMIT: String(submit) };
  const result = await segscopeWithEnv(env, 'vis', MODEL, ...IMAGES, '--layer', 'classifier.aspp.project', '--input-size', '65x65', '--out', out, '--report');
  const submits = Number(/lose-device: (\d+) submits/.exec(result.stderr)?.[1]);
  const lines = errors(result.stderr).filter((l) => !l.startsWith('lose-device:'));
  return { ...result, out, submits, lines };
}

describe('segscope vis when the GPU is lost', () => {
  it('stops with a clear error and leaves only whole files', async () => {
    const full = await visLosingAt(0);
    expect(full.lines).toEqual([]);
    expect(full.code).toBe(0);
    expect(full.submits).toBeGreaterThan(6);

    for (const at of [1, Math.floor(full.submits / 2), full.submits - 1]) {
      const lost = await visLosingAt(at);
      expect(lost.code, `lost at submit ${at}`).toBe(1);
      expect(lost.lines, `lost at submit ${at}`).toEqual(['segscope: GPU device lost (destroyed): device was destroyed']);
      const files = (() => {
        try {
          return readdirSync(lost.out);
        } catch {
          return [];
        }
      })();
      expect(
        files.filter((f) => !f.endsWith('.png')),
        `lost at submit ${at}`,
      ).toEqual([]);
      for (const f of files) {
        const png = await readImage(join(lost.out, f));
        expect([png.width, png.height], f).toEqual([65, 65]);
      }
      if (at === 1) expect(files).toEqual([]);
    }
  });
});
