/**
 * A long `segscope vis` run: N images (default 10,000) streamed through one
 * compiled model, with the process's resident memory sampled from
 * /proc/PID/status while it runs. Memory must stay flat: only each image's
 * file list is kept.
 *
 *   node --import tsx bench/vis-stream.ts [--images 10000] [--size 33]
 *
 * The images are hard links to one fixture picture (a folder of N files
 * without N copies); the model is test/fixtures/deeplabv3plus_os16.onnx with
 * the ASPP output drawn max and mean, plus the prediction: 3 PNGs an image.
 * Writes bench/results/vis-stream.json.
 */
import { spawn } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { images: { type: 'string', default: '10000' }, size: { type: 'string', default: '33' } } });
const count = Number(values.images);
const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'segscope-stream-'));
const images = join(dir, 'images');
mkdirSync(images);
for (let i = 0; i < count; i++) linkSync(join(root, 'test/fixtures/images/rgb.png'), join(images, `${String(i).padStart(6, '0')}.png`));

const rssMiB = (pid: number): number | undefined => {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
};

const out = join(dir, 'out');
mkdirSync(out);
const args = ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'vis', join(root, 'test/fixtures/deeplabv3plus_os16.onnx'), images];
args.push('--layer', 'classifier.aspp.project', '--input-size', `${values.size}x${values.size}`, '--out', out, '--quiet');
const t0 = performance.now();
const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
const samples: { seconds: number; images: number; rssMiB: number }[] = [];
const timer = setInterval(() => {
  const rss = rssMiB(child.pid!);
  // Three PNGs an image: the files written so far say how far the run is.
  if (rss !== undefined) samples.push({ seconds: (performance.now() - t0) / 1000, images: Math.floor(readdirSync(out).length / 3), rssMiB: rss });
}, 2000);
const code = await new Promise<number | null>((done) => child.on('exit', done));
clearInterval(timer);
const seconds = (performance.now() - t0) / 1000;
const written = readdirSync(out).length;
rmSync(dir, { recursive: true, force: true });

// Flatness: resident memory after the first 10% of the images against the end.
const settled = samples.filter((s) => s.images >= count / 10);
const first = settled[0]?.rssMiB ?? NaN;
const last = settled.at(-1)?.rssMiB ?? NaN;
const peak = Math.max(...samples.map((s) => s.rssMiB));
const result = {
  images: count,
  inputSize: `${values.size}x${values.size}`,
  exitCode: code,
  filesWritten: written,
  seconds: Number(seconds.toFixed(1)),
  imagesPerSecond: Number((count / seconds).toFixed(1)),
  rssMiB: { afterTenthOfImages: Number(first.toFixed(1)), end: Number(last.toFixed(1)), peak: Number(peak.toFixed(1)) },
  samples: samples
    .filter((_, i) => i % Math.max(1, Math.floor(samples.length / 40)) === 0)
    .map((s) => ({ ...s, seconds: Number(s.seconds.toFixed(1)), rssMiB: Number(s.rssMiB.toFixed(1)) })),
  date: new Date().toISOString(),
};
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/vis-stream.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `${count} images in ${result.seconds} s (${result.imagesPerSecond}/s), exit ${code}, ${written} files; ` +
    `RSS ${result.rssMiB.afterTenthOfImages} MiB after 10% of the images, ${result.rssMiB.end} MiB at the end, peak ${result.rssMiB.peak} MiB`,
);
