import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { flatMain, grid } from '../kernels/wgsl.js';
import { isFloatType, sizeOf, type ElemType } from '../model/graph.js';
import { bindings, binding, record, type GpuTensor, type StageOptions, type TensorLike } from './tensor.js';

/** A quantized tensor's scale and zero point: one entry each, or one per index of `axis` (per-axis quantization). */
export interface Dequantization {
  scale: ArrayLike<number>;
  /** Default: 0. */
  zeroPoint?: ArrayLike<number>;
  axis?: number;
}

const THREADS = 256;

/**
 * The real values of an integer tensor (a quantized model's 8-bit
 * activations, ConvInteger's int32 sums) as float32, for the stages, which
 * read floats: (q - zero point) * scale, per tensor or per axis, as
 * DequantizeLinear computes it (the difference is exact, the product
 * rounded once). Without a Dequantization the values are converted as they
 * are. The caller owns the returned buffer.
 */
export function dequantize(gpu: Gpu, x: TensorLike & { type: ElemType }, q: Dequantization = { scale: [1] }, stage: StageOptions = {}): GpuTensor {
  if (isFloatType(x.type)) throw new InputError(`dequantize: expected an integer tensor, got ${x.type}`);
  const length = q.axis === undefined ? 1 : x.dims[q.axis];
  if (length === undefined) throw new InputError(`dequantize: axis ${q.axis} is outside [${x.dims.join(',')}]`);
  const zeroPoint = q.zeroPoint ?? Array.from({ length: q.scale.length }, () => 0);
  if (q.scale.length !== length || zeroPoint.length !== length) {
    throw new InputError(
      `dequantize: ${q.scale.length} scales and ${zeroPoint.length} zero points for ${length} entries (axis ${q.axis ?? 'none'} of [${x.dims.join(',')}])`,
    );
  }
  const n = sizeOf(x.dims);
  const inner = q.axis === undefined ? 1 : sizeOf(x.dims.slice(q.axis + 1));
  return record(gpu, stage, (batch) => {
    const y = batch.buffer(n * 4, 'dequantized');
    const { declarations, buffers } = bindings([
      ['X', 'u32', 'read', binding(x)],
      ['Y', 'f32', 'read_write', y],
      ['S', 'f32', 'read', batch.upload(Float32Array.from(q.scale), 'scales')],
      [
        'Z',
        'u32',
        'read',
        batch.upload(
          Uint32Array.from(zeroPoint, (z) => z >>> 0),
          'zero points',
        ),
      ],
    ]);
    // Integers are stored as i32 (kernels/wgsl.ts); the bindings helper declares u32, reinterpreted here.
    const wgsl = `${declarations}
${flatMain(
  THREADS,
  `  if (i >= ${n}u) { return; }
  let k = (i / ${inner}u) % ${length}u;
  Y[i] = f32(bitcast<i32>(X[i]) - bitcast<i32>(Z[k])) * S[k];`,
)}`;
    batch.dispatch({ label: 'dequantize', wgsl, workgroups: grid(n, THREADS) }, buffers);
    return { buffer: y, dims: [...x.dims] };
  });
}
