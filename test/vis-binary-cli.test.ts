/**
 * `segscope vis` on binary segmentation models (test/fixtures/binary_*.onnx,
 * checked against onnxruntime): the mask and the probability picture
 * against a CPU reference computed from onnxruntime's output, --output
 * choosing the output, --labels with a 0/255 mask scored, the report's
 * probability column, and the Visualizer returning the same in memory.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { loadModel } from '../src/index.js';
import { readImage } from '../src/io/image.js';
import { readModelFile } from '../src/io/model-file.js';
import type { OutputFile } from '../src/io/report.js';
import { Attrs, type Graph, type HostTensor } from '../src/model/graph.js';
import { toInputTensor } from '../src/preprocess/input-tensor.js';
import { palette } from '../src/vis/colormap.js';
import { decodeLabel, Visualizer } from '../src/workflow/index.js';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { gpu, relL2 } from './helpers/gpu.js';
import { runOrt } from './helpers/ort.js';

const SIGMOID = join(ROOT, 'test/fixtures/binary_sigmoid.onnx');
const AUX = join(ROOT, 'test/fixtures/binary_aux.onnx');
const SIZE = 33;
const PLANE = SIZE * SIZE;
const tmp = () => mkdtempSync(join(tmpdir(), 'segscope-vis-binary-'));

interface Summary {
  prediction?: { tensor: string; classes: number; kind: string; values?: string };
  classes?: { name: string; color: number[] }[];
  images: { image: string; files: OutputFile[]; metrics?: { pixelAccuracy: number; meanIoU: number } }[];
  metrics?: { pixelAccuracy: number; meanIoU: number; perClassIoU: (number | null)[] };
  report?: string;
}

/** A smooth 33x33 picture (the model input size, so labels need no resampling). */
async function writeImage(path: string): Promise<void> {
  const rgb = new Uint8Array(PLANE * 3);
  for (let p = 0; p < PLANE; p++) {
    const [y, x] = [Math.floor(p / SIZE), p % SIZE];
    rgb.set([(x * 7) & 255, (y * 7) & 255, ((x - y) * 5 + 128) & 255], 3 * p);
  }
  await sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .png()
    .toFile(path);
}

/** onnxruntime's outputs for an image, fed as segscope feeds it (ImageNet normalisation, no metadata). */
async function ortOutputs(model: string, image: string): Promise<Map<string, HostTensor>> {
  return runOrt(model, { input: toInputTensor(await readImage(image), { size: [SIZE, SIZE] }).tensor }, []);
}

async function rgbaOf(path: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(path).ensureAlpha().raw().toBuffer());
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * The written mask is white exactly where p >= 0.5 (pixels within `margin`
 * of the threshold, where float rounding may differ, are skipped) and the
 * probability picture is floor(255·p) within one grey level. Returns the
 * predicted foreground.
 */
async function expectBinaryPictures(dir: string, files: OutputFile[], p: ArrayLike<number>): Promise<boolean[]> {
  const mask = await rgbaOf(join(dir, files.find((f) => f.kind === 'prediction')!.file));
  const grey = await rgbaOf(join(dir, files.find((f) => f.kind === 'probability')!.file));
  const foreground: boolean[] = [];
  for (let i = 0; i < PLANE; i++) {
    const colour = [...mask.subarray(4 * i, 4 * i + 4)];
    expect([
      [0, 0, 0, 255],
      [255, 255, 255, 255],
    ]).toContainEqual(colour);
    foreground.push(colour[0] === 255);
    if (Math.abs(p[i]! - 0.5) > 1e-5) expect(foreground[i], `pixel ${i}, p ${p[i]}`).toBe(p[i]! >= 0.5);
    const [r, g, b] = grey.subarray(4 * i, 4 * i + 3);
    expect([g, b]).toEqual([r, r]);
    expect(Math.abs(r! - Math.floor(255 * p[i]!)), `pixel ${i}, p ${p[i]}`).toBeLessThanOrEqual(1);
  }
  // The fixtures give both classes on this picture, so the comparison means something.
  expect(new Set(foreground).size).toBe(2);
  return foreground;
}

describe('the binary fixtures', () => {
  it('compute what onnxruntime computes, every output, at two input sizes', async () => {
    for (const file of [SIGMOID, AUX]) {
      const model = await loadModel(file, { gpu: await gpu() });
      for (const [h, w] of [
        [SIZE, SIZE],
        [41, 29],
      ] as const) {
        const session = await model.session({ input: [1, 3, h, w] });
        const x: HostTensor = { type: 'float32', dims: [1, 3, h, w], data: Float32Array.from({ length: 3 * h * w }, (_, i) => Math.sin(i * 0.37) * 2) };
        try {
          const [ours, ort] = [(await session.run(x)).outputs, await runOrt(file, { input: x }, [])];
          expect([...ours.keys()]).toEqual(file === AUX ? ['logit', 'aux'] : ['mask']);
          for (const [name, t] of ours) {
            expect(t.dims, name).toEqual(ort.get(name)!.dims);
            expect(relL2(t.data, ort.get(name)!.data), `${file} ${name} at ${h}x${w}`).toBeLessThan(1e-5);
          }
        } finally {
          session.destroy();
        }
      }
    }
  });
});

/** The sigmoid model over one image with a 0/255 mask, --labels and --report: run once, checked by two tests. */
let sigmoidRun: Promise<{ dir: string; out: string; summary: Summary }> | undefined;
function runSigmoid() {
  sigmoidRun ??= (async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'images'));
    mkdirSync(join(dir, 'labels'));
    await writeImage(join(dir, 'images', 'a.png'));
    // Salient-object style: 255 foreground, 0 background, a soft edge of 128 (foreground) and 127 (background).
    const mask = Uint8Array.from({ length: PLANE }, (_, p) => {
      const d = Math.floor(p / SIZE) + (p % SIZE);
      return d < SIZE ? 255 : d === SIZE ? 128 : d === SIZE + 1 ? 127 : 0;
    });
    await sharp(mask, { raw: { width: SIZE, height: SIZE, channels: 1 } })
      .png()
      .toFile(join(dir, 'labels', 'a.png'));
    const out = join(dir, 'out');
    const { code, stdout, stderr } = await segscope(
      'vis',
      SIGMOID,
      join(dir, 'images'),
      '--labels',
      join(dir, 'labels'),
      '--layer',
      'encoder',
      '--input-size',
      `${SIZE}x${SIZE}`,
      '--out',
      out,
      '--report',
      '--json',
    );
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    return { dir, out, summary: JSON.parse(stdout) as Summary };
  })();
  return sigmoidRun;
}

describe('segscope vis on a binary output', () => {
  it('a Sigmoid output: the mask where p >= 0.5 and p in grey match onnxruntime; a 0/255 mask is scored; the report has the probability column', async () => {
    const { dir, out, summary } = await runSigmoid();
    expect(summary.prediction).toEqual({ tensor: 'mask', classes: 2, kind: 'binary', values: 'probability' });
    expect(summary.classes).toEqual([
      { name: 'background', color: [0, 0, 0] },
      { name: 'foreground', color: [255, 255, 255] },
    ]);
    const [entry] = summary.images;
    expect(entry!.files.map((f) => [f.kind, f.file])).toEqual([
      ['input', 'a_input.png'],
      ['map', 'a_encoder_max.png'],
      ['map', 'a_encoder_mean.png'],
      ['prediction', 'a_prediction.png'],
      ['probability', 'a_probability.png'],
      ['label', 'a_label.png'],
    ]);
    expect(entry!.files.find((f) => f.kind === 'probability')).toMatchObject({ tensor: 'mask', shape: [1, 1, SIZE, SIZE], width: SIZE, height: SIZE });

    const p = (await ortOutputs(SIGMOID, join(dir, 'images', 'a.png'))).get('mask')!.data;
    const predicted = await expectBinaryPictures(out, entry!.files, p);

    // The label: foreground from 128, drawn white; scored as a plain count says.
    const labelPicture = await rgbaOf(join(out, 'a_label.png'));
    const truth = Array.from({ length: PLANE }, (_, i) => Math.floor(i / SIZE) + (i % SIZE) <= SIZE);
    const count = { tp: 0, fp: 0, fn: 0, tn: 0 };
    for (let i = 0; i < PLANE; i++) {
      expect([...labelPicture.subarray(4 * i, 4 * i + 3)]).toEqual(truth[i] ? [255, 255, 255] : [0, 0, 0]);
      count[truth[i] ? (predicted[i] ? 'tp' : 'fn') : predicted[i] ? 'fp' : 'tn']++;
    }
    const foregroundIoU = count.tp / (count.tp + count.fp + count.fn);
    const backgroundIoU = count.tn / (count.tn + count.fp + count.fn);
    expect(entry!.metrics!.pixelAccuracy).toBeCloseTo((count.tp + count.tn) / PLANE, 12);
    expect(entry!.metrics!.meanIoU).toBeCloseTo((foregroundIoU + backgroundIoU) / 2, 12);
    expect(summary.metrics!.perClassIoU[0]).toBeCloseTo(backgroundIoU, 12);
    expect(summary.metrics!.perClassIoU[1]).toBeCloseTo(foregroundIoU, 12);
    expect(foregroundIoU).toBeGreaterThan(0);

    const html = readFileSync(summary.report!, 'utf8');
    expect(html).toContain('<th class="kind" rowspan="3">Probability</th>');
    expect(html).toContain('href="a_probability.png"');
    expect(html).toContain('<dt>Prediction</dt><dd>&#39;mask&#39;, binary: a probability (Sigmoid output), foreground where p &gt;= 0.5</dd>');
  });

  it('a logit output is drawn through sigmoid; --output picks the auxiliary 3-class head instead', async () => {
    const dir = tmp();
    const image = join(dir, 'a.png');
    await writeImage(image);
    const ort = await ortOutputs(AUX, image);

    const out = join(dir, 'logit');
    const logit = await segscope('vis', AUX, image, '--layer', 'encoder', '--reduce', 'max', '--input-size', `${SIZE}x${SIZE}`, '--out', out, '--json');
    expect([errors(logit.stderr), logit.code]).toEqual([[], 0]);
    const summary = JSON.parse(logit.stdout) as Summary;
    expect(summary.prediction).toEqual({ tensor: 'logit', classes: 2, kind: 'binary', values: 'logit' });
    await expectBinaryPictures(out, summary.images[0]!.files, Array.from(ort.get('logit')!.data, sigmoid));

    const auxOut = join(dir, 'aux');
    const aux = await segscope(
      'vis',
      AUX,
      image,
      '--output',
      'aux',
      '--layer',
      'encoder',
      '--reduce',
      'max',
      '--input-size',
      `${SIZE}x${SIZE}`,
      '--out',
      auxOut,
    );
    expect([errors(aux.stderr), aux.code]).toEqual([[], 0]);
    expect(aux.stdout.split('\n')[1]).toBe("prediction from 'aux', argmax of 3 classes");
    expect(existsSync(join(auxOut, 'a_probability.png'))).toBe(false);
    const mask = await rgbaOf(join(auxOut, 'a_prediction.png'));
    const scores = ort.get('aux')!.data;
    const voc = palette('voc', 3);
    let compared = 0;
    for (let i = 0; i < PLANE; i++) {
      const k = [0, 1, 2].map((c) => scores[c * PLANE + i]!);
      const best = k.indexOf(Math.max(...k));
      if (k.some((v, c) => c !== best && Math.max(...k) - v < 1e-5)) continue; // a near tie: float rounding decides
      compared++;
      expect([...mask.subarray(4 * i, 4 * i + 3)], `pixel ${i}`).toEqual([...voc.subarray(3 * best, 3 * best + 3)]);
    }
    expect(compared).toBeGreaterThan(PLANE * 0.99);
  });

  it.each([
    [
      'an unknown --output',
      [AUX, 'IMAGE', '--layer', 'encoder', '--output', 'nope'],
      /^segscope: output 'nope' is not an output of .*binary_aux\.onnx; its outputs are 'logit', 'aux'$/,
    ],
    ['--output with --tensor', ['--tensor', 'x.npy', '--output', 'aux'], /^segscope: --output applies to model runs on images, not to --tensor$/],
  ])('%s: one line, exit 1', async (_, args, message) => {
    const dir = tmp();
    await writeImage(join(dir, 'a.png'));
    const { code, stdout, stderr } = await segscope('vis', ...args.map((a) => (a === 'IMAGE' ? join(dir, 'a.png') : a)), '--out', join(dir, 'out'));
    expect([code, stdout]).toEqual([1, '']);
    expect(errors(stderr)).toEqual([expect.stringMatching(message)]);
  });
});

describe('Visualizer on a binary output', () => {
  it("returns the CLI's mask, probability picture and scores in memory, and says what it draws", async () => {
    const { dir, out, summary } = await runSigmoid();
    const visualizer = await Visualizer.create(await gpu(), await readModelFile(SIGMOID), { layers: [], inputSize: [SIZE, SIZE] });
    try {
      expect(visualizer.prediction).toMatchObject({ tensor: 'mask', kind: 'binary', values: 'probability', classes: 2 });
      const mask = await readImage(join(dir, 'labels', 'a.png'));
      const label = decodeLabel({ width: mask.width, height: mask.height, data: mask.data, channels: 3 }, 2, undefined, { binary: true });
      const result = await visualizer.image(await readImage(join(dir, 'images', 'a.png')), { label });
      expect(result.prediction!.rgba).toEqual(await rgbaOf(join(out, 'a_prediction.png')));
      expect(result.probability!.rgba).toEqual(await rgbaOf(join(out, 'a_probability.png')));
      expect(result.label!.rgba).toEqual(await rgbaOf(join(out, 'a_label.png')));
      expect(result.metrics).toEqual(summary.images[0]!.metrics);
      expect(visualizer.scores()).toEqual(summary.metrics);
    } finally {
      visualizer.destroy();
    }
  });

  it('create() refuses an output that is not there or not drawable: an InputError of one line', async () => {
    const aux = await readModelFile(AUX);
    const unknown = (await Visualizer.create(await gpu(), aux, { layers: [], inputSize: [SIZE, SIZE], output: 'nope' }).catch((e: unknown) => e)) as Error;
    expect(unknown).toBeInstanceOf(InputError);
    expect(unknown.message).toMatch(/^output 'nope' is not an output of .*binary_aux\.onnx; its outputs are 'logit', 'aux'$/);
    // Relu then Flatten: a [1,48] output.
    const node = (opType: string, input: string, output: string) => ({
      name: opType,
      opType,
      domain: '',
      inputs: [input],
      outputs: [output],
      attrs: new Attrs(new Map(), opType),
    });
    const flat: Graph = {
      nodes: [node('Relu', 'input', 'r'), node('Flatten', 'r', 'flat')],
      inputs: [{ name: 'input', type: 'float32', dims: [1, 3, 4, 4] }],
      outputs: [{ name: 'flat', type: 'float32' }],
      initializers: new Map(),
      opset: 17,
      metadata: {},
      source: 'flat.onnx',
    };
    const shape = (await Visualizer.create(await gpu(), flat, { layers: [], output: 'flat' }).catch((e: unknown) => e)) as Error;
    expect(shape).toBeInstanceOf(InputError);
    expect(shape.message).toBe("output 'flat' has shape [1,48]: a prediction is drawn from [N,K,H,W] class logits or a binary [N,1,H,W] output");
  });
});
