import type { HostTensor } from '../../src/model/graph.js';

/**
 * A CPU reference of Resize written after the ONNX operator text, apart from
 * the engine's tap computation: for test/resize.test.ts (the forward) and
 * test/grad-ops.test.ts (its adjoint).
 */

export interface Options {
  mode: string;
  transform: string;
  nearest?: string;
  a?: number;
  exclude?: boolean;
}

/** One axis as the reference sees it: the scale the transforms use and the (possibly fractional) resized length. */
export interface RefAxis {
  input: number;
  output: number;
  scale: number;
  length: number;
}

export const bySizes = (input: number, output: number): RefAxis => ({ input, output, scale: output / input, length: output });
/** Scales reach the op as float32, as in a file. */
export const byScale = (input: number, scale: number): RefAxis => {
  const s = Math.fround(scale);
  return { input, output: Math.floor(input * s), scale: s, length: input * s };
};

/**
 * Input indices and weights of output coordinate `i` of one axis, written
 * after the ONNX operator text: the neighbours of the original coordinate
 * (ratio in (0, 1] past the left one, edge-padded), weighted by the mode.
 */
export function neighbours(o: Options, i: number, { input, output, scale, length }: RefAxis): [number, number][] {
  const x = {
    half_pixel: () => (i + 0.5) / scale - 0.5,
    pytorch_half_pixel: () => (length > 1 ? (i + 0.5) / scale - 0.5 : 0),
    align_corners: () => (length === 1 ? 0 : (i * (input - 1)) / (length - 1)),
    asymmetric: () => i / scale,
    tf_half_pixel_for_nn: () => (i + 0.5) / scale,
    half_pixel_symmetric: () => (input / 2) * (1 - output / length) + (i + 0.5) / scale - 0.5,
  }[o.transform]!();
  const ratio = Number.isInteger(x) ? 1 : x - Math.floor(x);
  const left = x - ratio;
  let first = left;
  let coeffs: number[];
  if (o.mode === 'nearest') {
    coeffs = {
      round_prefer_floor: [ratio <= 0.5 ? 1 : 0, ratio > 0.5 ? 1 : 0],
      round_prefer_ceil: [ratio < 0.5 ? 1 : 0, ratio >= 0.5 ? 1 : 0],
      floor: ratio === 1 ? [0, 1] : [1, 0],
      ceil: [0, 1],
    }[o.nearest ?? 'round_prefer_floor']!;
  } else if (o.mode === 'linear') {
    coeffs = [1 - ratio, ratio];
  } else {
    const A = o.a ?? -0.75;
    const r = ratio;
    coeffs = [
      ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
      ((A + 2) * r - (A + 3)) * r * r + 1,
      ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
      ((A * (2 - r) - 5 * A) * (2 - r) + 8 * A) * (2 - r) - 4 * A,
    ];
    first = left - 1;
  }
  const idx = coeffs.map((_, k) => first + k);
  if (o.exclude) {
    coeffs = coeffs.map((c, k) => (idx[k]! < 0 || idx[k]! >= input ? 0 : c));
    const sum = coeffs.reduce((p, q) => p + q, 0);
    coeffs = coeffs.map((c) => c / sum);
  }
  return idx.map((j, k) => [Math.min(Math.max(j, 0), input - 1), coeffs[k]!]);
}

/** Calls `visit(output, input, weight)` for every output element and every product of its axes' neighbours (flat indices). */
function forEachTap(axes: RefAxis[], o: Options, visit: (output: number, input: number, weight: number) => void): void {
  const outDims = axes.map((a) => a.output);
  const total = outDims.reduce((p, q) => p * q, 1);
  const perAxis = axes.map((a) => Array.from({ length: a.output }, (_, i) => neighbours(o, i, a)));
  for (let flat = 0; flat < total; flat++) {
    const coord = outDims.map((_, a) => Math.floor(flat / outDims.slice(a + 1).reduce((p, q) => p * q, 1)) % outDims[a]!);
    const walk = (a: number, offset: number, weight: number) => {
      if (a === axes.length) {
        visit(flat, offset, weight);
        return;
      }
      for (const [j, w] of perAxis[a]![coord[a]!]!) walk(a + 1, offset * axes[a]!.input + j, weight * w);
    };
    walk(0, 0, 1);
  }
}

/** CPU reference: the sum over every axis' neighbours of the weight products. */
export function resizeRef(x: HostTensor, axes: RefAxis[], o: Options): number[] {
  const out = new Array<number>(axes.reduce((p, a) => p * a.output, 1)).fill(0);
  forEachTap(axes, o, (y, i, w) => {
    out[y] = out[y]! + w * x.data[i]!;
  });
  return out;
}

/** The transpose of resizeRef's map: each output's dy spread back over the inputs its taps read, by their weights. */
export function resizeAdjointRef(dy: ArrayLike<number>, axes: RefAxis[], o: Options): number[] {
  const dx = new Array<number>(axes.reduce((p, a) => p * a.input, 1)).fill(0);
  forEachTap(axes, o, (y, i, w) => {
    dx[i] = dx[i]! + w * dy[y]!;
  });
  return dx;
}
