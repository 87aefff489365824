import type { Gpu } from '../gpu/device.js';
import { isFloatType } from '../model/graph.js';
import type { TypedGraph } from '../model/infer.js';
import { tensorQuantization } from '../model/tensor-quantization.js';
import type { CapturedTensor } from '../runtime/captured.js';
import { dequantize } from '../vis/dequantize.js';
import { CommandBatch, type GpuTensor } from '../vis/tensor.js';

/**
 * Layers of a quantized model hold integers: 8-bit activations with a
 * scale and zero point, or ConvInteger's int32 sums. They are drawn and
 * read as the real values they stand for (model/tensor-quantization.ts),
 * which the run computes on the GPU right after the model.
 */

/** The tensors among `names` a run must also capture to dequantize them: scales and zero points computed at run time. */
export function quantizationInputs(typed: TypedGraph, names: readonly string[]): string[] {
  const params = names.flatMap((name) => {
    const q = tensorQuantization(typed, name);
    return q ? [q.scale, ...(q.zeroPoint ? [q.zeroPoint] : [])] : [];
  });
  return [...new Set(params.filter((name) => !typed.values.has(name)))];
}

/**
 * The float32 value of every integer tensor among `names`, by name, from the
 * run's captures (which include quantizationInputs). The caller owns the
 * buffers.
 */
export async function dequantizedLayers(
  gpu: Gpu,
  typed: TypedGraph,
  captured: ReadonlyMap<string, CapturedTensor>,
  names: readonly string[],
): Promise<Map<string, GpuTensor>> {
  const integers = [...new Set(names)].filter((name) => !isFloatType(captured.get(name)!.type));
  if (integers.length === 0) return new Map();
  const values = async (name: string) => typed.values.get(name)?.data ?? (await captured.get(name)!.toHost()).data;
  const quantizations = await Promise.all(
    integers.map(async (name) => {
      const q = tensorQuantization(typed, name);
      if (!q) return undefined;
      const [scale, zeroPoint] = await Promise.all([values(q.scale), q.zeroPoint ? values(q.zeroPoint) : undefined]);
      return { scale, ...(zeroPoint ? { zeroPoint } : {}), ...(q.axis === undefined ? {} : { axis: q.axis }) };
    }),
  );
  const batch = new CommandBatch(gpu);
  const floats = new Map<string, GpuTensor>();
  try {
    for (const [i, name] of integers.entries()) floats.set(name, dequantize(gpu, captured.get(name)!, quantizations[i], { batch }));
    batch.submit();
    return floats;
  } catch (e) {
    batch.discard();
    for (const t of floats.values()) t.buffer.destroy();
    throw e;
  }
}
