import type { OpImpl } from './types.js';

export const elementwiseOps: Record<string, OpImpl> = {};
