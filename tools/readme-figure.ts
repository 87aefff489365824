/**
 * The README's figure: `segscope demo` as a user sees it, a screenshot of
 * the top of its report.html in headless Chromium (Debian's, through
 * playwright-core): the header and the rows of the images named by --show
 * (file names, in the report's order).
 *
 *   node --import tsx tools/readme-figure.ts [--show street.png,scene_2.png] [--out docs/demo-report.png]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { launchBrowser } from '../test/helpers/browser.js';

const { values } = parseArgs({
  options: { show: { type: 'string', default: 'street.png,scene_2.png' }, out: { type: 'string', default: 'docs/demo-report.png' } },
});
const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'segscope-figure-'));
execFileSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'demo', '--out', dir, '--quiet'], { cwd: root, stdio: 'inherit' });

const browser = await launchBrowser();
const page = await browser.newPage({ viewport: { width: 1500, height: 1000 }, deviceScaleFactor: 1 });
await page.goto(pathToFileURL(join(dir, 'report.html')).href);
// The other rows go; the picture ends below the last one kept.
const bottom = await page.evaluate((show) => {
  const rows = [...document.querySelectorAll('tbody tr')];
  for (const row of rows) if (!show.some((name) => row.textContent?.includes(name))) row.remove();
  const last = [...document.querySelectorAll('tbody tr')].at(-1);
  return last ? last.getBoundingClientRect().bottom + window.scrollY + 8 : document.body.scrollHeight;
}, values.show.split(','));
const width = await page.evaluate(() => Math.min(document.body.scrollWidth, 1500));
const out = resolve(root, values.out);
mkdirSync(dirname(out), { recursive: true });
await page.screenshot({ path: out, clip: { x: 0, y: 0, width, height: bottom }, fullPage: true });
await browser.close();
console.log(`wrote ${out} (${width}x${Math.round(bottom)}) from ${join(dir, 'report.html')}`);
