import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { openDawn } from '../gpu/dawn.js';
import type { Fit } from '../preprocess/fit.js';
import { writeReport, type ImageResult, type ReportData } from '../io/report.js';
import { normalisation, predictionText } from '../report/render.js';
import { commandLine } from '../workflow/command-line.js';
import { COLORMAP_NAMES, isColormapName } from '../vis/colormap.js';
import { uploadTensor } from '../vis/tensor.js';
import { checkDrawable, drawLayer, type DrawOptions } from '../workflow/draw.js';
import { parseAlpha, parseHW, parseNormalize, parsePositive, parsePrecision, parseTriple, readNpyFile } from './args.js';
import { Progress } from './progress.js';
import { collectFiles, IMAGE_EXTENSIONS, writeLayer } from './vis-files.js';
import { visModel, type VisResult } from './vis-model.js';

export const visHelp = `Usage: segscope vis MODEL INPUTS... --layer PATTERN [--layer …] [options]
       segscope vis --tensor FILE.npy [--tensor …] [options]

Runs an ONNX segmentation model on images and writes each selected layer's
feature map as a coloured PNG: one per image, layer and reduction, named
<image>_<layer>_<reduce>.png (made safe for every filesystem), the coloured
map alone at exactly the target size (or blended over the fitted input with
--overlay). When the model's first output (or --output) is [N,K,H,W] logits
it also writes the prediction, <image>_prediction.png: the argmax in the
model's palette (its metadata_props 'palette', else PASCAL VOC's). A binary
output, [N,1,H,W], gives the mask where p >= 0.5 (p the output if a Sigmoid
makes it, else sigmoid of it) in black and white (or the metadata's two
colours), and p in grey as <image>_probability.png. The model is compiled once;
images stream through one at a time. With --report, report.html shows every
image's input, ground truth, prediction and maps side by side.

INPUTS are image files, folders (their .jpg, .jpeg, .png and .webp files,
sorted) or globs ('*' and '?' in the last path component; quote them).

With --tensor, no model is run: each .npy file (saved by 'segscope run
--dump', NumPy or PyTorch) is drawn with the same options, [N,C,H,W] or
[C,H,W], as <file>_<reduce>.png.

Options:
  --layer PATTERN          a tensor to draw; repeatable. PATTERN is, in this
                           order: a tensor name, a node name, a PyTorch module
                           path ('classifier.aspp.project', or its unambiguous
                           tail 'aspp.project'), a glob, or a regular
                           expression written /…/. A pattern that
                           selects several tensors writes one file per tensor.
  --tensor FILE.npy        draw a saved tensor instead of running a model; repeatable
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
  --size HxW|input         map size (default input: the model input size; a
                           --tensor's own size)
  --grid K                 also write <image>_<layer>_grid.png, a montage of
                           the K channels with the largest mean
  --output NAME            the graph output the prediction is drawn from
                           (default: the first)
  --labels DIR             ground-truth masks, DIR/<image name>.png: class
                           indices as grey values (255 = ignore) or colours of
                           the model's palette (VOC's SegmentationClass
                           PNGs); for a binary output, 0/1 indices or grey
                           masks with foreground from 128 (0/255 masks).
                           Writes <image>_label.png and scores the
                           prediction (pixel accuracy, mIoU, IoU per class)
  --mean R,G,B             input normalisation mean, 0..1 scale (default: the
                           model's metadata 'mean', else ImageNet's
                           0.485,0.456,0.406)
  --std R,G,B              input normalisation std (default: metadata 'std',
                           else 0.229,0.224,0.225)
  --fit MODE               resize (default), pad or crop: how an image is fitted
                           to the model input
  --input-size HxW         model input size (default: the model's declared
                           size, else its metadata 'input_size', else 513x513)
  --out DIR                where pictures go (default out/)
  --report                 also write DIR/report.html (thumbnails in DIR/thumbs/)
  --precision P            f32 (default) or f16: the model's activations stored
                           as float16 (computed in f32; needs shader-f16)
  --backend NAME           Dawn backend: vulkan, opengles, … (env SEGSCOPE_BACKEND)
  --adapter NAME           adapter name, as Dawn lists them (env SEGSCOPE_ADAPTER)
  --quiet                  no progress on stderr (also off when stderr is not a terminal)
  --json                   print a machine-readable summary of the files written
  -h, --help               this help

Examples:
  segscope vis model.onnx photo.jpg --layer classifier.aspp.project
  segscope vis model.onnx photos/ --layer classifier.aspp.project --layer classifier.project --reduce max,mean --out out/ --report
  segscope vis model.onnx photos/ --labels masks/ --layer classifier.aspp.project --report
  segscope vis saliency.onnx photos/ --output mask --labels masks/ --layer decoder --report
  segscope vis model.onnx 'photos/*.jpg' --layer '/layer4.*Relu/' --normalize shared --colormap viridis
  segscope vis model.onnx photo.jpg --layer backbone.layer4 --overlay 0.5 --grid 16 --fit crop --json
  segscope vis --tensor aspp.npy --reduce max,mean,channel:7 --size 513x513`;

export async function visCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      layer: { type: 'string', multiple: true, default: [] },
      tensor: { type: 'string', multiple: true, default: [] },
      reduce: { type: 'string', default: 'max,mean' },
      order: { type: 'string', default: 'reduce-first' },
      colormap: { type: 'string', default: 'jet' },
      normalize: { type: 'string', default: 'minmax' },
      overlay: { type: 'string' },
      size: { type: 'string', default: 'input' },
      grid: { type: 'string' },
      labels: { type: 'string' },
      output: { type: 'string' },
      mean: { type: 'string' },
      std: { type: 'string' },
      fit: { type: 'string', default: 'resize' },
      'input-size': { type: 'string' },
      out: { type: 'string', default: 'out' },
      report: { type: 'boolean', default: false },
      precision: { type: 'string' },
      backend: { type: 'string' },
      adapter: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(visHelp);
  const tensorMode = values.tensor.length > 0;
  if (tensorMode && (positionals.length || values.layer.length)) {
    throw new InputError(`vis --tensor draws saved tensors without a model: give no MODEL, images or --layer with it`);
  }
  if (!tensorMode && positionals.length < 2)
    throw new InputError(`vis takes a MODEL and at least one image, folder or glob, or --tensor FILE.npy. See 'segscope vis --help'`);
  const [modelPath, ...inputs] = positionals as [string, ...string[]];
  if (!tensorMode && !values.layer.length) throw new InputError(`vis needs at least one --layer PATTERN (list them with 'segscope layers ${modelPath}')`);

  // Every option is checked before anything is loaded.
  const reductions = values.reduce.split(',').map((r) => r.trim());
  for (const r of reductions) {
    if (!r) throw new InputError(`--reduce '${values.reduce}': empty reduction in the list`);
    checkDrawable({ reductions: [r] }, Number.MAX_SAFE_INTEGER, '--reduce');
  }
  const order = values.order;
  if (order !== 'reduce-first' && order !== 'upsample-first') throw new InputError(`--order '${order}': use reduce-first or upsample-first`);
  if (!isColormapName(values.colormap)) throw new InputError(`--colormap '${values.colormap}': use one of ${COLORMAP_NAMES.join(', ')}`);
  const normalize = parseNormalize(values.normalize);
  const draw: DrawOptions = {
    reductions,
    order,
    colormap: values.colormap,
    normalize: normalize.method,
    shareRange: normalize.shared,
    grid: values.grid === undefined ? undefined : parsePositive('--grid', values.grid),
  };
  const outDir = values.out;
  const mapSize = values.size === 'input' ? undefined : parseHW('--size', values.size, 'or input');
  const fit = values.fit as Fit;
  if (fit !== 'resize' && fit !== 'pad' && fit !== 'crop') throw new InputError(`--fit '${values.fit}': use resize, pad or crop`);
  const modelOnly = {
    '--overlay': values.overlay,
    '--labels': values.labels,
    '--output': values.output,
    '--mean': values.mean,
    '--std': values.std,
    '--input-size': values['input-size'],
    '--precision': values.precision,
  };
  const misplaced = Object.entries(modelOnly).find(([, v]) => tensorMode && v !== undefined);
  if (misplaced) throw new InputError(`${misplaced[0]} applies to model runs on images, not to --tensor`);
  const std = values.std === undefined ? undefined : parseTriple('--std', values.std);
  if (std?.some((s) => s === 0)) throw new InputError(`--std '${values.std}': must not contain 0`);
  const progress = new Progress(!values.quiet && !values.json && process.stderr.isTTY === true);

  const t0 = performance.now();
  const result = tensorMode
    ? await visTensors(values.tensor, draw, outDir, mapSize, values.backend, values.adapter)
    : await visModel(
        {
          ...draw,
          outDir,
          model: modelPath,
          images: await collectFiles(inputs, IMAGE_EXTENSIONS, 'image'),
          layers: values.layer,
          labels: values.labels,
          output: values.output,
          overlay: values.overlay === undefined ? undefined : parseAlpha(values.overlay),
          mapSize,
          inputSize: values['input-size'] === undefined ? undefined : parseHW('--input-size', values['input-size']),
          mean: values.mean === undefined ? undefined : parseTriple('--mean', values.mean),
          std,
          fit,
          writeInputs: values.report,
          keepResults: values.report || values.json,
          backend: values.backend,
          adapter: values.adapter,
          precision: parsePrecision(values.precision ?? 'f32'),
        },
        progress,
      );
  const data: ReportData & VisResult = { ...result, command: commandLine(['segscope', 'vis', ...argv]), seconds: (performance.now() - t0) / 1000 };
  const report = values.report ? await writeReport(outDir, data) : undefined;
  const { images, files } = data.counts;
  if (values.json) {
    console.log(JSON.stringify({ ...data, out: outDir, ...(report ? { report } : {}), ms: Math.round(data.seconds * 1000) }, null, 2));
  } else if (!values.quiet) {
    const score = data.metrics ? ` (mIoU ${data.metrics.meanIoU.toFixed(4)}, pixel accuracy ${data.metrics.pixelAccuracy.toFixed(4)})` : '';
    // A model trained with another normalisation gives wrong maps silently: say what was used and why.
    if (data.input) console.log(`input ${data.inputSize.join('x')} (${data.input.sizeFrom}), ${normalisation(data.input)}`);
    if (data.prediction) console.log(`prediction from ${predictionText(data.prediction)}`);
    console.log(`wrote ${files} files for ${images} image${images === 1 ? '' : 's'} to ${join(outDir, '.')}${score}`);
    if (report) console.log(`report: ${report}`);
  }
  if (data.failed.length) throw new InputError(`${data.failed.length} problem${data.failed.length === 1 ? '' : 's'}: ${data.failed.join('; ')}`);
}

/** `vis --tensor`: each .npy file drawn as if it had been captured, by the workflow's drawing code. */
async function visTensors(
  files: string[],
  draw: DrawOptions,
  outDir: string,
  mapSize: [number, number] | undefined,
  backend?: string,
  adapter?: string,
): Promise<VisResult> {
  const gpu = await openDawn({ backend, adapter });
  const taken = new Set<string>();
  const images: ImageResult[] = [];
  let size: [number, number] | undefined;
  for (const file of files) {
    const host = await readNpyFile(file, '--tensor');
    const dims = host.dims.length === 3 ? [1, ...host.dims] : [...host.dims];
    if (dims.length !== 4 || dims.some((d) => d < 1)) {
      throw new InputError(`--tensor ${file}: shape [${host.dims.join(',')}]; vis draws [N,C,H,W] or [C,H,W] feature maps`);
    }
    checkDrawable(draw, dims[1]!, `--tensor ${file}`);
    const value = uploadTensor(gpu, dims, host.data);
    try {
      size = mapSize ?? [dims[2]!, dims[3]!];
      const layer = await drawLayer(gpu, '', [{ name: basename(file), value }], draw, size);
      images.push({ image: file, files: await writeLayer(outDir, basename(file, extname(file)), layer, taken) });
    } finally {
      value.buffer.destroy();
    }
  }
  const counts = { images: images.length, files: images.reduce((a, s) => a + s.files.length, 0) };
  return { model: '(saved tensors)', adapter: gpu.description, inputSize: size!, size: size!, layers: [], counts, images, failed: [] };
}
