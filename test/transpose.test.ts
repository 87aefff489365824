import { describe, expect, it } from 'vitest';
import { ModelError } from '../src/errors.js';
import type { HostTensor } from '../src/model/graph.js';
import { PRECISIONS, type Precision } from '../src/model/precision.js';
import { random, randomTensor, roundToFloat16, runNode, tensor } from './helpers/gpu.js';

/** Plain CPU reference: output coordinate k along axis a is input coordinate k along axis perm[a]. */
function transposeRef(x: HostTensor, perm: number[]): { dims: number[]; data: number[] } {
  const dims = perm.map((p) => x.dims[p]!);
  const inStrides = x.dims.map((_, a) => x.dims.slice(a + 1).reduce((p, d) => p * d, 1));
  const size = dims.reduce((p, d) => p * d, 1);
  const data: number[] = [];
  for (let i = 0; i < size; i++) {
    let rest = i;
    let src = 0;
    for (let a = dims.length - 1; a >= 0; a--) {
      src += (rest % dims[a]!) * inStrides[perm[a]!]!;
      rest = Math.floor(rest / dims[a]!);
    }
    data.push(x.data[src]!);
  }
  return { dims, data };
}

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, k) => [...p.slice(0, k), n - 1, ...p.slice(k)]));
}

async function expectTranspose(x: HostTensor, perm: number[] | undefined, precision: Precision = 'f32'): Promise<void> {
  const [y] = await runNode({ op: 'Transpose', attrs: perm ? { perm } : {}, inputs: [x] }, precision);
  const ref = transposeRef(x, perm ?? x.dims.map((_, a) => x.dims.length - 1 - a));
  expect(y!.dims).toEqual(ref.dims);
  expect(Array.from(y!.data)).toEqual(precision === 'f16' ? roundToFloat16(ref.data) : ref.data);
}

describe('Transpose', () => {
  it('all 24 permutations of a rank-4 tensor with odd sizes', async () => {
    const x = randomTensor([2, 3, 5, 7], 1);
    for (const perm of permutations(4)) await expectTranspose(x, perm);
  });

  it('the default perm reverses the axes (ranks 1 to 4), at f32 and f16', async () => {
    for (const dims of [[7], [3, 5], [2, 3, 5], [3, 1, 5, 7]]) {
      for (const precision of PRECISIONS) await expectTranspose(randomTensor(dims, dims.length), undefined, precision);
    }
  });

  it('rank 6, size-1 axes, and integer tensors', async () => {
    await expectTranspose(randomTensor([2, 3, 1, 5, 2, 3], 10), [4, 0, 5, 2, 3, 1]);
    await expectTranspose(randomTensor([1, 3, 1, 5], 11), [2, 3, 0, 1]);
    await expectTranspose(tensor([3, 5], Array.from(random(15, 12, -99, 99), Math.floor), 'int32'), [1, 0]);
  });

  it('rejects a perm that is not a permutation of the axes with ModelError', async () => {
    const x = randomTensor([2, 3, 5], 20);
    for (const perm of [
      [0, 1],
      [0, 1, 1],
      [0, 1, 3],
      [2, 1, -1],
    ]) {
      await expect(runNode({ op: 'Transpose', attrs: { perm }, inputs: [x] })).rejects.toThrow(ModelError);
    }
  });
});
