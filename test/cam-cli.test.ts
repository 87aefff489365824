/**
 * `segscope cam`: the maps and overlays pytorch-grad-cam makes from PyTorch's
 * activations and gradients (test/fixtures/grad), from the ONNX file alone;
 * the report's CAM columns; and its errors, one line each.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readImage } from '../src/io/image.js';
import { decodeNpy } from '../src/io/npy.js';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { relL2 } from './helpers/gpu.js';

const FIXTURES = join(ROOT, 'test/fixtures');
const OS16 = join(FIXTURES, 'deeplabv3plus_os16.onnx');
const INPUT = join(FIXTURES, 'input_1x3x65x65.npy');
const tmp = mkdtempSync(join(tmpdir(), 'segscope-cam-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const npy = (path: string) => decodeNpy(readFileSync(path), path);

describe('segscope cam', () => {
  it("writes pytorch-grad-cam's maps for a ready input: every method's raw map, and the overlays within two levels", async () => {
    const out = join(tmp, 'os16');
    const { code, stdout, stderr } = await segscope(
      'cam',
      OS16,
      '--input',
      INPUT,
      '--layer',
      'classifier.aspp.project',
      '--class',
      '7',
      '--method',
      'all',
      '--out',
      out,
      '--json',
    );
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const files = (JSON.parse(stdout) as { images: { files: { file: string; map?: string; reduce?: string; pixels?: number }[] }[] }).images[0]!.files;
    const methods = {
      gradcam: 'GradCAM',
      'gradcam++': 'GradCAMPlusPlus',
      xgradcam: 'XGradCAM',
      hirescam: 'HiResCAM',
      layercam: 'LayerCAM',
      eigencam: 'EigenCAM',
    };
    expect(files.map((f) => f.reduce)).toEqual(Object.keys(methods).map((m) => `car ${m}`));
    for (const [ours, theirs] of Object.entries(methods)) {
      const f = files.find((x) => x.reduce === `car ${ours}`)!;
      expect(f.file).toBe(`input_1x3x65x65_classifier.aspp.project_car_${ours.replace('++', 'pp')}.png`);
      // The fixture's raw map is before the ReLU; ours after it.
      const raw = npy(join(FIXTURES, `grad/os16_classifier-aspp-project_${theirs}_raw.npy`)).data.map((v) => Math.max(0, v));
      expect(relL2(npy(join(out, f.map!)).data, raw), ours).toBeLessThanOrEqual(1e-5);
      expect(f.pixels).toBe(279);
      const overlay = join(FIXTURES, `grad/os16_classifier-aspp-project_${theirs}_overlay.npy`);
      if (!existsSync(overlay)) continue;
      const expected = npy(overlay).data;
      const written = (await readImage(join(out, f.file))).data;
      expect(written.length).toBe(expected.length);
      // The fixture's image is the float un-normalised input; the CLI's, as for any image, that input in uint8 (half a level apart),
      // which also moves show_cam_on_image's division by the maximum: two levels at most (vis-cam.test.ts checks one on the same image).
      expect(Math.max(...written.map((v, i) => Math.abs(v - expected[i]!))), `${ours} overlay`).toBeLessThanOrEqual(2);
    }
  });

  it('explains images by class name, writes the report with a column per layer, class and method, and the ground truth', async () => {
    const out = join(tmp, 'default');
    const samples = join(ROOT, 'weights/samples');
    const { code, stdout, stderr } = await segscope(
      'cam',
      join(ROOT, 'weights/deeplabv3plus_scenes.onnx'),
      join(samples, 'street.png'),
      '--layer',
      'classifier.aspp.project',
      '--class',
      'road',
      '--class',
      'person',
      '--mask',
      'label',
      '--labels',
      join(samples, 'labels'),
      '--report',
      '--out',
      out,
    );
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    expect(stdout).toContain('wrote 7 files for 1 image');
    const report = readFileSync(join(out, 'report.html'), 'utf8');
    for (const column of ['road gradcam', 'person gradcam', 'Ground truth', 'Prediction']) expect(report).toContain(column);
    for (const file of ['street_classifier.aspp.project_road_gradcam.png', 'street_classifier.aspp.project_person_gradcam.npy', 'street_label.png']) {
      expect(existsSync(join(out, file)), file).toBe(true);
    }
  });

  it.each([
    ['no --class', ['--layer', 'classifier.aspp.project'], /^segscope: cam needs at least one --class NAME\|INDEX/],
    [
      'an unknown class name',
      ['--layer', 'classifier.aspp.project', '--class', 'roda'],
      /^segscope: --class 'roda' is not one of the model's classes: 0 background, /,
    ],
    [
      'an unknown method',
      ['--layer', 'classifier.aspp.project', '--class', '7', '--method', 'scorecam'],
      /^segscope: --method: .*scorecam.*gradcam, gradcam\+\+, xgradcam, hirescam, layercam, eigencam/,
    ],
    ['--mask label without --labels', ['--layer', 'classifier.aspp.project', '--class', '7', '--mask', 'label'], /^segscope: --mask label needs --labels DIR/],
    [
      'a layer that does not reach the output',
      ['--layer', '/Shape/', '--class', '7'],
      /^segscope: tensor '[^']+' (does not reach output 'output'|is a constant)/,
    ],
    [
      'a class predicted nowhere',
      ['--layer', 'classifier.aspp.project', '--class', '0'],
      /^segscope: class 0 is predicted on no pixel of this image: its target is empty/,
    ],
  ])('refuses %s in one line', async (_, args, message) => {
    const { code, stderr } = await segscope('cam', OS16, '--input', INPUT, '--out', join(tmp, 'bad'), ...args);
    expect(code).toBe(1);
    expect(errors(stderr)).toEqual([expect.stringMatching(message)]);
  });
});
