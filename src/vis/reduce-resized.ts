import type { Gpu } from '../gpu/device.js';
import { flatMain, grid, storage } from '../kernels/wgsl.js';
import { parseReduction, reductionCode, type Reduction } from './reduce.js';
import { resizeGeometry, samplerWgsl, uploadTaps, type ResizeOptions } from './resize.js';
import { binding, nchw, record, type GpuTensor, type TensorLike, type StageOptions } from './tensor.js';

const THREADS = 256;

/**
 * `reduceChannels(resize(x))` in one kernel, the recipe's upsample-first
 * order, without materialising the [N,C,H,W] resized tensor (for C=256 at
 * 1024x2048 it would take 2 GiB): each thread owns one output pixel, finds
 * its taps once, and for every channel interpolates the value at its pixel
 * and folds it into the reduction. Returns [N,1,H,W] (the caller owns it).
 *
 * Mean and sum commute with bilinear resizing (the weights sum to one), so
 * they agree with the reduce-first order within float error; max, min,
 * absmax, std and l2 do not (max of a convex combination is at most the
 * combination of the maxima).
 */
export function reduceResized(gpu: Gpu, t: TensorLike, reduction: Reduction | string, options: ResizeOptions, opts: StageOptions = {}): GpuTensor {
  const [N, C, h, w] = nchw(gpu, t, `reduceResized(${reduction})`);
  const r = parseReduction(reduction, C);
  const g = resizeGeometry([h, w], options);
  const [H, W] = g.output;
  const HW = H * W;
  const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'f32', 'read_write')}
${storage(2, 'T', 'u32', 'read')}
${samplerWgsl(g, 'T')}
var<private> base: u32;
fn at(c: u32) -> f32 { return interp(base + c * ${h * w}u); }
${flatMain(
  THREADS,
  `  if (i >= ${N * HW}u) { return; }
  let p = i % ${HW}u;
  setTaps(p / ${W}u, p % ${W}u);
  base = (i / ${HW}u) * ${C * h * w}u;
${reductionCode(r, C)}
  Y[i] = r;`,
)}`;
  return record(gpu, opts, (batch) => {
    const out = batch.buffer(N * HW * 4, `reduceResized ${reduction}`);
    batch.dispatch({ label: `reduce_resized_${r.kind}_${C}x${h}x${w}_to_${H}x${W}`, wgsl: code, workgroups: grid(N * HW, THREADS) }, [
      binding(t),
      out,
      uploadTaps(batch, g),
    ]);
    return { buffer: out, dims: [N, 1, H, W] };
  });
}
