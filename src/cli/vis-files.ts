import type { Stats } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { InputError } from '../errors.js';
import { writePng } from '../io/image.js';
import type { OutputFile } from '../io/report.js';
import { globToRegExp } from '../runtime/select.js';
import type { RgbaImage } from '../vis/rgba.js';
import type { LayerPictures } from '../workflow/draw.js';
import { pictureName, safeFileName } from '../workflow/file-names.js';

/** vis's files: the inputs it collects (serve collects its images the same way), and the PNGs it names and writes for the workflow's pictures. */

/** Writes a picture as outDir/<name>.png, the name made safe and unique in `taken`; returns the file, relative to outDir. */
export async function writePicture(outDir: string, name: string, picture: RgbaImage, taken: Set<string>): Promise<string> {
  const file = safeFileName(name, '.png', taken);
  await writePng(join(outDir, file), picture.rgba, picture.width, picture.height);
  return file;
}

/** Writes one layer's pictures for one image, named by pictureName (workflow/file-names.ts) and made safe. */
export async function writeLayer(outDir: string, stem: string, layer: LayerPictures, taken: Set<string>): Promise<OutputFile[]> {
  const name = (p: Parameters<typeof pictureName>[2]) => pictureName(stem, layer, p);
  const files: OutputFile[] = [];
  for (const m of layer.maps) {
    const file = await writePicture(outDir, name(m), m, taken);
    files.push({ file, kind: 'map', layer: layer.layer, tensor: m.tensor, shape: m.shape, reduce: m.reduce, range: m.range, width: m.width, height: m.height });
  }
  for (const g of layer.grids) {
    const file = await writePicture(outDir, name(g), g, taken);
    files.push({ file, kind: 'grid', layer: layer.layer, tensor: g.tensor, shape: g.shape, width: g.width, height: g.height });
  }
  return files;
}

/** The images a folder given as INPUTS contributes (vis, serve). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.png', '.webp']);

/** The mask of image <stem> given --labels DIR: <dir>/<stem>.png, or undefined when there is none. */
export async function labelFor(dir: string, stem: string): Promise<string | undefined> {
  const path = join(dir, `${stem}.png`);
  try {
    await access(path);
    return path;
  } catch {
    return undefined;
  }
}

/** Names the images (base names) that have no mask in `dir`. Not an error: a folder of images may be only partly annotated. */
export function warnUnlabelled(dir: string, images: string[]): void {
  if (images.length) console.error(`segscope: no mask in ${dir} for ${images.length} image${images.length === 1 ? '' : 's'}: ${images.join(', ')}`);
}

/** Files from paths, folders (their files with one of `extensions`, sorted) and globs in the last path component. */
export async function collectFiles(inputs: string[], extensions: ReadonlySet<string>, what: string): Promise<string[]> {
  const found: string[] = [];
  const list = [...extensions];
  const kinds = list.length > 1 ? `${list.slice(0, -1).join(', ')} or ${list.at(-1)}` : list[0];
  for (const input of inputs) {
    const name = basename(input);
    if (/[*?]/.test(name)) {
      const dir = dirname(input);
      if (/[*?]/.test(dir)) throw new InputError(`${input}: '*' and '?' work in the last path component only`);
      const re = globToRegExp(name);
      const matches = (await listDir(dir, input)).filter((e) => re.test(e)).sort();
      if (!matches.length) throw new InputError(`${input}: no file matches`);
      found.push(...matches.map((e) => join(dir, e)));
      continue;
    }
    let info: Stats;
    try {
      info = await stat(input);
    } catch (e) {
      throw new InputError(`${input}: no such ${what}, folder or glob (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (info.isDirectory()) {
      const files = (await listDir(input, input)).filter((e) => extensions.has(extname(e).toLowerCase())).sort();
      if (!files.length) throw new InputError(`${input}: no ${kinds} ${what}s in this folder`);
      found.push(...files.map((e) => join(input, e)));
    } else found.push(input);
  }
  return found;
}

async function listDir(dir: string, label: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    throw new InputError(`${label}: cannot read folder '${dir}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
