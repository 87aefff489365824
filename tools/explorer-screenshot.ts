/**
 * A picture of the explorer as `segscope serve` opens it with no argument:
 * the default model and its samples, panel A on the ASPP output (max over
 * channels), panel B on the decoder's low-level projection (mean), and the
 * cursor on panel A's map, so that its hover line states the tensor element
 * and its value; the module tree scrolled to the two layers. Served in-process and shown in headless Chromium with
 * WebGPU on SwiftShader (the tests' helpers, test/helpers/explorer.ts and
 * browser.ts); the picture is the top of the page, header to the end of the
 * panels.
 *
 *   node --import tsx tools/explorer-screenshot.ts [OUT.png]    (default docs/explorer.png, beside the README's figure)
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { launchWebGpuBrowser } from '../test/helpers/browser.js';
import { defaultFiles, serveExplorer, waitForLayer } from '../test/helpers/explorer.js';

const root = join(import.meta.dirname, '..');
const out = resolve(root, process.argv[2] ?? 'docs/explorer.png');
const WIDTH = 1400;
const HEIGHT = 900;

const [browser, server] = await Promise.all([launchWebGpuBrowser(), serveExplorer(defaultFiles())]);
try {
  const page = await browser.newPage({ viewport: { width: WIDTH, height: HEIGHT }, deviceScaleFactor: 1 });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(server.url);
  await waitForLayer(page, 'a', '/classifier/aspp/project/', 300_000);
  await waitForLayer(page, 'b', '/classifier/project/', 300_000);
  // The defaults, as the page opens: a change of them would make this another picture.
  const shown = await page.evaluate(() => ['a', 'b'].map((id) => document.querySelector(`#${id}-info`)!.textContent ?? ''));
  if (!/ max /.test(shown[0]!) || !/ mean /.test(shown[1]!)) throw new Error(`the panels are not ASPP max and projection mean:\n${shown.join('\n')}`);
  // The tree scrolled to the panels' layers, which it highlights (they are near its end).
  await page.evaluate(() => {
    const aside = document.querySelector('aside')!;
    const row = document.querySelector('#tree tr[data-pattern="classifier.aspp.project"]')!;
    aside.scrollTop += row.getBoundingClientRect().top - aside.getBoundingClientRect().top - aside.clientHeight / 3;
  });
  // The canvas is scaled to its panel's width: the cursor goes to a fraction of the drawn box.
  const box = (await page.locator('#a-canvas').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.62, box.y + box.height * 0.4);
  await page.waitForFunction(() => /=/.test(document.querySelector('#a-hover')!.textContent ?? ''));
  if (problems.length) throw new Error(`the page reported problems:\n${problems.join('\n')}`);
  // Down to the end of the panels (the prediction below them is cut), within the viewport.
  const bottom = await page.evaluate(() => document.querySelector('#panels')!.getBoundingClientRect().bottom + 8);
  const height = Math.min(HEIGHT, Math.ceil(bottom));
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out, clip: { x: 0, y: 0, width: WIDTH, height } });
  console.log(`wrote ${out} (${WIDTH}x${height}, ${Math.round(statSync(out).size / 1024)} KiB)`);
} finally {
  await browser.close();
  await server.close();
}
