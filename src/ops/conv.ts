import type { OpImpl } from './types.js';

export const convOps: Record<string, OpImpl> = {};
