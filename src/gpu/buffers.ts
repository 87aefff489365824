import { GpuError } from '../errors.js';
import type { Gpu } from './device.js';

/** A buffer size WebGPU accepts for `n` bytes: a multiple of 4, at least 4 (zero-size tensors still get a buffer). */
export const align4 = (n: number): number => Math.max(4, Math.ceil(n / 4) * 4);

/**
 * Reads `bytes` from `offset` (default 0) of each buffer after everything `encoder`
 * recorded: records the copies, submits the encoder (before the first await,
 * so callers may free their temporaries right after calling), maps the
 * staging buffers and frees them. A failure is the device-lost error, or a
 * GpuError.
 */
export async function readBack(gpu: Gpu, encoder: GPUCommandEncoder, reads: readonly { buffer: GPUBuffer; bytes: number; offset?: number }[]): Promise<ArrayBuffer[]> {
  const { device } = gpu;
  const staging = reads.map(({ bytes }) =>
    device.createBuffer({ size: align4(bytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'read-back' }),
  );
  reads.forEach((r, k) => encoder.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging[k]!, 0, align4(r.bytes)));
  device.queue.submit([encoder.finish()]);
  try {
    return await Promise.all(
      staging.map(async (s, k) => {
        await s.mapAsync(GPUMapMode.READ);
        return s.getMappedRange(0, align4(reads[k]!.bytes)).slice(0, reads[k]!.bytes);
      }),
    );
  } catch (e) {
    throw gpu.lost ?? new GpuError(`reading results back from the GPU failed: ${(e as Error).message}`);
  } finally {
    for (const s of staging) s.destroy();
  }
}
