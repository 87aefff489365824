import type { OpImpl } from './types.js';

export const matmulOps: Record<string, OpImpl> = {};
