/**
 * `segscope run --grad`: the gradient of a class target next to each
 * selected tensor in the dump, equal to PyTorch autograd's
 * (test/fixtures/grad); and its option errors, one line each.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeNpy } from '../src/io/npy.js';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { relL2 } from './helpers/gpu.js';

const FIXTURES = join(ROOT, 'test/fixtures');
const ASPP = '/classifier/aspp/project/project.2/Relu_output_0';
const tmp = mkdtempSync(join(tmpdir(), 'segscope-grad-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const npy = (path: string) => decodeNpy(readFileSync(path), path);

describe('segscope run --grad', () => {
  it("dumps the tensor and its gradient (<name>.grad) for the predicted pixels of a class, as PyTorch's", async () => {
    const out = join(tmp, 'os16');
    const { code, stderr } = await segscope(
      'run',
      join(FIXTURES, 'deeplabv3plus_os16.onnx'),
      '--input',
      join(FIXTURES, 'input_1x3x65x65.npy'),
      '--grad',
      'classifier.aspp.project',
      '--class',
      '7',
      '--dump-dir',
      out,
    );
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as Record<string, string>;
    expect(Object.keys(index).sort()).toEqual(['output', ASPP, `${ASPP}.grad`].sort());
    const expected = (file: string) => npy(join(FIXTURES, 'grad', file)).data;
    expect(relL2(npy(join(out, index[ASPP]!)).data, expected('os16_classifier-aspp-project_A.npy'))).toBeLessThanOrEqual(1e-4);
    expect(relL2(npy(join(out, index[`${ASPP}.grad`]!)).data, expected('os16_classifier-aspp-project_G_pred.npy'))).toBeLessThanOrEqual(1e-4);
  });

  it.each([
    ['--grad without --class', ['--grad', 'classifier.aspp.project'], /^segscope: --grad needs --class K\|NAME: the class whose score is differentiated$/],
    ['--class without --grad', ['--class', '3'], /^segscope: --class is the target of --grad: give --grad PATTERN too$/],
    [
      'a class past the last',
      ['--grad', 'classifier.aspp.project', '--class', '21'],
      /^segscope: --class 21: the output has classes 0\.\.20 \(background, aeroplane, /,
    ],
    [
      'an unknown class name',
      ['--grad', 'classifier.aspp.project', '--class', 'roda'],
      /^segscope: --class 'roda' is not one of the model's classes: 0 background, 1 aeroplane, /,
    ],
    ['a bad --mask', ['--grad', 'classifier.aspp.project', '--class', '7', '--mask', 'label'], /^segscope: --mask 'label': expected pred or all$/],
    [
      'a layer that does not reach the output',
      ['--grad', '/Shape/', '--class', '7'],
      /^segscope: tensor '[^']+' does not reach output 'output'|^segscope: tensor '[^']+' is a constant/,
    ],
    [
      'a class predicted nowhere',
      ['--grad', 'classifier.aspp.project', '--class', '0'],
      /^segscope: class 0 is predicted on no pixel of this image: its target is empty/,
    ],
  ])('refuses %s in one line', async (_, args, message) => {
    const { code, stderr } = await segscope(
      'run',
      join(FIXTURES, 'deeplabv3plus_os16.onnx'),
      '--input',
      join(FIXTURES, 'input_1x3x65x65.npy'),
      '--dump-dir',
      join(tmp, 'bad'),
      ...args,
    );
    expect(code).toBe(1);
    expect(errors(stderr)).toEqual([expect.stringMatching(message)]);
  });
});
