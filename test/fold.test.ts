import { describe, expect, it } from 'vitest';
import { evaluators } from '../src/model/fold.js';
import { Attrs, type HostTensor, type Node } from '../src/model/graph.js';

const node = (opType: string, attrs: Record<string, number> = {}): Node => ({
  name: opType,
  opType,
  domain: '',
  inputs: [],
  outputs: [],
  attrs: new Attrs(new Map(Object.entries(attrs)), opType),
});
const input = (t: HostTensor) => ({ name: 'x', type: t.type, dims: [...t.dims], value: t });

describe('constant folding', () => {
  it('Cast to float16 and bfloat16 rounds to nearest even at their precision', () => {
    const x: HostTensor = { type: 'float32', dims: [6], data: Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 1e-8, 0.47892547, -2.5]) };
    const [half] = evaluators.Cast!(node('Cast', { to: 10 }), [input(x)], 17);
    // Ties go to even; 65520 overflows float16; 1e-8 underflows to 0; 0.47892547 -> 0.479 (0x37aa).
    expect(Array.from(half!.data)).toEqual([1, 1 + 2 ** -9, Infinity, 0, 0.47900390625, -2.5]);
    const [bf] = evaluators.Cast!(node('Cast', { to: 16 }), [input(x)], 17);
    expect(bf!.data[4]).toBe(0.478515625);
    expect(bf!.data[5]).toBe(-2.5);
  });

  it('Mod follows fmod: the divisor sign by default, the dividend sign with fmod=1', () => {
    const a = input({ type: 'int64', dims: [2], data: Float64Array.from([-4, 7]) });
    const b = input({ type: 'int64', dims: [2], data: Float64Array.from([3, -3]) });
    expect(Array.from(evaluators.Mod!(node('Mod'), [a, b], 17)[0]!.data)).toEqual([2, -2]);
    expect(Array.from(evaluators.Mod!(node('Mod', { fmod: 1 }), [a, b], 17)[0]!.data)).toEqual([-1, 1]);
  });
});
