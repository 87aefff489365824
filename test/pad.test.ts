import { describe, expect, it } from 'vitest';
import { ModelError } from '../src/errors.js';
import type { HostTensor } from '../src/model/graph.js';
import { random, randomTensor, roundToFloat16, runNode, tensor } from './helpers/gpu.js';

type Mode = 'constant' | 'reflect' | 'edge' | 'wrap';

/** Where coordinate `s` of an axis of `m` kept elements reads from; undefined: the fill value. */
function sourceCoord(s: number, m: number, mode: Mode): number | undefined {
  if (s >= 0 && s < m) return s;
  switch (mode) {
    case 'constant':
      return undefined;
    case 'edge':
      return s < 0 ? 0 : m - 1;
    case 'wrap':
      return ((s % m) + m) % m;
    case 'reflect':
      // Mirror at the end elements (not repeating them) until inside.
      if (m === 1) return 0;
      while (s < 0 || s >= m) s = s < 0 ? -s : 2 * (m - 1) - s;
      return s;
  }
}

/** Plain CPU reference: negative pads crop first, then positive pads extend the cropped data. */
function padRef(x: HostTensor, pads: number[], mode: Mode, value = 0): { dims: number[]; data: number[] } {
  const rank = x.dims.length;
  const begin = pads.slice(0, rank);
  const end = pads.slice(rank);
  const dims = x.dims.map((n, a) => n + begin[a]! + end[a]!);
  const inStrides = x.dims.map((_, a) => x.dims.slice(a + 1).reduce((p, d) => p * d, 1));
  const size = dims.reduce((p, d) => p * d, 1);
  const data: number[] = [];
  for (let i = 0; i < size; i++) {
    let rest = i;
    let src = 0;
    let inside = true;
    for (let a = rank - 1; a >= 0; a--) {
      const o = rest % dims[a]!;
      rest = Math.floor(rest / dims[a]!);
      const crop = Math.max(0, -begin[a]!);
      const kept = x.dims[a]! - crop - Math.max(0, -end[a]!);
      const s = sourceCoord(o - Math.max(0, begin[a]!), kept, mode);
      if (s === undefined) inside = false;
      else src += (s + crop) * inStrides[a]!;
    }
    data.push(inside ? x.data[src]! : value);
  }
  return { dims, data };
}

const ints = (values: number[]) => ({ constant: tensor([values.length], values, 'int64') });

describe('Pad', () => {
  it('constant mode from inputs (opset 11+) and from attributes (opset 2, and paddings at opset 1)', async () => {
    const x = randomTensor([1, 3, 5, 7], 1);
    const pads = [0, 1, 2, 1, 0, 0, 3, 2];
    const ref = padRef(x, pads, 'constant', 1.5);
    const [a] = await runNode({ op: 'Pad', inputs: [x, ints(pads), { constant: tensor([], [1.5]) }] });
    expect(a!.dims).toEqual(ref.dims);
    expect(Array.from(a!.data)).toEqual(ref.data.map(Math.fround));
    const [b] = await runNode({ op: 'Pad', attrs: { pads, value: 1.5 }, inputs: [x], opset: 2 });
    expect(Array.from(b!.data)).toEqual(ref.data.map(Math.fround));
    const [c] = await runNode({ op: 'Pad', attrs: { paddings: pads, value: 1.5 }, inputs: [x], opset: 1 });
    expect(Array.from(c!.data)).toEqual(ref.data.map(Math.fround));
    const [zero] = await runNode({ op: 'Pad', attrs: { mode: 'constant' }, inputs: [x, ints(pads)] });
    expect(Array.from(zero!.data)).toEqual(padRef(x, pads, 'constant').data.map(Math.fround));
  });

  for (const mode of ['reflect', 'edge', 'wrap'] as const) {
    it(`${mode} mode, pad widths up to the dim size minus one, and beyond`, async () => {
      const x = randomTensor([1, 2, 5, 7], mode.length);
      for (const pads of [
        [0, 0, 4, 6, 0, 0, 3, 5],
        [0, 1, 1, 0, 0, 0, 2, 1],
        [0, 0, 9, 13, 0, 0, 6, 15],
      ]) {
        const [y] = await runNode({ op: 'Pad', attrs: { mode }, inputs: [x, ints(pads)] });
        const ref = padRef(x, pads, mode);
        expect(y!.dims).toEqual(ref.dims);
        expect(Array.from(y!.data)).toEqual(ref.data);
      }
    });
  }

  it('at f16: copies exactly, and fills with the value rounded to float16 (infinity: the largest finite, 65504)', async () => {
    const x = randomTensor([1, 2, 5, 7], 3);
    const pads = [0, 1, 2, 1, 0, 0, 3, 2];
    for (const [value, fill] of [
      [0.1, 0.1],
      [-Infinity, -65504],
    ]) {
      const [y] = await runNode({ op: 'Pad', inputs: [x, ints(pads), { constant: tensor([], [value!]) }] }, 'f16');
      expect(Array.from(y!.data)).toEqual(roundToFloat16(padRef(x, pads, 'constant', fill).data));
    }
    const [y] = await runNode({ op: 'Pad', attrs: { mode: 'reflect' }, inputs: [x, ints(pads)] }, 'f16');
    expect(Array.from(y!.data)).toEqual(roundToFloat16(padRef(x, pads, 'reflect').data));
  });

  it('negative pads crop, before the other side is extended', async () => {
    const x = randomTensor([2, 5, 7], 20);
    for (const mode of ['constant', 'reflect', 'edge', 'wrap'] as const) {
      for (const pads of [
        [0, -1, -2, 0, -2, -3],
        [0, -3, 2, 0, 3, -1],
      ]) {
        const [y] = await runNode({ op: 'Pad', attrs: { mode }, inputs: [x, ints(pads)] });
        const ref = padRef(x, pads, mode);
        expect(y!.dims).toEqual(ref.dims);
        expect(Array.from(y!.data)).toEqual(ref.data);
      }
    }
  });

  it('axes input (opset 18), negative axes included', async () => {
    const x = randomTensor([1, 3, 5, 7], 30);
    const [y] = await runNode({ op: 'Pad', attrs: { mode: 'reflect' }, inputs: [x, ints([2, 1, 3, 4]), null, ints([-2, 3])], opset: 18 });
    expect(Array.from(y!.data)).toEqual(padRef(x, [0, 0, 2, 1, 0, 0, 3, 4], 'reflect').data);
  });

  it('integer tensors (edge mode, and a constant fill)', async () => {
    const x = tensor([1, 3, 4, 5], Array.from(random(60, 40, -100, 100), Math.floor), 'int32');
    const pads = [0, 0, 1, 2, 0, 0, 3, 1];
    const [y] = await runNode({ op: 'Pad', attrs: { mode: 'edge' }, inputs: [x, ints(pads)] });
    expect(y!.type).toBe('int32');
    expect(Array.from(y!.data)).toEqual(padRef(x, pads, 'edge').data);
    const [z] = await runNode({ op: 'Pad', inputs: [x, ints(pads), { constant: tensor([], [-7], 'int32') }] });
    expect(Array.from(z!.data)).toEqual(padRef(x, pads, 'constant', -7).data);
  });

  it('reads pads fed at run time on the host, as if they were constants', async () => {
    const x = randomTensor([2, 3], 50);
    const [y] = await runNode({ op: 'Pad', inputs: [x, tensor([4], [0, 1, 0, 1], 'int64')] });
    expect(y!.dims).toEqual([2, 5]);
    expect(Array.from(y!.data)).toEqual(padRef(x, [0, 1, 0, 1], 'constant').data);
  });

  it('rejects bad modes, pad counts and over-cropping with ModelError', async () => {
    const x = randomTensor([2, 3], 50);
    await expect(runNode({ op: 'Pad', attrs: { mode: 'mirror' }, inputs: [x, ints([0, 1, 0, 1])] })).rejects.toThrow(/unknown mode 'mirror'/);
    await expect(runNode({ op: 'Pad', inputs: [x, ints([0, 1, 0])] })).rejects.toThrow(ModelError);
    await expect(runNode({ op: 'Pad', inputs: [x, ints([0, -2, 0, -2])] })).rejects.toThrow(ModelError);
    await expect(runNode({ op: 'Pad', attrs: { mode: 'edge' }, inputs: [x, ints([0, -3, 0, 1])] })).rejects.toThrow(ModelError);
  });
});
