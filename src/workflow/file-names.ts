import type { LayerPictures } from './draw.js';

/**
 * The names `segscope vis` gives its pictures, also the names the explorer
 * saves a shown picture under, so that a saved PNG and the file of the
 * copied command are the same name.
 */

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)$/i;

/**
 * A file name every filesystem accepts, from a tensor or layer name such as
 * `/aspp/project/project.0/Conv_output_0`: separators and unusual characters
 * become '_', no leading dot, no reserved Windows name, at most 150 characters.
 * `taken` (lower-cased names already used) gets a numeric suffix on collisions,
 * including case-only ones (macOS and Windows are case-insensitive).
 */
export function safeFileName(name: string, extension: string, taken: Set<string>): string {
  let base =
    name
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^[._]+/, '')
      .slice(0, 150) || 'tensor';
  if (WINDOWS_RESERVED.test(base)) base = `_${base}`;
  let file = `${base}${extension}`;
  for (let k = 2; taken.has(file.toLowerCase()); k++) file = `${base}-${k}${extension}`;
  taken.add(file.toLowerCase());
  return file;
}

/**
 * A layer picture's name before safeFileName, <stem>_<pattern>[_<tensor>][_<batch index>]_<reduce>
 * (or …_grid): the tensor's name only when the pattern selected several, the
 * batch index only for a batch of more than one (every image run keeps the
 * plain name).
 */
export function pictureName(stem: string, layer: LayerPictures, picture: { tensor: string; shape: number[]; batchIndex: number; reduce?: string }): string {
  const many = layer.tensors.length > 1;
  const base = `${stem}${layer.layer ? `_${layer.layer}` : ''}${many ? `_${picture.tensor}` : ''}${picture.shape[0]! > 1 ? `_${picture.batchIndex}` : ''}`;
  return `${base}_${picture.reduce ?? 'grid'}`;
}
