import { describe, expect, it } from 'vitest';
import { ModelError, UnsupportedOpError } from '../src/errors.js';
import type { AttrValue, HostTensor } from '../src/model/graph.js';
import { PRECISIONS, type Precision } from '../src/model/precision.js';
import { convKernels } from '../src/ops/conv.js';
import type { ConvEpilogue } from '../src/ops/conv/io.js';
import { type ConvAdapter, chooseConvLowering } from '../src/ops/conv/lowering.js';
import { F2, F3, F4, winogradWorkRatio } from '../src/ops/conv/winograd.js';
import { type AxisTaps, chooseSubgroupTile, columnBands, directTapShare, pixelBands } from '../src/ops/conv/subgroup.js';
import { range } from '../src/kernels/wgsl.js';
import { registry } from '../src/ops/registry.js';
import type { OpImpl } from '../src/ops/types.js';
import { Session } from '../src/runtime/session.js';
import {
  gpu,
  nodeGraph,
  randomTensor,
  relL2,
  roundToFloat16,
  runNode,
  runWithFloat16Constants,
  tensor,
  throughFloat16Casts,
  TOLERANCE,
} from './helpers/gpu.js';

interface RefOptions {
  strides: number[];
  dilations: number[];
  /** [top, left, bottom, right] */
  pads: number[];
  group: number;
}

/** Plain direct convolution in float64, NCHW, written for the test. */
function referenceConv(x: HostTensor, w: HostTensor, bias: HostTensor | undefined, o: RefOptions): { dims: number[]; data: Float64Array } {
  const [n, c, h, wd] = x.dims as number[];
  const [m, cg, kh, kw] = w.dims as number[];
  const [sh, sw] = o.strides as [number, number];
  const [dh, dw] = o.dilations as [number, number];
  const [pt, pl, pb, pr] = o.pads as [number, number, number, number];
  const oh = Math.floor((h! + pt + pb - (dh * (kh! - 1) + 1)) / sh) + 1;
  const ow = Math.floor((wd! + pl + pr - (dw * (kw! - 1) + 1)) / sw) + 1;
  const mg = m! / o.group;
  const out = new Float64Array(n! * m! * oh * ow);
  for (let b = 0; b < n!; b++) {
    for (let co = 0; co < m!; co++) {
      const g = Math.floor(co / mg);
      for (let y = 0; y < oh; y++) {
        for (let xo = 0; xo < ow; xo++) {
          let s = bias ? bias.data[co]! : 0;
          for (let ci = 0; ci < cg!; ci++) {
            for (let ky = 0; ky < kh!; ky++) {
              const iy = y * sh - pt + ky * dh;
              if (iy < 0 || iy >= h!) continue;
              for (let kx = 0; kx < kw!; kx++) {
                const ix = xo * sw - pl + kx * dw;
                if (ix < 0 || ix >= wd!) continue;
                s += x.data[((b * c! + g * cg! + ci) * h! + iy) * wd! + ix]! * w.data[((co * cg! + ci) * kh! + ky) * kw! + kx]!;
              }
            }
          }
          out[((b * m! + co) * oh + y) * ow + xo] = s;
        }
      }
    }
  }
  return { dims: [n!, m!, oh, ow], data: out };
}

interface Case {
  name: string;
  x: number[];
  w: number[];
  bias?: boolean;
  strides?: number[];
  dilations?: number[];
  pads?: number[];
  group?: number;
  /** Feed the weight at run time instead of as an initializer. */
  runtimeWeight?: boolean;
  /** Also run on each lowering with float16 activations: a sample of every kind of case, as lavapipe compiles each new kernel slowly. */
  f16?: boolean;
}

/** An output within the precision's tolerance of the reference, and float32 at either precision (a session casts float16 outputs back). */
function expectNear(y: HostTensor, reference: ArrayLike<number>, precision: Precision) {
  expect(y.type).toBe('float32');
  expect(relL2(y.data, reference)).toBeLessThanOrEqual(TOLERANCE[precision]);
}

let seed = 1;
async function check(c: Case, op = 'Conv', precision: Precision = 'f32') {
  const x = randomTensor(c.x, seed++);
  const w = randomTensor(c.w, seed++);
  const bias = c.bias ? randomTensor([c.w[0]!], seed++) : undefined;
  const attrs: Record<string, AttrValue> = {};
  if (c.strides) attrs.strides = c.strides;
  if (c.dilations) attrs.dilations = c.dilations;
  if (c.pads) attrs.pads = c.pads;
  if (c.group) attrs.group = c.group;
  const [y] = await runNode({ op, attrs, inputs: [x, c.runtimeWeight ? w : { constant: w }, ...(bias ? [{ constant: bias }] : [])] }, precision);
  const ref = referenceConv(x, w, bias, {
    strides: c.strides ?? [1, 1],
    dilations: c.dilations ?? [1, 1],
    pads: c.pads ?? [0, 0, 0, 0],
    group: c.group ?? 1,
  });
  expect(y!.dims).toEqual(ref.dims);
  expectNear(y!, ref.data, precision);
}

const cases: Case[] = [
  { name: '1x1 (pointwise GEMM), bias', x: [1, 5, 13, 11], w: [7, 5, 1, 1], bias: true },
  { name: '1x1 stride 2', x: [1, 6, 13, 11], w: [5, 6, 1, 1], strides: [2, 2] },
  { name: '1x1 on a map whose pixel count is a multiple of 4', x: [1, 9, 12, 8], w: [10, 9, 1, 1], bias: true, f16: true },
  { name: '3x3 pad 1, no bias', x: [1, 5, 13, 11], w: [7, 5, 3, 3], pads: [1, 1, 1, 1] },
  { name: '3x3 stride 2, asymmetric pads', x: [1, 5, 13, 11], w: [6, 5, 3, 3], strides: [2, 2], pads: [0, 1, 2, 1], bias: true, f16: true },
  { name: '7x7 stride 2 pad 3 (ResNet stem), 3 input channels', x: [1, 3, 23, 19], w: [8, 3, 7, 7], strides: [2, 2], pads: [3, 3, 3, 3], bias: true },
  { name: 'rectangular kernel, mixed strides and dilations', x: [1, 4, 15, 12], w: [5, 4, 3, 2], strides: [1, 2], dilations: [2, 3], pads: [2, 0, 1, 3] },
  { name: 'batch 2', x: [2, 5, 9, 9], w: [7, 5, 3, 3], pads: [1, 1, 1, 1], bias: true },
  { name: 'grouped (group 2)', x: [1, 6, 9, 7], w: [10, 3, 3, 3], group: 2, pads: [1, 1, 1, 1], bias: true },
  { name: 'grouped (group 3), batch 2, stride 2', x: [2, 6, 11, 9], w: [9, 2, 3, 3], group: 3, strides: [2, 2], pads: [1, 0, 1, 2] },
  { name: 'depthwise 3x3', x: [1, 6, 13, 11], w: [6, 1, 3, 3], group: 6, pads: [1, 1, 1, 1], bias: true },
  {
    name: 'depthwise 3x3 stride 2, dilation 2, batch 2',
    x: [2, 5, 13, 11],
    w: [5, 1, 3, 3],
    group: 5,
    strides: [2, 2],
    dilations: [2, 2],
    pads: [2, 2, 1, 1],
    f16: true,
  },
  { name: 'depthwise with channel multiplier 2', x: [1, 6, 9, 7], w: [12, 1, 3, 3], group: 6, pads: [1, 1, 1, 1], bias: true },
  // On CPU adapters a lane computes a run of 8 outputs of a row, loading the columns they share once.
  {
    name: 'depthwise 5x5 dilation 2 on 19x21 (columns shared, the last run past the row end)',
    x: [1, 3, 19, 21],
    w: [3, 1, 5, 5],
    group: 3,
    dilations: [2, 2],
    pads: [4, 4, 4, 4],
    bias: true,
    f16: true,
  },
  { name: 'depthwise 5x5 stride 2, asymmetric pads, 23x9', x: [1, 4, 23, 9], w: [4, 1, 5, 5], group: 4, strides: [2, 2], pads: [2, 1, 2, 3] },
  { name: 'depthwise 7x7 on a map 3 wide (narrower than a run)', x: [2, 2, 10, 3], w: [2, 1, 7, 7], group: 2, pads: [3, 3, 3, 3], bias: true },
  { name: 'single input channel (groups 1)', x: [1, 1, 9, 7], w: [5, 1, 3, 3], pads: [1, 1, 1, 1] },
  { name: 'runtime weight (GEMM)', x: [1, 5, 9, 7], w: [6, 5, 3, 3], pads: [1, 2, 0, 1], runtimeWeight: true, bias: true, f16: true },
  { name: 'runtime weight (grouped)', x: [2, 4, 7, 7], w: [6, 2, 3, 3], group: 2, strides: [2, 2], runtimeWeight: true },
  { name: 'runtime weight (pointwise)', x: [1, 6, 5, 7], w: [9, 6, 1, 1], runtimeWeight: true, f16: true },
  { name: 'runtime weight (depthwise)', x: [1, 4, 9, 7], w: [4, 1, 3, 3], group: 4, pads: [1, 1, 1, 1], runtimeWeight: true, f16: true },
  { name: '40 output pixels, in two blocks of 24 on CPU adapters (64 channels, 5x8 map)', x: [1, 16, 5, 8], w: [64, 16, 1, 1], bias: true },
  { name: 'C_out 3 with K crossing several tile depths', x: [1, 37, 7, 9], w: [3, 37, 3, 3], pads: [1, 1, 1, 1], bias: true },
];

const aspp: Case[] = [6, 12, 18, 24, 36].flatMap((d) =>
  [9, 17].map(
    (size): Case => ({
      name: `ASPP 3x3 dilation ${d} on ${size}x${size}`,
      x: [1, 8, size, size],
      w: [6, 8, 3, 3],
      dilations: [d, d],
      pads: [d, d, d, d],
      bias: true,
    }),
  ),
);

/** Blocks of 32 output pixels inside one row of 40 skip the column taps that read only padding; blocks across rows take them all. */
const rowBlocks: Case[] = [
  {
    name: '1x3 at dilation 16 along rows 40 wide (blocks of one row skip column taps)',
    x: [1, 8, 5, 40],
    w: [12, 8, 1, 3],
    dilations: [1, 16],
    pads: [0, 16, 0, 16],
    bias: true,
  },
  { name: 'dilation 9 and stride 2 along rows, asymmetric pads', x: [1, 8, 6, 79], w: [10, 8, 3, 3], strides: [1, 2], dilations: [2, 9], pads: [0, 20, 3, 1] },
];

/** Blocks of a column band skip the column taps that read only padding across rows too: the ASPP case at dilation 12 on 17x17, and this one on 33x33, images and groups included. */
const bandBlocks: Case[] = [
  {
    name: 'dilation 18 on 33x33 by column bands, 2 images, 2 groups',
    x: [2, 8, 33, 33],
    w: [12, 4, 3, 3],
    group: 2,
    dilations: [18, 18],
    pads: [18, 18, 18, 18],
    bias: true,
  },
];

describe('Conv', () => {
  for (const c of [...cases, ...aspp, ...rowBlocks, ...bandBlocks]) it(c.name, () => check(c));

  it('a larger ASPP branch: 1x64x33x33 -> 64, 3x3, dilation 6', () =>
    check({ name: 'large', x: [1, 64, 33, 33], w: [64, 64, 3, 3], dilations: [6, 6], pads: [6, 6, 6, 6], bias: true }));

  it('dispatches more workgroups than one grid dimension allows (GEMM and depthwise)', async () => {
    // 4.2M output pixels: 65568 GEMM tiles; 16 planes of 4113 depthwise workgroups.
    await check({ name: 'huge pointwise', x: [1, 2, 2048, 2049], w: [1, 2, 1, 1], bias: true });
    await check({ name: 'huge depthwise', x: [1, 16, 513, 513], w: [16, 1, 3, 3], group: 16, pads: [1, 1, 1, 1] });
  });

  /** Explicit [top, left, bottom, right] pads that auto_pad should produce, from the ONNX definition. */
  function samePads(size: number[], k: number[], s: number[], upper: boolean): number[] {
    const total = size.map((n, i) => Math.max(0, (Math.ceil(n / s[i]!) - 1) * s[i]! + k[i]! - n));
    const begin = total.map((t) => (upper ? Math.floor(t / 2) : Math.ceil(t / 2)));
    return [...begin, ...total.map((t, i) => t - begin[i]!)];
  }

  for (const [autoPad, upper] of [
    ['SAME_UPPER', true],
    ['SAME_LOWER', false],
  ] as const) {
    it(`auto_pad ${autoPad} (odd total padding) equals the explicit pads`, async () => {
      const x = randomTensor([1, 3, 10, 9], seed++);
      const w = randomTensor([5, 3, 4, 2], seed++);
      const [y] = await runNode({ op: 'Conv', attrs: { auto_pad: autoPad, strides: [1, 2] }, inputs: [x, { constant: w }] });
      const ref = referenceConv(x, w, undefined, { strides: [1, 2], dilations: [1, 1], pads: samePads([10, 9], [4, 2], [1, 2], upper), group: 1 });
      expect(y!.dims).toEqual([1, 5, 10, 5]);
      expect(relL2(y!.data, ref.data)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('auto_pad VALID pads nothing', async () => {
    const x = randomTensor([1, 3, 11, 8], seed++);
    const w = randomTensor([4, 3, 3, 3], seed++);
    const [y] = await runNode({ op: 'Conv', attrs: { auto_pad: 'VALID', strides: [2, 2] }, inputs: [x, { constant: w }] });
    const ref = referenceConv(x, w, undefined, { strides: [2, 2], dilations: [1, 1], pads: [0, 0, 0, 0], group: 1 });
    expect(y!.dims).toEqual([1, 4, 5, 3]);
    expect(relL2(y!.data, ref.data)).toBeLessThanOrEqual(1e-5);
  });

  it('1-D conv (rank 3) as a 1-pixel-high 2-D conv', async () => {
    const x = randomTensor([2, 4, 15], seed++);
    const w = randomTensor([6, 4, 3], seed++);
    const [y] = await runNode({ op: 'Conv', attrs: { pads: [1, 2], dilations: [2], strides: [2] }, inputs: [x, { constant: w }] });
    const ref = referenceConv({ ...x, dims: [2, 4, 1, 15] }, { ...w, dims: [6, 4, 1, 3] }, undefined, {
      strides: [1, 2],
      dilations: [1, 2],
      pads: [0, 1, 0, 2],
      group: 1,
    });
    expect(y!.dims).toEqual([2, 6, 7]);
    expect(relL2(y!.data, ref.data)).toBeLessThanOrEqual(1e-5);
  });

  it('fuses a residual Add and ReLU6 into the epilogue', async () => {
    // A test-only op type whose kernels are the fused conv: Y = clip(conv(X, W) + B + R, 0, 6).
    const fused: OpImpl = {
      infer: registry.get('Conv')!.infer,
      kernels: (node, inputs, outputs) => convKernels(node, inputs, outputs, { activation: 'clamp(v, 0.0f, 6.0f)', residual: true }),
    };
    const ops = registry as Map<string, OpImpl>;
    ops.set('TestConvAddRelu6', fused);
    try {
      for (const w of [randomTensor([6, 5, 3, 3], seed++, -2, 2), randomTensor([5, 1, 3, 3], seed++, -2, 2)]) {
        const group = w.dims[1] === 1 ? 5 : 1;
        const x = randomTensor([1, 5, 9, 7], seed++, -2, 2);
        const bias = randomTensor([w.dims[0]!], seed++);
        const r = randomTensor([1, w.dims[0]!, 9, 7], seed++, -3, 3);
        const [y] = await runNode({ op: 'TestConvAddRelu6', attrs: { pads: [1, 1, 1, 1], group }, inputs: [x, { constant: w }, { constant: bias }, r] });
        const ref = referenceConv(x, w, bias, { strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], group });
        expect(
          relL2(
            y!.data,
            Array.from(ref.data, (v, i) => Math.min(Math.max(v + r.data[i]!, 0), 6)),
          ),
        ).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      ops.delete('TestConvAddRelu6');
    }
  });

  it('refuses bad attributes and shapes', async () => {
    const x = randomTensor([1, 4, 5, 5], seed++);
    const w = { constant: randomTensor([2, 4, 3, 3], seed++) };
    const run = (attrs: Record<string, AttrValue>, inputs = [x, w]) => runNode({ op: 'Conv', attrs, inputs });
    await expect(run({ auto_pad: 'SAME' })).rejects.toThrow(ModelError);
    await expect(run({ auto_pad: 'SAME_UPPER', pads: [1, 1, 1, 1] })).rejects.toThrow(ModelError);
    await expect(run({ strides: [0, 1] })).rejects.toThrow(ModelError);
    await expect(run({ pads: [1, 1] })).rejects.toThrow(ModelError);
    await expect(run({ kernel_shape: [5, 5] })).rejects.toThrow(ModelError);
    await expect(run({ group: 3 })).rejects.toThrow(/group/);
    await expect(run({}, [x, { constant: randomTensor([2, 3, 3, 3], seed++) }])).rejects.toThrow(/4 channels/);
    await expect(run({}, [x, { constant: randomTensor([2, 4, 7, 7], seed++) }])).rejects.toThrow(ModelError);
    await expect(run({ bogus: 1 })).rejects.toThrow(UnsupportedOpError);
    await expect(run({}, [randomTensor([1, 4, 3, 5, 5], seed++), { constant: randomTensor([2, 4, 3, 3, 3], seed++) }])).rejects.toThrow(UnsupportedOpError);
  });
});

/** Registers `name` as Conv planned for `adapter` for the duration of `body`. */
async function withConvFor(name: string, adapter: ConvAdapter, epilogue: ConvEpilogue, body: () => Promise<void>) {
  const ops = registry as Map<string, OpImpl>;
  ops.set(name, {
    infer: registry.get('Conv')!.infer,
    kernels: (node, inputs, outputs, _opset, { limits }) => convKernels(node, inputs, outputs, epilogue, limits, adapter),
  });
  try {
    await body();
  } finally {
    ops.delete(name);
  }
}

describe('the conv kernel chosen', () => {
  const axis = (out: number, count: number) => ({ size: out, kernel: count, stride: 1, dilation: 1, begin: 0, out, first: 0, count });
  const g = { y: axis(512, 3), x: axis(512, 3) };
  it('on CPU adapters: the narrow kernel up to 4 output channels a group, the subgroup GEMM beyond', () => {
    expect([1, 4, 5, 64].map((m) => chooseConvLowering(m, g, { cpuSubgroupSize: 8 }).kind)).toEqual(['narrow', 'narrow', 'subgroup', 'subgroup']);
  });
  it('subgroup tiles at 8 lanes: 32x32 to 32 channels, 96x16 for 65-96 and 257-288, 64x32 otherwise; pixels spread evenly over the blocks, in whole lanes', () => {
    const tile = (m: number, n = 4096) => {
      const t = chooseSubgroupTile(m, n, 8);
      return `${4 * t.lanes * t.quads}x${t.pixels}`;
    };
    expect([5, 21, 32, 33, 48, 64, 65, 96, 97, 128, 256, 257, 288, 289, 2048].map((m) => tile(m))).toEqual([
      '32x32',
      '32x32',
      '32x32',
      '64x32',
      '64x32',
      '64x32',
      '96x16',
      '96x16',
      '64x32',
      '64x32',
      '64x32',
      '96x16',
      '96x16',
      '64x32',
      '64x32',
    ]);
    expect([tile(256, 1), tile(96, 9)]).toEqual(['64x8', '96x16']);
    // 36 pixels: two blocks of 24, not 32 and 4; 289 (17x17): ten blocks of 32 (28.9 rounded up to whole lanes); 100: four of 32 (25 -> 32).
    expect([tile(128, 36), tile(128, 289), tile(128, 100), tile(96, 36)]).toEqual(['64x24', '64x32', '64x32', '96x16']);
  });
  it("orders the direct kernel's pixels by column bands where blocks of a band skip enough more taps (ASPP on maps not much wider than the dilation)", () => {
    const dilated = (size: number, d: number) => ({ ...axis(size, 3), dilation: d, begin: d });
    // Columns where the taps that read inside change: the right tap reads inside up to column 33 - 18 - 1, the left one from column 18.
    expect(columnBands(dilated(33, 18))).toEqual([15, 18]);
    expect(columnBands({ ...axis(33, 3), begin: 1 })).toEqual([1, 32]);
    const bands = (size: number, d: number) => pixelBands({ y: dilated(size, d), x: dilated(size, d) }, 32);
    // Taken at 0.85 of the row-major order's work or less: dilations 12, 18 and 24 on 33x33 (0.81, 0.68, 0.58), 12 on 17x17 (0.73), not 6 on 33x33 (0.92).
    expect([bands(33, 12), bands(33, 18), bands(33, 24), bands(17, 12)]).toEqual([
      [12, 21],
      [15, 18],
      [9, 24],
      [5, 12],
    ]);
    expect([bands(33, 6), bands(33, 1), bands(129, 1)]).toEqual([[], [], []]);
    // One column tap (a 3x1 kernel): nothing to skip along rows.
    expect(pixelBands({ y: dilated(33, 18), x: { ...axis(33, 1) } }, 32)).toEqual([]);
  });
  it('on GPUs: the tiled GEMM whatever the channels', () => {
    expect([1, 64].map((m) => chooseConvLowering(m, g, {}).kind)).toEqual(['tiled', 'tiled']);
  });
  it("on CPU adapters, stride-1 3x3 convs run as Winograd F(2x2, 3x3) or, where their weights are no larger than the input, F(3x3, 3x3) or F(4x4, 3x3), F(3x3) also where F(2x2) tiles wastefully: whichever leaves least GEMM work, if at most 0.7 of the direct kernel's (which skips taps that read only padding)", async ({
    skip,
  }) => {
    if (!(await gpu()).features.has('subgroups')) skip();
    // n² products per m x m tile against 9 per pixel: on 33x33, 9x9 tiles of F(4x4), 11x11 of F(3x3), 17x17 of F(2x2); at dilation 12, 12x12, 12x12 and 24x24 tiles.
    const dilated = (d: number) => ({ ...axis(33, 3), dilation: d, begin: d });
    expect(winogradWorkRatio(F4, { y: axis(33, 3), x: axis(33, 3) })).toBeCloseTo((36 * 9 * 9) / (9 * 33 * 33), 12);
    expect(winogradWorkRatio(F3, { y: axis(33, 3), x: axis(33, 3) })).toBeCloseTo((25 * 11 * 11) / (9 * 33 * 33), 12);
    expect(winogradWorkRatio(F2, { y: axis(33, 3), x: axis(33, 3) })).toBeCloseTo((16 * 17 * 17) / (9 * 33 * 33), 12);
    expect(winogradWorkRatio(F4, { y: dilated(12), x: dilated(12) })).toBeCloseTo((36 * 12 * 12) / (9 * 33 * 33), 12);
    expect(winogradWorkRatio(F3, { y: dilated(12), x: dilated(12) })).toBeCloseTo((25 * 12 * 12) / (9 * 33 * 33), 12);
    expect(winogradWorkRatio(F2, { y: dilated(12), x: dilated(12) })).toBeCloseTo((16 * 24 * 24) / (9 * 33 * 33), 12);
    const planned = async (adapter: ConvAdapter, x: number[], w: number[], attrs: Record<string, AttrValue>) => {
      let labels: string[] = [];
      await withConvFor('TestConvChosen', adapter, {}, async () => {
        const graph = nodeGraph({ op: 'TestConvChosen', attrs, inputs: [randomTensor(x, seed++), { constant: randomTensor(w, seed++) }] });
        const session = await Session.create(await gpu(), graph);
        try {
          labels = (await session.plan()).kernels.map((k) => k.kernel.label);
        } finally {
          session.destroy();
        }
      });
      return labels;
    };
    const cpu = { cpuSubgroupSize: 8 };
    const winograd = (m: number) => ['input', 'gemm', 'output'].map((stage) => `winograd${m}x${m}_${stage}`);
    // F(4x4) where its weights (36·C_out·C_in) are no larger than the input (C_in·H·W): 36·16 <= 40·40 but 36·48 > 40·40, where F(3x3) (25·48 <= 40·40) leaves less than F(2x2).
    expect(await planned(cpu, [1, 8, 40, 40], [16, 8, 3, 3], { pads: [1, 1, 1, 1] })).toEqual(winograd(4));
    expect(await planned(cpu, [1, 8, 40, 40], [48, 8, 3, 3], { pads: [1, 1, 1, 1] })).toEqual(winograd(3));
    expect(await planned(cpu, [1, 16, 12, 10], [40, 16, 3, 3], { pads: [1, 1, 1, 1] })).toEqual(winograd(2));
    // F(3x3) also where F(2x2) tiles wastefully (more than 0.5 of the work), whatever its weights (25·48 > 33·33): 33x33 at dilation 2 (0.53), not at dilation 1 (0.47).
    expect(await planned(cpu, [1, 8, 33, 33], [48, 8, 3, 3], { pads: [2, 2, 2, 2], dilations: [2, 2] })).toEqual(winograd(3));
    expect(await planned(cpu, [1, 8, 33, 33], [48, 8, 3, 3], { pads: [1, 1, 1, 1] })).toEqual(winograd(2));
    // 13x11 outputs: F(2x2) leaves 0.52, F(3x3) 0.39.
    expect(await planned(cpu, [1, 16, 13, 11], [40, 16, 3, 3], { pads: [1, 1, 1, 1] })).toEqual(winograd(3));
    // Batch 2, 11x11 outputs: F(3x3) (0.37) where F(4x4)'s weights would exceed the input (36·7 > 2·11·11).
    expect(await planned(cpu, [2, 5, 11, 11], [7, 5, 3, 3], { pads: [1, 0, 1, 2] })).toEqual(winograd(3));
    // Dilation 12 on 33 pixels: F(3x3) tiles the sub-grids of 3 and 2 pixels whole (0.37 of the work, F(4x4) 0.53, F(2x2) 0.94),
    // and is the candidate even where its weights exceed the input (25·48 > 33·33), as ASPP's are.
    expect(await planned(cpu, [1, 8, 33, 33], [16, 8, 3, 3], { pads: [12, 12, 12, 12], dilations: [12, 12] })).toEqual(winograd(3));
    expect(await planned(cpu, [1, 8, 33, 33], [48, 8, 3, 3], { pads: [12, 12, 12, 12], dilations: [12, 12] })).toEqual(winograd(3));
    // At dilation 18 on 33 pixels F(4x4) tiles would be nearly empty, and the direct kernel's blocks skip a third of the taps (0.65 of 9 left)
    // in row-major order, more than half (0.44) with its pixels ordered by column bands: F(2x2)'s 0.53 is more than 0.7 of either.
    const d18 = { y: dilated(18), x: dilated(18) };
    expect(directTapShare(d18, 32)).toBeCloseTo(0.647, 3);
    expect(directTapShare(d18, 32, pixelBands(d18, 32))).toBeCloseTo(0.438, 3);
    expect(await planned(cpu, [1, 8, 33, 33], [16, 8, 3, 3], { pads: [18, 18, 18, 18], dilations: [18, 18] })).toEqual(['conv3x3_s1_d18_bands']);
    // Past the map every outer tap reads padding: the centre is all that is left; a 3x3 at dilation 1 skips only at the borders.
    expect(directTapShare({ y: dilated(40), x: dilated(40) }, 32)).toBeCloseTo(1 / 9, 12);
    expect(directTapShare({ y: axis(65, 3), x: { ...axis(65, 3), begin: 1 } }, 32)).toBeGreaterThan(0.98);
    // Against a count output by output, strides and uneven padding included.
    const bruteShare = (y: AxisTaps, x: AxisTaps, pixels: number) => {
      const inside = (a: AxisTaps, o: number, t: number) => {
        const i = o * a.stride - a.begin + (a.first + t) * a.dilation;
        return i >= 0 && i < a.size;
      };
      const reads = (a: AxisTaps, lo: number, hi: number) => range(a.count).filter((t) => range(hi - lo + 1).some((k) => inside(a, lo + k, t))).length;
      let done = 0;
      for (let p = 0; p < y.out * x.out; p += pixels) {
        const last = Math.min(p + pixels, y.out * x.out) - 1;
        const [r0, r1] = [Math.floor(p / x.out), Math.floor(last / x.out)];
        done += reads(y, r0, r1) * (r0 === r1 ? reads(x, p % x.out, last % x.out) : reads(x, 0, x.out - 1)) * (last - p + 1);
      }
      return done / (y.out * x.out * y.kernel * x.kernel);
    };
    const strided: AxisTaps = { size: 40, kernel: 3, out: 37, stride: 2, dilation: 3, begin: 20, first: 0, count: 3 };
    for (const [y, x] of [
      [dilated(6), dilated(18)],
      [dilated(2), strided],
      [
        { ...axis(7, 3), dilation: 5, begin: 3 },
        { ...axis(50, 3), dilation: 16, begin: 16 },
      ],
    ] as [AxisTaps, AxisTaps][])
      for (const pixels of [6, 8, 32]) expect(directTapShare({ y, x }, pixels)).toBeCloseTo(bruteShare(y, x, pixels), 12);
    // Dilation 6 on 9 pixels: either leaves more than 0.7 of the work (0.79 for F(2x2)).
    expect(await planned(cpu, [1, 8, 9, 9], [16, 8, 3, 3], { pads: [6, 6, 6, 6], dilations: [6, 6] })).toEqual(['conv3x3_s1_d6']);
    expect(await planned(cpu, [1, 16, 13, 11], [40, 16, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] })).toEqual(['conv3x3_s2_d1']);
    expect(await planned(cpu, [1, 16, 13, 11], [4, 16, 3, 3], { pads: [1, 1, 1, 1] })).toEqual(['conv3x3_s1_d1']);
    expect(await planned({}, [1, 16, 13, 11], [40, 16, 3, 3], { pads: [1, 1, 1, 1] })).toEqual(['conv3x3_s1_d1']);
  });
  it('on CPU adapters, convs that differ only in sizes share one pipeline: the subgroup kernel reads them from a buffer', async ({ skip }) => {
    if (!(await gpu()).features.has('subgroups')) skip();
    await withConvFor('TestConvShared', { cpuSubgroupSize: 8 }, { activation: 'max(v, 0.0f)' }, async () => {
      const convs: [number[], number[], Record<string, AttrValue>][] = [
        [[1, 16, 13, 11], [40, 16, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }],
        [[2, 24, 9, 17], [60, 24, 3, 3], { pads: [2, 2, 2, 2], dilations: [2, 2], strides: [2, 2] }],
      ];
      const kernels = [];
      for (const [x, w, attrs] of convs) {
        const graph = nodeGraph({ op: 'TestConvShared', attrs, inputs: [randomTensor(x, seed++), { constant: randomTensor(w, seed++) }] });
        const session = await Session.create(await gpu(), graph);
        try {
          kernels.push(...(await session.plan()).kernels.map((k) => k.kernel));
        } finally {
          session.destroy();
        }
      }
      const [a, b] = kernels;
      expect(kernels.length).toBe(2);
      expect(b!.wgsl).toBe(a!.wgsl);
      const sizes = (k: typeof a) =>
        Array.from(k!.bindings.flatMap((binding) => (binding.kind === 'param' && binding.data() instanceof Uint32Array ? [binding.data()] : []))[0]!);
      expect(sizes(b)).not.toEqual(sizes(a));
    });
  });
});

describe('Winograd on CPU adapters', () => {
  it('runs a conv whose scratch exceeds a binding in chunks of tiles, one upload of the transformed weights, residual and ReLU fused', async ({ skip }) => {
    if (!(await gpu()).features.has('subgroups')) skip();
    await withConvFor('TestConvChunked', { cpuSubgroupSize: 8 }, { activation: 'max(v, 0.0f)', residual: true }, async () => {
      // F(4x4, 3x3): 9x5 = 45 tiles; 36 positions x 8 channels x 4 bytes a tile: 20 tiles to a 24000-byte binding, so 3 chunks.
      const x = randomTensor([1, 2, 36, 20], seed++);
      const w = randomTensor([8, 2, 3, 3], seed++);
      const bias = randomTensor([8], seed++);
      const attrs = { pads: [1, 1, 1, 1] };
      const ref = referenceConv(x, w, bias, { strides: [1, 1], dilations: [1, 1], pads: attrs.pads, group: 1 });
      const r = randomTensor(ref.dims, seed++);
      const graph = nodeGraph({ op: 'TestConvChunked', attrs, inputs: [x, { constant: w }, { constant: bias }, r] });
      const session = await Session.create(await gpu(), graph, { maxBindingBytes: 24000 });
      try {
        const plan = await session.plan();
        expect(plan.kernels.map((k) => k.kernel.label)).toEqual(Array(3).fill(['winograd4x4_input', 'winograd4x4_gemm', 'winograd4x4_output']).flat());
        const weightUploads = new Set(
          plan.kernels.flatMap((k) =>
            k.kernel.label === 'winograd4x4_gemm' ? k.buffers.flatMap((b) => (b.kind === 'upload' && b.data() instanceof Float32Array ? [b.key] : [])) : [],
          ),
        );
        expect(weightUploads.size).toBe(1);
        const y = (await session.run({ in0: x, in3: r })).outputs.get(graph.outputs[0]!.name)!;
        expectNear(
          y,
          Array.from(ref.data, (v, i) => Math.max(v + r.data[i]!, 0)),
          'f32',
        );
      } finally {
        session.destroy();
      }
    });
  });
});

// Every lowering on this machine, whichever the adapter picks for plain Conv:
// the kernels of CPU adapters (subgroup GEMM and, to at most 4 channels, the
// narrow one), at lavapipe's 8 lanes and at 4 (a 4-invocation workgroup is
// still within one of lavapipe's subgroups), and
// the tiled GEMM of GPUs; each also on float16 tensors (--precision f16),
// for a sample of the cases (Case.f16).
const kernels: [string, ConvAdapter][] = [
  ['kernels of CPU adapters (8 lanes)', { cpuSubgroupSize: 8 }],
  ['kernels of CPU adapters (4 lanes)', { cpuSubgroupSize: 4 }],
  ['tiled GEMM of GPUs', {}],
];
// f16 after all f32 runs, which thereby keep their seeds.
for (const precision of PRECISIONS)
  for (const [kernel, adapter] of kernels)
    describe(`Conv on the ${kernel}${precision === 'f16' ? ', f16 storage' : ''}`, () => {
      const needs = async (skip: () => void) => {
        const { features } = await gpu();
        if ((adapter.cpuSubgroupSize && !features.has('subgroups')) || (precision === 'f16' && !features.has('shader-f16'))) skip();
      };
      const subgroupCases: Case[] = [
        ...cases,
        ...aspp,
        {
          name: '3x3 with 70 output channels (one 96-channel tile at 8 lanes, a quarter padding), 13x11 map',
          x: [1, 9, 13, 11],
          w: [70, 9, 3, 3],
          pads: [1, 1, 1, 1],
          bias: true,
        },
        {
          name: '3x3 stride 2 with 90 output channels (96 x 16 tiles at 8 lanes, 48 x 8 at 4), 21x19 map',
          x: [1, 7, 21, 19],
          w: [90, 7, 3, 3],
          strides: [2, 2],
          pads: [1, 1, 1, 1],
          bias: true,
          f16: true,
        },
        // Stride-1 3x3 convs of more than 4 channels take Winograd here at f32, those above too, in the algorithm chooseWinograd picks (winograd.ts; the test above checks the named ones).
        {
          name: 'Winograd: dilation 2, batch 2, 40 channels on 15x13 (tiles past the edge)',
          x: [2, 12, 15, 13],
          w: [40, 12, 3, 3],
          dilations: [2, 2],
          pads: [2, 2, 2, 2],
          bias: true,
          f16: true,
        },
        { name: 'Winograd: dilation 3, asymmetric pads, 20x17 map', x: [1, 7, 20, 17], w: [9, 7, 3, 3], dilations: [3, 3], pads: [0, 1, 2, 0] },
        { name: 'Winograd: dilations 1 and 2 by axis, 11x14 map', x: [1, 6, 11, 14], w: [12, 6, 3, 3], dilations: [1, 2], pads: [1, 2, 1, 2], bias: true },
        { name: 'Winograd F(2x2, 3x3): dilation 9 on 17x17', x: [1, 6, 17, 17], w: [10, 6, 3, 3], dilations: [9, 9], pads: [9, 9, 9, 9], bias: true },
        { name: 'Winograd F(4x4, 3x3): 8 channels on 24x20', x: [1, 6, 24, 20], w: [8, 6, 3, 3], pads: [1, 1, 1, 1], bias: true },
        {
          name: "Winograd F(3x3, 3x3): dilation 12 on 33x33 (ASPP's sub-grids of 3 and 2 pixels)",
          x: [1, 6, 33, 33],
          w: [20, 6, 3, 3],
          dilations: [12, 12],
          pads: [12, 12, 12, 12],
          bias: true,
        },
        {
          name: 'Winograd F(3x3, 3x3): batch 2, asymmetric pads, 11x11 (tiles past the edge)',
          x: [2, 5, 11, 11],
          w: [7, 5, 3, 3],
          pads: [1, 0, 1, 2],
          bias: true,
        },
        {
          name: 'Winograd F(4x4, 3x3): dilations 2 and 3, batch 2, 19x23 (tiles past the edge)',
          x: [2, 5, 19, 23],
          w: [9, 5, 3, 3],
          dilations: [2, 3],
          pads: [2, 3, 2, 3],
        },
        { name: '1x1 with 33 output channels on 33 pixels (pixel tiles of 32)', x: [1, 16, 3, 11], w: [33, 16, 1, 1], bias: true },
        { name: '1x1 on a 1x1 map (one pixel)', x: [1, 40, 1, 1], w: [12, 40, 1, 1], bias: true },
        // At most 4 output channels per group: the narrow kernel, lanes over pixels.
        { name: 'narrow: 3x3 to one channel, 37x29 map, bias', x: [1, 16, 37, 29], w: [1, 16, 3, 3], pads: [1, 1, 1, 1], bias: true, f16: true },
        {
          name: 'narrow: 3x3 to 4 channels a group, stride 2, dilation 2, batch 2, groups 2',
          x: [2, 6, 19, 23],
          w: [8, 3, 3, 3],
          group: 2,
          strides: [2, 2],
          dilations: [2, 2],
          pads: [2, 1, 2, 1],
          f16: true,
        },
        {
          name: 'narrow: 5x5 to 2 channels, dilation 3 (taps mostly in the padding), 7x30 map',
          x: [1, 5, 7, 30],
          w: [2, 5, 5, 5],
          dilations: [3, 3],
          pads: [6, 6, 6, 6],
        },
        { name: 'narrow: 1x1 to one channel on a 1x1 map', x: [1, 40, 1, 1], w: [1, 40, 1, 1], bias: true },
        {
          name: 'dilation 12 on 17x17, pixels by column bands at 8 lanes',
          x: [1, 8, 17, 17],
          w: [40, 8, 3, 3],
          dilations: [12, 12],
          pads: [12, 12, 12, 12],
          bias: true,
          f16: true,
        },
        {
          name: '3x3 stride 2 dilation 2, batch 2, groups 2, 130 output channels',
          x: [2, 8, 12, 10],
          w: [130, 4, 3, 3],
          group: 2,
          strides: [2, 2],
          dilations: [2, 2],
          pads: [2, 1, 2, 1],
          f16: true,
        },
      ];
      for (const c of subgroupCases.filter((c) => precision === 'f32' || c.f16))
        it(c.name, async ({ skip }) => {
          await needs(skip);
          await withConvFor('TestConvFor', adapter, {}, () => check(c, 'TestConvFor', precision));
        });

      for (const channels of [40, 1])
        it(`fuses a residual Add and ReLU, ${channels} output channel${channels > 1 ? 's' : ''}`, async ({ skip }) => {
          await needs(skip);
          await withConvFor('TestConvForAddRelu', adapter, { activation: 'max(v, 0.0f)', residual: true }, async () => {
            const x = randomTensor([1, 6, 9, 7], seed++);
            const w = randomTensor([channels, 6, 3, 3], seed++);
            const bias = randomTensor([channels], seed++);
            const r = randomTensor([1, channels, 9, 7], seed++);
            const [y] = await runNode(
              { op: 'TestConvForAddRelu', attrs: { pads: [1, 1, 1, 1] }, inputs: [x, { constant: w }, { constant: bias }, r] },
              precision,
            );
            const ref = referenceConv(x, w, bias, { strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], group: 1 });
            expectNear(
              y!,
              Array.from(ref.data, (v, i) => Math.max(v + r.data[i]!, 0)),
              precision,
            );
          });
        });

      // Over images, output and input channels (unaligned windows: 31x33 planes); and weights alone over the limit.
      const splits = [
        { x: [2, 6, 31, 33], w: [6, 6, 3, 3], pads: 2, dilation: 2, maxBindingBytes: 16 << 10 },
        { x: [1, 64, 5, 4], w: [32, 64, 3, 3], pads: 1, dilation: 1, maxBindingBytes: 40 << 10 },
        { x: [1, 64, 8, 12], w: [40, 64, 1, 1], pads: 0, dilation: 1, maxBindingBytes: 5000, f16: true },
        { x: [1, 64, 8, 12], w: [3, 64, 3, 3], pads: 1, dilation: 1, maxBindingBytes: 8000, f16: true },
      ];
      for (const c of splits.filter((c) => precision === 'f32' || c.f16)) {
        it(`split over windows: ${c.w.join('x')} on ${c.x.join('x')}, bindings of ${c.maxBindingBytes} bytes`, async ({ skip }) => {
          await needs(skip);
          await withConvFor('TestConvForSplit', adapter, { activation: 'max(v, 0.0f)', residual: true }, async () => {
            const x = randomTensor(c.x, seed++);
            const w = randomTensor(c.w, seed++, -0.3, 0.3);
            const bias = randomTensor([c.w[0]!], seed++);
            const attrs = { pads: Array(4).fill(c.pads), dilations: [c.dilation, c.dilation] };
            const ref = referenceConv(x, w, bias, { strides: [1, 1], dilations: attrs.dilations, pads: attrs.pads, group: 1 });
            const r = randomTensor(ref.dims, seed++);
            const node = nodeGraph({ op: 'TestConvForSplit', attrs, inputs: [x, { constant: w }, { constant: bias }, r] });
            const graph = precision === 'f16' ? throughFloat16Casts(node) : node;
            const session = await Session.create(await gpu(), graph, { maxBindingBytes: c.maxBindingBytes, precision });
            try {
              const y = (await session.run({ in0: x, in3: r })).outputs.get(graph.outputs[0]!.name)!;
              expect((await session.plan()).kernels.filter((k) => k.node.opType === 'TestConvForSplit').length).toBeGreaterThan(1);
              expectNear(
                y,
                Array.from(ref.data, (v, i) => Math.max(v + r.data[i]!, 0)),
                precision,
              );
            } finally {
              session.destroy();
            }
          });
        });
      }
    });

/**
 * Float16 weights (--precision f16) on each lowering: the node alone reads
 * float32 X and writes float32 Y, so its weights and bias, stored as float16
 * and widened in the kernel, are the only values rounded. Against a
 * reference on the rounded weights it is exact to f32 accuracy, and not
 * against the unrounded ones: the weights on the GPU are the float16 ones.
 */
async function checkFloat16Weights(c: Case, op: string, maxBindingBytes?: number) {
  const x = randomTensor(c.x, seed++);
  const w = randomTensor(c.w, seed++);
  const bias = c.bias ? randomTensor([c.w[0]!], seed++) : undefined;
  const attrs: Record<string, AttrValue> = {
    pads: c.pads ?? [0, 0, 0, 0],
    ...(c.strides ? { strides: c.strides } : {}),
    ...(c.group ? { group: c.group } : {}),
  };
  const {
    outputs: [y],
    uploads,
  } = await runWithFloat16Constants({ op, attrs, inputs: [x, { constant: w }, ...(bias ? [{ constant: bias }] : [])] }, maxBindingBytes);
  expect(uploads.length).toBeGreaterThan(0);
  // Every float upload float16 (the subgroup kernel's sizes are u32).
  expect(uploads.filter((u) => u.data instanceof Float32Array)).toEqual([]);
  expect(uploads.filter((u) => u.data instanceof Uint16Array).length).toBeGreaterThan(0);
  const options = { strides: c.strides ?? [1, 1], dilations: [1, 1], pads: c.pads ?? [0, 0, 0, 0], group: c.group ?? 1 };
  const half = (t: HostTensor) => tensor([...t.dims], roundToFloat16(t.data));
  const ref = referenceConv(x, half(w), bias && half(bias), options);
  expect([y!.type, y!.dims]).toEqual(['float32', ref.dims]);
  expect(relL2(y!.data, ref.data)).toBeLessThanOrEqual(TOLERANCE.f32);
  expect(relL2(y!.data, referenceConv(x, w, bias, options).data)).toBeGreaterThan(TOLERANCE.f32);
  return uploads;
}

for (const [kernel, adapter] of kernels)
  describe(`Conv on the ${kernel}, float16 weights`, () => {
    const needs = async (skip: () => void) => {
      const { features } = await gpu();
      if ((adapter.cpuSubgroupSize && !features.has('subgroups')) || !features.has('shader-f16')) skip();
    };
    const float16Cases: Case[] = [
      { name: '3x3 stride 2, asymmetric pads, bias', x: [1, 5, 13, 11], w: [6, 5, 3, 3], strides: [2, 2], pads: [0, 1, 2, 1], bias: true },
      { name: '1x1 on a map whose pixel count is a multiple of 4, bias', x: [1, 9, 12, 8], w: [10, 9, 1, 1], bias: true },
      { name: '1x1 with 70 output channels on 33 pixels, no bias', x: [1, 16, 3, 11], w: [70, 16, 1, 1] },
      { name: 'grouped (group 2), bias', x: [1, 6, 9, 7], w: [10, 3, 3, 3], group: 2, pads: [1, 1, 1, 1], bias: true },
      { name: 'depthwise 3x3 with channel multiplier 2, bias', x: [1, 6, 9, 7], w: [12, 1, 3, 3], group: 6, pads: [1, 1, 1, 1], bias: true },
    ];
    for (const c of float16Cases)
      it(c.name, async ({ skip }) => {
        await needs(skip);
        await withConvFor('TestConvFor', adapter, {}, async () => {
          await checkFloat16Weights(c, 'TestConvFor');
        });
      });

    it('split over input and output channels, packed weights and bias in parts', async ({ skip }) => {
      await needs(skip);
      await withConvFor('TestConvFor', adapter, {}, async () => {
        // 24 KiB of float32 X and 15 KiB of float32 Y against 12000-byte bindings: 6 parts over both channel axes.
        const uploads = await checkFloat16Weights({ name: 'split', x: [1, 64, 8, 12], w: [40, 64, 1, 1], bias: true }, 'TestConvFor', 12000);
        expect(uploads.length).toBeGreaterThan(2);
      });
    });
  });
