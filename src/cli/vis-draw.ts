import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { safeFileName } from '../io/files.js';
import { writePng } from '../io/image.js';
import type { OutputFile } from '../io/report.js';
import { globToRegExp } from '../runtime/select.js';
import type { ColormapName } from '../vis/colormap.js';
import { featureMaps, type ReductionOrder } from '../vis/feature-map.js';
import { channelGrid } from '../vis/grid.js';
import type { Normalization } from '../vis/normalize.js';
import { parseReduction, type Reduction } from '../vis/reduce.js';
import type { GpuImages } from '../vis/rgba.js';
import type { TensorLike } from '../vis/tensor.js';

/** How every map of a run is drawn: the vis options that do not depend on the image. */
export interface DrawOptions {
  reductions: string[];
  order: ReductionOrder;
  colormap: ColormapName;
  normalize: { method: Normalization; shared: boolean };
  /** --grid K: a montage of the K channels with the largest mean. */
  gridK?: number;
  outDir: string;
}

/** Checks each reduction against a tensor of `channels` channels; an error is prefixed with `where`. */
export function checkReductions(reductions: readonly string[], channels: number, where: string): void {
  for (const r of reductions) {
    try {
      parseReduction(r, channels);
    } catch (e) {
      throw new InputError(`${where}: ${(e as Error).message}`);
    }
  }
}

/** One --layer pattern's tensors for one image: name, shape, and the tensor on the GPU. */
export interface LayerTensors {
  pattern: string;
  tensors: { name: string; shape: number[]; value: TensorLike }[];
}

/**
 * Writes one layer's pictures for one image: a PNG per tensor and reduction
 * (the coloured map alone at `size`, or blended over `base` with opacity
 * `alpha`), plus a channel grid per tensor with --grid. File names are
 * <stem>_<pattern>[_<tensor>]_<reduce>.png, made safe and unique in `taken`.
 */
export async function drawLayer(
  gpu: Gpu,
  o: DrawOptions,
  stem: string,
  layer: LayerTensors,
  size: [number, number],
  taken: Set<string>,
  overlayOn?: { base: GpuImages; alpha: number },
): Promise<OutputFile[]> {
  const files: OutputFile[] = [];
  const many = layer.tensors.length > 1;
  const prefix = (t: { name: string }) => `${stem}${layer.pattern ? `_${layer.pattern}` : ''}${many ? `_${t.name}` : ''}`;
  const values = layer.tensors.map((t) => t.value);
  for (const reduce of o.reductions) {
    const maps = await featureMaps(gpu, values, {
      reduce: reduce as Reduction,
      order: o.order,
      size,
      normalize: o.normalize.method,
      shareRange: o.normalize.shared,
      colormap: o.colormap,
      ...(overlayOn ? { overlay: overlayOn } : {}),
    });
    for (const [k, t] of layer.tensors.entries()) {
      // One picture per batch index; a batch of one (every image run) keeps the plain name.
      for (const [n, map] of maps[k]!.entries()) {
        const { rgba } = map;
        const file = safeFileName(`${prefix(t)}${maps[k]!.length > 1 ? `_${n}` : ''}_${reduce}`, '.png', taken);
        await writePng(join(o.outDir, file), rgba, size[1], size[0]);
        files.push({ file, kind: 'map', layer: layer.pattern, tensor: t.name, shape: t.shape, reduce, range: map.range, width: size[1], height: size[0] });
      }
    }
  }
  if (o.gridK !== undefined) {
    for (const t of layer.tensors) {
      if (o.gridK > t.shape[1]!) throw new InputError(`--grid ${o.gridK}: '${layer.pattern || t.name}' ('${t.name}') has only ${t.shape[1]} channels`);
      const grids = await channelGrid(gpu, t.value, { channels: { top: o.gridK }, colormap: o.colormap, labels: true });
      for (const [n, grid] of grids.entries()) {
        const file = safeFileName(`${prefix(t)}${grids.length > 1 ? `_${n}` : ''}_grid`, '.png', taken);
        await writePng(join(o.outDir, file), grid.rgba, grid.width, grid.height);
        files.push({ file, kind: 'grid', layer: layer.pattern, tensor: t.name, shape: t.shape, width: grid.width, height: grid.height });
      }
    }
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
    let info;
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
