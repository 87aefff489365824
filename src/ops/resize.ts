import type { OpImpl } from './types.js';

export const resizeOps: Record<string, OpImpl> = {};
