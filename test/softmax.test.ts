import { describe, expect, it } from 'vitest';
import { ModelError } from '../src/errors.js';
import type { HostTensor } from '../src/model/graph.js';
import { PRECISIONS } from '../src/model/precision.js';
import { randomTensor, relL2, runNode, storedAs, tensor, TOLERANCE } from './helpers/gpu.js';

/**
 * CPU reference over rows of `length` values `inner` apart, computed in
 * float64 the textbook way (stable: max subtracted).
 */
function softmaxRef(x: HostTensor, length: number, inner: number, log: boolean): number[] {
  const out = new Array<number>(x.data.length);
  for (let r = 0; r < x.data.length / length; r++) {
    const base = Math.floor(r / inner) * length * inner + (r % inner);
    const idx = Array.from({ length }, (_, k) => base + k * inner);
    const m = Math.max(...idx.map((j) => x.data[j]!));
    const s = idx.reduce((acc, j) => acc + Math.exp(x.data[j]! - m), 0);
    for (const j of idx) out[j] = log ? x.data[j]! - m - Math.log(s) : Math.exp(x.data[j]! - m) / s;
  }
  return out;
}

describe('Softmax and LogSoftmax', () => {
  for (const op of ['Softmax', 'LogSoftmax']) {
    const log = op === 'LogSoftmax';

    it(`${op} (opset 13) runs along one axis, by default the last, at f32 and f16`, async () => {
      const x = randomTensor([3, 5, 7], op.length, -6, 6);
      for (const precision of PRECISIONS) {
        const [last] = await runNode({ op, inputs: [x], opset: 13 }, precision);
        const [middle] = await runNode({ op, attrs: { axis: 1 }, inputs: [x], opset: 13 }, precision);
        expect([last!.type, last!.dims]).toEqual(['float32', [3, 5, 7]]);
        expect(relL2(last!.data, softmaxRef(storedAs(x, precision), 7, 1, log)), precision).toBeLessThan(TOLERANCE[precision]);
        expect(relL2(middle!.data, softmaxRef(storedAs(x, precision), 5, 7, log)), precision).toBeLessThan(TOLERANCE[precision]);
      }
    });

    it(`${op} (opset 11) coerces to 2-D at axis, by default 1`, async () => {
      const x = randomTensor([3, 5, 7], op.length + 1, -6, 6);
      const [byDefault] = await runNode({ op, inputs: [x], opset: 11 });
      const [axis2] = await runNode({ op, attrs: { axis: -1 }, inputs: [x], opset: 11 });
      expect(relL2(byDefault!.data, softmaxRef(x, 35, 1, log))).toBeLessThan(1e-5);
      expect(relL2(axis2!.data, softmaxRef(x, 7, 1, log))).toBeLessThan(1e-5);
    });

    it(`${op} over the 21 classes of [1,21,H,W] logits and over long rows (workgroup per row), at f32 and f16`, async () => {
      const x = randomTensor([1, 21, 13, 11], op.length + 2, -10, 10);
      // A strided long row: axis 1 of [3,300,5].
      const y = randomTensor([3, 300, 5], op.length + 3, -10, 10);
      for (const precision of PRECISIONS) {
        const [classes] = await runNode({ op, attrs: { axis: 1 }, inputs: [x], opset: 13 }, precision);
        // Opset 11 at axis 1: one row of 21x13x11 values.
        const [image] = await runNode({ op, inputs: [x], opset: 11 }, precision);
        const [strided] = await runNode({ op, attrs: { axis: 1 }, inputs: [y], opset: 13 }, precision);
        expect(relL2(classes!.data, softmaxRef(storedAs(x, precision), 21, 143, log)), precision).toBeLessThan(TOLERANCE[precision]);
        expect(relL2(image!.data, softmaxRef(storedAs(x, precision), 3003, 1, log)), precision).toBeLessThan(TOLERANCE[precision]);
        expect(relL2(strided!.data, softmaxRef(storedAs(y, precision), 300, 5, log)), precision).toBeLessThan(TOLERANCE[precision]);
      }
    });

    it(`${op} stays finite on large logits, at f32 and f16`, async () => {
      const x = tensor([2, 4], [1000, 1001, 1002, 1003, -1000, 0, 1000, 3]);
      for (const precision of PRECISIONS) {
        const [y] = await runNode({ op, inputs: [x], opset: 13 }, precision);
        expect(Array.from(y!.data).every(Number.isFinite), precision).toBe(true);
        expect(relL2(y!.data, softmaxRef(storedAs(x, precision), 4, 1, log)), precision).toBeLessThan(TOLERANCE[precision]);
      }
    });
  }

  it('rejects an axis out of range', async () => {
    const x = randomTensor([2, 3], 1);
    await expect(runNode({ op: 'Softmax', attrs: { axis: 2 }, inputs: [x], opset: 13 })).rejects.toThrow(ModelError);
  });
});
