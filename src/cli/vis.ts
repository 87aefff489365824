import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { safeFileName } from '../io/files.js';
import { readImage, resampleBilinear, toInputTensor, writePng, type Fit } from '../io/image.js';
import type { HostTensor } from '../model/graph.js';
import { loadModel } from '../index.js';
import { globToRegExp } from '../runtime/select.js';
import { COLORMAP_NAMES, isColormapName, type ColormapName } from '../vis/colormap.js';
import { overlay, uploadImage } from '../vis/compose.js';
import { featureMaps } from '../vis/feature-map.js';
import { channelGrid } from '../vis/grid.js';
import type { Normalization } from '../vis/normalize.js';
import { parseReduction, type Reduction } from '../vis/reduce.js';
import { readRGBA, type GpuImages } from '../vis/rgba.js';
import { segmentation } from '../vis/segmentation.js';

export const visHelp = `Usage: segscope vis MODEL INPUTS... --layer PATTERN [--layer …] [options]

Runs an ONNX segmentation model on images and writes each selected layer's
feature map as a coloured PNG: one per image, layer and reduction, named
<image>_<layer>_<reduce>.png (made safe for every filesystem), the coloured
map alone at exactly the target size (or blended over the fitted input with
--overlay). When the model's first output is [N,K,H,W] logits it also writes
the prediction, <image>_prediction.png (VOC palette). The model is compiled
once; images go through one at a time.

INPUTS are image files, folders (their .jpg, .jpeg, .png and .webp files,
sorted) or globs ('*' and '?' in the last path component; quote them).

Options:
  --layer PATTERN          a tensor to draw; repeatable. PATTERN is, in this
                           order: a tensor name, a node name, a PyTorch module
                           path ('classifier.aspp.project'), a glob, or a
                           regular expression written /…/. A pattern that
                           selects several tensors writes one file per tensor.
  --reduce LIST            channel reductions, comma-separated (default
                           max,mean): max, mean, sum, min, std, l2, absmax,
                           channel:K
  --order ORDER            reduce-first (default, fast) or upsample-first
                           (the recipe's exact order)
  --colormap NAME          ${COLORMAP_NAMES.join(', ')} (default jet)
  --normalize MODE         minmax (default), p1-99 (1st..99th percentile), or
                           shared: min-max with one range, per image and
                           reduction, across all the tensors one --layer
                           pattern selects (so a glob's maps are comparable)
  --overlay ALPHA          blend the map over the fitted input image with
                           opacity ALPHA in [0, 1]
  --size HxW|input         map size (default input: the model input size)
  --grid K                 also write <image>_<layer>_grid.png, a montage of
                           the K channels with the largest mean
  --mean R,G,B             input normalisation mean, 0..1 scale (default
                           ImageNet's 0.485,0.456,0.406)
  --std R,G,B              input normalisation std (default 0.229,0.224,0.225)
  --fit MODE               resize (default), pad or crop: how an image is fitted
                           to the model input
  --input-size HxW         model input size (default: the model's declared
                           size, 513x513 when symbolic)
  --out DIR                where pictures go (default out/)
  --backend NAME           Dawn backend: vulkan, opengles, … (env SEGSCOPE_BACKEND)
  --adapter NAME           adapter name, as Dawn lists them (env SEGSCOPE_ADAPTER)
  --quiet                  no progress on stderr (also off when stderr is not a terminal)
  --json                   print a machine-readable summary of the files written
  -h, --help               this help

Examples:
  segscope vis model.onnx photo.jpg --layer classifier.aspp.project
  segscope vis model.onnx photos/ --layer classifier.aspp.project --layer classifier.project --reduce max,mean --out out/
  segscope vis model.onnx 'photos/*.jpg' --layer '/layer4.*Relu/' --normalize shared --colormap viridis
  segscope vis model.onnx photo.jpg --layer backbone.layer4 --overlay 0.5 --grid 16 --fit crop --json`;

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);
const DEFAULT_INPUT = [513, 513] as const;

interface FileEntry {
  file: string;
  kind: 'map' | 'grid' | 'prediction';
  layer?: string;
  tensor?: string;
  shape?: number[];
  reduce?: string;
  range?: [number, number];
  width: number;
  height: number;
}

export async function visCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      layer: { type: 'string', multiple: true, default: [] },
      reduce: { type: 'string', default: 'max,mean' },
      order: { type: 'string', default: 'reduce-first' },
      colormap: { type: 'string', default: 'jet' },
      normalize: { type: 'string', default: 'minmax' },
      overlay: { type: 'string' },
      size: { type: 'string', default: 'input' },
      grid: { type: 'string' },
      mean: { type: 'string' },
      std: { type: 'string' },
      fit: { type: 'string', default: 'resize' },
      'input-size': { type: 'string' },
      out: { type: 'string', default: 'out' },
      backend: { type: 'string' },
      adapter: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(visHelp);
  if (positionals.length < 2) throw new InputError(`vis takes a MODEL and at least one image, folder or glob. See 'segscope vis --help'`);
  const [modelPath, ...inputs] = positionals as [string, ...string[]];
  if (!values.layer.length) throw new InputError(`vis needs at least one --layer PATTERN (list them with 'segscope layers ${modelPath}')`);

  // Every option is checked before anything is loaded.
  const reductions = values.reduce.split(',').map((r) => r.trim());
  for (const r of reductions) {
    if (!r) throw new InputError(`--reduce '${values.reduce}': empty reduction in the list`);
    try {
      parseReduction(r, Number.MAX_SAFE_INTEGER);
    } catch (e) {
      throw new InputError(`--reduce: ${(e as Error).message}`);
    }
  }
  const order = values.order;
  if (order !== 'reduce-first' && order !== 'upsample-first') throw new InputError(`--order '${order}': use reduce-first or upsample-first`);
  if (!isColormapName(values.colormap)) throw new InputError(`--colormap '${values.colormap}': use one of ${COLORMAP_NAMES.join(', ')}`);
  const colormapName: ColormapName = values.colormap;
  const normalization = parseNormalize(values.normalize);
  const alpha = values.overlay === undefined ? undefined : parseAlpha(values.overlay);
  const mapSize = values.size === 'input' ? undefined : parseHW('--size', values.size, 'or input');
  const gridK = values.grid === undefined ? undefined : parsePositive('--grid', values.grid);
  const mean = values.mean === undefined ? undefined : parseTriple('--mean', values.mean);
  const std = values.std === undefined ? undefined : parseTriple('--std', values.std);
  if (std?.some((s) => s === 0)) throw new InputError(`--std '${values.std}': must not contain 0`);
  const fit = values.fit as Fit;
  if (fit !== 'resize' && fit !== 'pad' && fit !== 'crop') throw new InputError(`--fit '${values.fit}': use resize, pad or crop`);
  const givenInput = values['input-size'] === undefined ? undefined : parseHW('--input-size', values['input-size']);
  const images = await collectImages(inputs);
  const outDir = values.out;
  const progress = !values.quiet && !values.json && process.stderr.isTTY;

  const model = await loadModel(modelPath, { backend: values.backend, adapter: values.adapter });
  const { gpu, graph } = model;
  if (graph.inputs.length !== 1) throw new InputError(`${modelPath}: vis needs a model with one image input, this one has ${graph.inputs.length}`);
  const input = graph.inputs[0]!;
  const declared = input.dims ?? [];
  const channels = typeof declared[1] === 'number' && declared[1] > 0 ? declared[1] : 3;
  if (channels !== 3) throw new InputError(`${modelPath}: input '${input.name}' has ${channels} channels; vis feeds RGB images (3)`);
  const concrete = declared.length === 4 && declared.every((d) => typeof d === 'number' && d > 0);
  const inputSize: [number, number] = givenInput ?? (concrete ? [declared[2] as number, declared[3] as number] : [...DEFAULT_INPUT]);
  const size: [number, number] = mapSize ?? inputSize;

  if (progress) process.stderr.write(`compiling ${modelPath} at ${inputSize.join('x')}…\n`);
  const session = await model.session({ inputShapes: { [input.name]: [1, 3, ...inputSize] } });
  const layers = values.layer.map((pattern) => {
    const tensors = session.resolve([pattern]).map((name) => {
      const shape = [...(session.typeOf(name)?.dims ?? [])];
      if (shape.length !== 4) throw new InputError(`--layer '${pattern}': tensor '${name}' has shape [${shape.join(',')}]; vis draws [N,C,H,W] feature maps`);
      for (const r of reductions) {
        try {
          parseReduction(r, shape[1]!);
        } catch (e) {
          throw new InputError(`--reduce with --layer '${pattern}': ${(e as Error).message}`);
        }
      }
      return { name, shape };
    });
    return { pattern, tensors };
  });
  const logitsName = session.outputNames[0];
  const logitsShape = logitsName ? session.typeOf(logitsName)?.dims : undefined;
  const predict = logitsShape?.length === 4 && logitsShape[1]! > 1;
  // The logits are captured too, so the mask is drawn from the GPU copy instead of uploading them again.
  const capture = predict ? [...values.layer, logitsName!] : values.layer;

  const taken = new Set<string>();
  const summary: { image: string; files: FileEntry[] }[] = [];
  const failed: string[] = [];
  const t0 = performance.now();
  for (const [i, path] of images.entries()) {
    if (progress) process.stderr.write(`\rimage ${i + 1}/${images.length} ${basename(path)}\x1b[K`);
    let image;
    try {
      image = await readImage(path);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      failed.push(e.message);
      continue;
    }
    const stem = basename(path, extname(path));
    const files: FileEntry[] = [];
    const { tensor } = toInputTensor(image, { size: inputSize, fit, mean, std });
    const { captured } = await session.run(tensor, { capture });
    // The fitted image goes to the GPU once per image, under every map that is overlaid on it.
    const base = alpha === undefined ? undefined : uploadImage(gpu, fittedImage(tensor, size, mean, std), size[1], size[0]);
    try {
      for (const layer of layers) {
        const many = layer.tensors.length > 1;
        const gpuTensors = layer.tensors.map((t) => captured.get(t.name)!);
        for (const reduce of reductions) {
          const maps = await featureMaps(gpu, gpuTensors, {
            reduce: reduce as Reduction,
            order,
            size,
            normalize: normalization.method,
            shareRange: normalization.shared,
            colormap: colormapName,
          });
          for (const [k, t] of layer.tensors.entries()) {
            const map = maps[k]![0]!;
            const rgba = base ? await blend(gpu, base, map.rgba, size, alpha!) : map.rgba;
            const file = safeFileName(`${stem}_${layer.pattern}${many ? `_${t.name}` : ''}_${reduce}`, '.png', taken);
            await writePng(join(outDir, file), rgba, size[1], size[0]);
            files.push({ file, kind: 'map', layer: layer.pattern, tensor: t.name, shape: t.shape, reduce, range: map.range, width: size[1], height: size[0] });
          }
        }
        if (gridK !== undefined) {
          for (const [k, t] of layer.tensors.entries()) {
            if (gridK > t.shape[1]!) throw new InputError(`--grid ${gridK}: --layer '${layer.pattern}' ('${t.name}') has only ${t.shape[1]} channels`);
            const [grid] = await channelGrid(gpu, gpuTensors[k]!, { channels: { top: gridK }, colormap: colormapName, labels: true });
            const file = safeFileName(`${stem}_${layer.pattern}${many ? `_${t.name}` : ''}_grid`, '.png', taken);
            await writePng(join(outDir, file), grid!.rgba, grid!.width, grid!.height);
            files.push({ file, kind: 'grid', layer: layer.pattern, tensor: t.name, shape: t.shape, width: grid!.width, height: grid!.height });
          }
        }
      }
      if (predict) {
        const logits = captured.get(logitsName!)!;
        const [mask] = await segmentation(gpu, logits, { palette: 'voc' });
        const file = safeFileName(`${stem}_prediction`, '.png', taken);
        await writePng(join(outDir, file), mask!.rgba, mask!.width, mask!.height);
        files.push({ file, kind: 'prediction', tensor: logitsName, shape: [...logits.dims], width: mask!.width, height: mask!.height });
      }
    } finally {
      base?.buffer.destroy();
    }
    summary.push({ image: path, files });
  }
  if (progress) process.stderr.write('\n');
  const written = summary.reduce((a, s) => a + s.files.length, 0);

  if (values.json) {
    console.log(
      JSON.stringify(
        {
          model: modelPath,
          adapter: gpu.description,
          inputSize,
          size,
          out: outDir,
          layers: layers.map((l) => ({ pattern: l.pattern, tensors: l.tensors })),
          images: summary,
          failed,
          ms: Math.round(performance.now() - t0),
        },
        null,
        2,
      ),
    );
  } else if (!values.quiet) {
    console.log(`wrote ${written} files for ${summary.length} image${summary.length === 1 ? '' : 's'} to ${join(outDir, '.')}`);
  }
  if (failed.length) throw new InputError(`${failed.length} of ${images.length} images could not be read: ${failed.join('; ')}`);
}

/** Image files from files, folders (their images, sorted) and globs in the last path component. */
async function collectImages(inputs: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const input of inputs) {
    const name = basename(input);
    if (/[*?]/.test(name)) {
      const dir = dirname(input);
      if (/[*?]/.test(dir)) throw new InputError(`${input}: '*' and '?' work in the last path component only`);
      const re = globToRegExp(name);
      const entries = await listDir(dir, input);
      const matches = entries.filter((e) => re.test(e)).sort();
      if (!matches.length) throw new InputError(`${input}: no file matches`);
      found.push(...matches.map((e) => join(dir, e)));
      continue;
    }
    let info;
    try {
      info = await stat(input);
    } catch (e) {
      throw new InputError(`${input}: no such image, folder or glob (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (info.isDirectory()) {
      const images = (await listDir(input, input)).filter((e) => IMAGE_EXTENSIONS.has(extname(e).toLowerCase())).sort();
      if (!images.length) throw new InputError(`${input}: no .jpg, .jpeg, .png or .webp images in this folder`);
      found.push(...images.map((e) => join(input, e)));
    } else found.push(input);
  }
  return found;
}

async function listDir(dir: string, label: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    throw new InputError(`${label}: cannot read folder '${dir}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The model input as an RGB picture (un-normalised; padding is the mean colour), resampled to `size`. */
function fittedImage(tensor: HostTensor, size: [number, number], mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225]): Uint8Array {
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

async function blend(gpu: Gpu, base: GpuImages, top: Uint8Array, [h, w]: [number, number], alpha: number): Promise<Uint8Array> {
  const map = uploadImage(gpu, top, w, h);
  try {
    const blended = overlay(gpu, base, map, alpha);
    try {
      return (await readRGBA(gpu, blended))[0]!.rgba;
    } finally {
      blended.buffer.destroy();
    }
  } finally {
    map.buffer.destroy();
  }
}

function parseNormalize(text: string): { method: Normalization; shared: boolean } {
  if (text === 'minmax') return { method: 'minmax', shared: false };
  if (text === 'p1-99') return { method: { percentile: [1, 99] }, shared: false };
  if (text === 'shared') return { method: 'minmax', shared: true };
  throw new InputError(`--normalize '${text}': use minmax, p1-99 or shared`);
}

function parseAlpha(text: string): number {
  const a = Number(text);
  if (!/^\s*[\d.]+\s*$/.test(text) || !(a >= 0 && a <= 1)) throw new InputError(`--overlay '${text}': expected an opacity between 0 and 1, e.g. 0.5`);
  return a;
}

function parseHW(option: string, text: string, or = ''): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new InputError(`${option} '${text}': expected HEIGHTxWIDTH with positive integers, e.g. 513x513${or ? ` ${or}` : ''}`);
  }
  return [Number(m[1]), Number(m[2])];
}

function parsePositive(option: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new InputError(`${option} '${text}': expected a positive integer`);
  return Number(text);
}

function parseTriple(option: string, text: string): [number, number, number] {
  const v = text.split(',').map((s) => Number(s.trim()));
  if (v.length !== 3 || v.some((x, k) => !Number.isFinite(x) || !text.split(',')[k]!.trim())) {
    throw new InputError(`${option} '${text}': expected three numbers R,G,B on the 0..1 scale, e.g. 0.485,0.456,0.406`);
  }
  return v as [number, number, number];
}
