import { basename, extname } from 'node:path';
import { InputError } from '../errors.js';
import type { Precision } from '../model/precision.js';
import { readImage, type Image } from '../io/image.js';
import { readLabel } from '../io/labels.js';
import type { ImageResult, OutputFile, ReportData } from '../io/report.js';
import { loadModel } from '../index.js';
import type { Fit } from '../preprocess/fit.js';
import type { RgbaImage } from '../vis/rgba.js';
import type { DrawOptions } from '../workflow/draw.js';
import { legend, predictionSource } from '../workflow/prediction.js';
import { Visualizer, type VisLayer } from '../workflow/visualizer.js';
import type { Progress } from './progress.js';
import { labelFor, warnUnlabelled, writeLayer, writePicture } from './vis-files.js';

export interface ModelRunOptions extends DrawOptions {
  model: string;
  images: string[];
  layers: string[];
  /** --output NAME: the graph output the prediction is drawn from (default: the first). */
  output?: string;
  /** --labels DIR: ground-truth masks named like the images, <stem>.png. */
  labels?: string;
  /** --overlay ALPHA */
  overlay?: number;
  mapSize?: [number, number];
  inputSize?: [number, number];
  mean?: [number, number, number];
  std?: [number, number, number];
  fit: Fit;
  outDir: string;
  /** Also write each fitted input as <stem>_input.png (the report shows it). */
  writeInputs: boolean;
  /**
   * Keep every image's file list (for --json and --report). Without it only
   * counts are kept, so a run over any number of images holds constant memory.
   */
  keepResults: boolean;
  backend?: string;
  adapter?: string;
  precision: Precision;
}

/** What a vis run produced: the report's data, and which tensors each --layer selected. */
export type VisResult = Omit<ReportData, 'command' | 'seconds'> & {
  layers: VisLayer[];
  /** Images drawn and files written (`images` lists them only when they were kept). */
  counts: { images: number; files: number };
};

/**
 * `vis` on a model: the workflow (workflow/visualizer.ts) with files around
 * it. Images stream through one at a time (only the per-image file list is
 * kept, so memory does not grow with the number of images); each picture is
 * written as a PNG named after its image. Unreadable images are skipped and
 * listed in `failed`.
 */
export async function visModel(o: ModelRunOptions, progress: Progress): Promise<VisResult> {
  progress.phase(`loading ${o.model}`);
  const { gpu, graph } = await loadModel(o.model, { backend: o.backend, adapter: o.adapter });
  // The options are named as the workflow names them.
  const visualizer = await Visualizer.create(gpu, graph, {
    ...o,
    onProgress: (p) => progress.step(`compiling shaders at ${p.inputSize.join('x')}`, p.done, p.total),
  });
  try {
    const { prediction } = visualizer;
    if (o.labels && !prediction) {
      throw new InputError(
        `--labels: the model's first output '${graph.outputs[0]?.name}' is neither [N,K,H,W] class logits nor a binary [N,1,H,W] output, so there is no prediction to score (choose another with --output)`,
      );
    }
    const taken = new Set<string>();
    const images: ImageResult[] = [];
    const counts = { images: 0, files: 0 };
    const failed: string[] = [];
    const unlabelled: string[] = [];
    progress.step('images', 0, o.images.length);
    for (const [i, path] of o.images.entries()) {
      let image: Image;
      try {
        image = await readImage(path);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        failed.push(e.message);
        progress.step('images', i + 1, o.images.length, basename(path));
        continue;
      }
      const stem = basename(path, extname(path));
      const labelPath = o.labels && (await labelFor(o.labels, stem));
      if (o.labels && !labelPath) unlabelled.push(basename(path));
      const label = labelPath ? await readLabel(labelPath, prediction!.classes, prediction!.palette, { binary: prediction!.kind === 'binary' }) : undefined;
      const result = await visualizer.image(image, { label });
      // Written in this order, so that names made unique by a suffix stay what they were.
      const write = (suffix: string, picture: RgbaImage) => writePicture(o.outDir, `${stem}_${suffix}`, picture, taken);
      const files: OutputFile[] = [];
      const { input, prediction: p, probability, label: truth } = result;
      if (o.writeInputs) files.push({ file: await write('input', input), kind: 'input', width: input.width, height: input.height });
      for (const layer of result.layers) files.push(...(await writeLayer(o.outDir, stem, layer, taken)));
      if (p) files.push({ file: await write('prediction', p), kind: 'prediction', tensor: p.tensor, shape: p.shape, width: p.width, height: p.height });
      if (p && probability) {
        const file = await write('probability', probability);
        files.push({ file, kind: 'probability', tensor: p.tensor, shape: p.shape, width: probability.width, height: probability.height });
      }
      if (truth) files.push({ file: await write('label', truth), kind: 'label', width: truth.width, height: truth.height });
      counts.images++;
      counts.files += files.length;
      if (o.keepResults) images.push({ image: path, files, ...(result.metrics ? { metrics: result.metrics } : {}) });
      progress.step('images', i + 1, o.images.length, basename(path));
    }
    progress.end();
    if (o.labels) warnUnlabelled(o.labels, unlabelled);
    const scores = visualizer.scores();
    return {
      model: o.model,
      adapter: gpu.description,
      inputSize: visualizer.input.size,
      input: {
        sizeFrom: visualizer.input.sizeFrom,
        mean: visualizer.input.mean,
        meanFrom: visualizer.input.meanFrom,
        std: visualizer.input.std,
        stdFrom: visualizer.input.stdFrom,
      },
      size: visualizer.mapSize,
      ...(prediction ? { prediction: predictionSource(prediction) } : {}),
      layers: visualizer.layers,
      counts,
      ...(prediction ? legend(prediction) : {}),
      images,
      failed,
      ...(scores ? { metrics: scores } : {}),
    };
  } finally {
    visualizer.destroy();
  }
}
