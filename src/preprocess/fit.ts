import { roundHalfEven } from '../model/numeric.js';

/**
 * Where an image goes in a model input of a fixed size: resized to it, or
 * scaled keeping its aspect ratio and then padded or cropped, with the maps
 * between image and input coordinates that overlays need.
 */

export type Fit = 'resize' | 'pad' | 'crop';

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
