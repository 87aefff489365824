import type { OpImpl } from './types.js';

export const batchNormOps: Record<string, OpImpl> = {};
