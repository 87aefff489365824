import { readFile, stat } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { InputError } from '../errors.js';
import type { HostTensor } from '../model/graph.js';
import { roundHalfEven } from '../model/numeric.js';
import { writeFileAtomic } from './files.js';

/**
 * Images in and out: decode JPEG, PNG and WebP into RGB, fit an image to a
 * model's input (resize, pad or crop) and normalise it into a [1,3,H,W]
 * float32 tensor, write RGBA pictures as PNG.
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
 *
 * Resizing is the separable bilinear ("triangle") filter of Pillow's
 * `Image.resize(size, Image.BILINEAR)`, written here rather than taken from
 * libvips: libvips/sharp upsamples with its output shifted by half an output
 * pixel against the pixel-centre convention that PyTorch and Pillow use (a
 * 4-pixel ramp 0,85,170,255 upsampled to 8 gives 0,0,43,85,128,170,213,255
 * instead of 0,21,64,106,149,191,234,255), which would misalign overlays.
 * Downsampling widens the filter (antialiasing), as Pillow and
 * `F.interpolate(..., antialias=True)` do; values stay in float (no rounding
 * to 8 bits between the passes).
 */

export type ImageFormat = 'jpeg' | 'png' | 'webp';

export interface Image {
  readonly width: number;
  readonly height: number;
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
  const lines = [...new Set(text.split('\n').map((l) => l.trim()).filter(Boolean))];
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
  const png = await sharp(input, { raw: { width, height, channels: 4 }, limitInputPixels: false }).png().toBuffer();
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

// ---------------------------------------------------------------------------
// Fitting to the model input

export type Fit = 'resize' | 'pad' | 'crop';

export interface InputTensorOptions {
  /** The model's input size, [height, width]. */
  size: readonly [number, number];
  /**
   * - 'resize' (default): bilinear resize to exactly HxW, ignoring the aspect ratio.
   * - 'pad': keep the aspect ratio, scale so that the image fits inside HxW,
   *   place it top-left and pad bottom/right with the mean colour (zero after
   *   normalisation), as the DeepLab repos pad to 513x513.
   * - 'crop': keep the aspect ratio, scale so that the image covers HxW (the
   *   short side, for a square input, becomes 513), then take the centre HxW,
   *   as the recipe's FixScaleCrop / torchvision's Resize + CenterCrop do.
   */
  fit?: Fit;
  /**
   * 'pad' and 'crop' only. false: never enlarge; an image smaller than the
   * input keeps its size ('pad': top-left, padded bottom/right; 'crop': a
   * plain centre crop, padded around with the mean colour where the image is
   * smaller, as torchvision's CenterCrop pads). Default true.
   */
  upscale?: boolean;
  /** Per-channel mean, RGB, on the 0..1 scale. Default ImageNet's [0.485, 0.456, 0.406]. */
  mean?: readonly number[];
  /** Per-channel standard deviation, RGB, on the 0..1 scale. Default ImageNet's [0.229, 0.224, 0.225]. */
  std?: readonly number[];
}

/** A rectangle in pixels: top-left corner and size. */
export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/**
 * How the image sits in the input tensor. Coordinates are continuous, in
 * pixels, with pixel (i, j) covering [i, i+1) x [j, j+1):
 *
 *     input = image * scale + offset        image = (input - offset) / scale
 *
 * per axis ([y, x]). To lay a map computed at the input size over the
 * original image: take its `content` box, resize that to `visible`'s size
 * and place it at `visible`'s corner (see inputToImage / imageToInput).
 */
export interface FitGeometry {
  fit: Fit;
  /** The image's [height, width] (after EXIF orientation). */
  imageSize: [number, number];
  /** The tensor's [height, width]. */
  inputSize: [number, number];
  /** The [height, width] the whole image was resampled to, before padding or cropping. */
  resizedSize: [number, number];
  /** Input pixels per image pixel, [y, x] (resizedSize / imageSize). */
  scale: [number, number];
  /** Where the image's top-left corner lies in the input, [y, x]; negative when cropped. */
  offset: [number, number];
  /** The part of the input holding image content (the rest is padding), in input pixels. */
  content: Box;
  /** The part of the image that is in the input (the rest was cropped off), in image pixels, possibly fractional. */
  visible: Box;
}

export interface InputTensor {
  /** [1, 3, H, W] float32, (value / 255 - mean) / std per channel, zero in padding. */
  tensor: HostTensor;
  geometry: FitGeometry;
}

/** ImageNet's normalisation, what torchvision backbones (and so the DeepLab repos) train with. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** Fits an image to a model input of size HxW and normalises it with mean/std. */
export function toInputTensor(image: Image, options: InputTensorOptions): InputTensor {
  const [H, W] = options.size ?? [];
  if (!(Number.isSafeInteger(H) && H! > 0 && Number.isSafeInteger(W) && W! > 0)) {
    throw new InputError(`input size must be two positive integers [height, width], got ${JSON.stringify(options.size)}`);
  }
  const fit = options.fit ?? 'resize';
  if (fit !== 'resize' && fit !== 'pad' && fit !== 'crop') throw new InputError(`fit must be 'resize', 'pad' or 'crop', got ${JSON.stringify(fit)}`);
  const mean = checkTriple('mean', options.mean ?? IMAGENET_MEAN);
  const std = checkTriple('std', options.std ?? IMAGENET_STD);
  if (std.some((s) => s === 0)) throw new InputError(`std must not contain 0, got [${std.join(', ')}]`);
  const { width: w, height: h } = image;
  if (image.data.length !== w * h * 3 || (image.float && image.float.length !== w * h * 3)) {
    throw new InputError(`${image.path}: image data holds ${image.data.length} values, a ${w}x${h} RGB image needs ${w * h * 3}`);
  }

  const geometry = fitGeometry([h, w], [H!, W!], fit, options.upscale ?? true);
  const [rh, rw] = geometry.resizedSize;
  const { content } = geometry;
  const [oy, ox] = geometry.offset;
  // The window of the resized image that lands in the input tensor.
  const win: Box = { top: content.top - oy, left: content.left - ox, height: content.height, width: content.width };
  const src = image.float ?? image.data;
  const unit = image.float ? 1 : 1 / 255;
  const pixels = resampleBilinear(src, h, w, 3, rh, rw, win);

  const plane = H! * W!;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const m = mean[c]!;
    const k = unit / std[c]!;
    const b = m / std[c]!;
    for (let y = 0; y < win.height; y++) {
      const row = c * plane + (content.top + y) * W! + content.left;
      const from = y * win.width * 3 + c;
      for (let x = 0; x < win.width; x++) out[row + x] = pixels[from + 3 * x]! * k - b;
    }
  }
  return { tensor: { type: 'float32', dims: [1, 3, H!, W!], data: out }, geometry };
}

function checkTriple(name: string, v: readonly number[]): number[] {
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw new InputError(`${name} must be three finite numbers (R, G, B on the 0..1 scale), got ${JSON.stringify(v)}`);
  }
  return [...v];
}

/** Where an image of size [h, w] goes in an input of size [H, W] under `fit`. */
export function fitGeometry(imageSize: readonly [number, number], inputSize: readonly [number, number], fit: Fit, upscale = true): FitGeometry {
  const [h, w] = imageSize;
  const [H, W] = inputSize;
  let rh: number, rw: number, oy: number, ox: number;
  if (fit === 'resize') {
    [rh, rw, oy, ox] = [H, W, 0, 0];
  } else {
    let s = fit === 'pad' ? Math.min(H / h, W / w) : Math.max(H / h, W / w);
    if (!upscale) s = Math.min(s, 1);
    // The side that sets the scale comes out exact; the other is rounded.
    const side = (n: number, target: number) => (Math.abs(n * s - target) < 1e-9 * target ? target : Math.max(1, Math.round(n * s)));
    rh = side(h, H);
    rw = side(w, W);
    if (fit === 'pad') {
      rh = Math.min(rh, H);
      rw = Math.min(rw, W);
      [oy, ox] = [0, 0];
    } else {
      const place = (r: number, target: number) => (r >= target ? 0 - roundHalfEven((r - target) / 2) : Math.floor((target - r) / 2));
      oy = place(rh, H);
      ox = place(rw, W);
    }
  }
  const top = Math.max(0, oy);
  const left = Math.max(0, ox);
  const content: Box = { top, left, height: Math.min(H, oy + rh) - top, width: Math.min(W, ox + rw) - left };
  const sy = rh / h;
  const sx = rw / w;
  const visible: Box = { top: (top - oy) / sy, left: (left - ox) / sx, height: content.height / sy, width: content.width / sx };
  return {
    fit,
    imageSize: [h, w],
    inputSize: [H, W],
    resizedSize: [rh, rw],
    scale: [sy, sx],
    offset: [oy, ox],
    content,
    visible,
  };
}

/** Image coordinates ([y, x], continuous pixels) of a point of the input tensor. */
export function inputToImage(g: FitGeometry, [y, x]: readonly [number, number]): [number, number] {
  return [(y - g.offset[0]) / g.scale[0], (x - g.offset[1]) / g.scale[1]];
}

/** Input-tensor coordinates ([y, x], continuous pixels) of a point of the image. */
export function imageToInput(g: FitGeometry, [y, x]: readonly [number, number]): [number, number] {
  return [y * g.scale[0] + g.offset[0], x * g.scale[1] + g.offset[1]];
}

// ---------------------------------------------------------------------------
// Resampling

/**
 * Bilinear resampling of an interleaved image (h x w x channels) to
 * outH x outW, Pillow's BILINEAR: a separable triangle filter, pixel centres
 * at i + 0.5, widened by the scale factor when shrinking (antialiasing),
 * weights renormalised at the borders. `window` restricts the output to a
 * sub-rectangle of the outH x outW result (for crops), which is what is
 * returned (window.height x window.width x channels, float).
 */
export function resampleBilinear(
  src: ArrayLike<number>,
  h: number,
  w: number,
  channels: number,
  outH: number,
  outW: number,
  window: Box = { top: 0, left: 0, height: outH, width: outW },
): Float32Array {
  const { top, left, height: wh, width: ww } = window;
  if (top < 0 || left < 0 || top + wh > outH || left + ww > outW) throw new InputError(`resample window outside the ${outH}x${outW} output`);
  const C = channels;
  // Horizontal pass: only the input rows the vertical pass reads.
  const ry = filterTaps(h, outH, top, wh);
  const rowLo = wh > 0 ? ry.lo[0]! : 0;
  const rowHi = wh > 0 ? ry.hi[wh - 1]! : 0;
  const rx = filterTaps(w, outW, left, ww);
  const mid = new Float32Array((rowHi - rowLo) * ww * C);
  for (let y = rowLo; y < rowHi; y++) {
    const srow = y * w * C;
    const drow = (y - rowLo) * ww * C;
    for (let x = 0; x < ww; x++) {
      const lo = rx.lo[x]!;
      const n = rx.hi[x]! - lo;
      const wo = rx.offset[x]!;
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += rx.weights[wo + k]! * src[srow + (lo + k) * C + c]!;
        mid[drow + x * C + c] = acc;
      }
    }
  }
  const out = new Float32Array(wh * ww * C);
  const rowLen = ww * C;
  for (let y = 0; y < wh; y++) {
    const lo = ry.lo[y]!;
    const n = ry.hi[y]! - lo;
    const wo = ry.offset[y]!;
    const drow = y * rowLen;
    for (let k = 0; k < n; k++) {
      const wk = ry.weights[wo + k]!;
      const srow = (lo + k - rowLo) * rowLen;
      for (let i = 0; i < rowLen; i++) out[drow + i] += wk * mid[srow + i]!;
    }
  }
  return out;
}

interface Taps {
  lo: Int32Array;
  hi: Int32Array;
  offset: Int32Array;
  weights: Float64Array;
}

/** Pillow's precompute_coeffs for the bilinear filter (support 1), output positions start .. start+count. */
function filterTaps(inSize: number, outSize: number, start: number, count: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const lo = new Int32Array(count);
  const hi = new Int32Array(count);
  const offset = new Int32Array(count);
  const all: number[] = [];
  for (let i = 0; i < count; i++) {
    const center = (start + i + 0.5) * scale;
    const a = Math.max(Math.trunc(center - support + 0.5), 0);
    const b = Math.min(Math.trunc(center + support + 0.5), inSize);
    offset[i] = all.length;
    let sum = 0;
    const first = all.length;
    for (let x = a; x < b; x++) {
      const t = Math.abs((x - center + 0.5) / filterScale);
      const wgt = t < 1 ? 1 - t : 0;
      all.push(wgt);
      sum += wgt;
    }
    if (sum > 0) for (let k = first; k < all.length; k++) all[k] = all[k]! / sum;
    lo[i] = a;
    hi[i] = b;
  }
  return { lo, hi, offset, weights: Float64Array.from(all) };
}
