/** Number formats and rounding shared by tensor decoding, constant folding, images and colormaps. */

/** Round half to even (IEEE's default, Python's round(), OpenCV's saturate_cast). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

let halfTable: Float32Array | undefined;

/** All 65536 float16 values, built on first use: a lookup beats per-element bit twiddling on fp16 weights. */
function float16Table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) {
      const sign = bits & 0x8000 ? -1 : 1;
      const exponent = (bits >> 10) & 0x1f;
      const fraction = bits & 0x3ff;
      halfTable[bits] =
        exponent === 0
          ? sign * fraction * 2 ** -24 // zero and subnormals
          : exponent === 31
            ? fraction
              ? NaN
              : sign * Infinity
            : sign * (1024 + fraction) * 2 ** (exponent - 25);
    }
  }
  return halfTable;
}

/** The value of float16 bit patterns. */
export function float16ToFloat32(bits: ArrayLike<number>): Float32Array {
  const table = float16Table();
  return Float32Array.from(bits, (b) => table[b & 0xffff]!);
}

/**
 * float16 bit patterns of float32 values, rounded to nearest even as the
 * GPU's f16() conversion does; beyond float16's range gives ±Infinity, NaN
 * stays NaN.
 */
export function float32ToFloat16(values: ArrayLike<number>, out: Uint16Array<ArrayBuffer> = new Uint16Array(values.length)): Uint16Array<ArrayBuffer> {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!;
    const x = u[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exponent = (x >>> 23) & 0xff;
    const mantissa = x & 0x7fffff;
    let h: number;
    if (exponent === 0xff) h = sign | 0x7c00 | (mantissa ? 0x200 : 0);
    else if (exponent > 142)
      h = sign | 0x7c00; // 2^16 and up: past 65504 even after rounding
    else if (exponent < 102)
      h = sign; // below half the smallest subnormal, 2^-25
    else {
      // Normal halves keep 10 mantissa bits; subnormals fewer, counted from 2^-24.
      const shift = exponent > 112 ? 13 : 126 - exponent;
      const full = exponent > 112 ? mantissa : mantissa | 0x800000;
      const base = exponent > 112 ? (exponent - 112) << 10 : 0;
      let kept = (full >>> shift) + base;
      const rest = full & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rest > half || (rest === half && kept & 1)) kept++; // a carry into the exponent is still right
      h = sign | kept;
    }
    out[i] = h;
  }
  return out;
}
