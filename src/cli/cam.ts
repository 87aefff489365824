import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { writeFileAtomic } from '../io/files.js';
import { readImage } from '../io/image.js';
import { readLabel } from '../io/labels.js';
import { encodeNpy } from '../io/npy.js';
import { writeReport, type ImageResult, type OutputFile, type ReportData } from '../io/report.js';
import { loadModel } from '../index.js';
import type { Fit } from '../preprocess/fit.js';
import { CAM_METHODS, parseCamMethod, type CamMethod } from '../vis/cam.js';
import { Explainer, type ImageExplanation } from '../workflow/explainer.js';
import { safeFileName } from '../workflow/file-names.js';
import { commandLine } from '../workflow/command-line.js';
import { classIndex, legend, predictionSource } from '../workflow/prediction.js';
import { parseAlpha, parseHW, parsePrecision, parseTriple, readNpyFile } from './args.js';
import { Progress } from './progress.js';
import { collectFiles, IMAGE_EXTENSIONS, labelFor, warnUnlabelled, writePicture } from './vis-files.js';

export const camHelp = `Usage: segscope cam MODEL INPUTS... --layer PATTERN --class NAME|INDEX [options]
       segscope cam MODEL --input X.npy --layer PATTERN --class NAME|INDEX [options]

Class activation maps, as pytorch-grad-cam draws them for segmentation
(SemanticSegmentationTarget): which regions of a layer make the model call
pixels CLASS. The gradient of the class's score (its logits summed over the
--mask pixels) with respect to the layer is computed on the GPU from the
ONNX file alone. For each image, layer, class and method it writes
<image>_<layer>_<class>_<method>.png (show_cam_on_image: the map in JET over
the fitted input, image weight 0.5) and .npy (the map at the layer's
resolution after the method's ReLU, before scaling).

INPUTS are image files, folders or globs, as for 'segscope vis'; --input
takes a ready input tensor [1,3,H,W] (normalised) instead.

Options:
  --layer PATTERN          the layer to explain (patterns as for vis --layer);
                           repeatable
  --class NAME|INDEX       the class to explain: an index, or a name from the
                           model's metadata 'classes' (VOC's for 21); repeatable
  --method LIST            comma-separated: ${CAM_METHODS.join(', ')},
                           or all (default gradcam)
  --mask MODE              the pixels whose score is explained: pred (default:
                           those predicted as the class), label (the label's
                           pixels of the class; needs --labels), all
  --labels DIR             ground-truth masks, DIR/<image name>.png (as for vis)
  --image-weight W         show_cam_on_image's image weight in [0, 1] (default 0.5)
  --output NAME            the graph output the target reads (default: the first)
  --input X.npy            a ready input tensor instead of images
  --mean R,G,B, --std R,G,B, --fit MODE, --input-size HxW
                           the input's normalisation, fit and size, as for vis
  --out DIR                where files go (default segscope-cam)
  --report                 also write DIR/report.html: input, ground truth,
                           prediction and a column per layer, class and method
  --precision P            f32 (default) or f16
  --backend NAME, --adapter NAME   as for vis
  --quiet                  no progress on stderr
  --json                   print a machine-readable summary
  -h, --help               this help

Examples:
  segscope cam model.onnx street.png --layer classifier.aspp.project --class road --class person
  segscope cam model.onnx photos/ --layer backbone.layer4 --class 7 --method gradcam,hirescam,eigencam --report
  segscope cam model.onnx photos/ --labels masks/ --mask label --layer classifier.project --class car
  segscope cam model.onnx --input x.npy --layer classifier.aspp.project --class 3`;

export async function camCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      layer: { type: 'string', multiple: true, default: [] },
      class: { type: 'string', multiple: true, default: [] },
      method: { type: 'string', default: 'gradcam' },
      mask: { type: 'string', default: 'pred' },
      labels: { type: 'string' },
      'image-weight': { type: 'string' },
      output: { type: 'string' },
      input: { type: 'string' },
      mean: { type: 'string' },
      std: { type: 'string' },
      fit: { type: 'string', default: 'resize' },
      'input-size': { type: 'string' },
      out: { type: 'string', default: 'segscope-cam' },
      report: { type: 'boolean', default: false },
      precision: { type: 'string', default: 'f32' },
      backend: { type: 'string' },
      adapter: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(camHelp);
  const [modelPath, ...inputs] = positionals as [string | undefined, ...string[]];
  if (!modelPath) throw new InputError(`cam takes a MODEL and images (or --input X.npy). See 'segscope cam --help'`);
  if (values.input !== undefined && inputs.length) throw new InputError('cam takes images or --input X.npy, not both');
  if (values.input === undefined && !inputs.length) throw new InputError(`cam needs images (files, folders or globs) or --input X.npy after the MODEL`);
  if (!values.layer.length) throw new InputError(`cam needs at least one --layer PATTERN (list them with 'segscope layers ${modelPath}')`);
  if (!values.class.length) throw new InputError('cam needs at least one --class NAME|INDEX: the class whose pixels are explained');
  const methods: CamMethod[] = values.method === 'all' ? [...CAM_METHODS] : values.method.split(',').map((m) => parseMethod(m));
  const mask = values.mask;
  if (mask !== 'pred' && mask !== 'label' && mask !== 'all') throw new InputError(`--mask '${mask}': use pred, label or all`);
  if (mask === 'label' && !values.labels) throw new InputError('--mask label needs --labels DIR: the ground truth whose pixels of the class are explained');
  if (values.labels && values.input !== undefined) throw new InputError('--labels pairs masks with images; --input gives a tensor, not an image');
  const fit = values.fit as Fit;
  if (fit !== 'resize' && fit !== 'pad' && fit !== 'crop') throw new InputError(`--fit '${values.fit}': use resize, pad or crop`);
  const imageWeight = values['image-weight'] === undefined ? undefined : parseAlpha(values['image-weight'], '--image-weight');
  const ready = values.input === undefined ? undefined : await readNpyFile(values.input, '--input');
  const images = ready ? [] : await collectFiles(inputs, IMAGE_EXTENSIONS, 'image');
  const progress = new Progress(!values.quiet && !values.json && process.stderr.isTTY === true);

  const t0 = performance.now();
  progress.phase(`loading ${modelPath}`);
  const { gpu, graph } = await loadModel(modelPath, { backend: values.backend, adapter: values.adapter });
  const explainer = await Explainer.create(gpu, graph, {
    layers: values.layer,
    inputSize: values['input-size'] === undefined ? (ready ? [ready.dims[2]!, ready.dims[3]!] : undefined) : parseHW('--input-size', values['input-size']),
    mean: values.mean === undefined ? undefined : parseTriple('--mean', values.mean),
    std: values.std === undefined ? undefined : parseTriple('--std', values.std),
    fit,
    output: values.output,
    precision: parsePrecision(values.precision),
    onProgress: (p) => progress.step(`differentiating and compiling at ${p.inputSize.join('x')}`, p.done, p.total),
  });
  try {
    const { prediction } = explainer;
    const classes = values.class.map((c) => classIndex(c, prediction.classes, prediction.names, '--class'));
    const taken = new Set<string>();
    const results: ImageResult[] = [];
    const failed: string[] = [];
    const unlabelled: string[] = [];
    const request = { classes, methods, mask, ...(imageWeight === undefined ? {} : { imageWeight }) } as const;
    const sources: { path: string; stem: string }[] = ready
      ? [{ path: values.input!, stem: basename(values.input!, extname(values.input!)) }]
      : images.map((path) => ({ path, stem: basename(path, extname(path)) }));
    progress.step('images', 0, sources.length);
    for (const [i, { path, stem }] of sources.entries()) {
      try {
        let explained: ImageExplanation;
        if (ready) explained = await explainer.explain({ tensor: ready }, request);
        else {
          const labelPath = values.labels && (await labelFor(values.labels, stem));
          if (values.labels && !labelPath) unlabelled.push(basename(path));
          if (mask === 'label' && !labelPath) throw new InputError(`${path}: --mask label, but ${values.labels} has no ${stem}.png`);
          const label = labelPath ? await readLabel(labelPath, prediction.classes, prediction.palette) : undefined;
          explained = await explainer.explain(await readImage(path), { ...request, ...(label ? { label } : {}) });
        }
        results.push({ image: path, files: await writeExplanation(values.out, stem, explained, values.report, taken) });
      } catch (e) {
        if (!(e instanceof InputError) || ready) throw e;
        failed.push(e.message);
      }
      progress.step('images', i + 1, sources.length, basename(path));
    }
    progress.end();
    if (values.labels) warnUnlabelled(values.labels, unlabelled);
    const data: ReportData = {
      model: modelPath,
      adapter: gpu.description,
      inputSize: explainer.input.size,
      input: explainer.input,
      size: explainer.input.size,
      prediction: predictionSource(prediction),
      command: commandLine(['segscope', 'cam', ...argv]),
      ...legend(prediction),
      images: results,
      failed,
      seconds: (performance.now() - t0) / 1000,
    };
    const report = values.report ? await writeReport(values.out, data) : undefined;
    // Each map is a PNG and a .npy.
    const files = results.reduce((n, r) => n + r.files.length + r.files.filter((f) => f.map).length, 0);
    if (values.json) console.log(JSON.stringify({ ...data, out: values.out, ...(report ? { report } : {}) }, null, 2));
    else if (!values.quiet) {
      console.log(`wrote ${files} files for ${results.length} image${results.length === 1 ? '' : 's'} to ${join(values.out, '.')}`);
      if (report) console.log(`report: ${report}`);
    }
    if (failed.length) throw new InputError(`${failed.length} problem${failed.length === 1 ? '' : 's'}: ${failed.join('; ')}`);
  } finally {
    explainer.destroy();
  }
}

function parseMethod(text: string): CamMethod {
  try {
    return parseCamMethod(text.trim());
  } catch (e) {
    throw new InputError(`--method: ${(e as Error).message}`);
  }
}

/** The files of one image: each CAM's overlay (.png) and map (.npy), and with --report its input, prediction and ground truth. */
async function writeExplanation(out: string, stem: string, e: ImageExplanation, withPictures: boolean, taken: Set<string>): Promise<OutputFile[]> {
  const files: OutputFile[] = [];
  const picture = async (suffix: string, kind: OutputFile['kind'], p: { width: number; height: number; rgba: Uint8Array }) =>
    files.push({ file: await writePicture(out, `${stem}_${suffix}`, p, taken), kind, width: p.width, height: p.height });
  if (withPictures) {
    await picture('input', 'input', e.input);
    await picture('prediction', 'prediction', e.prediction);
    if (e.label) await picture('label', 'label', e.label);
  }
  const many = (layer: string) =>
    e.cams.filter((c) => c.layer === layer && c.classIndex === e.cams[0]!.classIndex && c.method === e.cams[0]!.method).length > 1;
  for (const c of e.cams) {
    // 'gradcam++' would lose its '++' to the file-name rules, and clash with gradcam.
    const name = `${stem}_${c.layer}${many(c.layer) ? `_${c.tensor}` : ''}_${c.className ?? c.classIndex}_${c.method.replace('++', 'pp')}`;
    const file = await writePicture(out, name, c.picture, taken);
    const npy = safeFileName(name, '.npy', taken);
    await writeFileAtomic(join(out, npy), encodeNpy(c.map));
    files.push({
      file,
      kind: 'cam',
      layer: c.layer,
      tensor: c.tensor,
      shape: c.shape,
      reduce: `${c.className ?? `class ${c.classIndex}`} ${c.method}`,
      width: c.picture.width,
      height: c.picture.height,
      map: npy,
      score: c.score,
      pixels: c.pixels,
    });
  }
  return files;
}
