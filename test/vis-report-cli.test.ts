/**
 * `segscope vis` end to end, checked on content: --tensor pictures against
 * the recipe references, model maps and predictions against the library on
 * the same adapter and a CPU argmax, --labels masks and scores against a
 * plain count, the report's files; and each error a user can make.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/index.js';
import { readImage } from '../src/io/image.js';
import { encodeNpy } from '../src/io/npy.js';
import { encodeModel } from '../src/onnx/decode.js';
import { AttributeType, DataType } from '../src/onnx/schema.js';
import { toInputTensor } from '../src/preprocess/input-tensor.js';
import { featureMap, palette } from '../src/vis/index.js';
import { errors, ROOT, segscope, segscopeWithEnv } from './helpers/cli.js';
import { gpu } from './helpers/gpu.js';
import { compareWithRecipe, recipe, recipeInput } from './helpers/recipe.js';

const MODEL = join(ROOT, 'test/fixtures/deeplabv3plus_os16.onnx');
const ASPP = 'classifier.aspp.project';
const SIZE = 65;
const tmp = () => mkdtempSync(join(tmpdir(), 'segscope-vis-report-'));
const voc = palette('voc', 21);

async function rgbaOf(path: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(path).ensureAlpha().raw().toBuffer());
}

/** A smooth 65x65 test picture and a mask of three classes (one region ignored). */
async function writeScene(dir: string, name: string, seed: number): Promise<Uint8Array> {
  const rgb = new Uint8Array(SIZE * SIZE * 3);
  const mask = new Uint8Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const p = y * SIZE + x;
      rgb.set([(x * 4 + seed * 40) & 255, (y * 4) & 255, ((x + y) * 2 + seed * 90) & 255], 3 * p);
      mask[p] = y < 10 ? 255 : x + seed * 7 < 30 ? 0 : y < 40 ? 15 : 7;
    }
  }
  await sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .png()
    .toFile(join(dir, 'images', `${name}.png`));
  await sharp(mask, { raw: { width: SIZE, height: SIZE, channels: 1 } })
    .png()
    .toFile(join(dir, 'labels', `${name}.png`));
  return mask;
}

describe('segscope vis: content', () => {
  it('--tensor draws a saved .npy exactly as the recipe (within one level on 99.9% of pixels)', async () => {
    const dir = tmp();
    const spec = recipe.inputs.aspp!;
    writeFileSync(join(dir, 'aspp.npy'), encodeNpy({ type: 'float32', dims: spec.dims, data: recipeInput(spec) }));
    const refs = recipe.references.filter((r) => r.tensor === 'aspp' && r.order === 'reduce-first' && !r.alignCorners);
    expect(refs.map((r) => r.reduce).sort()).toEqual(['max', 'mean']);
    const size = refs[0]!.size;
    const out = join(dir, 'out');
    const { code, stdout, stderr } = await segscope(
      'vis',
      '--tensor',
      join(dir, 'aspp.npy'),
      '--reduce',
      'max,mean',
      '--size',
      size.join('x'),
      '--out',
      out,
      '--json',
    );
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as { images: { files: { file: string; reduce: string; range: [number, number] }[] }[] };
    expect(summary.images[0]!.files.map((f) => f.file)).toEqual(['aspp_max.png', 'aspp_mean.png']);
    for (const ref of refs) {
      const file = summary.images[0]!.files.find((f) => f.reduce === ref.reduce)!;
      expect(file.range[0]).toBeCloseTo(ref.min, 5);
      expect(file.range[1]).toBeCloseTo(ref.max, 5);
      const { n, within, opaque } = compareWithRecipe(await rgbaOf(join(out, file.file)), ref);
      expect(within / n).toBeGreaterThanOrEqual(0.999);
      expect(opaque).toBe(true);
    }
  });

  it('--labels and --report: maps equal the library, the prediction is the argmax in VOC colours, masks and scores are right', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'images'));
    mkdirSync(join(dir, 'labels'));
    const masks = [await writeScene(dir, 'a', 0), await writeScene(dir, 'b', 1)];
    await sharp(Buffer.alloc(SIZE * SIZE * 3, 90), { raw: { width: SIZE, height: SIZE, channels: 3 } })
      .png()
      .toFile(join(dir, 'images', 'c.png')); // no mask
    const out = join(dir, 'out');
    const { code, stdout, stderr } = await segscope(
      'vis',
      MODEL,
      join(dir, 'images'),
      '--labels',
      join(dir, 'labels'),
      '--layer',
      ASPP,
      '--input-size',
      `${SIZE}x${SIZE}`,
      '--out',
      out,
      '--report',
      '--json',
    );
    expect(errors(stderr)).toEqual([`segscope: no mask in ${join(dir, 'labels')} for 1 image: c.png`]);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as {
      report: string;
      images: { image: string; files: { file: string; kind: string; reduce?: string }[]; metrics?: { pixelAccuracy: number; meanIoU: number } }[];
      metrics: { pixelAccuracy: number; meanIoU: number; perClassIoU: (number | null)[] };
    };
    expect(summary.report).toBe(join(out, 'report.html'));

    const model = await loadModel(MODEL, { gpu: await gpu() });
    const session = await model.session({ inputShapes: { input: [1, 3, SIZE, SIZE] }, capture: [ASPP] });
    const total = { tp: new Array(21).fill(0), fp: new Array(21).fill(0), fn: new Array(21).fill(0), correct: 0, counted: 0 };
    for (const [i, name] of ['a', 'b', 'c'].entries()) {
      const entry = summary.images[i]!;
      expect(entry.files.map((f) => f.kind)).toEqual(['input', 'map', 'map', 'prediction', ...(name === 'c' ? [] : ['label'])]);
      const file = (kind: string, reduce?: string) => join(out, entry.files.find((f) => f.kind === kind && f.reduce === reduce)!.file);
      const image = await readImage(join(dir, 'images', `${name}.png`));
      const { outputs, captured } = await session.run(toInputTensor(image, { size: [SIZE, SIZE] }).tensor);
      for (const reduce of ['max', 'mean'] as const) {
        const [map] = await featureMap(model.gpu, captured.get(session.resolve([ASPP])[0]!)!, { reduce, size: [SIZE, SIZE], colormap: 'jet' });
        expect(await rgbaOf(file('map', reduce)), `${name} ${reduce}`).toEqual(map!.rgba);
      }
      // The fitted input round-trips the image (normalised and back) to within rounding.
      const input = await rgbaOf(file('input'));
      for (let p = 0; p < SIZE * SIZE; p++) for (let c = 0; c < 3; c++) expect(Math.abs(input[4 * p + c]! - image.data[3 * p + c]!)).toBeLessThanOrEqual(1);
      const logits = [...outputs.values()][0]!.data;
      const plane = SIZE * SIZE;
      const predicted = Array.from({ length: plane }, (_, p) => {
        let best = 0;
        for (let k = 1; k < 21; k++) if (logits[k * plane + p]! > logits[best * plane + p]!) best = k;
        return best;
      });
      const prediction = await rgbaOf(file('prediction'));
      for (let p = 0; p < plane; p++) expect([...prediction.subarray(4 * p, 4 * p + 3)]).toEqual([...voc.subarray(3 * predicted[p]!, 3 * predicted[p]! + 3)]);
      if (name === 'c') {
        expect(entry.metrics).toBeUndefined();
        continue;
      }
      const mask = masks[i]!;
      const label = await rgbaOf(file('label'));
      const tp = new Array(21).fill(0);
      const fp = new Array(21).fill(0);
      const fn = new Array(21).fill(0);
      let correct = 0;
      let counted = 0;
      for (let p = 0; p < plane; p++) {
        const colour = mask[p] === 255 ? [224, 224, 192] : [...voc.subarray(3 * mask[p]!, 3 * mask[p]! + 3)];
        expect([...label.subarray(4 * p, 4 * p + 3)]).toEqual(colour);
        if (mask[p] === 255) continue;
        counted++;
        if (predicted[p] === mask[p]) {
          correct++;
          tp[mask[p]!]++;
        } else {
          fn[mask[p]!]++;
          fp[predicted[p]!]++;
        }
      }
      const iou = (t: number[], f: number[], n: number[]) =>
        t.map((v, k) => (v + f[k]! + n[k]! ? v / (v + f[k]! + n[k]!) : null)).filter((v): v is number => v !== null);
      const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
      expect(entry.metrics!.pixelAccuracy).toBeCloseTo(correct / counted, 12);
      expect(entry.metrics!.meanIoU).toBeCloseTo(mean(iou(tp, fp, fn)), 12);
      for (let k = 0; k < 21; k++) {
        total.tp[k] += tp[k]!;
        total.fp[k] += fp[k]!;
        total.fn[k] += fn[k]!;
      }
      total.correct += correct;
      total.counted += counted;
    }
    expect(summary.metrics.pixelAccuracy).toBeCloseTo(total.correct / total.counted, 12);
    expect(summary.metrics.meanIoU).toBeCloseTo(
      (() => {
        const v = total.tp.map((t, k) => (t + total.fp[k] + total.fn[k] ? t / (t + total.fp[k] + total.fn[k]) : null)).filter((x): x is number => x !== null);
        return v.reduce((a, b) => a + b, 0) / v.length;
      })(),
      12,
    );
    session.destroy();

    const html = readFileSync(join(out, 'report.html'), 'utf8');
    for (const entry of summary.images) for (const f of entry.files) expect(html).toContain(`href="${encodeURIComponent(f.file)}"`);
    expect(html).toContain(ASPP);
    expect(readdirSync(join(out, 'thumbs')).length).toBe(summary.images.reduce((a, e) => a + e.files.length, 0));
    expect(readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

/** A one-node model using an op segscope does not run. */
function unsupportedModel(): Uint8Array {
  const float = { tensor_type: { elem_type: DataType.FLOAT } };
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'unsupported',
      node: [
        { name: 'topk', op_type: 'TopK', input: ['input', 'k'], output: ['values', 'indices'], attribute: [{ name: 'axis', type: AttributeType.INT, i: 1 }] },
        { name: 'det', op_type: 'Det', input: ['values'], output: ['output'] },
      ],
      initializer: [{ name: 'k', dims: [1], data_type: DataType.INT64, int64_data: [2] }],
      input: [{ name: 'input', type: float }],
      output: [{ name: 'output', type: float }],
    },
  });
}

describe('segscope vis: errors are one line naming the fault, exit 1', () => {
  it.each<[string, (dir: string) => { args: string[]; env?: Record<string, string> }, RegExp]>([
    [
      'a missing model',
      () => ({ args: ['vis', 'missing.onnx', join(ROOT, 'test/fixtures/images/rgb.png'), '--layer', ASPP] }),
      /^segscope: cannot read model file 'missing\.onnx'/,
    ],
    [
      'a file that is not ONNX',
      () => ({ args: ['vis', join(ROOT, 'test/fixtures/images/rgb.png'), join(ROOT, 'test/fixtures/images/rgb.png'), '--layer', ASPP] }),
      /^segscope: .*rgb\.png: not a valid ONNX model: the protobuf data is truncated or corrupted/,
    ],
    [
      'unsupported ops, all listed',
      (dir) => {
        writeFileSync(join(dir, 'unsupported.onnx'), unsupportedModel());
        return { args: ['vis', join(dir, 'unsupported.onnx'), join(ROOT, 'test/fixtures/images/rgb.png'), '--layer', 'values'] };
      },
      /^segscope: .*unsupported\.onnx.*(Det.*TopK|TopK.*Det)/,
    ],
    [
      'an input too large for the adapter',
      // 6000x6000: one channel plane alone (144 MB) exceeds lavapipe's 128 MiB binding, so not even a split conv fits.
      () => ({ args: ['vis', MODEL, join(ROOT, 'test/fixtures/images/rgb.png'), '--layer', ASPP, '--input-size', '6000x6000'] }),
      /^segscope: Conv node '\/backbone\/[\w./]+\/Conv' input '[^']+' needs a \d+ byte binding; the adapter allows \d+ bytes per binding and this op cannot be split$/,
    ],
    [
      'no GPU adapter',
      () => ({ args: ['vis', MODEL, join(ROOT, 'test/fixtures/images/rgb.png'), '--layer', ASPP], env: { SEGSCOPE_BACKEND: 'metal' } }),
      /^segscope: no WebGPU adapter found\. Tried: metal \(core\): no adapter\. Install a GPU driver .*apt-get install -t bookworm-backports mesa-vulkan-drivers/,
    ],
    ['--tensor with a model', () => ({ args: ['vis', MODEL, '--tensor', 'x.npy'] }), /^segscope: vis --tensor draws saved tensors without a model/],
    [
      '--labels with --tensor',
      () => ({ args: ['vis', '--tensor', 'x.npy', '--labels', 'masks'] }),
      /^segscope: --labels applies to model runs on images, not to --tensor$/,
    ],
    ['a missing --tensor file', () => ({ args: ['vis', '--tensor', 'missing.npy'] }), /^segscope: --tensor: cannot read 'missing\.npy' \(ENOENT\)$/],
  ])('%s', async (_, setup, message) => {
    const { args, env } = setup(tmp());
    const { code, stderr } = await segscopeWithEnv(env ?? {}, ...args, '--out', tmp());
    const lines = errors(stderr);
    expect(lines, stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(code).toBe(1);
  });

  it('an unreadable image: the others are drawn, the bad one is named at the end', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'images'));
    writeFileSync(join(dir, 'images', 'broken.png'), 'not a png');
    const good = join(dir, 'images', 'good.png');
    writeFileSync(good, readFileSync(join(ROOT, 'test/fixtures/images/rgb.png')));
    const out = join(dir, 'out');
    const { code, stderr } = await segscope('vis', MODEL, join(dir, 'images'), '--layer', ASPP, '--input-size', '33x33', '--out', out, '--quiet');
    expect(errors(stderr)).toEqual([
      `segscope: 1 problem: ${join(dir, 'images', 'broken.png')}: not a JPEG, PNG or WebP image: it starts with bytes 6e 6f 74 20 61 20 70 6e`,
    ]);
    expect(code).toBe(1);
    expect(readdirSync(out).sort()).toEqual(['good_classifier.aspp.project_max.png', 'good_classifier.aspp.project_mean.png', 'good_prediction.png']);
  });
});

describe('segscope vis: interrupted', () => {
  it('Ctrl-C leaves only whole PNGs and no temporary files, exit 130', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'images'));
    for (let i = 0; i < 40; i++) copyFileSync(join(ROOT, 'test/fixtures/images/rgb.png'), join(dir, 'images', `${String(i).padStart(2, '0')}.png`));
    const out = join(dir, 'out');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'src/cli/main.ts'),
        'vis',
        MODEL,
        join(dir, 'images'),
        '--layer',
        ASPP,
        '--input-size',
        '33x33',
        '--grid',
        '8',
        '--out',
        out,
      ],
      { cwd: ROOT, stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const started = () => {
      try {
        return readdirSync(out).length > 0;
      } catch {
        return false;
      }
    };
    while (!started()) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const files = readdirSync(out);
    expect(files.filter((f) => !f.endsWith('.png'))).toEqual([]);
    expect(files.length).toBeLessThan(40 * 4);
    for (const f of files) expect((await readImage(join(out, f))).width).toBeGreaterThan(0);
  });
});
