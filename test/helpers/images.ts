import { colormap } from '../../src/vis/colormap.js';
/**
 * Image files whose headers declare any size: PNGs built byte by byte, and
 * JPEGs with a rewritten frame header, for the decompression-bomb cases
 * (test/image.test.ts, bench/image.ts).
 */
import { deflateRawSync } from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** A grayscale 8-bit PNG of the given size whose IDAT holds `idat` (a zlib stream of the filtered rows). */
export function png(width: number, height: number, idat: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', new Uint8Array()),
  ]);
}
/**
 * A complete, valid all-black grayscale PNG of any size in a few hundred KB:
 * the zlib stream of height x (1 + width) zero bytes is one deflate chunk of
 * zeros (flushed to a byte boundary, no back-references) repeated, then an
 * empty final block and the Adler-32 of all those zeros.
 */
export function blackPng(width: number, height: number): Buffer {
  const total = height * (width + 1);
  const piece = 1 << 20;
  const block = deflateRawSync(Buffer.alloc(piece), { finishFlush: 3 /* Z_FULL_FLUSH */ });
  const parts: Buffer[] = [Buffer.from([0x78, 0x01])];
  const whole = Math.floor(total / piece);
  for (let i = 0; i < whole; i++) parts.push(block);
  parts.push(deflateRawSync(Buffer.alloc(total - whole * piece)));
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((total % 65521) << 16) | 1) >>> 0); // a = 1, b = total (mod 65521)
  parts.push(adler);
  return png(width, height, Buffer.concat(parts));
}

/** A copy of a baseline JPEG whose frame header (SOF0) declares width x height; the scan data stays the original's. */
export function jpegDeclaring(jpeg: Uint8Array, width: number, height: number): Buffer {
  const bytes = Buffer.from(jpeg);
  const sof = bytes.findIndex((b, i) => i >= 2 && b === 0xff && bytes[i + 1] === 0xc0);
  if (sof < 0) throw new Error('no baseline frame header (FF C0) in the JPEG');
  bytes.writeUInt16BE(height, sof + 5);
  bytes.writeUInt16BE(width, sof + 7);
  return bytes;
}

const jet = colormap('jet');
const JET_LEVEL = new Map(Array.from({ length: 256 }, (_, v) => [(jet[3 * v]! << 16) | (jet[3 * v + 1]! << 8) | jet[3 * v + 2]!, v]));

/** Each pixel's JET level (0-255) from its colour, RGB or RGBA; undefined for a colour that is not JET's. */
export function jetLevels(data: Uint8Array, channels: 3 | 4): (number | undefined)[] {
  return Array.from({ length: data.length / channels }, (_, p) =>
    JET_LEVEL.get((data[channels * p]! << 16) | (data[channels * p + 1]! << 8) | data[channels * p + 2]!),
  );
}
