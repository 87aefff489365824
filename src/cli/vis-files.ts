import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { InputError } from '../errors.js';
import { safeFileName } from '../io/files.js';
import { writePng } from '../io/image.js';
import type { OutputFile } from '../io/report.js';
import { globToRegExp } from '../runtime/select.js';
import type { RgbaImage } from '../vis/rgba.js';
import type { LayerPictures } from '../workflow/draw.js';

/** vis's files: the inputs it collects, and the PNGs it names and writes for the workflow's pictures. */

/** Writes a picture as outDir/<name>.png, the name made safe and unique in `taken`; returns the file, relative to outDir. */
export async function writePicture(outDir: string, name: string, picture: RgbaImage, taken: Set<string>): Promise<string> {
  const file = safeFileName(name, '.png', taken);
  await writePng(join(outDir, file), picture.rgba, picture.width, picture.height);
  return file;
}

/**
 * Writes one layer's pictures for one image as
 * <stem>_<pattern>[_<tensor>][_<batch index>]_<reduce>.png and …_grid.png:
 * the tensor's name only when the pattern selected several, the batch index
 * only for a batch of more than one (every image run keeps the plain name).
 */
export async function writeLayer(outDir: string, stem: string, layer: LayerPictures, taken: Set<string>): Promise<OutputFile[]> {
  const many = layer.tensors.length > 1;
  const name = (p: { tensor: string; shape: number[]; batchIndex: number }) =>
    `${stem}${layer.layer ? `_${layer.layer}` : ''}${many ? `_${p.tensor}` : ''}${p.shape[0]! > 1 ? `_${p.batchIndex}` : ''}`;
  const files: OutputFile[] = [];
  for (const m of layer.maps) {
    const file = await writePicture(outDir, `${name(m)}_${m.reduce}`, m, taken);
    files.push({ file, kind: 'map', layer: layer.layer, tensor: m.tensor, shape: m.shape, reduce: m.reduce, range: m.range, width: m.width, height: m.height });
  }
  for (const g of layer.grids) {
    const file = await writePicture(outDir, `${name(g)}_grid`, g, taken);
    files.push({ file, kind: 'grid', layer: layer.layer, tensor: g.tensor, shape: g.shape, width: g.width, height: g.height });
  }
  return files;
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
