import { GpuError } from '../errors.js';
import type { Gpu } from './device.js';

/** A buffer size WebGPU accepts for `n` bytes: a multiple of 4, at least 4 (zero-size tensors still get a buffer). */
export const align4 = (n: number): number => Math.max(4, Math.ceil(n / 4) * 4);

/**
 * Mappable staging buffers kept per device between reads: creating one costs
 * milliseconds per MiB on Dawn (allocation and zero-fill), far more than the
 * copy into it, and a session reads the same output sizes every run. Up to
 * STAGING_KEPT bytes are kept; larger reads get a buffer of their own.
 */
const STAGING_KEPT = 64 << 20;
const idleStaging = new WeakMap<GPUDevice, { bySize: Map<number, GPUBuffer[]>; bytes: number }>();

function takeStaging(device: GPUDevice, size: number): GPUBuffer {
  const kept = idleStaging.get(device)?.bySize.get(size)?.pop();
  if (kept) {
    idleStaging.get(device)!.bytes -= size;
    return kept;
  }
  return device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'read-back' });
}

function returnStaging(device: GPUDevice, buffer: GPUBuffer): void {
  let pool = idleStaging.get(device);
  if (!pool) idleStaging.set(device, (pool = { bySize: new Map(), bytes: 0 }));
  if (pool.bytes + buffer.size > STAGING_KEPT) return buffer.destroy();
  pool.bytes += buffer.size;
  pool.bySize.set(buffer.size, [...(pool.bySize.get(buffer.size) ?? []), buffer]);
}

/**
 * Reads `bytes` from `offset` (default 0) of each buffer after everything
 * `encoder` recorded: records the copies, submits the encoder (before the
 * first await, so callers may free their temporaries right after calling),
 * maps the staging buffers, copies out and gives them back for reuse. A
 * failure is the device-lost error, or a GpuError.
 */
export async function readBack(gpu: Gpu, encoder: GPUCommandEncoder, reads: readonly { buffer: GPUBuffer; bytes: number; offset?: number }[]): Promise<ArrayBuffer[]> {
  const { device } = gpu;
  const staging = reads.map(({ bytes }) => takeStaging(device, align4(bytes)));
  reads.forEach((r, k) => encoder.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging[k]!, 0, align4(r.bytes)));
  device.queue.submit([encoder.finish()]);
  try {
    const values = await Promise.all(
      staging.map(async (s, k) => {
        await s.mapAsync(GPUMapMode.READ);
        return s.getMappedRange(0, align4(reads[k]!.bytes)).slice(0, reads[k]!.bytes);
      }),
    );
    for (const s of staging) {
      s.unmap();
      returnStaging(device, s);
    }
    return values;
  } catch (e) {
    for (const s of staging) s.destroy();
    throw gpu.lost ?? new GpuError(`reading results back from the GPU failed: ${(e as Error).message}`);
  }
}
