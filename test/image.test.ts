import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { decodeImage, readImage, writePng, type Image } from '../src/io/image.js';
import { decodeNpy } from '../src/io/npy.js';
import { fitGeometry, imageToInput, inputToImage } from '../src/preprocess/fit.js';
import { toInputTensor, type Pixels } from '../src/preprocess/input-tensor.js';
import { resampleBilinear } from '../src/preprocess/resample.js';
import { blackPng, jpegDeclaring, png } from './helpers/images.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/images');
const fixture = (name: string) => join(FIXTURES, name);
const reference = (name: string) => decodeNpy(readFileSync(fixture(name)), name);

const tmp = mkdtempSync(join(tmpdir(), 'segscope-image-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Largest absolute difference between two equally long arrays. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function expectInputError(p: Promise<unknown>, ...patterns: RegExp[]): Promise<InputError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(InputError);
  for (const re of patterns) expect((e as Error).message).toMatch(re);
  return e as InputError;
}

describe('readImage: decoding', () => {
  // [file, tolerance in levels]: lossless formats exact, JPEG and lossy WebP
  // within 2 levels (decoders may differ; here libjpeg-turbo/libwebp on both sides).
  const cases: [string, number, number, number][] = [
    ['rgb.png', 0, 48, 32],
    ['gray.png', 0, 48, 32],
    ['rgba.png', 0, 48, 32],
    ['gray_alpha.png', 0, 48, 32],
    ['palette.png', 0, 48, 32],
    ['rgb16.png', 0, 48, 32],
    ['gray16.png', 0, 48, 32],
    ['rgb_lossless.webp', 0, 48, 32],
    ['animated.webp', 0, 48, 32],
    ['one.png', 0, 1, 1],
    ['rgb.jpg', 2, 48, 32],
    ['cmyk.jpg', 2, 48, 32],
    ['exif6.jpg', 2, 32, 48],
    ['rgb_lossy.webp', 2, 48, 32],
    ['one.jpg', 2, 1, 1],
  ];
  for (const [file, tolerance, width, height] of cases) {
    it(`${file} matches Pillow/OpenCV ${tolerance ? `within ${tolerance} levels` : 'exactly'}`, async () => {
      const image = await readImage(fixture(file));
      expect([image.width, image.height, image.channels]).toEqual([width, height, 3]);
      expect(image.path).toBe(fixture(file));
      expect(image.data).toBeInstanceOf(Uint8Array);
      const ref = reference(`${file}.npy`);
      expect(ref.dims).toEqual([height, width, 3]);
      expect(maxDiff(image.data, ref.data)).toBeLessThanOrEqual(tolerance);
      expect(image.format).toBe(file.endsWith('.jpg') ? 'jpeg' : file.endsWith('.png') ? 'png' : 'webp');
      expect(image.bitDepth).toBe(file.includes('16') ? 16 : 8);
    });
  }

  it('applies EXIF orientation 6: the stored 48x32 picture turned 90 degrees clockwise', async () => {
    const rotated = await readImage(fixture('exif6.jpg'));
    const plain = await readImage(fixture('rgb.jpg'));
    expect([rotated.width, rotated.height]).toEqual([32, 48]);
    // Output (y, x) shows stored pixel (H-1-x, y).
    let m = 0;
    for (let y = 0; y < 48; y++) {
      for (let x = 0; x < 32; x++) {
        for (let c = 0; c < 3; c++) m = Math.max(m, Math.abs(rotated.data[(y * 32 + x) * 3 + c]! - plain.data[((31 - x) * 48 + y) * 3 + c]!));
      }
    }
    expect(m).toBe(0); // same encoder, same pixels: only the EXIF segment differs
    expect(maxDiff(rotated.data, reference('exif6.jpg.npy').data)).toBeLessThanOrEqual(2);
  });

  it('drops alpha by default (transparent pixels keep their colour) and composites on black when asked', async () => {
    const dropped = await readImage(fixture('rgba.png'));
    expect(maxDiff(dropped.data, reference('rgb.png.npy').data)).toBe(0);
    const black = await readImage(fixture('rgba.png'), { alpha: 'black' });
    expect(maxDiff(black.data, reference('rgba.png.black.npy').data)).toBeLessThanOrEqual(1);
    // The first rows are fully transparent: black.
    expect(Array.from(black.data.subarray(0, 48 * 3 * 4)).every((v) => v === 0)).toBe(true);
  });

  it('keeps 16-bit PNG precision when asked: float = value / 65535', async () => {
    for (const file of ['rgb16.png', 'gray16.png']) {
      const image = await readImage(fixture(file), { float: true });
      const u16 = reference(`${file}.u16.npy`).data;
      expect(image.float).toBeInstanceOf(Float32Array);
      expect(
        maxDiff(
          Array.from(image.float!, (v) => Math.round(v * 65535)),
          u16,
        ),
      ).toBe(0);
      // The 8-bit data is the high byte, as OpenCV reduces 16-bit images.
      expect(
        maxDiff(
          image.data,
          Array.from(u16, (v) => v >> 8),
        ),
      ).toBe(0);
      // Low bytes really differ from high bytes in this fixture, so the precision is visible.
      expect(Array.from(u16).some((v) => (v & 0xff) !== v >> 8)).toBe(true);
    }
    const eight = await readImage(fixture('rgb.png'), { float: true });
    expect(
      maxDiff(
        eight.float!,
        Array.from(eight.data, (v) => v / 255),
      ),
    ).toBeLessThan(1e-7);
    expect((await readImage(fixture('rgb16.png'))).float).toBeUndefined();
  });

  it('decodes from memory too', async () => {
    const image = await decodeImage(readFileSync(fixture('rgb_lossless.webp')), 'upload.webp');
    expect(image.path).toBe('upload.webp');
    expect(maxDiff(image.data, reference('rgb_lossless.webp.npy').data)).toBe(0);
  });
});

describe('readImage: bad and hostile files end in an InputError naming the file', () => {
  const write = (name: string, data: Uint8Array | string) => {
    const path = join(tmp, name);
    writeFileSync(path, data);
    return path;
  };
  const jpg = readFileSync(fixture('rgb.jpg'));
  const pngBytes = readFileSync(fixture('rgb.png'));
  const webp = readFileSync(fixture('rgb_lossy.webp'));

  it('empty, missing, a directory', async () => {
    const empty = write('empty.jpg', new Uint8Array());
    await expectInputError(readImage(empty), /empty\.jpg/, /empty/);
    await expectInputError(readImage(join(tmp, 'missing.png')), /missing\.png/, /ENOENT|no such file/);
    const dir = join(tmp, 'dir.png');
    mkdirSync(dir);
    await expectInputError(readImage(dir), /dir\.png/, /not a file/);
    await expectInputError(decodeImage(new Uint8Array(), 'mem.png'), /mem\.png: the file is empty/);
  });

  it('truncated JPEG, PNG and WebP files', async () => {
    for (const [name, data] of [
      ['half.jpg', jpg.subarray(0, jpg.length >> 1)],
      ['no-eoi.jpg', jpg.subarray(0, jpg.length - 2)],
      ['header-only.jpg', jpg.subarray(0, 200)],
      ['three-bytes.jpg', jpg.subarray(0, 3)],
      ['half.png', pngBytes.subarray(0, pngBytes.length >> 1)],
      ['signature-only.png', pngBytes.subarray(0, 8)],
      ['half.webp', webp.subarray(0, webp.length >> 1)],
    ] as const) {
      const path = write(name, data);
      const e = await expectInputError(readImage(path), new RegExp(name.replace('.', '\\.')), /cannot decode this (JPEG|PNG|WebP) file/);
      expect(e.message.split('\n')).toHaveLength(1);
    }
  });

  it('files that are not JPEG, PNG or WebP', async () => {
    await expectInputError(readImage(write('notes.jpg', 'hello, this is text')), /notes\.jpg: not a JPEG, PNG or WebP image/, /68 65 6c 6c/);
    await expectInputError(readImage(write('anim.gif', 'GIF89a\x01\x00\x01\x00')), /anim\.gif/, /a GIF image/);
    await expectInputError(readImage(write('vector.png', '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')), /vector\.png/, /SVG/);
    await expectInputError(readImage(write('noise.webp', 'RIFF\x00\x00\x00\x00WAVEfmt ')), /noise\.webp: not a JPEG/);
  });

  it('a PNG bomb (tiny file declaring 100000x100000) is refused by its declared size', async () => {
    const bomb = write('bomb.png', png(100_000, 100_000, deflateSync(Buffer.alloc(1000))));
    expect(readFileSync(bomb).length).toBeLessThan(200);
    await expectInputError(readImage(bomb), /bomb\.png/, /100000x100000/, /10000\.0 megapixels/, /limit of 100\.0 megapixels/, /maxPixels/);
  });

  it('a real 20000x20000 PNG is refused with its size and the limit; the same kind of file within the limit decodes', async () => {
    const huge = write('huge.png', blackPng(20_000, 20_000));
    expect(readFileSync(huge).length).toBeLessThan(1 << 20);
    await expectInputError(readImage(huge), /huge\.png: the image is 20000x20000 \(400\.0 megapixels\), more than the limit of 100\.0 megapixels/);
    // The generator makes valid files: a smaller one decodes to black.
    const small = await readImage(write('black.png', blackPng(1500, 1000)));
    expect([small.width, small.height]).toEqual([1500, 1000]);
    expect(small.data.every((v) => v === 0)).toBe(true);
    // And the limit is an option.
    await expectInputError(
      readImage(join(tmp, 'black.png'), { maxPixels: 1_000_000 }),
      /1500x1000 \(1\.5 megapixels\), more than the limit of 1\.0 megapixels \(maxPixels = 1000000\)/,
    );
  });

  it('a JPEG whose header declares 20000x20000 is refused by size, not decoded', async () => {
    const bytes = jpegDeclaring(jpg, 20000, 20000);
    await expectInputError(readImage(write('declared.jpg', bytes)), /declared\.jpg: the image is 20000x20000/, /limit/);
    // Within a raised limit it is decoded and found to end early: still a clear error, not a half-grey picture.
    await expectInputError(readImage(join(tmp, 'declared.jpg'), { maxPixels: 500_000_000 }), /declared\.jpg: cannot decode this JPEG file: .*premature end/);
    // failOn: 'none' accepts such damage: the missing part is grey.
    const damaged = await readImage(write('damaged.jpg', jpegDeclaring(jpg, 100, 200)), { failOn: 'none' });
    expect([damaged.width, damaged.height]).toEqual([100, 200]);
    expect(damaged.data[damaged.data.length - 1]).toBe(128);
  });

  it('a small maxPixels refuses even the fixtures; bad options are refused', async () => {
    await expectInputError(readImage(fixture('rgb.png'), { maxPixels: 1000 }), /48x32 \(0\.002 megapixels\)/, /maxPixels = 1000/);
    await expectInputError(readImage(fixture('rgb.png'), { maxPixels: -1 }), /maxPixels must be a positive integer/);
    await expectInputError(readImage(fixture('rgb.png'), { alpha: 'white' as 'black' }), /alpha must be/);
  });
});

describe('writePng', () => {
  it('round-trips RGBA pixels exactly and leaves no temporary file', async () => {
    const [w, h] = [7, 5];
    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 37 + (i >> 2) * 11) & 0xff);
    for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255 - i; // varied alpha
    const dir = join(tmp, 'png-out');
    const path = join(dir, 'picture.png');
    await writePng(path, rgba, w, h);
    expect(readdirSync(dir)).toEqual(['picture.png']);
    const back = await sharp(readFileSync(path)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([back.info.width, back.info.height, back.info.channels]).toEqual([w, h, 4]);
    expect(maxDiff(back.data, rgba)).toBe(0);
    const rgb = await readImage(path);
    expect(
      maxDiff(
        rgb.data,
        Array.from(rgba).filter((_, i) => i % 4 !== 3),
      ),
    ).toBe(0);
  });

  it('refuses a buffer of the wrong length or a bad size, writing nothing', async () => {
    const path = join(tmp, 'bad.png');
    await expectInputError(writePng(path, new Uint8Array(10), 2, 2), /bad\.png/, /needs 16 bytes, got 10/);
    await expectInputError(writePng(path, new Uint8Array(0), 0, 0), /positive integers/);
    expect(readdirSync(tmp).filter((f) => f.startsWith('bad.png'))).toEqual([]);
  });
});

describe('toInputTensor', () => {
  const MEAN = [0.485, 0.456, 0.406];
  const STD = [0.229, 0.224, 0.225];
  /** The tensor's values turned back into 0..255 RGB, interleaved, for a region. */
  const denormalise = (t: Float32Array, H: number, W: number, box = { top: 0, left: 0, height: H, width: W }, mean = MEAN, std = STD) => {
    const out = new Float64Array(box.height * box.width * 3);
    for (let y = 0; y < box.height; y++) {
      for (let x = 0; x < box.width; x++) {
        for (let c = 0; c < 3; c++) out[(y * box.width + x) * 3 + c] = (t[c * H * W + (box.top + y) * W + box.left + x]! * std[c]! + mean[c]!) * 255;
      }
    }
    return out;
  };

  it('normalises with ImageNet mean/std by default, [1,3,H,W] float32 planar, against the CPU formula', async () => {
    const image = await readImage(fixture('rgb.png'));
    const { tensor, geometry } = toInputTensor(image, { size: [32, 48] });
    expect(tensor.type).toBe('float32');
    expect(tensor.dims).toEqual([1, 3, 32, 48]);
    expect(tensor.data).toBeInstanceOf(Float32Array);
    let m = 0;
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 48; x++) {
        for (let c = 0; c < 3; c++) {
          const expected = (image.data[(y * 48 + x) * 3 + c]! / 255 - MEAN[c]!) / STD[c]!;
          m = Math.max(m, Math.abs(tensor.data[c * 32 * 48 + y * 48 + x]! - expected));
        }
      }
    }
    expect(m).toBeLessThan(1e-5);
    expect(geometry).toMatchObject({ scale: [1, 1], offset: [0, 0], content: { top: 0, left: 0, height: 32, width: 48 } });
  });

  it('takes a custom mean/std (e.g. the TF DeepLab scaling to -1..1) and the 16-bit float data', async () => {
    const image = await readImage(fixture('rgb.png'));
    const { tensor } = toInputTensor(image, { size: [32, 48], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(
      maxDiff(
        tensor.data.subarray(0, 48),
        Array.from(image.data.filter((_, i) => i % 3 === 0).subarray(0, 48), (v) => v / 127.5 - 1),
      ),
    ).toBeLessThan(1e-6);

    const sixteen = await readImage(fixture('rgb16.png'), { float: true });
    const u16 = reference('rgb16.png.u16.npy').data;
    const t16 = toInputTensor(sixteen, { size: [32, 48] }).tensor;
    let m = 0;
    for (let i = 0; i < 32 * 48; i++)
      for (let c = 0; c < 3; c++) m = Math.max(m, Math.abs(t16.data[c * 32 * 48 + i]! - (u16[i * 3 + c]! / 65535 - MEAN[c]!) / STD[c]!));
    expect(m).toBeLessThan(1e-5);
  });

  it("'resize' is Pillow's BILINEAR resize (within 1 level: Pillow rounds to 8 bits between its passes)", async () => {
    const image = await readImage(fixture('rgb.png'));
    for (const [w, h] of [
      [20, 13],
      [100, 70],
    ] as const) {
      const { tensor, geometry } = toInputTensor(image, { size: [h, w], fit: 'resize' });
      expect(tensor.dims).toEqual([1, 3, h, w]);
      expect(maxDiff(denormalise(tensor.data as Float32Array, h, w), reference(`rgb.png.resize_${w}x${h}.npy`).data)).toBeLessThanOrEqual(1.0001);
      expect(geometry).toMatchObject({ fit: 'resize', imageSize: [32, 48], inputSize: [h, w], resizedSize: [h, w], scale: [h / 32, w / 48], offset: [0, 0] });
      expect(geometry.visible).toEqual({ top: 0, left: 0, height: 32, width: 48 });
    }
  });

  it('bilinear uses pixel centres (half-pixel, as PyTorch align_corners=False and Pillow) and antialiases when shrinking', () => {
    expect(Array.from(resampleBilinear([0, 85, 170, 255], 1, 4, 1, 1, 8))).toEqual([0, 21.25, 63.75, 106.25, 148.75, 191.25, 233.75, 255]);
    // Halving averages with a triangle twice as wide: symmetric, no shift.
    const down = Array.from(resampleBilinear([0, 36, 73, 109, 146, 182, 219, 255], 1, 8, 1, 1, 4));
    expect(down[0]! + down[3]!).toBeCloseTo(255, 4);
    expect(down[1]! + down[2]!).toBeCloseTo(255, 4);
    expect(down[1]).toBeCloseTo((0.25 * 36 + 0.75 * 73 + 0.75 * 109 + 0.25 * 146) / 2, 4);
  });

  it("'pad' keeps the aspect ratio, pads bottom/right with the mean colour (zeros)", async () => {
    const image = await readImage(fixture('rgb.png')); // 48x32
    // Enlarge into 64x64: width sets the scale (4/3), height 32*4/3 = 42.67 -> 43.
    const { tensor, geometry } = toInputTensor(image, { size: [64, 64], fit: 'pad' });
    expect(geometry).toMatchObject({ resizedSize: [43, 64], offset: [0, 0], content: { top: 0, left: 0, height: 43, width: 64 } });
    expect(geometry.scale).toEqual([43 / 32, 64 / 48]);
    const direct = resampleBilinear(image.data, 32, 48, 3, 43, 64);
    expect(maxDiff(denormalise(tensor.data as Float32Array, 64, 64, geometry.content), direct)).toBeLessThan(1e-3);
    for (let c = 0; c < 3; c++) expect(tensor.data.subarray(c * 4096 + 43 * 64, (c + 1) * 4096).every((v) => v === 0)).toBe(true);
    // Shrink into 16x16: 16 x 10.67 -> 11 rows.
    const small = toInputTensor(image, { size: [16, 16], fit: 'pad' }).geometry;
    expect(small).toMatchObject({ resizedSize: [11, 16], content: { top: 0, left: 0, height: 11, width: 16 } });
    // Without upscaling a small image stays as it is, top-left.
    const kept = toInputTensor(image, { size: [64, 64], fit: 'pad', upscale: false }).geometry;
    expect(kept).toMatchObject({ resizedSize: [32, 48], scale: [1, 1], content: { top: 0, left: 0, height: 32, width: 48 } });
  });

  it("'crop' scales the short side to the input and takes the centre", async () => {
    const image = await readImage(fixture('rgb.png')); // 48x32
    const { tensor, geometry } = toInputTensor(image, { size: [20, 20], fit: 'crop' });
    // Scale 20/32: 30x20, centre 20 columns start at 5.
    expect(geometry).toMatchObject({ resizedSize: [20, 30], scale: [0.625, 0.625], offset: [0, -5], content: { top: 0, left: 0, height: 20, width: 20 } });
    expect(geometry.visible).toEqual({ top: 0, left: 8, height: 32, width: 32 });
    const full = resampleBilinear(image.data, 32, 48, 3, 20, 30);
    const window = resampleBilinear(image.data, 32, 48, 3, 20, 30, { top: 0, left: 5, height: 20, width: 20 });
    for (let y = 0; y < 20; y++) expect(maxDiff(window.subarray(y * 60, y * 60 + 60), full.subarray(y * 90 + 15, y * 90 + 75))).toBe(0);
    expect(maxDiff(denormalise(tensor.data as Float32Array, 20, 20), window)).toBeLessThan(1e-3);
    // Python's round for the offset, as torchvision's CenterCrop: (48-47)/2 = 0.5 -> 0.
    expect(fitGeometry([32, 48], [32, 47], 'crop').offset).toEqual([0, 0]);
    expect(fitGeometry([32, 50], [32, 47], 'crop').offset).toEqual([0, -2]); // 1.5 -> 2
  });

  it("'crop' without upscaling centre-crops larger sides and pads smaller ones, like CenterCrop", () => {
    const g = fitGeometry([10, 100], [20, 20], 'crop', false);
    expect(g).toMatchObject({ resizedSize: [10, 100], scale: [1, 1], offset: [5, -40], content: { top: 5, left: 0, height: 10, width: 20 } });
    expect(g.visible).toEqual({ top: 0, left: 40, height: 10, width: 20 });
  });

  it('a 1x1 image fills the input with its colour, or sits centred when not upscaled', async () => {
    const one = await readImage(fixture('one.png')); // (12, 200, 99)
    const colour = (t: Float32Array, box: { top: number; left: number; height: number; width: number }) =>
      Math.max(...denormalise(t, 5, 7, box).map((v, i) => Math.abs(v - [12, 200, 99][i % 3]!)));
    for (const fit of ['resize', 'crop'] as const) {
      const { tensor, geometry } = toInputTensor(one, { size: [5, 7], fit });
      expect(geometry.content).toEqual({ top: 0, left: 0, height: 5, width: 7 });
      expect(colour(tensor.data as Float32Array, geometry.content)).toBeLessThan(1e-3);
    }
    // 'pad' keeps it square: 5x5, then two columns of padding.
    const padded = toInputTensor(one, { size: [5, 7], fit: 'pad' });
    expect(padded.geometry).toMatchObject({ resizedSize: [5, 5], content: { top: 0, left: 0, height: 5, width: 5 } });
    expect(colour(padded.tensor.data as Float32Array, padded.geometry.content)).toBeLessThan(1e-3);
    expect(Array.from(padded.tensor.data).filter((v) => v !== 0)).toHaveLength(75);
    const { tensor, geometry } = toInputTensor(one, { size: [5, 7], fit: 'crop', upscale: false });
    expect(geometry).toMatchObject({ offset: [2, 3], content: { top: 2, left: 3, height: 1, width: 1 } });
    expect(Array.from(tensor.data).filter((v) => v !== 0)).toHaveLength(3);
  });

  it('maps points between image and input both ways', () => {
    for (const fit of ['resize', 'pad', 'crop'] as const) {
      const g = fitGeometry([375, 500], [513, 513], fit);
      for (const p of [
        [0, 0],
        [100.5, 37.25],
        [375, 500],
      ] as [number, number][]) {
        const back = inputToImage(g, imageToInput(g, p));
        expect(back[0]).toBeCloseTo(p[0], 9);
        expect(back[1]).toBeCloseTo(p[1], 9);
      }
      // The visible part of the image maps onto the content box.
      const [y0, x0] = imageToInput(g, [g.visible.top, g.visible.left]);
      const [y1, x1] = imageToInput(g, [g.visible.top + g.visible.height, g.visible.left + g.visible.width]);
      expect([y0, x0, y1 - y0, x1 - x0].map((v) => Math.round(v * 1e6) / 1e6)).toEqual([g.content.top, g.content.left, g.content.height, g.content.width]);
    }
    // The DeepLab demo: a 500x375 VOC image padded to 513: scale 513/500, 385 rows of content.
    expect(fitGeometry([375, 500], [513, 513], 'pad')).toMatchObject({ resizedSize: [385, 513], content: { height: 385, width: 513 } });
  });

  it('crops a very elongated image to the input size (bench/image.ts times it)', () => {
    const data = new Uint8Array(2 * 4000 * 3).fill(128);
    const image: Image = { width: 4000, height: 2, channels: 3, data, bitDepth: 8, format: 'png', path: 'strip.png' };
    const { tensor, geometry } = toInputTensor(image, { size: [64, 64], fit: 'crop' });
    expect(geometry.resizedSize).toEqual([64, 128_000]);
    expect(tensor.data.every((v, i) => Math.abs(v - (128 / 255 - MEAN[Math.floor(i / 4096)]!) / STD[Math.floor(i / 4096)]!) < 1e-5)).toBe(true);
  });

  it("gives RGBA pixels as a browser's ImageData holds them the same tensor, bit for bit, as the decoded file", async () => {
    for (const file of ['rgb.png', 'rgba.png']) {
      const image = await readImage(fixture(file));
      // What a canvas's getImageData returns: RGBA, Uint8ClampedArray, no channels field (alpha ignored, as readImage drops it).
      const rgba = await sharp(fixture(file)).ensureAlpha().raw().toBuffer();
      const imageData: Pixels = { width: image.width, height: image.height, data: new Uint8ClampedArray(rgba), colorSpace: 'srgb' };
      expect(Uint8Array.from(imageData.data.filter((_, i) => i % 4 !== 3))).toEqual(image.data);
      if (file === 'rgba.png') expect(imageData.data.some((v, i) => i % 4 === 3 && v < 255)).toBe(true);
      for (const fit of ['resize', 'pad', 'crop'] as const) {
        for (const size of [
          [21, 17],
          [64, 100],
        ] as [number, number][]) {
          const node = toInputTensor(image, { size, fit });
          const browser = toInputTensor(imageData, { size, fit });
          expect(browser.geometry).toEqual(node.geometry);
          expect(
            Buffer.from((browser.tensor.data as Float32Array).buffer).equals(Buffer.from((node.tensor.data as Float32Array).buffer)),
            `${file} ${fit} ${size}`,
          ).toBe(true);
        }
      }
    }
  });

  it('refuses RGBA pixels of the wrong length or in another colour space', () => {
    const data = new Uint8ClampedArray(2 * 3 * 4);
    expect(() => toInputTensor({ width: 2, height: 3, data: data.subarray(1) }, { size: [4, 4] })).toThrow(
      /holds 23 values, a 2x3 image needs 18 \(RGB\) or 24 \(RGBA\)/,
    );
    expect(() => toInputTensor({ width: 3, height: 3, data }, { size: [4, 4] })).toThrow(InputError);
    expect(() => toInputTensor({ width: 2, height: 3, data, channels: 3 }, { size: [4, 4] })).toThrow(InputError);
    expect(() => toInputTensor({ width: 2, height: 3, data, colorSpace: 'display-p3' }, { size: [4, 4] })).toThrow(/'display-p3' colour space/);
    expect(toInputTensor({ width: 2, height: 3, data }, { size: [4, 4] }).tensor.dims).toEqual([1, 3, 4, 4]);
  });

  it('refuses bad options and inconsistent images', async () => {
    const image = await readImage(fixture('one.png'));
    expect(() => toInputTensor(image, { size: [0, 5] })).toThrow(/input size must be two positive integers/);
    expect(() => toInputTensor(image, { size: [5, 5], fit: 'stretch' as 'pad' })).toThrow(/fit must be/);
    expect(() => toInputTensor(image, { size: [5, 5], mean: [0.5, 0.5] })).toThrow(/mean must be three finite numbers/);
    expect(() => toInputTensor(image, { size: [5, 5], std: [1, 0, 1] })).toThrow(/std must not contain 0/);
    expect(() => toInputTensor({ ...image, width: 2 }, { size: [5, 5] })).toThrow(InputError);
  });
});
