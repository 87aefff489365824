import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { strToU8, unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import type { HostTensor } from '../src/model/graph.js';
import { decodeNpz, encodeNpz } from '../src/io/npz.js';
import { encodeNpy } from '../src/io/npy.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/images');

const tensors: Record<string, HostTensor> = {
  '/classifier/aspp/project/project.2/Relu_output_0': {
    type: 'float32',
    dims: [1, 4, 3, 3],
    data: Float32Array.from({ length: 36 }, (_, i) => Math.sin(i) * 10),
  },
  mask: { type: 'int64', dims: [2, 3], data: Float64Array.from([0, 20, 3, -1, 2 ** 40, 7]) },
  scalar: { type: 'float32', dims: [], data: Float32Array.from([0.5]) },
  vector: { type: 'float32', dims: [4], data: Float32Array.from([1, 2, 3, 4]) },
  zeros: { type: 'float32', dims: [64, 64], data: new Float32Array(4096) },
};

describe('.npz', () => {
  for (const compress of [true, false]) {
    it(`round-trips tensors with names, shapes and types (${compress ? 'deflated, like savez_compressed' : 'stored, like savez'})`, () => {
      const bytes = encodeNpz(tensors, { compress });
      const back = decodeNpz(bytes, 'mem.npz');
      expect([...back.keys()]).toEqual(Object.keys(tensors));
      for (const [name, t] of Object.entries(tensors)) {
        const b = back.get(name)!;
        expect(b.type).toBe(t.type);
        expect(b.dims).toEqual(t.dims);
        expect(Array.from(b.data)).toEqual(Array.from(t.data));
      }
      // Entries are '<name>.npy' holding exactly what encodeNpy writes, with the method numpy uses.
      const entries = unzipSync(bytes);
      expect(Object.keys(entries)).toEqual(Object.keys(tensors).map((n) => `${n}.npy`));
      expect(entries['mask.npy']).toEqual(encodeNpy(tensors.mask!));
      const method = new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true);
      expect(method).toBe(compress ? 8 : 0);
    });
  }

  it('compresses by default, takes a Map, and gives the same bytes for the same tensors', () => {
    const compressed = encodeNpz(tensors);
    const stored = encodeNpz(tensors, { compress: false });
    expect(compressed.length).toBeLessThan(stored.length / 4);
    expect(encodeNpz(new Map(Object.entries(tensors)))).toEqual(compressed);
    expect(encodeNpz(tensors)).toEqual(compressed);
    expect(decodeNpz(encodeNpz({}), 'empty.npz').size).toBe(0);
  });

  for (const file of ['savez.npz', 'savez_compressed.npz']) {
    it(`reads ${file} written by NumPy (ZIP64 entries)`, () => {
      const expected = JSON.parse(readFileSync(join(FIXTURES, 'npz_values.json'), 'utf8')) as Record<
        string,
        { dtype: string; shape: number[]; values: number[] }
      >;
      const arrays = decodeNpz(readFileSync(join(FIXTURES, file)), file);
      expect([...arrays.keys()].sort()).toEqual(Object.keys(expected).sort());
      for (const [name, { dtype, shape, values }] of Object.entries(expected)) {
        const t = arrays.get(name)!;
        expect(t.dims).toEqual(shape);
        expect(t.type).toBe(dtype === 'int64' ? 'int64' : 'float32');
        // float64 arrays come back as float32, like every float in segscope.
        expect(Array.from(t.data)).toEqual(dtype === 'int64' ? values : values.map(Math.fround));
      }
    });
  }

  it('refuses bad archives with an InputError naming the file (and the entry)', () => {
    const good = encodeNpz(tensors);
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(), /bad\.npz: not a readable \.npz file: the file is empty/],
      [strToU8('not a zip file at all, just some text'), /not a ZIP archive/],
      [good.subarray(0, good.length >> 1), /bad\.npz: not a readable \.npz file/],
      [good.subarray(0, good.length - 10), /bad\.npz: not a readable \.npz file/],
      [zipSync({ 'x.npy': strToU8('garbage') }), /bad\.npz\[x\.npy\]: not a readable \.npy file/],
      [zipSync({ 'x.npy': encodeNpy(tensors.vector!).subarray(0, 140) }), /bad\.npz\[x\.npy\].*needs 16 data bytes, the file has 12/],
    ];
    for (const [bytes, re] of cases) {
      let caught: unknown;
      try {
        decodeNpz(bytes, 'bad.npz');
      } catch (e) {
        caught = e;
      }
      expect(caught, String(re)).toBeInstanceOf(InputError);
      expect((caught as Error).message).toMatch(re);
    }
    expect(() => decodeNpz(good, 'big.npz', { maxBytes: 1000 })).toThrow(/big\.npz: .*more than 1000 bytes uncompressed/);
    expect(() => encodeNpz({ '': tensors.scalar! })).toThrow(InputError);
  });

  it('skips entries that are not .npy files', () => {
    const bytes = zipSync({ 'README.txt': strToU8('hello'), 'a.npy': encodeNpy(tensors.vector!) });
    expect([...decodeNpz(bytes, 'mixed.npz').keys()]).toEqual(['a']);
  });
});
