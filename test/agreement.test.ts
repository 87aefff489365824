import { describe, expect, it } from 'vitest';
import { argmaxAgreement, relativeL2 } from '../src/metrics/agreement.js';

describe('output agreement', () => {
  it('relative L2 against the reference; NaN for different lengths', () => {
    expect(relativeL2([1, 2, 2], [1, 2, 3])).toBeCloseTo(1 / Math.sqrt(14), 12);
    expect(relativeL2([0.5], [0])).toBe(0.5);
    expect(relativeL2([1, 2], [1, 2, 3])).toBeNaN();
  });

  it('counts the pixels whose arg-max class agrees over axis 1 of [N,C,H,W]; the first maximum wins a tie', () => {
    // Two images of 2 pixels, 3 classes: channel planes are 2 apart.
    const reference = [0, 5, 1, 0, 2, 0, /* image 2 */ 1, 1, 0, 0, 0, 3];
    const a = [0, 1, 1, 0, 2, 5, /* image 2 */ 1, 1, 1, 0, 0, 3];
    // Pixel by pixel: class 2 vs 2, class 2 vs 0, tie 0|1 -> 0 vs 0, class 2 vs 2.
    expect(argmaxAgreement(a, reference, [2, 3, 1, 2])).toBe(0.75);
    expect(argmaxAgreement(reference, reference, [2, 3, 1, 2])).toBe(1);
  });
});
