import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { ConfusionMatrix } from '../src/metrics/confusion.js';
import { random } from './helpers/gpu.js';

/** Seeded random class indices in 0..K-1, with a fraction `ignore` of 255s. */
function labels(n: number, K: number, seed: number, ignore = 0): Uint8Array {
  const r = random(2 * n, seed, 0, 1);
  return Uint8Array.from({ length: n }, (_, i) => (r[2 * i]! < ignore ? 255 : Math.floor(r[2 * i + 1]! * K)));
}

/** The scores computed the plain way: per class TP, FP, FN by looping over the pixel pairs. */
function reference(K: number, pairs: [ArrayLike<number>, ArrayLike<number>][]) {
  const tp = new Array<number>(K).fill(0);
  const fp = new Array<number>(K).fill(0);
  const fn = new Array<number>(K).fill(0);
  let counted = 0;
  let correct = 0;
  for (const [label, pred] of pairs) {
    for (let i = 0; i < label.length; i++) {
      const l = label[i]!;
      const p = pred[i]!;
      if (l === 255) continue;
      counted++;
      if (l === p) {
        tp[l]!++;
        correct++;
      } else {
        fn[l]!++;
        fp[p]!++;
      }
    }
  }
  const iou = tp.map((t, c) => (t + fp[c]! + fn[c]! > 0 ? t / (t + fp[c]! + fn[c]!) : null));
  const present = iou.filter((v): v is number => v !== null);
  return { iou, meanIoU: present.reduce((a, v) => a + v, 0) / present.length, pixelAccuracy: correct / counted };
}

function expectScores(m: ConfusionMatrix, want: ReturnType<typeof reference>) {
  const iou = m.iou();
  expect(iou).toHaveLength(want.iou.length);
  iou.forEach((v, c) => {
    if (want.iou[c] === null) expect(v, `class ${c}`).toBeNull();
    else expect(v, `class ${c}`).toBeCloseTo(want.iou[c]!, 12);
  });
  expect(m.meanIoU()).toBeCloseTo(want.meanIoU, 12);
  expect(m.pixelAccuracy()).toBeCloseTo(want.pixelAccuracy, 12);
}

describe('ConfusionMatrix', () => {
  it('scores a hand-checked 4-pixel case', () => {
    const m = new ConfusionMatrix(2).add([0, 0, 1, 1], [0, 1, 1, 1]);
    expect(Array.from(m.counts)).toEqual([1, 1, 0, 2]); // counts[label * K + predicted]
    expect(m.iou()).toEqual([1 / 2, 2 / 3]);
    expect(m.meanIoU()).toBeCloseTo(7 / 12, 15);
    expect(m.pixelAccuracy()).toBe(3 / 4);
  });

  it('skips ignored pixels whatever was predicted there', () => {
    const m = new ConfusionMatrix(3).add([0, 255, 255, 1], [0, 2, 1, 1]);
    expect(m.pixelAccuracy()).toBe(1);
    // Class 2 is predicted only on an ignored pixel: absent, not IoU 0.
    expect(m.iou()).toEqual([1, 1, null]);
    expect(m.meanIoU()).toBe(1);
  });

  it('gives IoU 0 (counted in the mean) to a class only in the labels or only in the predictions', () => {
    const m = new ConfusionMatrix(4).add([0, 0, 1, 1], [0, 0, 2, 2]);
    expect(m.iou()).toEqual([1, 0, 0, null]);
    expect(m.meanIoU()).toBeCloseTo(1 / 3, 15);
    expect(m.pixelAccuracy()).toBe(1 / 2);
  });

  it('honours a custom ignore index', () => {
    const m = new ConfusionMatrix(3, 0).add([0, 1, 2, 0], [2, 1, 1, 1]);
    expect(m.ignoreIndex).toBe(0);
    expect(Array.from(m.counts)).toEqual([0, 0, 0, 0, 1, 0, 0, 1, 0]);
    expect(m.pixelAccuracy()).toBe(1 / 2);
  });

  it.each([
    [2, 64, 0, 1],
    [5, 1000, 0.1, 2],
    [21, 4096, 0.2, 3],
    [19, 10_000, 0.05, 4],
  ])('matches a per-pixel TP/FP/FN reference: %d classes, %d pixels, %f ignored', (K, n, ignore, seed) => {
    const label = labels(n, K, seed, ignore);
    // Predictions agree with the labels on about half the pixels.
    const noise = labels(n, K, seed + 100);
    const coin = random(n, seed + 200, 0, 1);
    const pred = Uint8Array.from(label, (l, i) => (l !== 255 && coin[i]! < 0.5 ? l : noise[i]!));
    const m = new ConfusionMatrix(K).add(label, pred);
    expectScores(m, reference(K, [[label, pred]]));
    expect(m.counts.reduce((a, v) => a + v, 0)).toBe(label.filter((l) => l !== 255).length);
  });

  it('reports null for classes absent from both labels and predictions and leaves them out of the mean', () => {
    const K = 10;
    // Only classes 0..5 occur; 6..9 never do.
    const label = labels(500, 6, 7, 0.1);
    const pred = labels(500, 6, 8);
    const m = new ConfusionMatrix(K).add(label, pred);
    const want = reference(K, [[label, pred]]);
    expect(want.iou.slice(6)).toEqual([null, null, null, null]);
    expectScores(m, want);
    const present = m.iou().slice(0, 6) as number[];
    expect(m.meanIoU()).toBeCloseTo(present.reduce((a, v) => a + v, 0) / 6, 12);
  });

  it('accumulates several images like one concatenated image, and merge() equals adding both', () => {
    const K = 7;
    const [l1, p1, l2, p2] = [labels(300, K, 11, 0.1), labels(300, K, 12), labels(200, K, 13, 0.3), labels(200, K, 14)];
    const both = new ConfusionMatrix(K).add(l1, p1).add(l2, p2);
    const merged = new ConfusionMatrix(K).add(l1, p1).merge(new ConfusionMatrix(K).add(l2, p2));
    expect(Array.from(merged.counts)).toEqual(Array.from(both.counts));
    expectScores(
      merged,
      reference(K, [
        [l1, p1],
        [l2, p2],
      ]),
    );
    const concatenated = new ConfusionMatrix(K).add(Uint8Array.from([...l1, ...l2]), Uint8Array.from([...p1, ...p2]));
    expect(Array.from(both.counts)).toEqual(Array.from(concatenated.counts));
  });

  it('merge() leaves the other matrix unchanged and returns this', () => {
    const a = new ConfusionMatrix(2).add([0], [1]);
    const b = new ConfusionMatrix(2).add([1], [1]);
    expect(a.merge(b)).toBe(a);
    expect(Array.from(b.counts)).toEqual([0, 0, 0, 1]);
    expect(Array.from(a.counts)).toEqual([0, 1, 0, 1]);
  });

  it('refuses to merge matrices with different class counts', () => {
    expect(() => new ConfusionMatrix(3).merge(new ConfusionMatrix(4))).toThrow(InputError);
  });

  it('accepts any ArrayLike (plain arrays, typed arrays)', () => {
    const a = new ConfusionMatrix(3).add([0, 1, 2, 255], [0, 2, 2, 1]);
    const b = new ConfusionMatrix(3).add(Uint8Array.of(0, 1, 2, 255), Int32Array.of(0, 2, 2, 1));
    expect(Array.from(a.counts)).toEqual(Array.from(b.counts));
  });

  it('refuses a label class >= K, naming the class and the pixel', () => {
    expect(() => new ConfusionMatrix(3).add([0, 1, 2, 0, 3], [0, 1, 2, 0, 0])).toThrow(InputError);
    expect(() => new ConfusionMatrix(3).add([0, 1, 2, 0, 3], [0, 1, 2, 0, 0])).toThrow(/class 3 at pixel 4\b/);
  });

  it('refuses a predicted class >= K (255 included), naming the class and the pixel', () => {
    expect(() => new ConfusionMatrix(3).add([0, 1, 2], [0, 7, 2])).toThrow(/class 7 at pixel 1\b/);
    expect(() => new ConfusionMatrix(3).add([0, 1, 2], [0, 1, 255])).toThrow(/class 255 at pixel 2\b/);
    expect(() => new ConfusionMatrix(3).add([0, 1, 2], [0, 1, 255])).toThrow(InputError);
  });

  it('refuses negative or fractional classes instead of silently dropping the pixel', () => {
    // A negative or fractional index into the counts array is a no-op write:
    // without a check the pixel vanishes from every score.
    expect(() => new ConfusionMatrix(3).add([0, -1], [0, 0])).toThrow(InputError);
    expect(() => new ConfusionMatrix(3).add([0, 1], [0, -1])).toThrow(InputError);
    expect(() => new ConfusionMatrix(3).add([0, 1.5], [0, 1])).toThrow(InputError);
    expect(() => new ConfusionMatrix(3).add([0, 1], [0, Number.NaN])).toThrow(InputError);
  });

  it('refuses label and prediction of different lengths, giving both', () => {
    expect(() => new ConfusionMatrix(3).add([0, 1, 2], [0, 1])).toThrow(InputError);
    expect(() => new ConfusionMatrix(3).add([0, 1, 2], [0, 1])).toThrow(/\b3 label pixels against 2 predicted/);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses %d classes', (K) => {
    expect(() => new ConfusionMatrix(K)).toThrow(InputError);
  });

  it('accepts a single class', () => {
    const m = new ConfusionMatrix(1).add([0, 0, 255], [0, 0, 0]);
    expect(m.iou()).toEqual([1]);
    expect(m.pixelAccuracy()).toBe(1);
  });

  it('returns NaN accuracy and mIoU, and all-null IoU, when nothing was counted', () => {
    const empty = new ConfusionMatrix(3);
    expect(empty.pixelAccuracy()).toBeNaN();
    expect(empty.meanIoU()).toBeNaN();
    expect(empty.iou()).toEqual([null, null, null]);
    const allIgnored = new ConfusionMatrix(3).add([255, 255], [0, 1]);
    expect(allIgnored.pixelAccuracy()).toBeNaN();
    expect(allIgnored.meanIoU()).toBeNaN();
    const noPixels = new ConfusionMatrix(3).add([], []);
    expect(noPixels.pixelAccuracy()).toBeNaN();
  });
});
