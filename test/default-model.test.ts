/**
 * The embedded default model (weights/, made by tools/train_default_model.py):
 * it loads with its class names and palette, segscope's own mIoU on the
 * committed held-out scenes matches what the training script measured with
 * onnxruntime, and `segscope demo` writes non-trivial pictures whose
 * prediction agrees with the ground truth.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/index.js';
import { readImage } from '../src/io/image.js';
import { readLabel } from '../src/io/labels.js';
import { ConfusionMatrix } from '../src/metrics/confusion.js';
import { segmentationMetadata } from '../src/model/metadata.js';
import { toInputTensor } from '../src/preprocess/input-tensor.js';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { gpu } from './helpers/gpu.js';

const WEIGHTS = join(ROOT, 'weights');
const MODEL = join(WEIGHTS, 'deeplabv3plus_scenes.onnx');
const HELDOUT = join(WEIGHTS, 'heldout');
interface Card {
  classes: string[];
  palette: number[][];
  input_size: string;
  heldout: { miou: number };
  heldout_files: { miou: number; pixel_accuracy: number; per_class_iou: Record<string, number> };
}
const card = JSON.parse(readFileSync(join(WEIGHTS, 'deeplabv3plus_scenes.json'), 'utf8')) as Card;

describe('the default model', () => {
  it('is a DeepLabv3+ of at most 25 MB whose metadata names its classes and palette', async () => {
    expect(readFileSync(MODEL).byteLength).toBeLessThanOrEqual(25 * 2 ** 20);
    const { graph } = await loadModel(MODEL, { gpu: await gpu() });
    const meta = segmentationMetadata(graph);
    expect(meta.classes).toEqual(card.classes);
    expect(meta.classes!.length).toBeGreaterThanOrEqual(6);
    expect([...meta.palette!]).toEqual(card.palette.flat());
    expect(meta.inputSize).toEqual(card.input_size.split('x').map(Number));
    expect(card.heldout.miou).toBeGreaterThanOrEqual(0.8);
  });

  it("reaches the training script's held-out mIoU, pixel accuracy and per-class IoU to 4 decimals, computed by segscope against the masks", async () => {
    const model = await loadModel(MODEL, { gpu: await gpu() });
    const meta = segmentationMetadata(model.graph);
    const size = meta.inputSize!;
    const K = meta.classes!.length;
    const session = await model.session({ inputShapes: { input: [1, 3, ...size] } });
    const scores = new ConfusionMatrix(K);
    const files = readdirSync(HELDOUT)
      .filter((f) => f.endsWith('.png'))
      .sort();
    expect(files.length).toBe(16);
    for (const file of files) {
      const { tensor } = toInputTensor(await readImage(join(HELDOUT, file)), { size, mean: meta.mean, std: meta.std });
      const { outputs } = await session.run(tensor);
      const logits = [...outputs.values()][0]!;
      // The argmax on the CPU, independent of the GPU stage the CLI uses.
      const plane = size[0] * size[1];
      const predicted = new Uint8Array(plane);
      for (let p = 0; p < plane; p++) {
        let best = 0;
        for (let k = 1; k < K; k++) if (logits.data[k * plane + p]! > logits.data[best * plane + p]!) best = k;
        predicted[p] = best;
      }
      scores.add((await readLabel(join(HELDOUT, 'labels', file), K)).data, predicted);
    }
    session.destroy();
    const iou = scores.iou();
    console.log(
      `default model, ${files.length} held-out scenes: mIoU ${scores.meanIoU().toFixed(4)} (script: ${card.heldout_files.miou}), per class ${card.classes.map((c, k) => `${c} ${iou[k]?.toFixed(3)}`).join(', ')}`,
    );
    // The card holds 4 decimals: segscope's scores equal them to 4 decimals (|difference| < 5e-5).
    expect(scores.meanIoU()).toBeCloseTo(card.heldout_files.miou, 4);
    expect(scores.pixelAccuracy()).toBeCloseTo(card.heldout_files.pixel_accuracy, 4);
    for (const [k, c] of card.classes.entries()) expect(iou[k], c).toBeCloseTo(card.heldout_files.per_class_iou[c]!, 4);
    expect(scores.meanIoU()).toBeGreaterThanOrEqual(0.8);
  });

  it('segscope demo writes the report, maps that are not flat, and a prediction that agrees with the ground truth', async () => {
    const out = join(ROOT, 'node_modules/.cache/segscope-demo-test');
    const { code, stdout, stderr } = await segscope('demo', '--out', out, '--json');
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as {
      report: string;
      images: {
        image: string;
        files: { file: string; kind: string; layer?: string; reduce?: string; range?: [number, number] }[];
        metrics: { meanIoU: number };
      }[];
      metrics: { meanIoU: number; pixelAccuracy: number };
    };
    const samples = readdirSync(join(WEIGHTS, 'samples')).filter((f) => f.endsWith('.png'));
    expect(summary.images.length).toBe(samples.length);
    const page = readFileSync(summary.report, 'utf8');
    expect(page).toContain('classifier.aspp.project');
    // The input it was fed, from the model's metadata_props.
    expect(page).toContain('<dt>Input size</dt><dd>257 × 257 (H × W) (metadata)</dd>');
    expect(page).toContain('<dt>Normalisation</dt><dd>(x/255 - mean)/std, mean [0.485, 0.456, 0.406] (metadata), std [0.229, 0.224, 0.225] (metadata)</dd>');
    for (const image of summary.images) {
      const kinds = image.files.map((f) => `${f.kind}${f.layer ? ` ${f.layer} ${f.reduce}` : ''}`);
      expect(kinds).toEqual([
        'input',
        'map classifier.aspp.project max',
        'map classifier.aspp.project mean',
        'map classifier.project max',
        'map classifier.project mean',
        'prediction',
        'label',
      ]);
      for (const map of image.files.filter((f) => f.kind === 'map')) {
        expect(map.range![1], map.file).toBeGreaterThan(map.range![0]);
        const pixels = await sharp(join(out, map.file)).raw().toBuffer();
        const colours = new Set<number>();
        for (let i = 0; i < pixels.length; i += 3) colours.add((pixels[i]! << 16) | (pixels[i + 1]! << 8) | pixels[i + 2]!);
        expect(colours.size, map.file).toBeGreaterThan(32);
      }
      expect(image.metrics.meanIoU, image.image).toBeGreaterThan(0.6);
    }
    expect(summary.metrics.meanIoU).toBeGreaterThanOrEqual(0.8);
    expect(summary.metrics.pixelAccuracy).toBeGreaterThanOrEqual(0.9);
  });
});
