/**
 * The `grid` montage against a CPU reference written here: tile placement
 * (row by row, gaps, empty cells), per-tile and shared min-max
 * normalisation, the colour table, tile resizing; the channel labels drawn
 * on the GPU (box and digit shapes, '12' vs '21'); top-K channel selection by
 * mean activation; bad inputs.
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { channelGrid, channelMeans, colormap, readTensor, uploadTensor, type ChannelGridImage, type GpuTensor } from '../src/vis/index.js';
import { freeAfterAll, gpu as sharedGpu, random } from './helpers/gpu.js';

const gpu = await sharedGpu();
const keep = freeAfterAll();

function upload(dims: readonly number[], data: ArrayLike<number>): GpuTensor {
  return keep(uploadTensor(gpu, dims, data));
}

/** A LUT with neither pure black nor pure white, so label pixels stand out: level i -> (i, 255 - i, 100). */
const LUT = Uint8Array.from({ length: 768 }, (_, j) => [j / 3, 255 - j / 3, 100][j % 3]!);
const lutColour = (level: number) => [LUT[level * 3]!, LUT[level * 3 + 1]!, LUT[level * 3 + 2]!, 255];

interface Ref {
  channels: number[];
  columns: number;
  gap: number;
  shared?: boolean;
  /** Tile size by nearest resizing (PyTorch's legacy nearest: floor(dst·in/out)). */
  tile?: [number, number];
}

/**
 * The montage of batch index n by hand: expected [r,g,b,a] per pixel, or
 * undefined for a tile pixel given as a level (level, and the pixel).
 */
function cpuMontage(x: Float32Array, [, C, h, w]: number[], n: number, r: Ref) {
  const [th, tw] = r.tile ?? [h!, w!];
  const K = r.channels.length;
  const rows = Math.ceil(K / r.columns);
  const H = rows * th + (rows - 1) * r.gap;
  const W = r.columns * tw + (r.columns - 1) * r.gap;
  const tiles = r.channels.map((c) =>
    Float64Array.from({ length: th * tw }, (_, p) => {
      const sy = Math.min(Math.floor((Math.floor(p / tw) * h!) / th), h! - 1);
      const sx = Math.min(Math.floor(((p % tw) * w!) / tw), w! - 1);
      return x[((n * C! + c) * h! + sy) * w! + sx]!;
    }),
  );
  const range = (vs: Float64Array[]) => [Math.min(...vs.map((v) => Math.min(...v))), Math.max(...vs.map((v) => Math.max(...v)))];
  const levels = new Int32Array(H * W).fill(-1);
  tiles.forEach((tile, k) => {
    const [lo, hi] = r.shared ? range(tiles) : range([tile]);
    const oy = Math.floor(k / r.columns) * (th + r.gap);
    const ox = (k % r.columns) * (tw + r.gap);
    for (let p = 0; p < th * tw; p++) {
      const v = tile[p]!;
      const y = hi! > lo! ? (v >= hi! ? 1 : Math.min(Math.max((v - lo!) / (hi! - lo!), 0), 1)) : 0;
      levels[(oy + Math.floor(p / tw)) * W + ox + (p % tw)] = Math.floor(255 * y);
    }
  });
  return { H, W, levels };
}

/** Checks a picture against the reference: background exact, tile pixels within one level (f32 vs f64 division). */
function expectMontage(image: ChannelGridImage, ref: { H: number; W: number; levels: Int32Array }, background = [0, 0, 0, 255]) {
  expect([image.height, image.width]).toEqual([ref.H, ref.W]);
  let off = 0;
  for (let p = 0; p < ref.H * ref.W; p++) {
    const got = Array.from(image.rgba.subarray(p * 4, p * 4 + 4));
    const level = ref.levels[p]!;
    if (level < 0) {
      expect(got, `background pixel ${p}`).toEqual(background);
      continue;
    }
    const match = (l: number) => l >= 0 && l <= 255 && got.every((v, j) => v === lutColour(l)[j]);
    if (!match(level)) {
      off++;
      expect(match(level - 1) || match(level + 1), `pixel ${p}: level ${level}, got ${got}`).toBe(true);
    }
  }
  expect(off).toBeLessThan(ref.H * ref.W * 0.01);
}

/** A 3x5 digit font written out here, independently of src/vis/digits.ts: row strings top first. */
const FONT: Record<string, string[]> = {
  '1': ['.#.', '##.', '.#.', '.#.', '###'],
  '2': ['###', '..#', '###', '#..', '###'],
  '7': ['###', '..#', '..#', '..#', '..#'],
  '0': ['###', '#.#', '#.#', '#.#', '###'],
};

/** The expected label of `text` at `scale`: a box (1) with a one-unit margin, digits (2) 3 units wide, one unit apart. */
function labelBitmap(text: string, scale: number): number[][] {
  const wu = 1 + 4 * text.length;
  return Array.from({ length: 7 * scale }, (_, y) =>
    Array.from({ length: wu * scale }, (_, x) => {
      const [u, v] = [Math.floor(x / scale), Math.floor(y / scale)];
      if (u < 1 || v < 1 || v > 5 || (u - 1) % 4 === 3) return 1;
      return FONT[text[Math.floor((u - 1) / 4)]!]![v - 1]![(u - 1) % 4] === '#' ? 2 : 1;
    }),
  );
}

/** The label area of a picture at (oy, ox): 1 black, 2 white, 0 anything else. */
function readLabel(image: ChannelGridImage, oy: number, ox: number, h: number, w: number): number[][] {
  return Array.from({ length: h }, (_, y) =>
    Array.from({ length: w }, (_, x) => {
      const p = ((oy + y) * image.width + ox + x) * 4;
      const px = Array.from(image.rgba.subarray(p, p + 4));
      return px.join() === '0,0,0,255' ? 1 : px.join() === '255,255,255,255' ? 2 : 0;
    }),
  );
}

describe('channelGrid', () => {
  it('a channel range: tiles row by row with gaps and empty cells, each tile min-max normalised on its own', async () => {
    const dims = [2, 6, 5, 7];
    // Channel c scaled by 10^c: one shared range would flatten the small ones.
    const x = Float32Array.from(random(2 * 6 * 35, 21), (v, i) => v * 10 ** (Math.floor(i / 35) % 6));
    const images = await channelGrid(gpu, upload(dims, x), { channels: [1, 4], columns: 3, labels: false, lut: LUT });
    expect(images).toHaveLength(2);
    for (let n = 0; n < 2; n++) {
      const image = images[n]!;
      expect(image.channels).toEqual([1, 2, 3, 4]);
      expect(image.layout).toMatchObject({ columns: 3, rows: 2, gap: 2, tileSize: [5, 7], size: [12, 25] });
      expectMontage(image, cpuMontage(x, dims, n, { channels: [1, 2, 3, 4], columns: 3, gap: 2 }));
      // Every tile reaches level 0 and 255.
      for (let k = 0; k < 4; k++) {
        const [oy, ox] = [Math.floor(k / 3) * 7, (k % 3) * 9];
        const levels = Array.from({ length: 35 }, (_, p) => image.rgba[((oy + Math.floor(p / 7)) * 25 + ox + (p % 7)) * 4]!);
        expect([Math.min(...levels), Math.max(...levels)]).toEqual([0, 255]);
      }
    }
  });

  it('shared normalisation, resized tiles, a gap of its own and a background colour', async () => {
    const dims = [1, 5, 6, 4];
    const x = random(5 * 24, 8, -3, 3);
    const [image] = await channelGrid(gpu, upload(dims, x), {
      channels: [0, 4],
      normalize: 'shared',
      tileSize: [9, 10],
      mode: 'nearest',
      gap: 3,
      labels: false,
      lut: LUT,
      background: [10, 20, 30, 40],
    });
    // Default columns: ceil(sqrt(5)) = 3.
    expectMontage(image!, cpuMontage(x, dims, 0, { channels: [0, 1, 2, 3, 4], columns: 3, gap: 3, shared: true, tile: [9, 10] }), [10, 20, 30, 40]);
  });

  it("labels each tile with its channel index in white digits on a black box: '12' and '21' read differently", async () => {
    const dims = [1, 24, 16, 20];
    const x = random(24 * 320, 4);
    const images = await channelGrid(gpu, upload(dims, x), { channels: [12, 21], columns: 5, gap: 1, labelScale: 2, lut: LUT });
    const image = images[0]!;
    const origin = (k: number) => [Math.floor(k / 5) * 17, (k % 5) * 21] as const;
    // Tile 0 shows 12, tile 9 shows 21: a 2-digit label is (1 + 4·2)·2 = 18 wide, 7·2 = 14 tall.
    const twelve = readLabel(image, ...origin(0), 14, 18);
    const twentyOne = readLabel(image, ...origin(9), 14, 18);
    expect(twelve).toEqual(labelBitmap('12', 2));
    expect(twentyOne).toEqual(labelBitmap('21', 2));
    expect(twelve).not.toEqual(twentyOne);
    // Tile 5 (channel 17); the label is all that is black or white: next to the box the colormap resumes.
    expect(readLabel(image, ...origin(5), 14, 18)).toEqual(labelBitmap('17', 2));
    for (const k of [0, 5, 9]) {
      const [oy, ox] = origin(k);
      expect(
        readLabel(image, oy, ox + 18, 14, 2)
          .flat()
          .every((v) => v === 0),
      ).toBe(true);
      expect(
        readLabel(image, oy + 14, ox, 2, 18)
          .flat()
          .every((v) => v === 0),
      ).toBe(true);
    }
    // Away from the labels, the tiles equal the unlabelled montage.
    const plain = (await channelGrid(gpu, upload(dims, x), { channels: [12, 21], columns: 5, gap: 1, labels: false, lut: LUT }))[0]!;
    let differ = 0;
    for (let p = 0; p < image.width * image.height; p++)
      if (image.rgba[p * 4] !== plain.rgba[p * 4] || image.rgba[p * 4 + 1] !== plain.rgba[p * 4 + 1]) differ++;
    expect(differ).toBeGreaterThan(0);
    expect(differ).toBeLessThanOrEqual(10 * 14 * 18);
    // Default scale on small tiles is 1: a single-digit label is 5 x 7 pixels.
    const [small] = await channelGrid(gpu, upload([1, 8, 9, 9], random(8 * 81, 2)), { channels: [7, 7], lut: LUT });
    expect(readLabel(small!, 0, 0, 7, 5)).toEqual(labelBitmap('7', 1));
  });

  it('top K by mean activation: means on the GPU, largest first, equal means by lower channel', async () => {
    const [N, C, H, W] = [2, 10, 4, 5];
    const x = random(N * C * H * W, 13, 0, 1);
    // Batch 0: channels 3 and 7 identical with the largest mean (a tie); others offset apart.
    const offsets = [
      [0.5, 2, 1.5, 9, 3, 0.1, 4, 0, 6, 5],
      [7, 1, 2, 3, 4, 5, 6, 8, 0.2, 9],
    ];
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let p = 0; p < H * W; p++) x[(n * C + c) * H * W + p]! += offsets[n]![c]!;
    for (let p = 0; p < H * W; p++) x[(0 * C + 7) * H * W + p] = x[(0 * C + 3) * H * W + p]!;
    const t = upload([N, C, H, W], x);
    const cpuMeans = Array.from({ length: N }, (_, n) =>
      Array.from({ length: C }, (_, c) => x.subarray((n * C + c) * H * W, (n * C + c + 1) * H * W).reduce((a, b) => a + b, 0) / (H * W)),
    );
    const means = await readTensor(gpu, channelMeans(gpu, t));
    expect(Array.from(means).every((m, i) => Math.abs(m - cpuMeans[Math.floor(i / C)]![i % C]!) < 1e-5)).toBe(true);

    const images = await channelGrid(gpu, t, { channels: { top: 4 }, labels: false, lut: LUT, gap: 1 });
    const expected = cpuMeans.map((m) =>
      m
        .map((v, c) => [v, c] as const)
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .slice(0, 4)
        .map(([, c]) => c),
    );
    expect(expected[0]).toEqual([3, 7, 8, 9]);
    expect(expected[1]).toEqual([9, 7, 0, 6]);
    for (let n = 0; n < N; n++) {
      expect(images[n]!.channels).toEqual(expected[n]);
      expect(images[n]!.means).toHaveLength(C);
      expectMontage(images[n]!, cpuMontage(x, [N, C, H, W], n, { channels: expected[n]!, columns: 2, gap: 1 }));
    }
  });

  it('refuses out-of-range channels, K > C and malformed options with InputError naming the values and C', async () => {
    const t = upload([1, 6, 3, 3], random(54, 9));
    const fails = (o: Parameters<typeof channelGrid>[2]) => expect(channelGrid(gpu, t, o)).rejects.toThrow(InputError);
    await expect(channelGrid(gpu, t, { channels: [2, 6] })).rejects.toThrow(/channels \[2, 6\] are out of range.*C=6/);
    await expect(channelGrid(gpu, t, { channels: [4, 3] })).rejects.toThrow(/\[4, 3\].*C=6/);
    await expect(channelGrid(gpu, t, { channels: [-1, 2] })).rejects.toThrow(/\[-1, 2\].*C=6/);
    await expect(channelGrid(gpu, t, { channels: { top: 7 } })).rejects.toThrow(/K=7.*C=6/);
    await fails({ channels: { top: 0 } });
    await fails({ channels: { top: 1.5 } });
    await fails({ channels: 3 as never });
    await fails({ channels: [0, 2], columns: 0 });
    await fails({ channels: [0, 2], gap: -1 });
    await fails({ channels: [0, 2], labelScale: 0 });
    await fails({ channels: [0, 2], tileSize: [0, 4] });
    await fails({ channels: [0, 2], normalize: 'global' as never });
    await fails({ channels: [0, 2], colormap: 'jet', lut: colormap('jet') });
    await fails({ channels: [0, 2], background: [0, 0, 256, 0] });
    await expect(channelGrid(gpu, upload([6, 3, 3], random(54, 9)), { channels: [0, 1] })).rejects.toThrow(/\[N,C,H,W\]/);
  });
});
