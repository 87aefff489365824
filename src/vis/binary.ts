import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { flatMain, grid, storage } from '../kernels/wgsl.js';
import { colormap, type PaletteName } from './colormap.js';
import { toRGBA, type GpuImages, type RgbaImage } from './rgba.js';
import { IS_NAN, packPalette, readSegmentation, type GpuSegmentation, type SegmentationImage } from './segmentation.js';
import { binding, nchw, record, type StageOptions, type TensorLike } from './tensor.js';

/**
 * The segmentation output of a one-channel network (salient object,
 * matting, foreground/background): [N,1,H,W] holding a probability p (a
 * Sigmoid's output) or a logit x (p = sigmoid(x)). A pixel is foreground
 * (class 1) where p >= 0.5, else background (class 0), as `p >= 0.5` in
 * NumPy and PyTorch; a logit is thresholded as x >= 0, which is the same
 * test without sigmoid's rounding. A NaN is background, with p = 0 (NaN >= 0.5
 * is false in NumPy too). Besides the two-colour mask, the soft map: p in
 * grey, level floor(255·p) as every map's colours are (rgba.ts toRGBA).
 */

/** What the one channel holds. */
export type BinaryValues = 'probability' | 'logit';

export interface BinaryMaskOptions {
  /** The colours of background and foreground: RGB bytes (at least 2 colours; the first two are used) or a palette name. */
  palette: PaletteName | Uint8Array;
  values: BinaryValues;
}

export interface GpuBinarySegmentation extends GpuSegmentation {
  /** p in grey, one picture per batch index. */
  probability: GpuImages;
}

export interface BinarySegmentationImage extends SegmentationImage {
  /** p in grey. */
  probability: RgbaImage;
}

const THREADS = 256;

/**
 * p and the foreground test of one value x. sigmoid is written so that exp
 * never overflows (exp of a non-positive number), for logits of any size.
 */
const PROBABILITY: Record<BinaryValues, string> = {
  probability: `  let p = x;
  let foreground = !nan && x >= 0.5f;`,
  logit: `  let e = exp(-min(abs(x), 100.0f));
  let p = select(e / (1.0f + e), 1.0f / (1.0f + e), x >= 0.0f);
  let foreground = !nan && x >= 0.0f;`,
};

/**
 * The binary mask of `scores` [N,1,H,W] in one kernel: the RGBA masks
 * (palette colour 0 or 1), the class map ([N,1,H,W] u32) and p; then p
 * coloured grey. Records into `stage.batch` when given. The caller owns the
 * three returned buffers.
 */
export function binaryMask(gpu: Gpu, scores: TensorLike, options: BinaryMaskOptions, stage: StageOptions = {}): GpuBinarySegmentation {
  const [N, C, H, W] = nchw(gpu, scores, 'binaryMask');
  if (C !== 1) throw new InputError(`binaryMask: expected one channel [N,1,H,W], got [${scores.dims.join(',')}]`);
  if (options.values !== 'probability' && options.values !== 'logit') {
    throw new InputError(`binaryMask: values must be 'probability' or 'logit', got ${JSON.stringify(options.values)}`);
  }
  const packed = packPalette({ palette: options.palette }, 2, 'binaryMask');
  const total = N * H * W;
  const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'RGBA', 'u32', 'read_write')}
${storage(2, 'CLS', 'u32', 'read_write')}
${storage(3, 'P', 'f32', 'read_write')}
${storage(4, 'PAL', 'u32', 'read')}
${IS_NAN}
${flatMain(
  THREADS,
  `  if (i >= ${total}u) { return; }
  let x = X[i];
  let nan = isNan(x);
${PROBABILITY[options.values]}
  let k = select(0u, 1u, foreground);
  CLS[i] = k;
  RGBA[i] = PAL[k];
  P[i] = select(p, 0.0f, nan);`,
)}`;
  return record(gpu, stage, (batch) => {
    const rgba = batch.buffer(total * 4, 'binary mask rgba');
    const classes = batch.buffer(total * 4, 'binary mask classes');
    const p = batch.temporary(total * 4, 'binary mask probability');
    batch.dispatch({ label: `binary_mask_${options.values}_${total}`, wgsl: code, workgroups: grid(total, THREADS) }, [
      binding(scores),
      rgba,
      classes,
      p,
      batch.upload(packed, 'binary mask palette'),
    ]);
    return {
      images: { buffer: rgba, count: N, height: H, width: W },
      classes: { buffer: classes, dims: [N, 1, H, W], type: 'uint32' },
      probability: toRGBA(gpu, { buffer: p, dims: [N, 1, H, W] }, colormap('gray'), { batch }),
    };
  });
}

/**
 * The binary segmentation of `scores` [N,1,H,W] read back in one submit: per
 * batch index, the coloured mask, the class map and p in grey. GPU buffers
 * are freed.
 */
export async function binarySegmentation(gpu: Gpu, scores: TensorLike, options: BinaryMaskOptions): Promise<BinarySegmentationImage[]> {
  const read = await readSegmentation(
    gpu,
    'binarySegmentation',
    (batch) => binaryMask(gpu, scores, options, { batch }),
    (s) => [s.probability],
  );
  return read.map(({ mask, extra }) => ({ ...mask, probability: extra[0]! }));
}
