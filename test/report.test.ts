/**
 * The HTML report of `segscope vis --report`: escaping of untrusted names,
 * file references, column layout, thumbnails, and the page as chromium
 * renders it.
 */
import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { writePng } from '../src/io/image.js';
import { escapeHtml, fileUrl, renderReport, writeReport, type ImageResult, type OutputFile, type ReportData } from '../src/io/report.js';
import { launchBrowser, noBrowser } from './helpers/browser.js';

const HOSTILE = [
  '<script>window.__pwned=1</script>',
  '<img src=x onerror="window.__pwned=1">',
  `"><svg onload=alert(1)>`,
  `' onmouseover='alert(1)`,
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a hostile name, meant to look like a template literal.
  '`${alert(1)}` & &amp; </style></title>',
];

function report(images: ImageResult[], extra: Partial<ReportData> = {}): ReportData {
  return {
    model: 'deeplabv3plus.onnx',
    adapter: 'lavapipe (Vulkan, CPU)',
    inputSize: [513, 513],
    size: [513, 513],
    command: 'segscope vis deeplabv3plus.onnx photos/ --report',
    images,
    failed: [],
    seconds: 12.5,
    ...extra,
  };
}

const map = (file: string, layer: string, reduce: string, more: Partial<OutputFile> = {}): OutputFile => ({
  file,
  kind: 'map',
  layer,
  tensor: `/${layer}/Conv_output_0`,
  shape: [1, 256, 33, 33],
  reduce,
  range: [0, 4.25],
  width: 513,
  height: 513,
  ...more,
});

const ALLOWED_ATTRIBUTES = new Set(
  'lang charset name content http-equiv href src width height alt title class loading colspan rowspan scope style open'.split(' '),
);

/**
 * Checks that markup cannot have been injected: outside <style>, every '<'
 * starts a well-formed tag whose attributes are known names with
 * double-quoted values holding no quote or angle bracket, and every style
 * attribute is a swatch colour.
 */
function expectNoInjection(page: string): void {
  expect(page).not.toMatch(/<script/i);
  const body = page.replace(/<style>[^<]*<\/style>/, '').replace(/^<!doctype html>/, '');
  const tags = /<\/?([a-z][a-z0-9]*)((?:\s+[a-z-]+(?:="[^"<>]*")?)*)\s*>/g;
  expect(body.replace(tags, ''), 'a "<" outside a well-formed tag').not.toContain('<');
  for (const [, , attributes] of body.matchAll(tags)) {
    for (const [, name, value] of attributes!.matchAll(/([a-z-]+)(?:="([^"]*)")?/g)) {
      expect(ALLOWED_ATTRIBUTES, `attribute ${name}`).toContain(name);
      if (name === 'style') expect(value).toMatch(/^background: rgb\(\d{1,3} \d{1,3} \d{1,3}\)$/);
    }
  }
}

describe('escaping', () => {
  it('escapes the characters that end text or a quoted attribute', () => {
    expect(escapeHtml(`<a href="x" title='y'>\`&`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&#96;&amp;');
  });

  it('escapes hostile names from the model, files and command line in every context', () => {
    const images = HOSTILE.map((name, k) => ({
      image: `photos/${name}.jpg`,
      files: [
        { file: `in${k}.png`, kind: 'input' as const, width: 513, height: 513 },
        map(`m${k}.png`, name, name, { tensor: name, range: [-1, 1] }),
        { file: `g${k}.png`, kind: 'grid' as const, layer: name, tensor: name, width: 800, height: 600 },
      ],
      metrics: { pixelAccuracy: 0.9, meanIoU: 0.5 },
    }));
    const page = renderReport(
      report(images, {
        model: HOSTILE[0]!,
        adapter: HOSTILE[1]!,
        command: `segscope vis m.onnx --layer '${HOSTILE[1]}' --layer ${HOSTILE[4]}`,
        classes: HOSTILE.map((name, k) => ({ name, color: [k * 50, 300, -4] })),
        failed: HOSTILE.map((h) => `photos/${h}.jpg: cannot decode`),
        metrics: { pixelAccuracy: 0.9, meanIoU: 0.5, perClassIoU: [0.5, null] },
      }),
    );
    expectNoInjection(page);
    for (const name of HOSTILE) expect(page).toContain(escapeHtml(name));
    expect(page).toContain('rgb(0 255 0)'); // colours clamped to 0..255
  });

  it('writes only numbers into a swatch style, whatever the labels file held', () => {
    const color = ['red;}</style><script>', 1e9, NaN] as unknown as [number, number, number];
    const page = renderReport(report([], { classes: [{ name: 'x', color }] }));
    expectNoInjection(page);
    expect(page).toContain('style="background: rgb(0 255 0)"');
  });
});

describe('file references', () => {
  it('percent-encodes each path segment', () => {
    expect(fileUrl(`a b#c?d%e"f'g.png`)).toBe("a%20b%23c%3Fd%25e%22f'g.png");
    expect(fileUrl('thumbs/x y.png')).toBe('thumbs/x%20y.png');
    expect(fileUrl('javascript:alert(1)')).toBe('javascript%3Aalert(1)'); // a relative name, not a scheme
  });

  it('refuses absolute paths and ".." segments', () => {
    for (const bad of ['../secret.png', 'a/../../b.png', '..', 'a\\..\\b.png', '/etc/passwd', '\\\\server\\x.png', 'C:\\x.png', 'c:x.png', '']) {
      expect(() => fileUrl(bad), bad).toThrow(InputError);
    }
    expect(() => renderReport(report([{ image: 'a.jpg', files: [map('../a.png', 'aspp', 'max')] }]))).toThrow(/not a relative path/);
  });

  it('refuses before reading anything outside the out folder', async () => {
    await expect(writeReport(tmpdir(), report([{ image: 'a.jpg', files: [map('../etc/passwd', 'aspp', 'max')] }]))).rejects.toThrow(InputError);
  });
});

describe('layout', () => {
  /** [class, text, colspan] of each header cell, in document order. */
  const headers = (page: string) =>
    [...page.matchAll(/<th class="(\w+)"(?: (?:rowspan|colspan)="(\d+)")?>(?:<code>)?([^<]*)/g)].map(([, cls, span, text]) => [cls, text, span]);
  /** The map file of each cell of each image row, '' for an empty cell. */
  const rows = (page: string) =>
    [...page.matchAll(/<tr>\n<th class="image" scope="row">([\s\S]*?)\n<\/tr>/g)].map(([, row]) =>
      [...row!.matchAll(/<td( class="empty")?[^>]*>(?:<figure><a href="([^"]*)")?/g)].map(([, empty, href]) => (empty ? '' : href)),
    );

  it('orders columns by first appearance, grouped under their layer and tensor', () => {
    const images: ImageResult[] = [
      { image: 'a.jpg', files: [map('a_A_max.png', 'A', 'max'), map('a_B_max.png', 'B', 'max'), map('a_A_mean.png', 'A', 'mean')] },
      {
        image: 'b.jpg',
        files: [
          map('b_A_max.png', 'A', 'max'),
          map('b_C_max.png', 'C', 'max', { tensor: 'c2', shape: [1, 48, 129, 129] }),
          { file: 'b_A_grid.png', kind: 'grid', layer: 'A', tensor: '/A/Conv_output_0', width: 900, height: 600 },
          map('b_C1_max.png', 'C', 'max', { tensor: 'c1' }),
        ],
      },
    ];
    const page = renderReport(report(images));
    expect(headers(page)).toEqual([
      ['image', 'Image', '3'],
      ['layer', 'A', '3'],
      ['layer', 'B', '1'],
      ['layer', 'C', '2'],
      ['tensor', '/A/Conv_output_0', '3'],
      ['tensor', '/B/Conv_output_0', '1'],
      ['tensor', 'c2', '1'],
      ['tensor', 'c1', '1'],
      ['reduce', 'max', undefined],
      ['reduce', 'mean', undefined],
      ['reduce', 'channel grid', undefined],
      ['reduce', 'max', undefined],
      ['reduce', 'max', undefined],
      ['reduce', 'max', undefined],
    ]);
    expect(page).toContain('<span class="shape">1 × 48 × 129 × 129</span>');
    expect(rows(page)).toEqual([
      ['a_A_max.png', 'a_A_mean.png', '', 'a_B_max.png', '', ''],
      ['b_A_max.png', '', 'b_A_grid.png', '', 'b_C_max.png', 'b_C1_max.png'],
    ]);
  });

  it('shows input, ground truth and prediction columns only when some image has them', () => {
    const fixed = (f: OutputFile['kind'], file: string): OutputFile => ({ file, kind: f, width: 10, height: 10 });
    const without = renderReport(report([{ image: 'a.jpg', files: [fixed('input', 'a.png'), fixed('prediction', 'p.png')] }]));
    expect(headers(without).map(([, text]) => text)).toEqual(['Image', 'Input', 'Prediction']);
    const page = renderReport(
      report([
        { image: 'a.jpg', files: [fixed('input', 'a.png'), fixed('prediction', 'ap.png')] },
        { image: 'b.jpg', files: [fixed('label', 'bl.png'), fixed('input', 'b.png'), fixed('prediction', 'bp.png')] },
      ]),
    );
    expect(headers(page).map(([, text]) => text)).toEqual(['Image', 'Input', 'Ground truth', 'Prediction']);
    expect(rows(page)).toEqual([
      ['a.png', '', 'ap.png'],
      ['b.png', 'bl.png', 'bp.png'],
    ]);
  });

  it('shows the run, the legend, the failures and the metrics', () => {
    const page = renderReport(
      report([{ image: 'a.jpg', files: [], metrics: { pixelAccuracy: 0.9512, meanIoU: 0.6789 } }], {
        classes: [
          { name: 'background', color: [0, 0, 0] },
          { name: 'aeroplane', color: [128, 0, 0] },
        ],
        failed: ['photos/broken.jpg: cannot decode this JPEG file'],
        metrics: { pixelAccuracy: 0.9512, meanIoU: 0.6789, perClassIoU: [0.9, null] },
        seconds: 125,
      }),
    );
    for (const text of [
      'deeplabv3plus.onnx',
      'lavapipe (Vulkan, CPU)',
      '513 × 513 (H × W)',
      '2 min 5 s',
      '1 processed, 1 failed',
      'photos/broken.jpg: cannot decode',
    ]) {
      expect(page).toContain(text);
    }
    expect(page).toContain('segscope vis deeplabv3plus.onnx photos/ --report');
    expect(page).toMatch(/Mean IoU<\/dt><dd>67\.9 %/);
    expect(page).toContain('mIoU 67.9 %<br>pixel acc. 95.1 %');
    expect(page).toContain('<span class="swatch" style="background: rgb(128 0 0)"></span>aeroplane <span class="iou">—</span>');
  });
});

/** Writes an RGBA PNG whose pixels are f(x / width, y / height) -> [r, g, b]. */
async function picture(path: string, width: number, height: number, f: (x: number, y: number) => number[]): Promise<void> {
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = f(x / width, y / height);
      rgba.set([r!, g!, b!, 255], 4 * (y * width + x));
    }
  }
  await writePng(path, rgba, width, height);
}

describe('thumbnails', () => {
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'segscope-report-'));
  });
  afterAll(() => rm(out, { recursive: true, force: true }));

  it('are at most 160 px on the long side, never enlarged, and link to the full-size files', async () => {
    const sizes: [string, number, number][] = [
      ['wide #1.png', 400, 100],
      ['tall?.png', 90, 321],
      ['small 50%.png', 50, 30],
    ];
    for (const [file, w, h] of sizes) await picture(join(out, file), w, h, (x, y) => [255 * x, 255 * y, 128]);
    const files = sizes.map(([file, width, height]) => map(file, 'aspp', file, { width, height }));
    const path = await writeReport(out, report([{ image: 'a.jpg', files }]));
    expect(path).toBe(join(out, 'report.html'));

    const thumbs = await readdir(join(out, 'thumbs'));
    expect(thumbs.sort()).toEqual(['small_50_.png', 'tall_.png', 'wide_1.png']);
    const size = async (file: string) => {
      const { width, height } = await sharp(join(out, 'thumbs', file)).metadata();
      return [width, height];
    };
    expect(await size('wide_1.png')).toEqual([160, 40]);
    expect(await size('tall_.png')).toEqual([45, 160]);
    expect(await size('small_50_.png')).toEqual([50, 30]);

    const page = await readFile(path, 'utf8');
    expect(page).toContain('<a href="wide%20%231.png"><img src="thumbs/wide_1.png" width="160" height="40"');
    expect(page).toContain('<a href="small%2050%25.png"><img src="thumbs/small_50_.png" width="160" height="96"');
    expect((await readdir(out)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('names the file it cannot read', async () => {
    await expect(writeReport(out, report([{ image: 'a.jpg', files: [map('missing.png', 'aspp', 'max')] }]))).rejects.toThrow(/missing\.png/);
  });
});

// ---------------------------------------------------------------------------
// In a real browser

/** A jet-like colormap of t in 0..1. */
const jet = (t: number) => [4 * t - 1.5, 1.5 - Math.abs(4 * t - 2), 2.5 - 4 * t].map((v) => 255 * Math.min(1, Math.max(0, v)));
const VOC = [
  [0, 0, 0],
  [128, 0, 0],
  [0, 128, 0],
  [128, 128, 0],
  [0, 0, 128],
];

/** Three "street scenes", two layers x two reductions, labels and predictions, with hostile names. */
async function syntheticRun(out: string): Promise<ReportData> {
  const layers = ['aspp.project', '<img src=x onerror="window.__pwned=1">'];
  const names = ['photos/street_01.jpg', `photos/a"b'c&d.png`, '<script>window.__pwned=1</script>.jpg'];
  const S = 192;
  const images: ImageResult[] = [];
  for (const [k, image] of names.entries()) {
    const phase = k * 0.7;
    const region = (x: number, y: number) => (y > 0.65 ? 1 : x + 0.2 * Math.sin(6 * y + phase) > 0.55 ? 2 : y < 0.3 ? 0 : 3);
    const files: OutputFile[] = [];
    const add = async (file: string, f: (x: number, y: number) => number[], entry: Omit<OutputFile, 'file' | 'width' | 'height'>) => {
      await picture(join(out, file), S, S, f);
      files.push({ file, width: S, height: S, ...entry });
    };
    await add(`img${k} #input.png`, (x, y) => [90 + 120 * y, 140 + 60 * x, 200 - 80 * y].map((v, c) => v - 40 * Number(region(x, y) === c)), { kind: 'input' });
    await add(`img${k}_label.png`, (x, y) => VOC[region(x, y)]!, { kind: 'label' });
    await add(`img${k}_prediction.png`, (x, y) => VOC[region(x + 0.04 * Math.sin(20 * y), y)]!, { kind: 'prediction' });
    for (const [l, layer] of layers.entries()) {
      for (const reduce of ['max', 'mean']) {
        const t = (x: number, y: number) => 0.5 + 0.5 * Math.sin(4 * (l + 1) * x + phase) * Math.cos((reduce === 'max' ? 5 : 3) * y);
        await add(`img${k}_${l}_${reduce}.png`, (x, y) => jet(t(x, y)), {
          kind: 'map',
          layer,
          tensor: l ? `/decoder/low/Relu_output_0 "&'` : '/aspp/project/project.2/Relu_output_0',
          shape: l ? [1, 48, 129, 129] : [1, 256, 33, 33],
          reduce,
          range: [reduce === 'max' ? 0 : -0.12, 3.7 + k],
        });
      }
    }
    images.push({ image, files, metrics: { pixelAccuracy: 0.93 - 0.02 * k, meanIoU: 0.71 - 0.05 * k } });
  }
  return report(images, {
    size: [S, S],
    command: `segscope vis deeplabv3plus.onnx photos/ --layer aspp.project --layer '${layers[1]}' --reduce max,mean --out out/ --report`,
    classes: ['background', 'road', 'vegetation', 'building', '<b>sky</b>'].map((name, k) => ({ name, color: VOC[k] as [number, number, number] })),
    failed: ['photos/broken <script>.jpg: cannot decode this JPEG file: premature end of data'],
    metrics: { pixelAccuracy: 0.91, meanIoU: 0.66, perClassIoU: [0.95, 0.88, 0.71, 0.52, null] },
  });
}

describe.skipIf(noBrowser)('the report in chromium', () => {
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'segscope-report-browser-'));
  });
  afterAll(() => rm(out, { recursive: true, force: true }));

  it('renders hostile names as text, loads every thumbnail and links to the full-size files', async () => {
    const data = await syntheticRun(out);
    const path = await writeReport(out, data);
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1500, height: 700 } });
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('requestfailed', (r) => problems.push(`${r.url()}: ${r.failure()?.errorText}`));
      await page.goto(pathToFileURL(path).href, { waitUntil: 'load' });
      // Lazy images: scroll through the page, then wait for all of them.
      await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
      await page.waitForFunction(() => Array.from(document.images).every((img) => img.complete));

      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(await page.evaluate(() => document.querySelectorAll('script, svg, [onerror], [onload]').length)).toBe(0);
      const images = await page.evaluate(() => Array.from(document.images).map((img) => ({ src: img.src, loaded: img.naturalWidth > 0 })));
      expect(images).toHaveLength(3 * 7);
      expect(images.filter((img) => !img.loaded)).toEqual([]);
      expect(problems).toEqual([]);

      const text = (await page.textContent('body'))!;
      for (const label of [
        'Input',
        'Ground truth',
        'Prediction',
        'aspp.project',
        '<img src=x onerror="window.__pwned=1">',
        '/decoder/low/Relu_output_0 "&\'',
        'max',
        'mean',
      ]) {
        expect(text).toContain(label);
      }
      for (const image of data.images) expect(text).toContain(image.image);
      expect(text).toContain('<b>sky</b>');
      expect(text).toContain('photos/broken <script>.jpg');

      const links = await page.evaluate(() =>
        Array.from(document.querySelectorAll('td a')).map((a) => ({ href: (a as HTMLAnchorElement).href, thumb: a.querySelector('img')!.src })),
      );
      expect(links).toHaveLength(images.length);
      for (const { href, thumb } of links) {
        expect(thumb).toContain('/thumbs/');
        const full = fileURLToPath(href);
        expect(existsSync(full), full).toBe(true);
        expect(
          data.images.flatMap((i) => i.files).some((f) => join(out, f.file) === full),
          full,
        ).toBe(true);
      }

      // The column headers stay in view while scrolling through the rows.
      const headerTop = await page.evaluate(() => document.querySelector('thead')!.getBoundingClientRect().top);
      expect(Math.abs(headerTop)).toBeLessThan(1);

      await page.evaluate(() => window.scrollTo(0, 0));
      const screenshot = join(out, 'report.png');
      await page.screenshot({ path: screenshot, fullPage: true });
      await copyFile(screenshot, '/tmp/report-screenshot.png');
      await page.evaluate(() => window.scrollTo(0, 420));
      await page.screenshot({ path: '/tmp/report-screenshot-scrolled.png' });
    } finally {
      await browser.close();
    }
  });
});

if (noBrowser) console.warn(`skipping the report's browser test: ${noBrowser}`);
