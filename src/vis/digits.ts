/**
 * A tiny bitmap font of the ten digits, 3 pixels wide and 5 tall, baked
 * into WGSL as constants so kernels can draw numbers (channel indices on
 * grid tiles) without a texture or a read-back.
 *
 * A label is a dark box around white digits. In font units (one unit is
 * `scale` pixels): a 1-unit margin, then each digit 3 units wide followed by
 * a 1-unit space, 5 units tall: (1 + 4·d) x 7 units for d digits.
 */

/** The glyphs, top row first, '#' = ink. */
export const DIGIT_GLYPHS: readonly (readonly string[])[] = [
  ['###', '#.#', '#.#', '#.#', '###'],
  ['.#.', '##.', '.#.', '.#.', '###'],
  ['###', '..#', '###', '#..', '###'],
  ['###', '..#', '###', '..#', '###'],
  ['#.#', '#.#', '###', '..#', '..#'],
  ['###', '#..', '###', '..#', '###'],
  ['###', '#..', '###', '#.#', '###'],
  ['###', '..#', '..#', '..#', '..#'],
  ['###', '#.#', '###', '#.#', '###'],
  ['###', '#.#', '###', '..#', '###'],
];

export const DIGIT_WIDTH = 3;
export const DIGIT_HEIGHT = 5;

/** A glyph as 15 bits: bit (row·3 + col) is ink. */
function glyphBits(glyph: readonly string[]): number {
  let bits = 0;
  glyph.forEach((row, r) => {
    for (let c = 0; c < DIGIT_WIDTH; c++) if (row[c] === '#') bits |= 1 << (r * DIGIT_WIDTH + c);
  });
  return bits;
}

/** The number of decimal digits of a non-negative integer. */
export const digitCount = (value: number): number => String(Math.max(0, Math.floor(value))).length;

/** A label's box in pixels, [height, width], for `value` drawn at `scale`. */
export function labelSize(value: number, scale: number): [number, number] {
  return [7 * scale, (1 + 4 * digitCount(value)) * scale];
}

/**
 * WGSL: `labelPixel(value, x, y, scale) -> u32`, what a label of `value`
 * drawn at `scale` with its top-left corner at (0, 0) shows at pixel (x, y):
 * 0 outside the box, 1 the box, 2 a digit's ink.
 */
export const LABEL_WGSL = `const DIGIT_FONT = array<u32, 10>(${DIGIT_GLYPHS.map((g) => `${glyphBits(g)}u`).join(', ')});
fn labelPixel(value: u32, x: u32, y: u32, scale: u32) -> u32 {
  var digits = 1u;
  var rest = value / 10u;
  while (rest > 0u) { digits++; rest /= 10u; }
  let u = x / scale;
  let v = y / scale;
  if (u >= 1u + 4u * digits || v >= 7u) { return 0u; }
  if (u < 1u || v < 1u || v > 5u) { return 1u; }
  let j = (u - 1u) / 4u;
  let col = (u - 1u) % 4u;
  if (col >= 3u) { return 1u; }
  var d = value;
  for (var k = j + 1u; k < digits; k++) { d /= 10u; }
  let bit = (DIGIT_FONT[d % 10u] >> ((v - 1u) * 3u + col)) & 1u;
  return 1u + bit;
}`;
