/**
 * The README's class-activation figure: the default model's Grad-CAM of
 * the ASPP output (classifier.aspp.project) on the street sample, for the
 * classes road and person, beside the input and the ground truth, as
 * `segscope cam` draws them (the same Explainer), side by side in one PNG.
 *
 *   node --import tsx tools/cam-figure.ts [--out docs/cam.png]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDawn } from '../src/gpu/dawn.js';
import { readImage, writePng } from '../src/io/image.js';
import { readLabel } from '../src/io/labels.js';
import { readModelFile } from '../src/io/model-file.js';
import { Explainer } from '../src/workflow/explainer.js';
import { classIndex } from '../src/workflow/prediction.js';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/cam.png' } } });
const root = join(import.meta.dirname, '..');
const explainer = await Explainer.create(await openDawn(), await readModelFile(join(root, 'weights/deeplabv3plus_scenes.onnx')), {
  layers: ['classifier.aspp.project'],
});
const { prediction } = explainer;
const classes = ['road', 'person'].map((name) => classIndex(name, prediction.classes, prediction.names));
const label = await readLabel(join(root, 'weights/samples/labels/street.png'), prediction.classes, prediction.palette);
const e = await explainer.explain(await readImage(join(root, 'weights/samples/street.png')), { classes, methods: ['gradcam'], label });
explainer.destroy();

const pictures = [e.input, e.label!, ...e.cams.map((c) => c.picture)];
const gap = 8;
const { width, height } = e.input;
const total = pictures.length * width + (pictures.length - 1) * gap;
const rgba = new Uint8Array(total * height * 4).fill(255);
for (const [k, p] of pictures.entries()) {
  for (let y = 0; y < height; y++) rgba.set(p.rgba.subarray(y * width * 4, (y + 1) * width * 4), (y * total + k * (width + gap)) * 4);
}
await writePng(join(root, values.out), rgba, total, height);
console.log(
  `wrote ${values.out}: input, ground truth, Grad-CAM of classifier.aspp.project for ${e.cams.map((c) => `${c.className} (${c.pixels} px)`).join(' and ')}`,
);
