import type { HostTensor } from '../model/graph.js';
import { parseReduction } from '../vis/reduce.js';

/**
 * What the cursor points at on a feature map: the tensor element under it
 * and the value the picture shows there, read from the captured tensor on
 * the host (not from the colours, which are quantised to 256 levels).
 */

/** An element of an [N,C,H,W] tensor; `c` is undefined for a reduction over channels. */
export interface TensorPoint {
  n: number;
  c?: number;
  y: number;
  x: number;
}

/**
 * The tensor row and column under pixel (px, py) of a map drawn at
 * [height, width] from a tensor of spatial size [H, W]: the source pixel
 * nearest in the map's sampling grid (half-pixel centres, as the resize
 * stage's align_corners=False).
 */
export function tensorPoint(px: number, py: number, mapSize: readonly [number, number], shape: readonly number[]): { y: number; x: number } {
  const [H, W] = [shape[2]!, shape[3]!];
  const along = (p: number, out: number, size: number) => Math.min(size - 1, Math.max(0, Math.floor(((p + 0.5) * size) / out)));
  return { y: along(py, mapSize[0], H), x: along(px, mapSize[1], W) };
}

/**
 * The value at (n, y, x) of `reduction` over the channels of `t` [N,C,H,W],
 * computed as the GPU's reduction is (vis/reduce.ts: folds over channels in
 * order, in float32), with the channel it comes from for max, min and
 * absmax.
 */
export function valueAt(t: HostTensor, reduction: string, n: number, y: number, x: number): { value: number; point: TensorPoint } {
  const [, C, H, W] = t.dims as [number, number, number, number];
  const r = parseReduction(reduction, C);
  const at = (c: number) => Math.fround(t.data[((n * C + c) * H + y) * W + x] as number);
  if (r.kind === 'channel') return { value: at(r.index), point: { n, c: r.index, y, x } };
  const f = Math.fround;
  let acc: number;
  let best = 0;
  switch (r.kind) {
    case 'max':
    case 'min':
    case 'absmax': {
      const key = r.kind === 'absmax' ? (c: number) => Math.abs(at(c)) : at;
      acc = key(0);
      for (let c = 1; c < C; c++) {
        const v = key(c);
        if (r.kind === 'min' ? v < acc : v > acc) [acc, best] = [v, c];
      }
      return { value: acc, point: { n, c: best, y, x } };
    }
    case 'sum':
    case 'mean':
    case 'std': {
      acc = at(0);
      for (let c = 1; c < C; c++) acc = f(acc + at(c));
      if (r.kind === 'sum') return { value: acc, point: { n, y, x } };
      const mean = f(acc / C);
      if (r.kind === 'mean') return { value: mean, point: { n, y, x } };
      let sq = f((at(0) - mean) * (at(0) - mean));
      for (let c = 1; c < C; c++) sq = f(sq + f(f(at(c) - mean) * f(at(c) - mean)));
      return { value: f(Math.sqrt(f(sq / C))), point: { n, y, x } };
    }
    case 'l2': {
      acc = f(at(0) * at(0));
      for (let c = 1; c < C; c++) acc = f(acc + f(at(c) * at(c)));
      return { value: f(Math.sqrt(acc)), point: { n, y, x } };
    }
  }
}
