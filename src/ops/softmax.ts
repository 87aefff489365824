import type { OpImpl } from './types.js';

export const softmaxOps: Record<string, OpImpl> = {};
