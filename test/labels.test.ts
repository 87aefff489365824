import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { fitGeometry } from '../src/preprocess/fit.js';
import { readLabel } from '../src/io/labels.js';
import { colourLabel, fitLabel, resizeLabel, type LabelMap } from '../src/workflow/labels.js';
import { ignoreColor, palette } from '../src/vis/colormap.js';
import { random } from './helpers/gpu.js';

const tmp = mkdtempSync(join(tmpdir(), 'segscope-labels-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const VOC = palette('voc', 21);
const VOC_VOID = ignoreColor('voc');
const voc = (k: number): [number, number, number] => [VOC[3 * k]!, VOC[3 * k + 1]!, VOC[3 * k + 2]!];

let files = 0;
/** Writes 8-bit raw pixels (1 = grey, 3 = RGB) as a PNG with sharp; returns its path. */
async function pngFile(width: number, height: number, channels: 1 | 3, pixels: ArrayLike<number>): Promise<string> {
  const path = join(tmp, `mask-${files++}.png`);
  await sharp(Buffer.from(Uint8Array.from(pixels)), { raw: { width, height, channels } })
    .png()
    .toFile(path);
  return path;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  let c = 0xffffffff;
  for (const b of body) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return Buffer.concat([head, body, crc]);
}
/**
 * A PNG written by hand, for what sharp does not write exactly: colour type 3
 * (palette, as VOC's SegmentationClass masks are) with `plte` as its PLTE, or
 * colour type 0 at 16 bits. `samples` are the pixels' indices or grey values.
 */
function handPng(width: number, height: number, samples: ArrayLike<number>, kind: { plte: Uint8Array } | { depth16: true }): string {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  const bytesPerSample = 'plte' in kind ? 1 : 2;
  ihdr[8] = 8 * bytesPerSample;
  ihdr[9] = 'plte' in kind ? 3 : 0;
  const rows = Buffer.alloc(height * (1 + width * bytesPerSample)); // filter type 0 per row
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = y * (1 + width * bytesPerSample) + 1 + x * bytesPerSample;
      if (bytesPerSample === 1) rows[at] = samples[y * width + x]!;
      else rows.writeUInt16BE(samples[y * width + x]!, at);
    }
  }
  const path = join(tmp, `hand-${files++}.png`);
  writeFileSync(
    path,
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      ...('plte' in kind ? [chunk('PLTE', kind.plte)] : []),
      chunk('IDAT', deflateSync(rows)),
      chunk('IEND', new Uint8Array()),
    ]),
  );
  return path;
}

/** Asserts that `promise` rejects with an InputError whose message contains every part; returns the message. */
async function rejects(promise: Promise<unknown>, ...parts: string[]): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InputError);
  const message = (error as Error).message;
  for (const part of parts) expect(message).toContain(part);
  return message;
}

const label = (width: number, height: number, data: ArrayLike<number>): LabelMap => ({ width, height, data: Uint8Array.from(data) });

describe('readLabel', () => {
  it('reads a grey index mask exactly, 255 kept as ignore', async () => {
    const values = [0, 1, 2, 20, 255, 7, 19, 0, 255, 13, 3, 4];
    const path = await pngFile(4, 3, 1, values);
    expect(await readLabel(path, 21)).toEqual({ width: 4, height: 3, data: Uint8Array.from(values) });
    // The palette is not consulted for an index mask.
    expect((await readLabel(path, 21, VOC)).data).toEqual(Uint8Array.from(values));
  });

  it('reads an RGB mask whose pixels are grey as an index mask', async () => {
    const values = [0, 5, 255, 9, 1, 2];
    const path = await pngFile(
      3,
      2,
      3,
      values.flatMap((v) => [v, v, v]),
    );
    expect((await readLabel(path, 10)).data).toEqual(Uint8Array.from(values));
  });

  it('reads a 16-bit grey index mask by its values, not their high bytes', async () => {
    const values = [0, 1, 2, 20, 255, 7];
    const path = handPng(3, 2, values, { depth16: true });
    expect((await readLabel(path, 21)).data).toEqual(Uint8Array.from(values));
  });

  it('maps the colours of an RGB VOC mask to class indices, void and white to 255', async () => {
    const classes = [0, 15, 1, 20, 7, 255, 12, 0, 255];
    const colours = classes.map((k, i) => (k === 255 ? (i === 5 ? VOC_VOID : [255, 255, 255]) : voc(k)));
    expect(VOC_VOID).toEqual([224, 224, 192]);
    const path = await pngFile(3, 3, 3, colours.flat());
    expect(await readLabel(path, 21, VOC)).toEqual({ width: 3, height: 3, data: Uint8Array.from(classes) });
  });

  it('reads a palette-mode (indexed) PNG as VOC ships them', async () => {
    const plte = palette('voc', 256); // the devkit's map: entry 255 is the void colour
    const classes = [0, 0, 15, 15, 255, 255, 3, 20, 0, 8, 255, 1];
    const path = handPng(4, 3, classes, { plte });
    expect((await readLabel(path, 21, VOC)).data).toEqual(Uint8Array.from(classes));
  });

  it('refuses a colour not in the palette, naming the file, the pixel (x, y) and the colour', async () => {
    const pixels = [voc(0), voc(1), voc(2), voc(3), voc(4), [10, 20, 30]].flat();
    const path = await pngFile(3, 2, 3, pixels);
    await rejects(readLabel(path, 21, VOC), path, '(2, 1)', '(10, 20, 30)');
  });

  it('refuses a grey value that is neither a class index nor 255 nor a palette colour', async () => {
    const path = await pngFile(2, 2, 1, [0, 1, 30, 2]);
    await rejects(readLabel(path, 21, VOC), path, '(0, 1)', '(30, 30, 30)');
  });

  it('only looks up the first `classes` colours of a longer palette', async () => {
    const long = palette('voc', 256);
    const c21 = Array.from(long.subarray(63, 66));
    const path = await pngFile(2, 1, 3, [...voc(1), ...c21]);
    await rejects(readLabel(path, 21, long), path, '(1, 0)', `(${c21.join(', ')})`);
    expect((await readLabel(path, 22, long)).data).toEqual(Uint8Array.of(1, 21));
  });

  it('refuses a coloured mask when there is no palette', async () => {
    const path = await pngFile(2, 1, 3, [...voc(0), ...voc(1)]);
    await rejects(readLabel(path, 21), path, 'palette');
  });

  it('refuses a grey mask with values >= classes (other than 255) when there is no palette', async () => {
    const path = await pngFile(2, 1, 1, [0, 21]);
    await rejects(readLabel(path, 21), path, '0..20');
  });

  it('refuses a missing file with an InputError naming it', async () => {
    const path = join(tmp, 'missing.png');
    await rejects(readLabel(path, 21), path);
  });
});

describe('fitLabel', () => {
  it("'resize' to twice the size turns each mask pixel into a 2x2 block", () => {
    const [h, w] = [4, 6];
    const src = label(
      w,
      h,
      Array.from({ length: h * w }, (_, i) => i),
    );
    const out = fitLabel(src, fitGeometry([h, w], [8, 12], 'resize'));
    expect([out.height, out.width]).toEqual([8, 12]);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 12; x++) expect(out.data[y * 12 + x], `(${x}, ${y})`).toBe(src.data[(y >> 1) * w + (x >> 1)]);
    }
  });

  it("'resize' to a smaller, non-proportional size samples at the input pixel centres", () => {
    const [h, w] = [9, 10];
    const src = label(
      w,
      h,
      Array.from({ length: h * w }, (_, i) => i),
    );
    const out = fitLabel(src, fitGeometry([h, w], [3, 4], 'resize'));
    // Input pixel centres (y + 0.5) * 3 → 1, 4, 7; (x + 0.5) * 2.5 → 1.25, 3.75, 6.25, 8.75.
    expect(Array.from(out.data)).toEqual([11, 13, 16, 18, 41, 43, 46, 48, 71, 73, 76, 78]);
  });

  it("'pad' places the mask top-left and fills the padding with 255", () => {
    const src = label(4, 2, [0, 1, 2, 3, 4, 5, 6, 7]);
    const g = fitGeometry([2, 4], [8, 8], 'pad'); // scale 2: content 4x8, top-left
    expect(g.content).toEqual({ top: 0, left: 0, height: 4, width: 8 });
    const out = fitLabel(src, g);
    const want = Array.from({ length: 64 }, (_, i) => {
      const [y, x] = [Math.floor(i / 8), i % 8];
      return y < 4 ? src.data[(y >> 1) * 4 + (x >> 1)] : 255;
    });
    expect(Array.from(out.data)).toEqual(want);
  });

  it("'pad' pads on the right for a tall mask", () => {
    const src = label(1, 2, [3, 4]);
    const out = fitLabel(src, fitGeometry([2, 1], [2, 2], 'pad'));
    expect(Array.from(out.data)).toEqual([3, 255, 4, 255]);
  });

  it("'crop' keeps the centre of the mask", () => {
    const src = label(
      8,
      4,
      Array.from({ length: 32 }, (_, i) => i),
    );
    const out = fitLabel(src, fitGeometry([4, 8], [4, 4], 'crop')); // columns 2..5
    expect(Array.from(out.data)).toEqual([2, 3, 4, 5, 10, 11, 12, 13, 18, 19, 20, 21, 26, 27, 28, 29]);
  });

  it("'crop' after upscaling picks the source pixels under each input pixel", () => {
    const src = label(4, 2, [0, 1, 2, 3, 4, 5, 6, 7]);
    const g = fitGeometry([2, 4], [4, 4], 'crop'); // scale 2 → 4x8, centre columns 2..5 → source columns 1, 1, 2, 2
    expect(g.offset).toEqual([0, -2]);
    expect(Array.from(fitLabel(src, g).data)).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 5, 5, 6, 6, 5, 5, 6, 6]);
  });

  it("'crop' without upscaling pads a small mask around with 255", () => {
    const src = label(2, 2, [1, 2, 3, 4]);
    const out = fitLabel(src, fitGeometry([2, 2], [4, 4], 'crop', false));
    expect(Array.from(out.data)).toEqual([255, 255, 255, 255, 255, 1, 2, 255, 255, 3, 4, 255, 255, 255, 255, 255]);
  });

  it('refuses a mask whose size differs from the image the geometry was made for', () => {
    const src = label(4, 3, new Array(12).fill(0));
    expect(() => fitLabel(src, fitGeometry([4, 3], [8, 8], 'resize'))).toThrow(InputError);
    expect(() => fitLabel(src, fitGeometry([4, 3], [8, 8], 'resize'))).toThrow(/4x3.*3x4/);
    expect(() => fitLabel(src, fitGeometry([3, 5], [8, 8], 'pad'))).toThrow(InputError);
  });
});

describe('resizeLabel', () => {
  /** Nearest with pixel centres aligned, written the plain way. */
  function reference(src: LabelMap, H: number, W: number): number[] {
    const out: number[] = [];
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        out.push(src.data[Math.floor(((y + 0.5) * src.height) / H) * src.width + Math.floor(((x + 0.5) * src.width) / W)]!);
      }
    }
    return out;
  }

  it.each([
    [5, 7, 10, 14],
    [10, 14, 5, 7],
    [7, 5, 3, 11],
    [3, 3, 17, 2],
    [1, 1, 4, 4],
    [33, 65, 129, 257],
    [129, 257, 33, 65],
  ])('matches out[y][x] = in[floor((y+0.5)h/H)][floor((x+0.5)w/W)]: %dx%d to %dx%d', (h, w, H, W) => {
    const src = label(w, h, Array.from(random(h * w, h * 1000 + w, 0, 256), Math.floor));
    const out = resizeLabel(src, [H, W]);
    expect([out.height, out.width]).toEqual([H, W]);
    expect(Array.from(out.data)).toEqual(reference(src, H, W));
  });

  it('doubles each pixel when upsampling by 2 and takes every second pixel (odd ones) when halving', () => {
    const src = label(2, 2, [1, 2, 3, 4]);
    expect(Array.from(resizeLabel(src, [4, 4]).data)).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    const big = label(4, 2, [0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(resizeLabel(big, [1, 2]).data)).toEqual([5, 7]);
  });

  it('returns the same values at the same size', () => {
    const src = label(3, 2, [1, 2, 3, 4, 5, 255]);
    const out = resizeLabel(src, [2, 3]);
    expect(out).toEqual(src);
  });
});

describe('colourLabel', () => {
  it('paints palette colours, the void colour for 255 and for classes past the palette, alpha 255', () => {
    const src = label(3, 2, [0, 1, 20, 255, 21, 100]);
    const rgba = colourLabel(src, VOC, VOC_VOID);
    expect(rgba).toHaveLength(24);
    const pixels = Array.from({ length: 6 }, (_, i) => Array.from(rgba.subarray(4 * i, 4 * i + 4)));
    expect(pixels).toEqual([
      [...voc(0), 255],
      [...voc(1), 255],
      [...voc(20), 255],
      [224, 224, 192, 255],
      [224, 224, 192, 255],
      [224, 224, 192, 255],
    ]);
  });

  it('uses the given palette and void colour, not VOC', () => {
    const pal = Uint8Array.of(10, 20, 30, 40, 50, 60);
    const rgba = colourLabel(label(3, 1, [1, 0, 2]), pal, [1, 2, 3]);
    expect(Array.from(rgba)).toEqual([40, 50, 60, 255, 10, 20, 30, 255, 1, 2, 3, 255]);
  });

  it('round-trips with readLabel through a PNG', async () => {
    const src = label(4, 2, [0, 3, 255, 20, 1, 1, 15, 255]);
    const rgba = colourLabel(src, VOC, VOC_VOID);
    const rgb = Array.from({ length: 8 }, (_, i) => Array.from(rgba.subarray(4 * i, 4 * i + 3))).flat();
    const path = await pngFile(4, 2, 3, rgb);
    expect((await readLabel(path, 21, VOC)).data).toEqual(src.data);
  });
});
