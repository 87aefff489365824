import { INTERNAL_OP_PREFIX } from '../../model/graph.js';
import type { OpImpl } from '../types.js';
import { activationGrad } from './activation.js';
import { dataGradOps } from './data.js';
import { poolGradOps } from './pool.js';
import { resizeGrad } from './resize.js';
import { segmentationSeed } from './seed.js';

/**
 * The internal ops that reverse-mode differentiation (src/autograd) emits:
 * op types 'segscope::<name>', which no model file may use. Each computes in
 * f32 at either storage precision, as PyTorch's autograd formulas, against
 * which they are tested (test/grad-ops.test.ts).
 */
export const gradOps: Record<string, OpImpl> = Object.fromEntries(
  Object.entries({
    ActivationGrad: activationGrad,
    ...dataGradOps,
    ...poolGradOps,
    ResizeGrad: resizeGrad,
    SegmentationSeed: segmentationSeed,
  }).map(([name, impl]) => [`${INTERNAL_OP_PREFIX}${name}`, impl]),
);
