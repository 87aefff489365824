import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { type GivenFiles, preloadOf, startExplorerServer, type ExplorerServer } from '../../src/io/explorer-server.js';
import { buildExplorer } from '../../tools/build-explorer.js';
import { ROOT } from './cli.js';

/** The embedded default model and its samples with their masks, as `segscope serve` with no argument gives them. */
export const DEFAULT_MODEL = join(ROOT, 'weights/deeplabv3plus_scenes.onnx');
export const SAMPLES = join(ROOT, 'weights/samples');
export const SAMPLE_NAMES = ['scene_1', 'scene_2', 'scene_3', 'scene_4', 'scene_5', 'street'];

let built: Promise<string> | undefined;

/** The explorer built once per test file, into a temporary folder (never dist/, which other tests may be building). */
export function explorerBuild(): Promise<string> {
  built ??= (async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'segscope-explorer-')), 'explorer');
    await buildExplorer(dir);
    return dir;
  })();
  return built;
}

/** The default model and samples (with labels) as given files. */
export function defaultFiles(): GivenFiles {
  return {
    model: { path: 'weights/deeplabv3plus_scenes.onnx', externalData: [] },
    images: SAMPLE_NAMES.map((n) => ({ path: `weights/samples/${n}.png`, label: `weights/samples/labels/${n}.png` })),
    labels: 'weights/samples/labels',
  };
}

/** `segscope serve` in-process on a free port, with `given` preloaded (paths relative to the repository). */
export async function serveExplorer(given: GivenFiles): Promise<ExplorerServer> {
  const abs = (p: string) => join(ROOT, p);
  const { preload, files } = preloadOf(given);
  return startExplorerServer({ appDir: await explorerBuild(), preload, files: files.map((f) => ({ ...f, path: abs(f.path) })), host: '127.0.0.1', port: 0 });
}

/** A page of the explorer whose uncaught exceptions and console errors are collected (a test expects none). */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // The 404 of preload.json on a static host is expected; anything else is a problem.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  return { page, problems };
}

/** Waits until panel `id` shows a map of `layer` (its info line names the tensor and range) and returns the info line. */
export async function waitForMap(page: Page, id: string, timeout = 120_000): Promise<string> {
  const info = page.locator(`#${id}-info`);
  await page.waitForFunction((sel) => /range \[/.test(document.querySelector(sel)?.textContent ?? ''), `#${id}-info`, { timeout });
  return (await info.textContent()) ?? '';
}

/** Waits until panel `id` shows a map of a tensor whose name starts with `prefix` (a module's scope, e.g. '/backbone/layer4/'). */
export async function waitForLayer(page: Page, id: string, prefix: string, timeout = 120_000): Promise<void> {
  await page.waitForFunction(
    ([sel, start]) => {
      const info = document.querySelector<HTMLElement>(sel);
      return !!info?.dataset.tensor?.startsWith(start) && /range \[/.test(info.textContent ?? '');
    },
    [`#${id}-info`, prefix] as const,
    { timeout },
  );
}

/** The RGBA pixels on a canvas of the page. */
export async function canvasPixels(page: Page, selector: string): Promise<{ width: number; height: number; rgba: Uint8Array }> {
  const { width, height, data } = await page.evaluate((sel) => {
    const canvas = document.querySelector<HTMLCanvasElement>(sel)!;
    const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let binary = '';
    for (let i = 0; i < pixels.length; i += 0x8000) binary += String.fromCharCode(...pixels.subarray(i, i + 0x8000));
    return { width: canvas.width, height: canvas.height, data: btoa(binary) };
  }, selector);
  return { width, height, rgba: new Uint8Array(Buffer.from(data, 'base64')) };
}
