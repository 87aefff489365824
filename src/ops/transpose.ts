import type { OpImpl } from './types.js';

export const transposeOps: Record<string, OpImpl> = {};
