import { InputError } from '../errors.js';
import type { Box } from './fit.js';

/**
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
