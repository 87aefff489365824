import { activationOps } from './activation.js';
import { batchNormOps } from './batchnorm.js';
import { castOps } from './cast.js';
import { concatOps } from './concat.js';
import { convOps } from './conv.js';
import { elementwiseOps } from './elementwise.js';
import { gradOps } from './grad/index.js';
import { matmulOps } from './matmul.js';
import { padOps } from './pad.js';
import { poolOps } from './pool.js';
import { quantOps } from './quant/index.js';
import { reduceOps } from './reduce.js';
import { reshapeOps } from './reshape.js';
import { resizeOps } from './resize.js';
import { softmaxOps } from './softmax.js';
import { transposeOps } from './transpose.js';
import type { OpImpl } from './types.js';

/**
 * op type (default ONNX domain) -> implementation. Integer shape ops (Shape,
 * Gather, Range, integer Casts…) are not here: they are evaluated on the CPU
 * by constant folding (src/model/fold.ts) and must fold. segscope's own
 * gradient ops (ops/grad/) are here as 'segscope::<name>'.
 */
export const registry: ReadonlyMap<string, OpImpl> = new Map(
  Object.entries({
    ...activationOps,
    ...batchNormOps,
    ...castOps,
    ...concatOps,
    ...convOps,
    ...elementwiseOps,
    ...gradOps,
    ...matmulOps,
    ...padOps,
    ...poolOps,
    ...quantOps,
    ...reduceOps,
    ...reshapeOps,
    ...resizeOps,
    ...softmaxOps,
    ...transposeOps,
  }),
);
