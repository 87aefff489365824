/**
 * How close one run's outputs are to another's: a result at precision f16
 * against f32, or segscope against onnxruntime.
 */

/** Relative L2 error ||a - b|| / ||b|| of `a` against the reference `b`; NaN when their lengths differ. */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return NaN;
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/**
 * The fraction of pixels whose class (the arg max over axis 1 of scores
 * [N, C, ...]) is the same in `a` and `b`: what a segmentation map shows.
 * The first maximum wins a tie, as torch.argmax and ONNX ArgMax do.
 */
export function argmaxAgreement(a: ArrayLike<number>, b: ArrayLike<number>, dims: readonly number[]): number {
  const [n, c] = [dims[0]!, dims[1]!];
  const plane = dims.slice(2).reduce((p, d) => p * d, 1);
  const argmax = (x: ArrayLike<number>, base: number) => {
    let best = 0;
    for (let k = 1; k < c; k++) if (x[base + k * plane]! > x[base + best * plane]!) best = k;
    return best;
  };
  let same = 0;
  for (let image = 0; image < n; image++) {
    for (let p = 0; p < plane; p++) {
      const base = image * c * plane + p;
      if (argmax(a, base) === argmax(b, base)) same++;
    }
  }
  return same / Math.max(1, n * plane);
}
