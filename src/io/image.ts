import { readFile, stat } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { InputError } from '../errors.js';
import type { Pixels } from '../preprocess/input-tensor.js';
import { writeFileAtomic } from './files.js';

/**
 * Images in and out in Node: decode JPEG, PNG and WebP files into RGB
 * pixels (fitting them to a model input is preprocess/, which a browser uses
 * too), write RGBA pictures as PNG.
 *
 * Codecs: sharp (libvips 8.18 with mozjpeg/libjpeg-turbo, libpng and
 * libwebp), whose prebuilt binaries install from the npm registry as
 * @img/sharp-* packages (no compiler, no download at install time). It
 * decodes all three formats, applies EXIF orientation, keeps 16-bit PNG
 * samples, reads CMYK JPEGs, enforces a pixel limit before decoding, and
 * encodes PNG. Only JPEG, PNG and WebP files are handed to it
 * (recognised by their magic bytes), so none of libvips' other loaders (SVG,
 * PDF, TIFF, ...) ever sees an untrusted file.
 *
 * What the pixels are: the RGB values Pillow's
 * `ImageOps.exif_transpose(Image.open(f)).convert('RGB')` gives, which is how
 * torchvision and the DeepLab repos load training images, so a model sees what
 * it was trained on:
 * - EXIF orientation is applied (Pillow needs exif_transpose for that).
 * - Alpha is dropped by default (`alpha: 'drop'`, as convert('RGB') does: a
 *   fully transparent pixel keeps its stored colour); `alpha: 'black'`
 *   composites on black instead (rgb * alpha / 255).
 * - Grayscale (and palette) images become R = G = B.
 * - Embedded ICC profiles are ignored (Pillow ignores them too).
 * - CMYK (and YCCK) JPEGs use Pillow's formula on the stored ink values,
 *   R = (255 - C) * (255 - K) / 255 rounded, not an ICC transform (which
 *   would need a profile the file usually lacks, and differs from what the
 *   model was trained on by up to ~130 levels).
 * - 16-bit PNGs: `data` holds the high byte (value >> 8, as OpenCV and
 *   libvips reduce them); `{ float: true }` adds `float`, the full 16-bit
 *   values / 65535.
 * - Animated WebP/PNG: the first frame.
 */

export type ImageFormat = 'jpeg' | 'png' | 'webp';

/** A decoded file: Pixels (preprocess/input-tensor.ts) that are always RGB, with where they came from. */
export interface Image extends Pixels {
  readonly channels: 3;
  /** RGB, 8 bits per channel, row-major (height x width x 3). */
  readonly data: Uint8Array;
  /**
   * RGB in 0..1, row-major, when readImage was called with `{ float: true }`:
   * the full precision of a 16-bit PNG (value / 65535), data / 255 otherwise.
   */
  readonly float?: Float32Array;
  /** Bits per sample in the file: 16 for 16-bit PNGs, 8 otherwise. */
  readonly bitDepth: 8 | 16;
  readonly format: ImageFormat;
  /** The file the image came from (or the source name given to decodeImage). */
  readonly path: string;
}

export interface ReadImageOptions {
  /**
   * Refuse images with more pixels than this (width x height, as the file
   * declares them), before decoding anything. Default 100 megapixels
   * (10000 x 10000), about 300 MB of RGB and 1.2 GB as a float tensor.
   */
  maxPixels?: number;
  /** Also return `float`: RGB in 0..1 with the file's full precision (16-bit PNGs). */
  float?: boolean;
  /** What to do with an alpha channel: 'drop' it (default, like Pillow's convert('RGB')) or composite on 'black'. */
  alpha?: 'drop' | 'black';
  /** Give up decoding after this many seconds (default 60). */
  timeoutSeconds?: number;
  /**
   * How much damage to refuse (sharp's failOn): 'warning' (default) refuses any
   * file libjpeg/libpng/libwebp warn about, including JPEGs whose data ends
   * early (otherwise decoded with a grey remainder); 'error' and 'truncated'
   * accept more; 'none' decodes whatever can be decoded.
   */
  failOn?: 'warning' | 'error' | 'truncated' | 'none';
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

const FORMATS = 'a JPEG, PNG or WebP image';

/** Reads and decodes an image file. Every failure is an InputError that names the file. */
export async function readImage(path: string, options: ReadImageOptions = {}): Promise<Image> {
  const maxPixels = checkMaxPixels(options.maxPixels);
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new InputError(`${path}: not a file (expected ${FORMATS})`);
    size = info.size;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${path}: cannot read the image: ${(e as Error).message}`);
  }
  if (size === 0) throw new InputError(`${path}: the file is empty (expected ${FORMATS})`);
  // A compressed image is smaller than its pixels at 16-bit RGBA, plus room
  // for metadata; anything larger is not an image we would accept anyway.
  const maxBytes = maxPixels * 8 + 64 * 2 ** 20;
  if (size > maxBytes) {
    throw new InputError(`${path}: the file is ${size} bytes, more than an image within the ${mp(maxPixels)} limit (maxPixels) can be`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new InputError(`${path}: cannot read the image: ${(e as Error).message}`);
  }
  return decodeImage(bytes, path, options);
}

/** Decodes an image held in memory; `source` names it in errors and becomes `path`. */
export async function decodeImage(bytes: Uint8Array, source: string, options: ReadImageOptions = {}): Promise<Image> {
  const maxPixels = checkMaxPixels(options.maxPixels);
  const alpha = options.alpha ?? 'drop';
  if (alpha !== 'drop' && alpha !== 'black') throw new InputError(`alpha must be 'drop' or 'black', got ${JSON.stringify(alpha)}`);
  const failOn = options.failOn ?? 'warning';
  if (!['warning', 'error', 'truncated', 'none'].includes(failOn)) {
    throw new InputError(`failOn must be 'warning', 'error', 'truncated' or 'none', got ${JSON.stringify(failOn)}`);
  }
  const timeout = options.timeoutSeconds ?? 60;
  if (!(Number.isInteger(timeout) && timeout > 0)) throw new InputError(`timeoutSeconds must be a positive integer, got ${timeout}`);
  if (bytes.length === 0) throw new InputError(`${source}: the file is empty (expected ${FORMATS})`);
  const format = sniffFormat(bytes);
  if (!format) throw new InputError(`${source}: not ${FORMATS}: ${describeMagic(bytes)}`);
  const name = format.toUpperCase().replace('WEBP', 'WebP');
  const fail = (e: unknown) => new InputError(`${source}: cannot decode this ${name} file: ${sharpMessage(e)}`);

  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const open = () =>
    sharp(input, { autoOrient: true, ignoreIcc: true, limitInputPixels: maxPixels, failOn, sequentialRead: true }).timeout({
      seconds: timeout,
    });

  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw fail(e);
  }
  if (meta.format !== format) {
    throw new InputError(`${source}: looks like ${name} but decodes as '${meta.format}' (expected ${FORMATS})`);
  }
  const w = meta.width;
  const h = meta.height;
  if (!(w > 0 && h > 0)) throw new InputError(`${source}: the ${name} header declares a ${w}x${h} image`);
  if (w * h > maxPixels) {
    throw new InputError(
      `${source}: the image is ${w}x${h} (${mp(w * h)}), more than the limit of ${mp(maxPixels)} (maxPixels = ${maxPixels}); ` +
        `pass a larger maxPixels to read it`,
    );
  }

  const sixteen = meta.depth === 'ushort';
  const cmyk = meta.space === 'cmyk';
  let raw: Buffer;
  let info: OutputInfo;
  try {
    let pipeline = open();
    if (cmyk) {
      // Keep the ink values (no ICC transform); converted below with Pillow's formula.
      pipeline = pipeline.pipelineColourspace('cmyk').toColourspace('cmyk');
    } else {
      pipeline = alpha === 'black' ? pipeline.flatten({ background: { r: 0, g: 0, b: 0 } }) : pipeline.removeAlpha();
      pipeline = pipeline.toColourspace(sixteen ? 'rgb16' : 'srgb');
    }
    ({ data: raw, info } = await pipeline.raw(sixteen && !cmyk ? { depth: 'ushort' } : {}).toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw fail(e);
  }
  const width = info.width;
  const height = info.height;
  const n = width * height;
  const expected = cmyk ? 4 : 3;
  if (info.channels !== expected || raw.byteLength !== n * expected * (sixteen && !cmyk ? 2 : 1)) {
    throw new InputError(`${source}: decoded to ${info.channels} channels, ${raw.byteLength} bytes from a ${meta.space} ${meta.depth} image, expected RGB`);
  }

  // 8-bit RGB is used in place (no copy of what may be hundreds of MB).
  const data = cmyk || sixteen ? new Uint8Array(n * 3) : new Uint8Array(raw.buffer, raw.byteOffset, n * 3);
  let float: Float32Array | undefined;
  if (cmyk) {
    for (let i = 0; i < n; i++) {
      const nk = 255 - raw[4 * i + 3]!;
      for (let c = 0; c < 3; c++) data[3 * i + c] = nk - mulDiv255(raw[4 * i + c]!, nk);
    }
  } else if (sixteen) {
    const aligned = raw.byteOffset % 2 === 0 ? raw : new Uint8Array(raw); // a copy starts at offset 0
    const v16 = new Uint16Array(aligned.buffer, aligned.byteOffset, n * 3);
    for (let i = 0; i < v16.length; i++) data[i] = v16[i]! >> 8;
    if (options.float) {
      float = new Float32Array(n * 3);
      for (let i = 0; i < v16.length; i++) float[i] = v16[i]! / 65535;
    }
  }
  if (options.float && !float) float = Float32Array.from(data, (v) => v / 255);
  return { width, height, channels: 3, data, ...(float ? { float } : {}), bitDepth: sixteen ? 16 : 8, format, path: source };
}

/** Pillow's MULDIV255: round(a * b / 255) in integers. */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

function checkMaxPixels(maxPixels: number | undefined): number {
  const m = maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(Number.isSafeInteger(m) && m > 0)) throw new InputError(`maxPixels must be a positive integer, got ${maxPixels}`);
  return m;
}

const mp = (pixels: number) => `${(pixels / 1e6).toFixed(pixels < 1e5 ? 3 : 1)} megapixels`;

function sniffFormat(b: Uint8Array): ImageFormat | undefined {
  const at = (offset: number, sig: number[]) => b.length >= offset + sig.length && sig.every((v, i) => b[offset + i] === v);
  if (at(0, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return 'webp';
  return undefined;
}

function describeMagic(b: Uint8Array): string {
  const ascii = (o: number, n: number) => String.fromCharCode(...b.subarray(o, o + n));
  const known: [boolean, string][] = [
    [ascii(0, 4) === 'GIF8', 'a GIF image'],
    [ascii(0, 2) === 'BM', 'a BMP image'],
    [ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*', 'a TIFF image'],
    [ascii(4, 4) === 'ftyp', 'an ISO media file (HEIC/AVIF/MP4)'],
    [/^\s*<(\?xml|svg)/i.test(ascii(0, 64)), 'an SVG/XML document'],
    [ascii(0, 5) === '%PDF-', 'a PDF document'],
    [b.length >= 6 && b[0] === 0x93 && ascii(1, 5) === 'NUMPY', 'a NumPy .npy file'],
  ];
  const what = known.find(([hit]) => hit)?.[1];
  const hex = Array.from(b.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
  return what ? `it is ${what}` : `it starts with bytes ${hex}`;
}

/** sharp's message, first distinct lines only (libvips repeats itself). */
function sharpMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const lines = [
    ...new Set(
      text
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    ),
  ];
  return lines.slice(0, 3).join('; ') || 'unknown error';
}

// ---------------------------------------------------------------------------
// PNG output

/** Encodes 8-bit RGBA pixels (row-major, width x height x 4) as PNG. */
export async function encodePng(rgba: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  if (!(Number.isSafeInteger(width) && width > 0 && Number.isSafeInteger(height) && height > 0)) {
    throw new InputError(`PNG size must be positive integers, got ${width}x${height}`);
  }
  if (rgba.length !== width * height * 4) {
    throw new InputError(`a ${width}x${height} RGBA PNG needs ${width * height * 4} bytes, got ${rgba.length}`);
  }
  const input = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  const png = await sharp(input, { raw: { width, height, channels: 4 }, limitInputPixels: false })
    .png()
    .toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/** Writes 8-bit RGBA pixels as a PNG file, atomically (no half-written file under `path`). */
export async function writePng(path: string, rgba: Uint8Array, width: number, height: number): Promise<void> {
  let png: Uint8Array;
  try {
    png = await encodePng(rgba, width, height);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`${path}: ${e.message}`);
    throw e;
  }
  await writeFileAtomic(path, png);
}
