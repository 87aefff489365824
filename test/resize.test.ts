import { describe, expect, it } from 'vitest';
import { ModelError, UnsupportedOpError } from '../src/errors.js';
import type { AttrValue, HostTensor } from '../src/model/graph.js';
import { PRECISIONS } from '../src/model/precision.js';
import { gpu, nodeGraph, random, randomTensor, relL2, runNode, tensor, TOLERANCE } from './helpers/gpu.js';
import { Session } from '../src/runtime/session.js';
import { byScale, bySizes, type Options, resizeRef } from './helpers/resize-reference.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const i64 = (v: number[]) => ({ constant: tensor([v.length], v, 'int64') });
const f32s = (v: number[]) => ({ constant: tensor([v.length], v) });

/** Runs Resize-13 with sizes or scales and compares with the reference. */
async function check(x: HostTensor, target: { sizes: number[] } | { scales: number[] }, o: Options, attrs: Record<string, AttrValue>) {
  const axes = x.dims.map((d, a) => ('sizes' in target ? bySizes(d, target.sizes[a]!) : byScale(d, target.scales[a]!)));
  const inputs = 'sizes' in target ? [x, null, null, i64(target.sizes)] : [x, null, f32s(target.scales)];
  for (const precision of PRECISIONS) {
    const [y] = await runNode({ op: 'Resize', attrs, inputs, opset: 13 }, precision);
    expect(y!.dims).toEqual(axes.map((a) => a.output));
    expect(relL2(y!.data, resizeRef(x, axes, o)), precision).toBeLessThan(TOLERANCE[precision]);
  }
}

const transforms = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn', 'half_pixel_symmetric'];
const modes: (Options & { name: string })[] = [
  ...['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'].map((nearest) => ({ name: `nearest ${nearest}`, mode: 'nearest', transform: '', nearest })),
  { name: 'linear', mode: 'linear', transform: '' },
  { name: 'cubic', mode: 'cubic', transform: '' },
  { name: 'cubic A=-0.5 exclude_outside', mode: 'cubic', transform: '', a: -0.5, exclude: true },
];

describe('Resize against the CPU reference', () => {
  modes.forEach((m, k) => {
    for (const transform of transforms) {
      it(`${m.name}, ${transform}: 9x7 -> 33x17 by sizes, 33x65 -> 19x17 by scales`, async () => {
        const o = { ...m, transform };
        const attrs: Record<string, AttrValue> = {
          mode: m.mode,
          coordinate_transformation_mode: transform,
          ...(m.nearest && { nearest_mode: m.nearest }),
          ...(m.a !== undefined && { cubic_coeff_a: m.a }),
          ...(m.exclude && { exclude_outside: 1 }),
        };
        await check(randomTensor([1, 2, 9, 7], 10 * k + 1), { sizes: [1, 2, 33, 17] }, o, attrs);
        await check(randomTensor([1, 2, 33, 65], 10 * k + 2), { scales: [1, 1, 0.6, 0.27] }, o, attrs);
      });
    }
  });

  it('bilinear x4 of a 33x33 map to 129x129 and down 65 -> 17 (DeepLab decoder sizes)', async () => {
    for (const transform of ['pytorch_half_pixel', 'align_corners']) {
      const o = { mode: 'linear', transform };
      const attrs = { mode: 'linear', coordinate_transformation_mode: transform };
      await check(randomTensor([1, 3, 33, 33], 3), { sizes: [1, 3, 129, 129] }, o, attrs);
      await check(randomTensor([2, 3, 65, 65], 4), { sizes: [2, 3, 17, 17] }, o, attrs);
    }
  });

  it('uses the given scale, not output/input, when scales are given', async () => {
    const x = randomTensor([1, 2, 9, 9], 5);
    const attrs = { mode: 'linear' };
    // Both give 33x33, but the transforms divide by 3.7 and by 33/9.
    await check(x, { scales: [1, 1, 3.7, 3.7] }, { mode: 'linear', transform: 'half_pixel' }, attrs);
    await check(x, { sizes: [1, 2, 33, 33] }, { mode: 'linear', transform: 'half_pixel' }, attrs);
    const [a] = await runNode({ op: 'Resize', attrs, inputs: [x, null, f32s([1, 1, 3.7, 3.7])], opset: 13 });
    const [b] = await runNode({ op: 'Resize', attrs, inputs: [x, null, null, i64([1, 2, 33, 33])], opset: 13 });
    expect(relL2(a!.data, b!.data)).toBeGreaterThan(1e-3);
  });
});

describe('Resize as PyTorch exports F.interpolate', () => {
  const x = tensor([1, 1, 2, 2], [1, 2, 3, 4]);

  it('bilinear align_corners=False of [[1,2],[3,4]] to 4x4 starts [1, 1.25, 1.75, 2]', async () => {
    for (const transform of ['pytorch_half_pixel', 'half_pixel']) {
      const [y] = await runNode({
        op: 'Resize',
        attrs: { mode: 'linear', coordinate_transformation_mode: transform },
        inputs: [x, null, f32s([1, 1, 2, 2])],
        opset: 13,
      });
      expect(Array.from(y!.data.slice(0, 4))).toEqual([1, 1.25, 1.75, 2]);
      expect(Array.from(y!.data.slice(12))).toEqual([3, 3.25, 3.75, 4]);
    }
  });

  it('bilinear align_corners=True of [[1,2],[3,4]] to 4x4 starts [1, 1.3333, 1.6667, 2]', async () => {
    const [y] = await runNode({
      op: 'Resize',
      attrs: { mode: 'linear', coordinate_transformation_mode: 'align_corners' },
      inputs: [x, null, null, i64([1, 1, 4, 4])],
      opset: 13,
    });
    expect(relL2(y!.data.slice(0, 4), [1, 4 / 3, 5 / 3, 2])).toBeLessThan(1e-6);
  });

  it("opset 11 TorchScript form: '' roi, empty scales and sizes; nearest asymmetric floor", async () => {
    const input = randomTensor([1, 3, 9, 11], 6);
    const attrs = { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' };
    const empty = { constant: tensor([0], []) };
    const [y] = await runNode({ op: 'Resize', attrs, inputs: [input, empty, empty, i64([1, 3, 18, 33])], opset: 11 });
    const [z] = await runNode({ op: 'Resize', attrs, inputs: [input, null, f32s([1, 1, 2, 3])], opset: 11 });
    const ref = resizeRef(input, [bySizes(1, 1), bySizes(3, 3), bySizes(9, 18), bySizes(11, 33)], {
      mode: 'nearest',
      transform: 'asymmetric',
      nearest: 'floor',
    });
    expect(relL2(y!.data, ref)).toBe(0);
    expect(relL2(z!.data, ref)).toBe(0);
  });

  it('Resize-10 and Upsample (opset 9 input, opset 7 attribute): asymmetric, nearest is the floor', async () => {
    const input = randomTensor([1, 2, 7, 5], 7);
    const scales = [1, 1, 2, 3];
    const axes = input.dims.map((d, a) => byScale(d, scales[a]!));
    for (const mode of ['nearest', 'linear']) {
      const ref = resizeRef(input, axes, { mode, transform: 'asymmetric', nearest: 'floor' });
      const [r10] = await runNode({ op: 'Resize', attrs: { mode }, inputs: [input, f32s(scales)], opset: 10 });
      const [u9] = await runNode({ op: 'Upsample', attrs: { mode }, inputs: [input, f32s(scales)], opset: 9 });
      const [u7] = await runNode({ op: 'Upsample', attrs: { mode, scales }, inputs: [input], opset: 7 });
      for (const y of [r10, u9, u7]) {
        expect(y!.dims).toEqual([1, 2, 14, 15]);
        expect(relL2(y!.data, ref)).toBeLessThan(1e-6);
      }
    }
  });
});

describe("Resize's linear taps are PyTorch's, bit for bit", () => {
  // tools/resize_fixtures.py: torch's F.interpolate weights, read off one-hot inputs.
  interface TorchCase {
    input: number;
    output: number | null;
    align_corners: boolean;
    scale_factor: number | null;
    taps: [number, number][][];
  }
  const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/resize/torch_linear_taps.json'), 'utf8')) as { cases: TorchCase[] };
  const dense = (c: TorchCase) => {
    const w = new Float64Array(c.input * c.taps.length);
    c.taps.forEach((list, o) => {
      for (const [i, v] of list) w[i * c.taps.length + o] = v;
    });
    return Array.from(w);
  };
  for (const c of fixture.cases) {
    const outputs = c.taps.length;
    const what = `${c.input} -> ${outputs}${c.scale_factor ? ` (scale ${c.scale_factor})` : ''}${c.align_corners ? ', align_corners' : ''}`;
    const transforms = c.align_corners ? ['align_corners'] : ['pytorch_half_pixel', 'half_pixel'];
    const inputs = (x: HostTensor, channels: number) =>
      c.scale_factor ? [x, null, f32s([1, 1, 1, c.scale_factor])] : [x, null, null, i64([1, channels, 1, outputs])];
    /** [channels][positions] with channel k one-hot at position k. */
    const oneHot = (channels: number, positions: number) =>
      tensor(
        [1, channels, 1, positions],
        Array.from({ length: channels * positions }, (_, e) => (Math.floor(e / positions) === e % positions ? 1 : 0)),
      );
    it(`${what}: in the kernel, and in ResizeGrad's adjoint (the taps on the CPU), float32`, async () => {
      const weights = dense(c);
      for (const transform of transforms) {
        const attrs = { mode: 'linear', coordinate_transformation_mode: transform };
        // Output (k, o) of a one-hot channel k is input k's weight for output o.
        const [y] = await runNode({ op: 'Resize', attrs, inputs: inputs(oneHot(c.input, c.input), c.input), opset: 13 });
        expect(y!.dims).toEqual([1, c.input, 1, outputs]);
        expect(Array.from(y!.data)).toEqual(weights);
        // dx (o, k) of a one-hot gradient at output o is the same weight.
        const x = tensor([1, outputs, 1, c.input], new Array(outputs * c.input).fill(0));
        const [dx] = await runNode({ op: 'segscope::ResizeGrad', attrs, inputs: [oneHot(outputs, outputs), ...inputs(x, outputs)], opset: 13 });
        expect(Array.from(dx!.data)).toEqual(Array.from({ length: outputs * c.input }, (_, e) => weights[(e % c.input) * outputs + Math.floor(e / c.input)]));
      }
    });
  }
});

describe('Resize variants', () => {
  it('opset 18 axes, keep_aspect_ratio_policy not_larger and not_smaller', async () => {
    const x = randomTensor([1, 2, 9, 12], 8);
    const o = { mode: 'linear', transform: 'half_pixel' };
    const cases: [string, number, number[]][] = [
      ['stretch', 0, [20, 16]],
      ['not_larger', 16 / 12, [12, 16]],
      ['not_smaller', 20 / 9, [20, 27]],
    ];
    for (const [policy, scale, out] of cases) {
      const [y] = await runNode({
        op: 'Resize',
        attrs: { mode: 'linear', axes: [-2, -1], keep_aspect_ratio_policy: policy },
        inputs: [x, null, null, i64([20, 16])],
        opset: 18,
      });
      const axes =
        policy === 'stretch'
          ? [bySizes(1, 1), bySizes(2, 2), bySizes(9, 20), bySizes(12, 16)]
          : [bySizes(1, 1), bySizes(2, 2), { input: 9, output: out[0]!, scale, length: 9 * scale }, { input: 12, output: out[1]!, scale, length: 12 * scale }];
      expect(y!.dims).toEqual([1, 2, ...out]);
      expect(relL2(y!.data, resizeRef(x, axes, o))).toBeLessThan(1e-5);
    }
  });

  it('nearest resizes integer tensors and 1-D/3-D tensors', async () => {
    const ints = tensor(
      [2, 5, 3],
      Array.from(random(30, 9), (v) => Math.round(v * 1000)),
      'int32',
    );
    const [y] = await runNode({ op: 'Resize', attrs: { mode: 'nearest' }, inputs: [ints, null, null, i64([2, 11, 7])], opset: 13 });
    expect(y!.type).toBe('int32');
    expect(Array.from(y!.data)).toEqual(resizeRef(ints, [bySizes(2, 2), bySizes(5, 11), bySizes(3, 7)], { mode: 'nearest', transform: 'half_pixel' }));
    const line = randomTensor([13], 10);
    const [z] = await runNode({ op: 'Resize', attrs: { mode: 'cubic' }, inputs: [line, null, f32s([2.5])], opset: 13 });
    expect(relL2(z!.data, resizeRef(line, [byScale(13, 2.5)], { mode: 'cubic', transform: 'half_pixel' }))).toBeLessThan(1e-5);
  });

  it('upsamples of the last two axes run as strips of 8 outputs a row, downsamples on the one-output kernel', async () => {
    const labels = async (dims: number[], sizes: number[]) => {
      const graph = nodeGraph({ op: 'Resize', attrs: { mode: 'linear' }, inputs: [randomTensor(dims, 13), null, null, i64(sizes)], opset: 13 });
      const session = await Session.create(await gpu(), graph);
      try {
        return (await session.plan()).kernels.map((k) => k.kernel.label);
      } finally {
        session.destroy();
      }
    };
    expect(await labels([1, 2, 33, 33], [1, 2, 129, 129])).toEqual(['resize_linear_33to129_33to129_strips']);
    // Rows unchanged: one input row a strip.
    expect(await labels([1, 2, 1, 9], [1, 2, 1, 17])).toEqual(['resize_linear_1to1_9to17_strips']);
    expect(await labels([1, 2, 65, 65], [1, 2, 17, 17])).toEqual(['resize_linear_65to17_65to17']);
  });

  it('a resize that changes nothing is a copy', async () => {
    const x = randomTensor([1, 3, 5, 7], 11);
    const [y] = await runNode({ op: 'Resize', attrs: { mode: 'linear' }, inputs: [x, null, f32s([1, 1, 1, 1])], opset: 13 });
    expect(relL2(y!.data, x.data)).toBe(0);
  });

  it('refuses unsupported variants and malformed inputs', async () => {
    const x = randomTensor([1, 1, 4, 4], 12);
    const sizes = i64([1, 1, 8, 8]);
    const resize = (attrs: Record<string, AttrValue>, inputs: Parameters<typeof runNode>[0]['inputs'] = [x, null, null, sizes], opset = 13) =>
      runNode({ op: 'Resize', attrs, inputs, opset });
    await expect(resize({ coordinate_transformation_mode: 'tf_crop_and_resize' })).rejects.toThrow(UnsupportedOpError);
    await expect(resize({ antialias: 1, mode: 'linear' }, undefined, 18)).rejects.toThrow(UnsupportedOpError);
    await expect(resize({ mode: 'linear' }, [tensor([1, 1, 4, 4], new Array(16).fill(1), 'int32'), null, null, sizes])).rejects.toThrow(UnsupportedOpError);
    await expect(resize({ mode: 'bilinear' })).rejects.toThrow(/mode must be one of/);
    await expect(resize({ nearest_mode: 'round' })).rejects.toThrow(ModelError);
    await expect(resize({}, [x, null, f32s([1, 1, 2, 2]), sizes])).rejects.toThrow(/not both/);
    // Sizes fed at run time are read on the host: these are no sizes, and the error names the values.
    await expect(resize({}, [x, null, null, randomTensor([4], 1)])).rejects.toThrow(
      /^with 'in3' = \[0\.254.*: Resize node 'test_Resize': sizes .* must be positive$/,
    );
    await expect(resize({}, [x, null, null, i64([8, 8])])).rejects.toThrow(/2 sizes for 4 axes/);
    await expect(resize({}, [x])).rejects.toThrow(/needs scales or sizes/);
    await expect(runNode({ op: 'Upsample', inputs: [x, f32s([1, 1, 0.5, 2])], opset: 9 })).rejects.toThrow(/at least 1/);
  });
});
