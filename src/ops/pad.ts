import type { OpImpl } from './types.js';

export const padOps: Record<string, OpImpl> = {};
