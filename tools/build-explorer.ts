/**
 * The explorer page as static files (what `segscope serve` serves, and what
 * any static host can): src/explorer/main.ts bundled by esbuild as app.js
 * (+ app.js.map), index.html and style.css, and the embedded default model
 * with its sample scenes and their masks in default/, listed in
 * default.json (a Preload, src/preload.ts) so that they are one click away.
 *
 *   node --import tsx tools/build-explorer.ts [OUT_DIR]    (default dist/explorer; npm run build runs it)
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { DEFAULT_MODEL, SAMPLE_LABELS, SAMPLES } from '../src/cli/package-files.js';
import { collectFiles, IMAGE_EXTENSIONS, labelFor } from '../src/cli/vis-files.js';
import type { Preload } from '../src/preload.js';

const ROOT = join(import.meta.dirname, '..');
const SOURCE = join(ROOT, 'src/explorer');

/** Builds the page into `outDir`, replacing what is there only once the whole build has been written. */
export async function buildExplorer(outDir: string): Promise<void> {
  const out = resolve(outDir);
  await mkdir(dirname(out), { recursive: true });
  // Next to OUT_DIR, so the final rename stays on one filesystem.
  const tmp = await mkdtemp(join(dirname(out), `.${basename(out)}-`));
  try {
    // mkdtemp's folder is private (0700); the build is for any web server to read.
    await chmod(tmp, 0o755);
    await build({
      entryPoints: [join(SOURCE, 'main.ts')],
      bundle: true,
      outfile: join(tmp, 'app.js'),
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      sourcemap: true,
      logLevel: 'warning',
    });
    for (const file of ['index.html', 'style.css']) await copyFile(join(SOURCE, file), join(tmp, file));
    await writeFile(join(tmp, 'default.json'), `${JSON.stringify(await copyDefault(tmp), null, 2)}\n`);
    await replaceDir(tmp, out);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Copies the default model and its samples (with masks, paired as `segscope
 * serve` pairs them with no arguments) into dir/default/; returns their
 * manifest, URLs relative to the page and paths relative to a checkout.
 */
async function copyDefault(dir: string): Promise<Preload> {
  const place = async (file: string, folder: string) => {
    const name = basename(file);
    const url = [folder, encodeURIComponent(name)].join('/');
    await mkdir(join(dir, folder), { recursive: true });
    await copyFile(file, join(dir, folder, name));
    return { name, url, path: checkoutPath(file) };
  };
  const images: Preload['images'] = [];
  for (const image of await collectFiles([SAMPLES], IMAGE_EXTENSIONS, 'image')) {
    const label = await labelFor(SAMPLE_LABELS, basename(image, extname(image)));
    images.push({ ...(await place(image, 'default/samples')), ...(label ? { label: await place(label, 'default/samples/labels') } : {}) });
  }
  return { model: await place(DEFAULT_MODEL, 'default'), images, labels: checkoutPath(SAMPLE_LABELS) };
}

/** weights/… as a "copy as command" from the page writes it: relative to the repository root, with '/'. */
const checkoutPath = (file: string) => relative(ROOT, file).split(sep).join('/');

/** Puts `tmp` at `out`: a folder cannot be renamed over a non-empty one, so the old build moves aside first. */
async function replaceDir(tmp: string, out: string): Promise<void> {
  const old = `${out}.old-${randomBytes(4).toString('hex')}`;
  const hadOld = await rename(out, old).then(
    () => true,
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    },
  );
  try {
    await rename(tmp, out);
  } catch (e) {
    if (hadOld) await rename(old, out);
    throw e;
  }
  if (hadOld) await rm(old, { recursive: true, force: true });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? join(ROOT, 'dist/explorer');
  await buildExplorer(out);
  console.log(`explorer built in ${out}`);
}
