import { decodeLabel, type LabelMap } from '../workflow/labels.js';
import { readImage } from './image.js';

/**
 * A ground-truth mask file (PNG, or any format readImage reads) as class
 * indices for a model of `classes` classes; coloured masks are looked up in
 * `palette`, and `binary` reads masks for a binary prediction
 * (workflow/labels.ts decodeLabel decodes the pixels).
 */
export async function readLabel(path: string, classes: number, palette?: Uint8Array, options: { binary?: boolean } = {}): Promise<LabelMap> {
  const image = await readImage(path, { float: true });
  // 16-bit masks (some datasets store ids that way) are read by value, not by their high byte.
  const data = image.bitDepth === 16 ? Uint16Array.from(image.float!, (v) => Math.round(v * 65535)) : image.data;
  return decodeLabel({ width: image.width, height: image.height, data, channels: 3, path }, classes, palette, options);
}
