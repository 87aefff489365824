/** `segscope vis` as a user runs it: a child process, real files. */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { readImage } from '../src/io/image.js';

const MODEL = join(ROOT, 'test/fixtures/deeplabv3plus_os16.onnx');
const IMAGES = join(ROOT, 'test/fixtures/images');
const RGB = join(IMAGES, 'rgb.png');
const ONE = join(IMAGES, 'one.jpg');
const ASPP = 'classifier.aspp.project';
const tmp = () => mkdtempSync(join(tmpdir(), 'segscope-vis-'));

interface Summary {
  inputSize: number[];
  size: number[];
  layers: { pattern: string; tensors: { name: string; shape: number[] }[] }[];
  images: {
    image: string;
    files: { file: string; kind: string; layer?: string; reduce?: string; shape?: number[]; range?: [number, number]; width: number; height: number }[];
  }[];
  failed: string[];
}

describe('segscope vis', () => {
  it('writes one PNG per image x layer x reduction at the input size, the prediction, and lists them with --json', async () => {
    const out = tmp();
    const { code, stdout, stderr } = await segscope('vis', MODEL, RGB, ONE, '--layer', ASPP, '--input-size', '65x65', '--out', out, '--json');
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.inputSize).toEqual([65, 65]);
    expect(summary.layers).toEqual([{ pattern: ASPP, tensors: [{ name: '/classifier/aspp/project/project.2/Relu_output_0', shape: [1, 32, 5, 5] }] }]);
    expect(summary.images.map((i) => i.image)).toEqual([RGB, ONE]);
    const expected = ['rgb', 'one'].flatMap((s) => [`${s}_classifier.aspp.project_max.png`, `${s}_classifier.aspp.project_mean.png`, `${s}_prediction.png`]);
    expect(summary.images.flatMap((i) => i.files.map((f) => f.file))).toEqual(expected);
    expect(readdirSync(out).sort()).toEqual([...expected].sort());
    for (const f of summary.images.flatMap((i) => i.files)) {
      expect([f.width, f.height]).toEqual([65, 65]);
      const png = await readImage(join(out, f.file));
      expect([png.width, png.height], f.file).toEqual([65, 65]);
      if (f.kind === 'map') {
        expect(f.shape).toEqual([1, 32, 5, 5]);
        expect(f.range![0]).toBeLessThanOrEqual(f.range![1]);
      }
    }
    expect(readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('takes a folder and a glob, --size, --reduce channel:K, --overlay, --grid, --normalize shared and a regex layer', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'photos'));
    copyFileSync(RGB, join(dir, 'photos', 'b.png'));
    copyFileSync(ONE, join(dir, 'photos', 'a.jpg'));
    copyFileSync(RGB, join(dir, 'photos', 'notes.txt'));
    const out = join(dir, 'out');
    const folder = await segscope(
      'vis',
      MODEL,
      join(dir, 'photos'),
      '--layer',
      ASPP,
      '--input-size',
      '65x65',
      '--size',
      '20x30',
      '--reduce',
      'channel:3',
      '--overlay',
      '0.5',
      '--grid',
      '4',
      '--out',
      out,
      '--json',
      '--quiet',
    );
    expect(errors(folder.stderr)).toEqual([]);
    expect(folder.code).toBe(0);
    const s = JSON.parse(folder.stdout) as Summary;
    expect(s.images.map((i) => i.image)).toEqual([join(dir, 'photos', 'a.jpg'), join(dir, 'photos', 'b.png')]);
    const map = await readImage(join(out, 'a_classifier.aspp.project_channel_3.png'));
    expect([map.height, map.width]).toEqual([20, 30]);
    const grid = s.images[0]!.files.find((f) => f.kind === 'grid')!;
    expect(grid.file).toBe('a_classifier.aspp.project_grid.png');
    expect((await readImage(join(out, grid.file))).width).toBe(grid.width);

    const out2 = join(dir, 'out2');
    const glob = await segscope(
      'vis',
      MODEL,
      join(dir, 'photos', '*.png'),
      '--layer',
      '/backbone.*Relu_output_0$/',
      '--input-size',
      '33x33',
      '--normalize',
      'shared',
      '--reduce',
      'mean',
      '--out',
      out2,
      '--json',
    );
    expect(errors(glob.stderr)).toEqual([]);
    expect(glob.code).toBe(0);
    const g = JSON.parse(glob.stdout) as Summary;
    expect(g.images.map((i) => i.image)).toEqual([join(dir, 'photos', 'b.png')]);
    const maps = g.images[0]!.files.filter((f) => f.kind === 'map');
    expect(maps.length).toBe(g.layers[0]!.tensors.length);
    expect(maps.length).toBeGreaterThan(1);
    // shared: one range for every tensor of the pattern
    for (const m of maps) expect(m.range).toEqual(maps[0]!.range);
    for (const m of maps) expect((await readImage(join(out2, m.file))).width).toBe(33);
  });

  it.each([
    ['no images', [join(ROOT, 'test/fixtures/colormaps')], /no \.jpg, \.jpeg, \.png or \.webp images/],
    ['a glob matching nothing', [join(IMAGES, '*.nothing')], /no file matches/],
    ['a missing file', [join(IMAGES, 'missing.png')], /no such image, folder or glob/],
    ['an unknown layer', [RGB, '--layer', 'classifier.aspp.projec'], /no tensor matches 'classifier\.aspp\.projec'\. Closest names: /],
    ['a bad --reduce', [RGB, '--reduce', 'max,median'], /--reduce: unknown reduction 'median': use one of max, mean/],
    ['a channel out of range', [RGB, '--reduce', 'channel:99'], /channel K=99 is out of range: the tensor has C=32/],
    ['a bad --size', [RGB, '--size', '64'], /--size '64': expected HEIGHTxWIDTH/],
    ['a bad --normalize', [RGB, '--normalize', 'zscore'], /--normalize 'zscore': use minmax, p1-99 or shared/],
    ['a bad --overlay', [RGB, '--overlay', '2'], /--overlay '2': expected an opacity between 0 and 1/],
    ['a bad --colormap', [RGB, '--colormap', 'rainbow'], /--colormap 'rainbow': use one of jet/],
    ['a bad --precision', [RGB, '--precision', 'half'], /--precision 'half': expected f32 or f16/],
  ])('%s: one line, exit 1', async (_, args, message) => {
    const rest = args.includes('--layer') ? args : [...args, '--layer', ASPP];
    const { code, stdout, stderr } = await segscope('vis', MODEL, ...rest, '--input-size', '65x65', '--out', tmp());
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = errors(stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^segscope: /);
    expect(lines[0]).toMatch(message);
  });

  it('--help has examples; missing --layer is an error', async () => {
    const help = await segscope('vis', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Examples:\n {2}segscope vis /);
    const none = await segscope('vis', MODEL, RGB);
    expect(none.code).toBe(1);
    expect(errors(none.stderr)).toEqual([expect.stringMatching(/needs at least one --layer PATTERN/)]);
  });
});

describe('segscope vis says how it fed the model', () => {
  it('prints and records the input size and normalisation used, and where each came from', async () => {
    const run = async (...extra: string[]) => {
      const out = tmp();
      const text = await segscope('vis', MODEL, RGB, '--layer', ASPP, '--out', out, ...extra);
      const json = await segscope('vis', MODEL, RGB, '--layer', ASPP, '--out', out, '--json', ...extra);
      for (const r of [text, json]) expect([errors(r.stderr), r.code]).toEqual([[], 0]);
      return { line: text.stdout.split('\n')[0], input: (JSON.parse(json.stdout) as { input: object }).input };
    };
    // No metadata: ImageNet's mean and std, at the size given.
    const defaults = await run('--input-size', '65x65');
    expect(defaults.line).toBe(
      'input 65x65 (option), (x/255 - mean)/std, mean [0.485, 0.456, 0.406] (default (ImageNet)), std [0.229, 0.224, 0.225] (default (ImageNet))',
    );
    expect(defaults.input).toEqual({
      sizeFrom: 'option',
      mean: [0.485, 0.456, 0.406],
      meanFrom: 'default (ImageNet)',
      std: [0.229, 0.224, 0.225],
      stdFrom: 'default (ImageNet)',
    });
    // (x - 128) / 256 on 0..255 pixels, as the flags take it: mean 128/255, std 256/255.
    const scaled = await run('--input-size', '33x33', '--mean', '0.50196,0.50196,0.50196', '--std', '1.00392,1.00392,1.00392');
    expect(scaled.line).toBe('input 33x33 (option), (x/255 - mean)/std, mean [0.502, 0.502, 0.502] (option), std [1.0039, 1.0039, 1.0039] (option)');
  });
});
