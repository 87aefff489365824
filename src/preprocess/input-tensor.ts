import { InputError } from '../errors.js';
import type { HostTensor } from '../model/graph.js';
import { fitGeometry, type Box, type Fit, type FitGeometry } from './fit.js';
import { resampleBilinear } from './resample.js';

/**
 * Pixels to a model input: fit (resize, pad or crop) and normalise into a
 * [1,3,H,W] float32 tensor. Pixels come from readImage in Node (io/image.ts)
 * or from a canvas in a browser (ImageData); the same RGB values give the
 * same tensor, bit for bit, either way.
 */

/**
 * 8-bit pixels, row-major, interleaved: RGB (3 channels, what readImage
 * decodes) or RGBA (4, what a browser's ImageData holds). Alpha is ignored,
 * as readImage drops it by default.
 */
export interface Pixels {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Uint8ClampedArray;
  /** Values per pixel in `data`: 3 (RGB) or 4 (RGBA). Default: from data's length (ImageData has no such field). */
  readonly channels?: 3 | 4;
  /** RGB in 0..1, 3 values per pixel, read instead of `data` when present: a 16-bit PNG's full precision. */
  readonly float?: Float32Array;
  /** ImageData's colour space. Only 'srgb' (ImageData's default) is accepted: models are trained on sRGB values. */
  readonly colorSpace?: string;
  /** Names the image in errors. */
  readonly path?: string;
}

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

export interface InputTensor {
  /** [1, 3, H, W] float32, (value / 255 - mean) / std per channel, zero in padding. */
  tensor: HostTensor;
  geometry: FitGeometry;
}

/** ImageNet's normalisation, what torchvision backbones (and so the DeepLab repos) train with. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** Fits an image to a model input of size HxW and normalises it with mean/std. */
export function toInputTensor(image: Pixels, options: InputTensorOptions): InputTensor {
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
  const channels = pixelChannels(image);

  const geometry = fitGeometry([h, w], [H!, W!], fit, options.upscale ?? true);
  const [rh, rw] = geometry.resizedSize;
  const { content } = geometry;
  const [oy, ox] = geometry.offset;
  // The window of the resized image that lands in the input tensor.
  const win: Box = { top: content.top - oy, left: content.left - ox, height: content.height, width: content.width };
  // RGBA is resampled whole and its alpha skipped below: each channel is
  // filtered on its own, so RGB comes out exactly as from RGB pixels.
  const [src, C] = image.float ? [image.float, 3] : [image.data, channels];
  const unit = image.float ? 1 : 1 / 255;
  const pixels = resampleBilinear(src, h, w, C, rh, rw, win);

  const plane = H! * W!;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const m = mean[c]!;
    const k = unit / std[c]!;
    const b = m / std[c]!;
    for (let y = 0; y < win.height; y++) {
      const row = c * plane + (content.top + y) * W! + content.left;
      const from = y * win.width * C + c;
      for (let x = 0; x < win.width; x++) out[row + x] = pixels[from + C * x]! * k - b;
    }
  }
  return { tensor: { type: 'float32', dims: [1, 3, H!, W!], data: out }, geometry };
}

/** Checks the pixels' size, layout and colour space; returns the values per pixel of `data`. */
function pixelChannels(image: Pixels): 3 | 4 {
  const { width: w, height: h, data } = image;
  const name = image.path ? `${image.path}: ` : '';
  if (!(Number.isSafeInteger(w) && w > 0 && Number.isSafeInteger(h) && h > 0)) {
    throw new InputError(`${name}image size must be positive integers, got ${w}x${h}`);
  }
  if (image.colorSpace !== undefined && image.colorSpace !== 'srgb') {
    throw new InputError(`${name}pixels are in the '${image.colorSpace}' colour space; read them as sRGB (getImageData(x, y, w, h, { colorSpace: 'srgb' }))`);
  }
  const channels = image.channels ?? (data.length === w * h * 3 ? 3 : 4);
  if ((channels !== 3 && channels !== 4) || data.length !== w * h * channels || (image.float && image.float.length !== w * h * 3)) {
    throw new InputError(
      `${name}image data holds ${data.length} values${image.float ? ` (float: ${image.float.length})` : ''}, ` +
        `a ${w}x${h} image needs ${w * h * 3} (RGB) or ${w * h * 4} (RGBA)`,
    );
  }
  return channels;
}

function checkTriple(name: string, v: readonly number[]): number[] {
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw new InputError(`${name} must be three finite numbers (R, G, B on the 0..1 scale), got ${JSON.stringify(v)}`);
  }
  return [...v];
}
