import { InputError } from '../errors.js';
import { IGNORE_INDEX } from '../vis/colormap.js';

/**
 * Semantic-segmentation scores from a confusion matrix accumulated over every
 * pixel of a dataset, as the DeepLab repos' StreamSegMetrics and
 * mmsegmentation compute them: IoU_c = TP / (TP + FP + FN) per class, mIoU
 * the mean over the classes present in the ground truth or the prediction.
 * Pixels whose label is `ignoreIndex` (255, "void") do not count.
 */
export class ConfusionMatrix {
  /** counts[label * K + predicted] */
  readonly counts: Float64Array;

  constructor(
    readonly classes: number,
    readonly ignoreIndex = IGNORE_INDEX,
  ) {
    if (!Number.isInteger(classes) || classes < 1) throw new InputError(`ConfusionMatrix: classes must be a positive integer, got ${classes}`);
    this.counts = new Float64Array(classes * classes);
  }

  /** Adds one image: `label` and `predicted` hold a class index per pixel, same length. */
  add(label: ArrayLike<number>, predicted: ArrayLike<number>): this {
    if (label.length !== predicted.length) {
      throw new InputError(`ConfusionMatrix.add: ${label.length} label pixels against ${predicted.length} predicted pixels`);
    }
    const K = this.classes;
    const invalid = (v: number) => !(Number.isInteger(v) && v >= 0 && v < K);
    for (let i = 0; i < label.length; i++) {
      const l = label[i]!;
      if (l === this.ignoreIndex) continue;
      const p = predicted[i]!;
      if (invalid(l) || invalid(p)) {
        throw new InputError(
          `ConfusionMatrix.add: class ${invalid(l) ? l : p} at pixel ${i}, the model has ${K} classes (0..${K - 1}; ${this.ignoreIndex} is ignored)`,
        );
      }
      this.counts[l * K + p]!++;
    }
    return this;
  }

  /** Adds another matrix's counts (a per-image matrix into a dataset's). */
  merge(other: ConfusionMatrix): this {
    if (other.classes !== this.classes) throw new InputError(`ConfusionMatrix.merge: ${other.classes} classes into ${this.classes}`);
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    return this;
  }

  /** Correct pixels over counted pixels (NaN when nothing was counted). */
  pixelAccuracy(): number {
    let correct = 0;
    let total = 0;
    for (let l = 0; l < this.classes; l++) {
      for (let p = 0; p < this.classes; p++) {
        total += this.counts[l * this.classes + p]!;
        if (l === p) correct += this.counts[l * this.classes + p]!;
      }
    }
    return correct / total;
  }

  /** IoU of each class; null for a class absent from both the labels and the predictions. */
  iou(): (number | null)[] {
    const K = this.classes;
    return Array.from({ length: K }, (_, c) => {
      let labelled = 0;
      let predicted = 0;
      for (let k = 0; k < K; k++) {
        labelled += this.counts[c * K + k]!;
        predicted += this.counts[k * K + c]!;
      }
      const tp = this.counts[c * K + c]!;
      const union = labelled + predicted - tp;
      return union > 0 ? tp / union : null;
    });
  }

  /** Mean IoU over the classes that occur (NaN when none does). */
  meanIoU(): number {
    const present = this.iou().filter((v): v is number => v !== null);
    return present.reduce((a, v) => a + v, 0) / present.length;
  }
}
