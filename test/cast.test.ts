/**
 * Cast at run time, beyond the float casts precision.test.ts covers: the
 * casts quantized models make between integers and floats, against plain
 * CPU conversions (nearest-even to float32, truncation toward zero to
 * integers), and the casts it refuses.
 */
import { describe, expect, it } from 'vitest';
import { ModelError } from '../src/errors.js';
import type { ElemType } from '../src/model/graph.js';
import { runNode, tensor } from './helpers/gpu.js';

const CODES: Partial<Record<ElemType, number>> = { float32: 1, uint8: 2, int8: 3, int16: 5, int32: 6, int64: 7, float16: 10 };

const cast = (x: ReturnType<typeof tensor>, to: ElemType) => runNode({ op: 'Cast', attrs: { to: CODES[to]! }, inputs: [x] }).then(([y]) => y!);

describe('Cast at run time', () => {
  it("int32 to float32 rounds to nearest even beyond 2^24, as a CPU converts ConvInteger's sums", async () => {
    const values = [0, -1, 2 ** 24 + 1, 2 ** 24 + 3, -(2 ** 24) - 1, 2 ** 31 - 1, -(2 ** 31), 123456789, -987654321];
    const y = await cast(tensor([values.length], values, 'int32'), 'float32');
    expect(y.type).toBe('float32');
    expect(Array.from(y.data)).toEqual(values.map(Math.fround));
  });

  it('uint8 and int8 to float32 and float16 exactly', async () => {
    for (const [type, values] of [
      ['uint8', [0, 1, 127, 128, 255]],
      ['int8', [-128, -1, 0, 1, 127]],
    ] as const) {
      for (const to of ['float32', 'float16'] as const)
        expect(Array.from((await cast(tensor([5], values, type), to)).data), `${type} to ${to}`).toEqual([...values]);
    }
  });

  it('float32 to uint8, int8 and int32 truncates toward zero', async () => {
    const values = [0, 0.9, 1.5, 254.99, 255, 3.7];
    expect(Array.from((await cast(tensor([6], values), 'uint8')).data)).toEqual(values.map(Math.trunc));
    const signed = [-127.9, -0.5, 0.5, 126.2, -3, 100];
    expect(Array.from((await cast(tensor([6], signed), 'int8')).data)).toEqual(signed.map((v) => Math.trunc(v) + 0));
    const large = [-2147483520, 16777217, -0.99, 1e6 + 0.5];
    expect(Array.from((await cast(tensor([4], large), 'int32')).data)).toEqual(large.map((v) => Math.trunc(Math.fround(v)) + 0));
  });

  it('uint8 to uint8 and to wider integers copies (PyTorch quantized exports); narrowing and int64 are refused by name', async () => {
    // Larger than the inputs a session reads on the host to fold what the GPU cannot compute (runtime/parameters.ts).
    const values = Array.from({ length: 2048 }, (_, i) => (i * 37) % 256);
    for (const to of ['uint8', 'int16', 'int32'] as const) {
      const y = await cast(tensor([values.length], values, 'uint8'), to);
      expect([y.type, Array.from(y.data)], to).toEqual([to, values]);
    }
    for (const [from, to] of [
      ['uint8', 'int8'],
      ['int32', 'uint8'],
      ['float32', 'int64'],
    ] as const) {
      const error = await cast(tensor([values.length], values, from), to).catch((e: unknown) => e);
      expect(error, `${from} to ${to}`).toBeInstanceOf(ModelError);
      expect((error as Error).message).toMatch(new RegExp(`Cast node 'test_Cast': a cast of ${from} to ${to} is evaluated only at load time`));
    }
  });
});
