import { describe, expect, it } from 'vitest';
import { ModelError, UnsupportedOpError } from '../src/errors.js';
import type { AttrValue, HostTensor } from '../src/model/graph.js';
import { PRECISIONS } from '../src/model/precision.js';
import { random, randomTensor, relL2, roundToFloat16, runNode, tensor, TOLERANCE } from './helpers/gpu.js';

interface Geometry {
  kernel: number[];
  strides?: number[];
  dilations?: number[];
  /** Begin pads then end pads, as ONNX writes them. */
  pads?: number[];
}

/**
 * CPU reference pooling of an (N, C, spatial…) tensor into `outSpatial`.
 * Window positions past the end padding (ceil_mode) are not part of the
 * window at all; positions in the padding count only with `includePad`.
 */
function poolRef(x: HostTensor, outSpatial: number[], g: Geometry, kind: 'max' | 'avg', includePad = false): number[] {
  const inSpatial = x.dims.slice(2);
  const n = inSpatial.length;
  const s = g.strides ?? inSpatial.map(() => 1);
  const d = g.dilations ?? inSpatial.map(() => 1);
  const pads = g.pads ?? new Array<number>(2 * n).fill(0);
  const planes = x.dims[0]! * x.dims[1]!;
  const inPlane = inSpatial.reduce((a, b) => a * b, 1);
  const outPlane = outSpatial.reduce((a, b) => a * b, 1);
  const unflatten = (i: number, dims: number[]) => dims.map((_, a) => Math.floor(i / dims.slice(a + 1).reduce((p, q) => p * q, 1)) % dims[a]!);
  const taps = g.kernel.reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let p = 0; p < planes; p++) {
    for (let o = 0; o < outPlane; o++) {
      const oc = unflatten(o, outSpatial);
      let best = -Infinity;
      let sum = 0;
      let valid = 0;
      let positions = 0;
      for (let t = 0; t < taps; t++) {
        const pos = unflatten(t, g.kernel).map((k, a) => oc[a]! * s[a]! + k * d[a]! - pads[a]!);
        if (pos.some((q, a) => q >= inSpatial[a]! + pads[a + n]!)) continue;
        positions++;
        if (pos.some((q, a) => q < 0 || q >= inSpatial[a]!)) continue;
        const v = x.data[p * inPlane + pos.reduce((acc, q, a) => acc * inSpatial[a]! + q, 0)]!;
        best = Math.max(best, v);
        sum += v;
        valid++;
      }
      out.push(kind === 'max' ? best : sum / (includePad ? positions : valid));
    }
  }
  return out;
}

const attrsOf = (g: Geometry, extra: Record<string, AttrValue> = {}): Record<string, AttrValue> => ({
  kernel_shape: g.kernel,
  ...(g.strides && { strides: g.strides }),
  ...(g.dilations && { dilations: g.dilations }),
  ...(g.pads && { pads: g.pads }),
  ...extra,
});

interface Case {
  name: string;
  dims: number[];
  geometry: Geometry;
  attrs?: Record<string, AttrValue>;
  out: number[];
  /** The pads auto_pad or ceil_mode amount to, for the reference. */
  refPads?: number[];
}

const cases: Case[] = [
  { name: '3x3 stride 2 pad 1 (ResNet stem)', dims: [1, 3, 17, 15], geometry: { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, out: [9, 8] },
  { name: 'asymmetric kernel, strides and pads', dims: [2, 2, 13, 11], geometry: { kernel: [3, 2], strides: [2, 1], pads: [1, 0, 2, 1] }, out: [7, 11] },
  { name: 'dilations', dims: [1, 2, 11, 13], geometry: { kernel: [3, 3], dilations: [2, 2] }, out: [7, 9] },
  // (9 + 2 - 2) / 2 rounds up to 5 windows + 1, but the 6th would start in the end padding.
  {
    name: 'ceil_mode dropping a window that starts in the end padding',
    dims: [1, 2, 9, 9],
    geometry: { kernel: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1] },
    attrs: { ceil_mode: 1 },
    out: [5, 5],
  },
  // The last window (start 7: taps 7, 8, 9) runs past the end padding at 9.
  {
    name: 'ceil_mode with a window past the end padding',
    dims: [1, 2, 8, 8],
    geometry: { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    attrs: { ceil_mode: 1 },
    out: [5, 5],
  },
  { name: 'ceil_mode without padding', dims: [1, 1, 10, 10], geometry: { kernel: [3, 3], strides: [2, 2] }, attrs: { ceil_mode: 1 }, out: [5, 5] },
  {
    name: 'auto_pad SAME_UPPER',
    dims: [1, 2, 11, 10],
    geometry: { kernel: [3, 3], strides: [2, 2] },
    attrs: { auto_pad: 'SAME_UPPER' },
    out: [6, 5],
    refPads: [1, 0, 1, 1],
  },
  {
    name: 'auto_pad SAME_LOWER',
    dims: [1, 2, 11, 10],
    geometry: { kernel: [3, 3], strides: [2, 2] },
    attrs: { auto_pad: 'SAME_LOWER' },
    out: [6, 5],
    refPads: [1, 1, 1, 0],
  },
  { name: 'auto_pad VALID', dims: [1, 2, 11, 10], geometry: { kernel: [3, 3], strides: [2, 2] }, attrs: { auto_pad: 'VALID' }, out: [5, 4] },
  { name: '1-D', dims: [2, 3, 19], geometry: { kernel: [3], strides: [2], pads: [1, 1] }, out: [10] },
  { name: '3-D', dims: [1, 2, 7, 6, 5], geometry: { kernel: [2, 3, 2], pads: [0, 1, 1, 1, 1, 0] }, out: [7, 6, 5] },
];

describe('MaxPool and AveragePool', () => {
  cases.forEach((c, k) => {
    const ref = { ...c.geometry, pads: c.refPads ?? c.geometry.pads };
    it(`MaxPool: ${c.name}`, async () => {
      const x = randomTensor(c.dims, 100 + k);
      const [y] = await runNode({ op: 'MaxPool', attrs: attrsOf(c.geometry, c.attrs), inputs: [x], opset: 12 });
      expect(y!.dims).toEqual([...c.dims.slice(0, 2), ...c.out]);
      expect(relL2(y!.data, poolRef(x, c.out, ref, 'max'))).toBe(0);
      // The max of float16 values is one of them: exact.
      const [half] = await runNode({ op: 'MaxPool', attrs: attrsOf(c.geometry, c.attrs), inputs: [x], opset: 12 }, 'f16');
      expect(Array.from(half!.data)).toEqual(roundToFloat16(poolRef(x, c.out, ref, 'max')));
    });
    for (const includePad of [0, 1]) {
      it(`AveragePool count_include_pad=${includePad}: ${c.name}`, async () => {
        const x = randomTensor(c.dims, 200 + k);
        const attrs = attrsOf(c.geometry, { ...c.attrs, count_include_pad: includePad });
        for (const precision of PRECISIONS) {
          const [y] = await runNode({ op: 'AveragePool', attrs, inputs: [x], opset: 19 }, precision);
          expect(y!.dims).toEqual([...c.dims.slice(0, 2), ...c.out]);
          expect(relL2(y!.data, poolRef(x, c.out, ref, 'avg', includePad === 1)), precision).toBeLessThan(TOLERANCE[precision]);
        }
      });
    }
  });

  it('MaxPool on an integer tensor', async () => {
    const x = tensor(
      [1, 2, 7, 9],
      Array.from(random(126, 5), (v) => Math.round(v * 100)),
      'int32',
    );
    const g: Geometry = { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] };
    const [y] = await runNode({ op: 'MaxPool', attrs: attrsOf(g), inputs: [x] });
    expect(y!.type).toBe('int32');
    expect(Array.from(y!.data)).toEqual(poolRef(x, [4, 5], g, 'max'));
  });

  it('rejects unsupported and malformed attributes', async () => {
    const x = randomTensor([1, 2, 9, 9], 6);
    const run = (op: string, attrs: Record<string, AttrValue>, outputs = 1) => runNode({ op, attrs, inputs: [x], outputs });
    await expect(run('MaxPool', { kernel_shape: [2, 2] }, 2)).rejects.toThrow(UnsupportedOpError);
    await expect(run('MaxPool', { kernel_shape: [2] })).rejects.toThrow(/kernel_shape must be 2 integers/);
    await expect(run('MaxPool', { kernel_shape: [3, 3], pads: [3, 0, 0, 0] })).rejects.toThrow(/smaller than kernel_shape/);
    await expect(run('MaxPool', { kernel_shape: [3, 3], storage_order: 2 })).rejects.toThrow(ModelError);
    await expect(run('AveragePool', { kernel_shape: [3, 3], auto_pad: 'SAME' })).rejects.toThrow(/auto_pad must be/);
    await expect(run('AveragePool', { kernel_shape: [3, 3], count_include_pad: 2 })).rejects.toThrow(ModelError);
    await expect(run('AveragePool', { kernel_shape: [11, 3] })).rejects.toThrow(/larger than the padded input/);
    await expect(runNode({ op: 'MaxPool', attrs: { kernel_shape: [2] }, inputs: [randomTensor([4, 9], 1)] })).rejects.toThrow(/rank 3 or more/);
  });
});

describe('GlobalAveragePool and GlobalMaxPool', () => {
  const globalRef = (x: HostTensor, op: string) => {
    const plane = x.dims.slice(2).reduce((a, b) => a * b, 1);
    return Array.from({ length: x.data.length / plane }, (_, p) => {
      const v = Array.from(x.data.subarray(p * plane, (p + 1) * plane));
      return op === 'GlobalMaxPool' ? Math.max(...v) : v.reduce((a, b) => a + b, 0) / plane;
    });
  };
  for (const op of ['GlobalAveragePool', 'GlobalMaxPool']) {
    // 9x11 planes take a thread each, 33x33 planes a workgroup each.
    for (const dims of [
      [2, 19, 9, 11],
      [1, 5, 33, 33],
      [2, 3, 5, 4, 7],
    ]) {
      it(`${op} on [${dims}]`, async () => {
        const x = randomTensor(dims, dims[1]! + op.length);
        for (const precision of PRECISIONS) {
          const [y] = await runNode({ op, inputs: [x] }, precision);
          expect(y!.dims).toEqual(dims.map((d, a) => (a < 2 ? d : 1)));
          expect(relL2(y!.data, globalRef(x, op)), precision).toBeLessThan(TOLERANCE[precision]);
        }
      });
    }
  }
});
