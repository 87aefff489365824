/**
 * The library workflow (src/workflow): what a Visualizer returns in memory
 * is what `segscope vis` writes, byte for byte, and its scores are the
 * CLI's; create() refuses what cannot be drawn with one-line typed errors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { readImage } from '../src/io/image.js';
import { readLabel } from '../src/io/labels.js';
import { readModelFile } from '../src/io/model-file.js';
import type { OutputFile } from '../src/io/report.js';
import type { RgbaImage } from '../src/vis/rgba.js';
import { toInputTensor } from '../src/preprocess/input-tensor.js';
import { Session } from '../src/runtime/session.js';
import type { HostTensor } from '../src/model/graph.js';
import { palette } from '../src/vis/colormap.js';
import { decodeLabel, Visualizer, type VisProgress, type VisualizerOptions } from '../src/workflow/index.js';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { gpu } from './helpers/gpu.js';

const DEFAULT_MODEL = join(ROOT, 'weights/deeplabv3plus_scenes.onnx');
const SAMPLES = join(ROOT, 'weights/samples');
const IMAGE = join(SAMPLES, 'street.png');
const ASPP = 'classifier.aspp.project';
const FIXTURE = join(ROOT, 'test/fixtures/deeplabv3plus_os16.onnx');

const tmp = mkdtempSync(join(tmpdir(), 'segscope-workflow-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The RGB of an RGBA picture, as readImage decodes its PNG (which drops alpha); the alpha must be opaque. */
function rgbOf(picture: RgbaImage): Uint8Array {
  const n = picture.width * picture.height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    expect(picture.rgba[4 * i + 3]).toBe(255);
    rgb.set(picture.rgba.subarray(4 * i, 4 * i + 3), 3 * i);
  }
  return rgb;
}

/** A written PNG's pixels and size, in the form rgbOf gives. */
async function png(file: string): Promise<{ width: number; height: number; rgb: Uint8Array }> {
  const image = await readImage(file);
  return { width: image.width, height: image.height, rgb: image.data };
}

describe('Visualizer', () => {
  it("draws the map and the prediction `segscope vis` writes, byte for byte, and scores the label as the CLI's JSON", async () => {
    const out = join(tmp, 'cli');
    const { code, stdout, stderr } = await segscope(
      'vis',
      DEFAULT_MODEL,
      IMAGE,
      '--labels',
      join(SAMPLES, 'labels'),
      '--layer',
      ASPP,
      '--reduce',
      'max',
      '--out',
      out,
      '--json',
    );
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const cli = JSON.parse(stdout) as {
      images: { files: OutputFile[]; metrics: unknown }[];
      metrics: unknown;
    };
    const file = (kind: OutputFile['kind']) => cli.images[0]!.files.find((f) => f.kind === kind)!;

    const progress: VisProgress[] = [];
    const visualizer = await Visualizer.create(await gpu(), await readModelFile(DEFAULT_MODEL), {
      layers: [ASPP],
      reductions: ['max'],
      onProgress: (p) => progress.push(p),
    });
    try {
      expect(visualizer.input).toEqual({
        name: 'input',
        size: [257, 257],
        sizeFrom: 'metadata',
        mean: [0.485, 0.456, 0.406],
        meanFrom: 'metadata',
        std: [0.229, 0.224, 0.225],
        stdFrom: 'metadata',
      });
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.at(-1)).toMatchObject({ phase: 'compile', inputSize: [257, 257], done: progress.at(-1)!.total });
      const prediction = visualizer.prediction!;
      expect(prediction.classes).toBe(8);
      const label = await readLabel(join(SAMPLES, 'labels', 'street.png'), prediction.classes, prediction.palette);
      const result = await visualizer.image(await readImage(IMAGE), { label });

      const [layer] = result.layers;
      const [map] = layer!.maps;
      expect(layer!.maps).toHaveLength(1);
      const written = file('map');
      expect({ layer: map!.layer, tensor: map!.tensor, shape: map!.shape, reduce: map!.reduce, range: map!.range }).toEqual({
        layer: written.layer,
        tensor: written.tensor,
        shape: written.shape,
        reduce: written.reduce,
        range: written.range,
      });
      expect({ width: map!.width, height: map!.height, rgb: rgbOf(map!) }).toEqual(await png(join(out, written.file)));
      expect({ width: result.prediction!.width, height: result.prediction!.height, rgb: rgbOf(result.prediction!) }).toEqual(
        await png(join(out, file('prediction').file)),
      );
      expect({ width: result.label!.width, height: result.label!.height, rgb: rgbOf(result.label!) }).toEqual(await png(join(out, file('label').file)));

      expect(result.metrics).toEqual(cli.images[0]!.metrics);
      expect(visualizer.scores()).toEqual(cli.metrics);
    } finally {
      visualizer.destroy();
    }
  });

  it.each<[string, Omit<VisualizerOptions, 'inputSize'>, RegExp]>([
    [
      'a layer pattern that matches nothing',
      { layers: ['classifier.aspp.projec'] },
      /^no tensor matches 'classifier\.aspp\.projec'\. Closest names: 'classifier\.aspp\.project'/,
    ],
    ['a layer that is not [N,C,H,W]', { layers: ['/Shape/'] }, /^layer '\/Shape\/': tensor '[^']+' has shape \[\d+\]; vis draws \[N,C,H,W\] feature maps$/],
    [
      'an unknown reduction',
      { layers: [ASPP], reductions: ['max', 'median'] },
      /^layer 'classifier\.aspp\.project' \('[^']+'\): unknown reduction 'median': use one of max, mean, /,
    ],
    [
      'a channel past the last',
      { layers: [ASPP], reductions: ['channel:32'] },
      /^layer 'classifier\.aspp\.project' \('[^']+'\): reduction 'channel:32': channel K=32 is out of range: the tensor has C=32 channels \(0\.\.31\)$/,
    ],
    [
      'a grid of more channels than there are',
      { layers: [ASPP], grid: 33 },
      /^layer 'classifier\.aspp\.project' \('[^']+'\): grid 33: the tensor has only 32 channels$/,
    ],
  ])('create() refuses %s: an InputError of one line', async (_, options, message) => {
    const error = (await Visualizer.create(await gpu(), await readModelFile(FIXTURE), { ...options, inputSize: [65, 65] }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('\n');
  });

  it('says where the input size and normalisation came from: the options, else the model, else the defaults', async () => {
    const given = await Visualizer.create(await gpu(), await readModelFile(FIXTURE), { layers: [], inputSize: [33, 33], mean: [0.5, 0.5, 0.5] });
    const declared = await Visualizer.create(await gpu(), await readModelFile(join(ROOT, 'test/fixtures/deeplabv3plus_static.onnx')), { layers: [] });
    try {
      expect(given.input).toMatchObject({ size: [33, 33], sizeFrom: 'option', mean: [0.5, 0.5, 0.5], meanFrom: 'option', stdFrom: 'default (ImageNet)' });
      expect(given.mapSize).toEqual([33, 33]);
      expect(declared.input).toMatchObject({ size: [65, 65], sizeFrom: 'model', meanFrom: 'default (ImageNet)', stdFrom: 'default (ImageNet)' });
    } finally {
      given.destroy();
      declared.destroy();
    }
  });
});

describe('Visualizer.run', () => {
  const LOW_LEVEL = 'classifier.project';

  it('captures the layers asked for per run and redraws them with any options, as image() draws them, without running again', async () => {
    const graph = await readModelFile(FIXTURE);
    const pixels = await readImage(IMAGE);
    const explorer = await Visualizer.create(await gpu(), graph, { layers: [], inputSize: [65, 65] });
    const reference = async (options: Omit<VisualizerOptions, 'inputSize'>) => Visualizer.create(await gpu(), graph, { ...options, inputSize: [65, 65] });
    try {
      const run = await explorer.run(pixels, { layers: [ASPP, LOW_LEVEL] });
      expect(run.layers.map((l) => [l.pattern, l.tensors.map((t) => t.shape)])).toEqual([
        [ASPP, [[1, 32, 5, 5]]],
        [LOW_LEVEL, [[1, 48, 17, 17]]],
      ]);
      expect(run.ms).toBeGreaterThan(0);
      for (const options of [
        { reductions: ['max'], colormap: 'jet' as const },
        { reductions: ['mean', 'channel:3'], colormap: 'viridis' as const, normalize: { percentile: [1, 99] as const }, overlay: 0.4, grid: 4 },
      ]) {
        for (const layer of run.layers) {
          const one = await reference({ ...options, layers: [layer.pattern] });
          try {
            const expected = (await one.image(pixels)).layers[0]!;
            expect(await run.draw(layer, options)).toEqual(expected);
          } finally {
            one.destroy();
          }
        }
      }
    } finally {
      explorer.destroy();
    }
  });

  it("reads a captured tensor as the session captures it, and refuses a run's tensors after the next run", async () => {
    const graph = await readModelFile(FIXTURE);
    const pixels = await readImage(IMAGE);
    const visualizer = await Visualizer.create(await gpu(), graph, { layers: [ASPP], inputSize: [65, 65] });
    try {
      const run = await visualizer.run(pixels);
      const name = run.layers[0]!.tensors[0]!.name;
      const { tensor } = toInputTensor(pixels, { size: [65, 65], mean: visualizer.input.mean, std: visualizer.input.std });
      const session = await Session.create(await gpu(), graph, { inputShapes: { input: [1, 3, 65, 65] }, capture: [name] });
      let expected: HostTensor;
      try {
        expected = await (await session.run(tensor)).captured.get(name)!.toHost();
        expect(await run.read(name)).toEqual(expected);
      } finally {
        session.destroy();
      }
      // A draw asked for before the next run is drawn before it, from this run's tensors.
      const drawn = await run.draw(run.layers[0]!, {});
      const pending = run.draw(run.layers[0]!, {});
      const next = visualizer.run(await readImage(join(SAMPLES, 'scene_1.png')));
      expect(await pending).toEqual(drawn);
      expect(await (await next).draw(run.layers[0]!, {})).not.toEqual(drawn);
      const error = (await run.draw(run.layers[0]!, {}).catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(InputError);
      expect(error.message).toMatch(/overwritten by a later run/);
      await expect(run.read(name)).resolves.toEqual(expected);
      await expect(run.read('nothing')).rejects.toThrow(/overwritten by a later run/);
      expect(run.overwritten).toBe(true);
    } finally {
      visualizer.destroy();
    }
  });

  it("scores a labelled run alone: per-class IoU for the image, and the Visualizer's totals only count image()", async () => {
    const visualizer = await Visualizer.create(await gpu(), await readModelFile(DEFAULT_MODEL), { layers: [] });
    try {
      const prediction = visualizer.prediction!;
      const label = await readLabel(join(SAMPLES, 'labels', 'street.png'), prediction.classes, prediction.palette);
      const pixels = await readImage(IMAGE);
      const run = await visualizer.run(pixels, { label });
      expect(run.scores!.perClassIoU).toHaveLength(8);
      expect(visualizer.scores()).toBeUndefined();
      const drawn = await visualizer.image(pixels, { label });
      expect(drawn.metrics).toEqual({ pixelAccuracy: run.scores!.pixelAccuracy, meanIoU: run.scores!.meanIoU });
      expect(visualizer.scores()).toEqual(run.scores);
    } finally {
      visualizer.destroy();
    }
  });
});

describe('decodeLabel', () => {
  const VOC = palette('voc', 21);
  const rgb = Uint8Array.of(...VOC.subarray(0, 3), ...VOC.subarray(15 * 3, 16 * 3), 224, 224, 192, ...VOC.subarray(3, 6));

  it("reads a canvas's RGBA mask as the same mask in RGB", () => {
    const rgba = new Uint8ClampedArray(16).fill(255);
    for (let i = 0; i < 4; i++) rgba.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
    const expected = { width: 2, height: 2, data: Uint8Array.of(0, 15, 255, 1) };
    expect(decodeLabel({ width: 2, height: 2, data: rgb }, 21, VOC)).toEqual(expected);
    expect(decodeLabel({ width: 2, height: 2, data: rgba }, 21, VOC)).toEqual(expected);
  });

  it('names the mask, the pixel and the colour that is in no palette, in one line', () => {
    const bad = Uint8Array.from(rgb);
    bad.set([10, 20, 30], 9);
    expect(() => decodeLabel({ width: 2, height: 2, data: bad, path: 'mask.png' }, 21, VOC)).toThrow(
      /^mask\.png: pixel \(1, 1\) has colour \(10, 20, 30\), which is neither a class index nor a colour of the model's 21-class palette$/,
    );
    expect(() => decodeLabel({ width: 2, height: 2, data: rgb.subarray(1) }, 21, VOC)).toThrow(InputError);
  });
});
