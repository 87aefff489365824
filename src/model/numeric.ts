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
        exponent === 0 ? sign * fraction * 2 ** -24 // zero and subnormals
        : exponent === 31 ? (fraction ? NaN : sign * Infinity)
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
