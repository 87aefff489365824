import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { decodeNpy, encodeNpy } from '../src/io/npy.js';
import type { HostTensor } from '../src/model/graph.js';

describe('.npy', () => {
  it('reads a file written by NumPy', () => {
    const t = decodeNpy(readFileSync(join(import.meta.dirname, 'fixtures/input_1x3x65x65.npy')), 'input.npy');
    expect(t.type).toBe('float32');
    expect(t.dims).toEqual([1, 3, 65, 65]);
    // Standard normal samples: mean near 0, standard deviation near 1.
    const values = Array.from(t.data);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(std - 1)).toBeLessThan(0.05);
  });

  it('round-trips float32 and int64 with shape, including scalars and 1-D', () => {
    for (const t of [
      { type: 'float32' as const, dims: [2, 3], data: Float32Array.from([1.5, -2, 3e-8, 0, 7, -0.25]) },
      { type: 'int64' as const, dims: [4], data: Float64Array.from([0, -1, 2 ** 40, 20]) },
      { type: 'float32' as const, dims: [], data: Float32Array.from([42]) },
    ]) {
      const bytes = encodeNpy(t);
      // NumPy aligns the data to 64 bytes.
      expect((bytes.length - t.data.length * (t.type === 'float32' ? 4 : 8)) % 64).toBe(0);
      const back = decodeNpy(bytes, 'mem.npy');
      expect(back.dims).toEqual(t.dims);
      expect(Array.from(back.data)).toEqual(Array.from(t.data));
      expect(back.type).toBe(t.type);
    }
  });

  it("writes integer tensors in their own dtype (a quantized model's uint8 activations as '|u1'), and reads them back", () => {
    const cases: [HostTensor, string, number][] = [
      [{ type: 'uint8', dims: [2, 2], data: Float64Array.from([0, 1, 128, 255]) }, '|u1', 1],
      [{ type: 'int8', dims: [3], data: Float64Array.from([-128, 0, 127]) }, '|i1', 1],
      [{ type: 'int32', dims: [2], data: Float64Array.from([-(2 ** 31), 2 ** 31 - 1]) }, '<i4', 4],
      [{ type: 'bool', dims: [2], data: Float64Array.from([1, 0]) }, '|b1', 1],
      [{ type: 'uint16', dims: [1], data: Float64Array.from([65535]) }, '<i8', 8],
    ];
    for (const [t, descr, bytes] of cases) {
      const encoded = encodeNpy(t);
      expect(new TextDecoder().decode(encoded.subarray(10, 60)), t.type).toContain(`'descr': '${descr}'`);
      expect((encoded.length - t.data.length * bytes) % 64, t.type).toBe(0);
      const back = decodeNpy(encoded, 'mem.npy');
      expect([back.type, back.dims, Array.from(back.data)], t.type).toEqual([t.type === 'uint16' ? 'int64' : t.type, t.dims, Array.from(t.data)]);
    }
  });

  it('refuses bad files with an InputError naming the file', () => {
    const good = encodeNpy({ type: 'float32', dims: [8], data: new Float32Array(8).fill(1) });
    const fortran = Buffer.from(Buffer.from(good).toString('latin1').replace("'fortran_order': False", "'fortran_order': True "), 'latin1');
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(0), /magic/],
      [good.subarray(0, good.length - 3), /needs 32 data bytes/],
      [fortran, /fortran_order/],
      [Uint8Array.from(good).map((b, i) => (i === 6 ? 9 : b)), /version 9/],
    ];
    for (const [bytes, why] of cases) {
      expect(() => decodeNpy(bytes, 'bad.npy')).toThrow(InputError);
      expect(() => decodeNpy(bytes, 'bad.npy')).toThrow(/bad\.npy/);
      expect(() => decodeNpy(bytes, 'bad.npy')).toThrow(why);
    }
  });
});
