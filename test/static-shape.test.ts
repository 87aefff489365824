/**
 * A model whose input shape is fixed in the file, as most exports are
 * (test/fixtures/deeplabv3plus_static.onnx): every command runs it at that
 * shape with no size given.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeNpy } from '../src/io/npy.js';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { relL2 } from './helpers/gpu.js';
import { runOrt } from './helpers/ort.js';

const MODEL = join(ROOT, 'test/fixtures/deeplabv3plus_static.onnx');
const INPUT = join(ROOT, 'test/fixtures/input_1x3x65x65.npy');
const IMAGE = join(ROOT, 'test/fixtures/images/rgb.png');

/** Runs a command that must succeed with nothing on stderr but Dawn's warnings; its stdout as JSON. */
async function json<T>(...args: string[]): Promise<T> {
  const { code, stdout, stderr } = await segscope(...args, '--json');
  expect([errors(stderr), code], args.join(' ')).toEqual([[], 0]);
  return JSON.parse(stdout) as T;
}

describe('a model with a static input shape, no size given', () => {
  it('segscope layers lists it at its own shape', async () => {
    const r = await json<{ inputs: { name: string; shape: number[] }[]; outputs: { name: string; shape: number[] }[] }>('layers', MODEL);
    expect(r.inputs.map((i) => [i.name, i.shape])).toEqual([['input', [1, 3, 65, 65]]]);
    expect(r.outputs.map((o) => [o.name, o.shape])).toEqual([['output', [1, 21, 65, 65]]]);
  });

  it('segscope run computes the logits onnxruntime does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'segscope-static-'));
    await json('run', MODEL, '--input', INPUT, '--dump-dir', dir);
    const logits = decodeNpy(readFileSync(join(dir, 'output.npy')), 'output.npy');
    const reference = (await runOrt(MODEL, { input: decodeNpy(readFileSync(INPUT), INPUT) }, ['output'])).get('output')!;
    expect(logits.dims).toEqual([1, 21, 65, 65]);
    expect(relL2(logits.data, reference.data)).toBeLessThanOrEqual(1e-4);
  });

  it('segscope vis draws it at its own input size', async () => {
    const out = mkdtempSync(join(tmpdir(), 'segscope-static-'));
    const r = await json<{ inputSize: number[] }>('vis', MODEL, IMAGE, '--layer', 'classifier.aspp.project', '--out', out);
    expect(r.inputSize).toEqual([65, 65]);
    expect(readdirSync(out).sort()).toEqual(['rgb_classifier.aspp.project_max.png', 'rgb_classifier.aspp.project_mean.png', 'rgb_prediction.png']);
  });

  it('segscope bench times it at its own shape', async () => {
    const r = await json<{ inputs: Record<string, number[]>; median_ms: number }>('bench', MODEL, '--runs', '1', '--warmup', '0');
    expect(r.inputs).toEqual({ input: [1, 3, 65, 65] });
    expect(r.median_ms).toBeGreaterThan(0);
  });
});
