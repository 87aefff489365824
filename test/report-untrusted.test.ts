/**
 * A model from a stranger: node and tensor names holding markup, quotes and
 * '..' paths go through `segscope vis --report` and the report opens in
 * Chromium. Nothing runs, every picture loads, no file lands outside --out.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../src/onnx/decode.js';
import { launchBrowser, noBrowser } from './helpers/browser.js';
import { errors, ROOT, segscope } from './helpers/cli.js';

const HOSTILE = `<script>window.__pwned=1</script>"'../../escape`;

/** The os16 fixture with the ASPP projection's output and node renamed to HOSTILE. */
function hostileModel(dir: string): string {
  const source = join(ROOT, 'test/fixtures/deeplabv3plus_os16.onnx');
  const model = decodeModel(readFileSync(source), source);
  const target = '/classifier/aspp/project/project.2/Relu_output_0';
  const tensor = `${HOSTILE}<img src=x onerror="window.__pwned=2">`;
  for (const node of model.graph!.node!) {
    if (node.output?.includes(target)) node.name = `${HOSTILE} node`;
    node.input = node.input?.map((n) => (n === target ? tensor : n));
    node.output = node.output?.map((n) => (n === target ? tensor : n));
  }
  const path = join(dir, 'model.onnx');
  writeFileSync(path, encodeModel(model));
  return path;
}

describe.skipIf(noBrowser)('an untrusted model through vis --report, in Chromium', () => {
  it('renders the hostile names as text, runs nothing and writes only inside --out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'segscope-untrusted-'));
    const model = hostileModel(dir);
    const out = join(dir, 'a', 'out');
    mkdirSync(out, { recursive: true });
    const { code, stdout, stderr } = await segscope(
      'vis',
      model,
      join(ROOT, 'test/fixtures/images/rgb.png'),
      '--layer',
      '*__pwned*',
      '--input-size',
      '65x65',
      '--out',
      out,
      '--report',
      '--json',
    );
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as { images: { files: { file: string; tensor?: string }[] }[] };
    const maps = summary.images[0]!.files.filter((f) => f.tensor?.includes('__pwned'));
    expect(maps.length).toBe(2);
    for (const f of maps) expect(f.file).toMatch(/^[A-Za-z0-9._-]+\.png$/);
    // Nothing escaped the output folder.
    expect(readdirSync(join(dir, 'a')).sort()).toEqual(['out']);
    expect(readdirSync(dir).sort()).toEqual(['a', 'model.onnx']);

    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const dialogs: string[] = [];
      page.on('dialog', (d) => void dialogs.push(d.message()));
      await page.goto(pathToFileURL(join(out, 'report.html')).href);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(dialogs).toEqual([]);
      expect(await page.locator('script').count()).toBe(0);
      const text = (await page.textContent('body'))!;
      expect(text).toContain(`${HOSTILE}<img src=x onerror="window.__pwned=2">`);
      const images = await page.locator('img').evaluateAll((els) => els.map((e) => (e as HTMLImageElement).naturalWidth));
      expect(images.length).toBeGreaterThanOrEqual(3);
      for (const w of images) expect(w).toBeGreaterThan(0);
    } finally {
      await browser.close();
    }
  });
});
