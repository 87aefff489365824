import type { OpImpl } from './types.js';

export const reduceOps: Record<string, OpImpl> = {};
