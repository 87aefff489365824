import { describe, expect, it } from 'vitest';
import { ModelError, UnsupportedOpError } from '../src/errors.js';
import type { HostTensor } from '../src/model/graph.js';
import { PRECISIONS } from '../src/model/precision.js';
import { randomTensor, relL2, roundToFloat16, runNode, runWithFloat16Constants, TOLERANCE } from './helpers/gpu.js';

/** Plain CPU reference: y = (x - mean) / sqrt(var + eps) * scale + B along axis 1. */
function batchNormRef(x: HostTensor, [scale, bias, mean, variance]: HostTensor[], eps: number): number[] {
  const channels = x.dims[1]!;
  const inner = x.dims.slice(2).reduce((p, d) => p * d, 1);
  return Array.from(x.data, (v, i) => {
    const c = Math.floor(i / inner) % channels;
    return ((v - mean!.data[c]!) / Math.sqrt(variance!.data[c]! + eps)) * scale!.data[c]! + bias!.data[c]!;
  });
}

/** scale, B, mean, var for `channels` channels; var positive. */
const stats = (channels: number, seed: number): HostTensor[] => [
  randomTensor([channels], seed, 0.5, 2),
  randomTensor([channels], seed + 1, -1, 1),
  randomTensor([channels], seed + 2, -1, 1),
  randomTensor([channels], seed + 3, 0.1, 2),
];

describe('BatchNormalization', () => {
  it('constant statistics, ranks 2 to 5 with odd sizes, at f32 and f16', async () => {
    for (const [k, dims] of [
      [3, 5],
      [2, 4, 11],
      [2, 5, 7, 9],
      [1, 3, 3, 5, 7],
    ].entries()) {
      const x = randomTensor(dims, 10 + k, -3, 3);
      const s = stats(dims[1]!, 20 + 4 * k);
      for (const precision of PRECISIONS) {
        const [y] = await runNode({ op: 'BatchNormalization', inputs: [x, ...s.map((t) => ({ constant: t }))] }, precision);
        expect([y!.type, y!.dims]).toEqual(['float32', dims]);
        expect(relL2(y!.data, batchNormRef(x, s, 1e-5)), `[${dims}] ${precision}`).toBeLessThan(TOLERANCE[precision]);
      }
    }
  });

  it('stores the coefficients of constant statistics as float16 at f16, computing in f32', async () => {
    // The node alone reads float32 X and writes float32 Y: the coefficients a, b are the only values rounded.
    const x = randomTensor([2, 5, 7, 9], 30, -3, 3);
    const s = stats(5, 31);
    const { outputs, uploads } = await runWithFloat16Constants({ op: 'BatchNormalization', inputs: [x, ...s.map((t) => ({ constant: t }))] });
    expect(uploads.map((u) => u.data instanceof Uint16Array)).toEqual([true]);
    const [scale, bias, mean, variance] = s.map((t) => Array.from(t.data));
    const a = roundToFloat16(scale!.map((v, c) => Math.fround(v / Math.sqrt(variance![c]! + 1e-5))));
    const b = roundToFloat16(bias!.map((v, c) => Math.fround(v - mean![c]! * Math.fround(scale![c]! / Math.sqrt(variance![c]! + 1e-5)))));
    const expected = Array.from(x.data, (v, i) => v * a[Math.floor(i / 63) % 5]! + b[Math.floor(i / 63) % 5]!);
    expect(relL2(outputs[0]!.data, expected)).toBeLessThanOrEqual(TOLERANCE.f32);
    expect(relL2(outputs[0]!.data, batchNormRef(x, s, 1e-5))).toBeLessThan(TOLERANCE.f16);
  });

  it('runtime statistics and a custom epsilon, at f32 and f16', async () => {
    const x = randomTensor([2, 6, 5, 7], 40, -3, 3);
    const s = stats(6, 41);
    for (const precision of PRECISIONS) {
      const [y] = await runNode({ op: 'BatchNormalization', attrs: { epsilon: 0.01, momentum: 0.7 }, inputs: [x, ...s] }, precision);
      expect([y!.type, y!.dims]).toEqual(['float32', [2, 6, 5, 7]]);
      expect(relL2(y!.data, batchNormRef(x, s, 0.01)), precision).toBeLessThan(TOLERANCE[precision]);
      // Mixed: constant scale and B, runtime mean and var.
      const [z] = await runNode({ op: 'BatchNormalization', inputs: [x, { constant: s[0]! }, { constant: s[1]! }, s[2]!, s[3]!] }, precision);
      expect(relL2(z!.data, batchNormRef(x, s, 1e-5)), precision).toBeLessThan(TOLERANCE[precision]);
    }
    // Opset 6 marks inference with is_test=1.
    const [old] = await runNode({ op: 'BatchNormalization', attrs: { is_test: 1 }, inputs: [x, ...s], opset: 6 });
    expect(relL2(old!.data, batchNormRef(x, s, 1e-5))).toBeLessThan(1e-5);
  });

  it('refuses training variants and malformed statistics', async () => {
    const x = randomTensor([2, 3, 5, 5], 50);
    const s = stats(3, 51).map((t) => ({ constant: t }));
    await expect(runNode({ op: 'BatchNormalization', attrs: { training_mode: 1 }, inputs: [x, ...s] })).rejects.toThrow(UnsupportedOpError);
    await expect(runNode({ op: 'BatchNormalization', inputs: [x, ...s], outputs: 3 })).rejects.toThrow(/training outputs/);
    await expect(runNode({ op: 'BatchNormalization', attrs: { spatial: 0 }, inputs: [x, ...s], opset: 7 })).rejects.toThrow(UnsupportedOpError);
    await expect(runNode({ op: 'BatchNormalization', attrs: { is_test: 0 }, inputs: [x, ...s], opset: 6 })).rejects.toThrow(/is_test=0/);
    const wrong = [...s.slice(0, 3), { constant: randomTensor([4], 55, 0.1, 1) }];
    await expect(runNode({ op: 'BatchNormalization', inputs: [x, ...wrong] })).rejects.toThrow(ModelError);
  });
});
