import type { OpImpl } from './types.js';

export const poolOps: Record<string, OpImpl> = {};
