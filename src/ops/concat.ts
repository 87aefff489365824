import type { OpImpl } from './types.js';

export const concatOps: Record<string, OpImpl> = {};
