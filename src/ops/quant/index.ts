/**
 * Quantized inference in the default ONNX domain: QuantizeLinear and
 * DequantizeLinear (linear.ts), DynamicQuantizeLinear (dynamic.ts),
 * ConvInteger and QLinearConv (conv.ts), MatMulInteger and QLinearMatMul
 * (matmul.ts), and the com.microsoft QLinear ops of onnxruntime's QOperator
 * form (microsoft.ts). What they share, for these and further QLinear ops, is in
 * common.ts. Quantized tensors are i32 per element on the GPU, as every
 * integer tensor (kernels/wgsl.ts).
 */
import type { OpImpl } from '../types.js';
import { convOps } from './conv.js';
import { dynamicOps } from './dynamic.js';
import { linearOps } from './linear.js';
import { matmulOps } from './matmul.js';
import { microsoftQuantOps } from './microsoft.js';

export const quantOps: Record<string, OpImpl> = { ...linearOps, ...dynamicOps, ...convOps, ...matmulOps, ...microsoftQuantOps };
