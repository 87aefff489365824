import { InputError } from '../errors.js';
import { inputToImage, type FitGeometry } from '../preprocess/fit.js';
import { IGNORE_INDEX as IGNORE } from '../vis/colormap.js';

/**
 * Ground-truth masks: one class index per pixel, 255 for "void"/ignore.
 * Files are read in io/labels.ts; what is done with their pixels (decoding,
 * fitting to the model input, drawing) is here, so a browser does the same.
 *
 * Two encodings are decoded, as the datasets ship them:
 * - index images (Cityscapes' *_labelTrainIds.png, ADE20K, mmseg's
 *   converted sets): grey values are the class indices;
 * - colour images (PASCAL VOC's SegmentationClass palette PNGs): each
 *   pixel's colour is looked up in the model's palette; VOC's void colour
 *   (224,224,192) and white mean ignore.
 * A mask whose pixels are all grey with values below K (or 255) is an index
 * image; anything else is looked up in the palette, and a colour that is not
 * in it is an error naming the mask, the pixel and the colour.
 *
 * For a binary prediction (background 0, foreground 1) a grey mask is read
 * one of two ways:
 * - values all 0, 1 or 255, with some 1: an index image (255 ignore);
 * - otherwise, as salient-object and matting datasets store masks (0/255,
 *   soft or anti-aliased edges): foreground where the value is at least half
 *   the full scale (128 of 255, 32768 of 65535 in a 16-bit mask), nothing
 *   ignored.
 * A 0/255 mask is thus foreground on white, not background with ignored
 * pixels. Colour masks are looked up in the palette as above.
 */
export interface LabelMap {
  width: number;
  height: number;
  /** Class index per pixel, row-major; IGNORE (255) where unlabelled. */
  data: Uint8Array;
}

/** A mask's pixels as decoded: RGB or RGBA (a canvas's ImageData), row-major; a 16-bit mask's values as they are, not their high bytes. */
export interface LabelPixels {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Uint8ClampedArray | Uint16Array;
  /** Values per pixel: 3 or 4. Default: from data's length. */
  readonly channels?: 3 | 4;
  /** Names the mask in errors. */
  readonly path?: string;
}

const VOID_COLOURS = [
  [224, 224, 192],
  [255, 255, 255],
];

/**
 * The class-index map of a mask, for a model of `classes` classes with
 * `palette` (RGB, 3 bytes a class) for coloured masks; `binary` for a binary
 * prediction (classes 2), whose grey masks are read by the rule above.
 */
export function decodeLabel(pixels: LabelPixels, classes: number, palette?: Uint8Array, options: { binary?: boolean } = {}): LabelMap {
  const { width, height, data: values } = pixels;
  const n = width * height;
  const C = pixels.channels ?? (values.length === n * 3 ? 3 : 4);
  if ((C !== 3 && C !== 4) || values.length !== n * C) {
    throw new InputError(
      `${pixels.path ?? 'label'}: mask data holds ${values.length} values, a ${width}x${height} mask needs ${n * 3} (RGB) or ${n * 4} (RGBA)`,
    );
  }
  const binary = options.binary ? binaryGreyLabel(values, C, n) : undefined;
  if (binary) return { width, height, data: binary };
  const data = new Uint8Array(n);
  let bad = -1;
  for (let i = 0; i < n && bad < 0; i++) {
    const v = values[C * i]!;
    if (v === values[C * i + 1] && v === values[C * i + 2] && (v < classes || v === IGNORE)) data[i] = v;
    else bad = i;
  }
  if (bad < 0) return { width, height, data };
  const colourAt = (i: number) => `(${values.subarray(C * i, C * i + 3).join(', ')})`;
  const refuse = (i: number) =>
    new InputError(
      `${pixels.path ?? 'label'}: pixel (${i % width}, ${Math.floor(i / width)}) has colour ${colourAt(i)}, ` +
        (palette
          ? `which is neither a class index nor a colour of the model's ${classes}-class palette`
          : `which is not a class index (grey 0..${classes - 1}, 255 for ignore), and the model has no palette to read coloured masks with`),
    );
  if (!palette) throw refuse(bad);
  const byColour = new Map<number, number>();
  for (const [r, g, b] of VOID_COLOURS) byColour.set((r! << 16) | (g! << 8) | b!, IGNORE);
  for (let k = Math.min(classes, palette.length / 3) - 1; k >= 0; k--)
    byColour.set((palette[3 * k]! << 16) | (palette[3 * k + 1]! << 8) | palette[3 * k + 2]!, k);
  const colour = (i: number) => (values[C * i]! << 16) | (values[C * i + 1]! << 8) | values[C * i + 2]!;
  // The pixel that broke the index reading is the one to name when it is no palette colour either.
  if (!byColour.has(colour(bad))) throw refuse(bad);
  for (let i = 0; i < n; i++) {
    const k = byColour.get(colour(i));
    if (k === undefined) throw refuse(i);
    data[i] = k;
  }
  return { width, height, data };
}

/** A grey mask's classes by the binary rule (decodeLabel); undefined when some pixel is not grey. */
function binaryGreyLabel(values: LabelPixels['data'], C: number, n: number): Uint8Array | undefined {
  let indices = true;
  let ones = false;
  for (let i = 0; i < n; i++) {
    const v = values[C * i]!;
    if (v !== values[C * i + 1] || v !== values[C * i + 2]) return undefined;
    indices &&= v === 0 || v === 1 || v === IGNORE;
    ones ||= v === 1;
  }
  if (indices && ones) return Uint8Array.from({ length: n }, (_, i) => values[C * i]!);
  const half = values instanceof Uint16Array ? 32768 : 128;
  return Uint8Array.from({ length: n }, (_, i) => (values[C * i]! >= half ? 1 : 0));
}

/**
 * The mask as the model sees its image: placed by the same fit geometry as
 * the input tensor, sampled at each input pixel's centre (nearest: labels
 * must not be interpolated), IGNORE in the padding.
 */
export function fitLabel(label: LabelMap, g: FitGeometry): LabelMap {
  const [h, w] = g.imageSize;
  if (label.height !== h || label.width !== w) {
    throw new InputError(`the mask is ${label.width}x${label.height}, its image is ${w}x${h}: they must be the same size`);
  }
  const [H, W] = g.inputSize;
  const data = new Uint8Array(H * W).fill(IGNORE);
  const { top, left, height, width } = g.content;
  for (let y = top; y < top + height; y++) {
    for (let x = left; x < left + width; x++) {
      const [iy, ix] = inputToImage(g, [y + 0.5, x + 0.5]);
      const sy = Math.min(h - 1, Math.max(0, Math.floor(iy)));
      const sx = Math.min(w - 1, Math.max(0, Math.floor(ix)));
      data[y * W + x] = label.data[sy * w + sx]!;
    }
  }
  return { width: W, height: H, data };
}

/** Nearest-neighbour resize to [height, width], pixel centres aligned (F.interpolate 'nearest-exact'). */
export function resizeLabel(label: LabelMap, [height, width]: readonly [number, number]): LabelMap {
  if (label.height === height && label.width === width) return label;
  const data = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(label.height - 1, Math.floor(((y + 0.5) * label.height) / height));
    for (let x = 0; x < width; x++) {
      data[y * width + x] = label.data[sy * label.width + Math.min(label.width - 1, Math.floor(((x + 0.5) * label.width) / width))]!;
    }
  }
  return { width, height, data };
}

/** RGBA picture of a mask: palette colours, `voidColour` for IGNORE and for classes past the palette. */
export function colourLabel(label: LabelMap, palette: Uint8Array, voidColour: readonly [number, number, number]): Uint8Array {
  const rgba = new Uint8Array(label.data.length * 4);
  const K = palette.length / 3;
  for (let i = 0; i < label.data.length; i++) {
    const k = label.data[i]!;
    const c = k < K ? palette.subarray(3 * k, 3 * k + 3) : voidColour;
    rgba.set([c[0]!, c[1]!, c[2]!, 255], 4 * i);
  }
  return rgba;
}
