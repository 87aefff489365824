import type { OpImpl } from './types.js';
import { activationOps } from './activation.js';
import { reshapeOps } from './reshape.js';

/**
 * op type (default ONNX domain) -> implementation. Integer shape ops (Shape,
 * Gather, Cast, Range…) are not here: they are evaluated on the CPU by
 * constant folding (src/model/fold.ts) and must fold.
 */
export const registry: ReadonlyMap<string, OpImpl> = new Map(
  Object.entries({
    ...activationOps,
    ...reshapeOps,
  }),
);
