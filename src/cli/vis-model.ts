import { access } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { InputError } from '../errors.js';
import type { HostTensor } from '../model/graph.js';
import { segmentationMetadata } from '../model/metadata.js';
import type { Precision } from '../model/precision.js';
import { ConfusionMatrix } from '../metrics/confusion.js';
import { readImage, writePng } from '../io/image.js';
import { colourLabel, fitLabel, readLabel, resizeLabel } from '../io/labels.js';
import type { ImageResult, OutputFile, ReportData } from '../io/report.js';
import { safeFileName } from '../io/files.js';
import { loadModel } from '../index.js';
import type { Fit } from '../preprocess/fit.js';
import { IMAGENET_MEAN, IMAGENET_STD, toInputTensor } from '../preprocess/input-tensor.js';
import { resampleBilinear } from '../preprocess/resample.js';
import { ignoreColor, palette as namedPalette, paletteClassNames } from '../vis/colormap.js';
import { uploadImage } from '../vis/compose.js';
import { segmentation } from '../vis/segmentation.js';
import type { Progress } from './progress.js';
import { checkReductions, drawLayer, type DrawOptions } from './vis-draw.js';

/** The DeepLab repos' evaluation size, for models whose input size is symbolic and unstated. */
const DEFAULT_INPUT: [number, number] = [513, 513];

export interface ModelRunOptions extends DrawOptions {
  model: string;
  images: string[];
  layers: string[];
  /** --labels DIR: ground-truth masks named like the images, <stem>.png. */
  labels?: string;
  alpha?: number;
  mapSize?: [number, number];
  inputSize?: [number, number];
  mean?: [number, number, number];
  std?: [number, number, number];
  fit: Fit;
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
  layers: { pattern: string; tensors: { name: string; shape: number[] }[] }[];
  /** Images drawn and files written (`images` lists them only when they were kept). */
  counts: { images: number; files: number };
};

/**
 * `vis` on a model: compiles it once at the input size, then streams the
 * images one at a time (only the per-image file list is kept, so memory does
 * not grow with the number of images). Unreadable images are skipped and
 * listed in `failed`.
 */
export async function visModel(o: ModelRunOptions, progress: Progress): Promise<VisResult> {
  progress.phase(`loading ${o.model}`);
  const model = await loadModel(o.model, { backend: o.backend, adapter: o.adapter });
  const { gpu, graph } = model;
  const meta = segmentationMetadata(graph);
  if (graph.inputs.length !== 1) throw new InputError(`${o.model}: vis needs a model with one image input, this one has ${graph.inputs.length}`);
  const input = graph.inputs[0]!;
  const declared = input.dims ?? [];
  const channels = typeof declared[1] === 'number' && declared[1] > 0 ? declared[1] : 3;
  if (channels !== 3) throw new InputError(`${o.model}: input '${input.name}' has ${channels} channels; vis feeds RGB images (3)`);
  const concrete = declared.length === 4 && declared.every((d) => typeof d === 'number' && d > 0);
  const inputSize = o.inputSize ?? (concrete ? [declared[2] as number, declared[3] as number] : (meta.inputSize ?? DEFAULT_INPUT));
  const size = o.mapSize ?? inputSize;
  const mean = o.mean ?? meta.mean ?? IMAGENET_MEAN;
  const std = o.std ?? meta.std ?? IMAGENET_STD;

  const logitsName = graph.outputs[0]?.name;
  // The logits are captured too, so the mask is drawn from the GPU copy instead of uploading them again.
  const capture = logitsName ? [...o.layers, logitsName] : o.layers;
  const session = await model.session({
    precision: o.precision,
    inputShapes: { [input.name]: [1, 3, ...inputSize] },
    capture,
    onCompile: (done, total) => progress.step(`compiling shaders at ${inputSize.join('x')}`, done, total),
  });
  const layers = o.layers.map((pattern) => ({
    pattern,
    tensors: session.resolve([pattern]).map((name) => {
      const shape = [...(session.typeOf(name)?.dims ?? [])];
      if (shape.length !== 4) throw new InputError(`--layer '${pattern}': tensor '${name}' has shape [${shape.join(',')}]; vis draws [N,C,H,W] feature maps`);
      checkReductions(o.reductions, shape[1]!, `--reduce with --layer '${pattern}'`);
      return { name, shape };
    }),
  }));
  const logitsShape = logitsName ? session.typeOf(logitsName)?.dims : undefined;
  const K = logitsShape?.length === 4 && logitsShape[1]! > 1 ? logitsShape[1]! : 0;
  const classPalette = K ? predictionPalette(meta.palette, K, o.model) : undefined;
  const classNames = meta.classes ?? (K === 21 ? [...paletteClassNames('voc')] : undefined);
  if (classNames && K && classNames.length !== K) throw new InputError(`${o.model}: metadata names ${classNames.length} classes, the logits have ${K}`);
  if (o.labels && !K) throw new InputError(`--labels: the model's output '${logitsName}' is not [N,K,H,W] class logits, so there is no prediction to score`);
  const total = K ? new ConfusionMatrix(K) : undefined;

  const taken = new Set<string>();
  const images: ImageResult[] = [];
  const counts = { images: 0, files: 0 };
  const failed: string[] = [];
  const unlabelled: string[] = [];
  progress.step('images', 0, o.images.length);
  for (const [i, path] of o.images.entries()) {
    let image;
    try {
      image = await readImage(path);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      failed.push(e.message);
      progress.step('images', i + 1, o.images.length, basename(path));
      continue;
    }
    const stem = basename(path, extname(path));
    const files: OutputFile[] = [];
    const { tensor, geometry } = toInputTensor(image, { size: inputSize, fit: o.fit, mean, std });
    const { captured } = await session.run(tensor, { capture, outputs: [] });
    const fitted = o.writeInputs || o.alpha !== undefined ? fittedImage(tensor, size, mean, std) : undefined;
    if (o.writeInputs) {
      const file = safeFileName(`${stem}_input`, '.png', taken);
      await writePng(join(o.outDir, file), rgbToRgba(fitted!), size[1], size[0]);
      files.push({ file, kind: 'input', width: size[1], height: size[0] });
    }
    // The fitted image goes to the GPU once per image, under every map that is overlaid on it.
    const base = o.alpha === undefined ? undefined : uploadImage(gpu, fitted!, size[1], size[0]);
    let metrics: ImageResult['metrics'];
    try {
      for (const layer of layers) {
        const tensors = layer.tensors.map((t) => ({ ...t, value: captured.get(t.name)! }));
        files.push(...(await drawLayer(gpu, o, stem, { pattern: layer.pattern, tensors }, size, taken, base && { base, alpha: o.alpha! })));
      }
      if (K) {
        const logits = captured.get(logitsName!)!;
        const [mask] = await segmentation(gpu, logits, { palette: classPalette! });
        const file = safeFileName(`${stem}_prediction`, '.png', taken);
        await writePng(join(o.outDir, file), mask!.rgba, mask!.width, mask!.height);
        files.push({ file, kind: 'prediction', tensor: logitsName, shape: [...logits.dims], width: mask!.width, height: mask!.height });
        const labelPath = o.labels && (await labelFor(o.labels, stem));
        if (labelPath) {
          const label = resizeLabel(fitLabel(await readLabel(labelPath, K, classPalette), geometry), [mask!.height, mask!.width]);
          const scores = new ConfusionMatrix(K).add(label.data, mask!.classes);
          total!.merge(scores);
          metrics = { pixelAccuracy: scores.pixelAccuracy(), meanIoU: scores.meanIoU() };
          const shown = resizeLabel(label, size);
          const labelFile = safeFileName(`${stem}_label`, '.png', taken);
          await writePng(join(o.outDir, labelFile), colourLabel(shown, classPalette!, ignoreColor('voc')), size[1], size[0]);
          files.push({ file: labelFile, kind: 'label', width: size[1], height: size[0] });
        } else if (o.labels) {
          unlabelled.push(basename(path));
        }
      }
    } finally {
      base?.buffer.destroy();
    }
    counts.images++;
    counts.files += files.length;
    if (o.keepResults) images.push({ image: path, files, ...(metrics ? { metrics } : {}) });
    progress.step('images', i + 1, o.images.length, basename(path));
  }
  progress.end();
  // Not an error: a folder of images may be only partly annotated.
  if (unlabelled.length) console.error(`segscope: no mask in ${o.labels} for ${unlabelled.length} image${unlabelled.length === 1 ? '' : 's'}: ${unlabelled.join(', ')}`);
  const scored = total && total.counts.some((c) => c > 0) ? total : undefined;
  return {
    model: o.model,
    adapter: gpu.description,
    inputSize,
    size,
    layers,
    counts,
    ...(classNames && classPalette ? { classes: classNames.map((name, k) => ({ name, color: [...classPalette.subarray(3 * k, 3 * k + 3)] as [number, number, number] })) } : {}),
    images,
    failed,
    ...(scored ? { metrics: { pixelAccuracy: scored.pixelAccuracy(), meanIoU: scored.meanIoU(), perClassIoU: scored.iou() } } : {}),
  };
}

/** The model's own palette when its metadata has one, else PASCAL VOC's (the DeepLab repos' default). */
function predictionPalette(own: Uint8Array | undefined, K: number, model: string): Uint8Array {
  if (own) {
    if (own.length / 3 < K) throw new InputError(`${model}: metadata palette has ${own.length / 3} colours, the logits have ${K} classes`);
    return own;
  }
  if (K > 256) throw new InputError(`${model}: ${K} classes and no palette in the metadata; the VOC palette has 256 colours`);
  return namedPalette('voc', K);
}

/** The mask of image <stem>: <dir>/<stem>.png, or undefined when there is none. */
async function labelFor(dir: string, stem: string): Promise<string | undefined> {
  const path = join(dir, `${stem}.png`);
  try {
    await access(path);
    return path;
  } catch {
    return undefined;
  }
}

/** The model input as an RGB picture (un-normalised; padding is the mean colour), resampled to `size`. */
function fittedImage(tensor: HostTensor, size: [number, number], mean: readonly number[], std: readonly number[]): Uint8Array {
  const [, , H, W] = tensor.dims as [number, number, number, number];
  const plane = H * W;
  const rgb = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < plane; p++) rgb[p * 3 + c] = ((tensor.data[c * plane + p] as number) * std[c]! + mean[c]!) * 255;
  }
  const out = size[0] === H && size[1] === W ? rgb : resampleBilinear(rgb, H, W, 3, size[0], size[1]);
  const bytes = new Uint8Array(out.length);
  for (let k = 0; k < out.length; k++) bytes[k] = Math.min(255, Math.max(0, Math.round(out[k]!)));
  return bytes;
}

function rgbToRgba(rgb: Uint8Array): Uint8Array {
  const rgba = new Uint8Array((rgb.length / 3) * 4).fill(255);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) rgba.set(rgb.subarray(i, i + 3), j);
  return rgba;
}
