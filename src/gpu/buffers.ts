import { GpuError } from '../errors.js';
import type { Gpu } from './device.js';

/** A buffer size WebGPU accepts for `n` bytes: a multiple of 4, at least 4 (zero-size tensors still get a buffer). */
export const align4 = (n: number): number => Math.max(4, Math.ceil(n / 4) * 4);

/**
 * Mappable staging buffers kept between reads: creating one costs
 * milliseconds per MiB on Dawn (allocation and zero-fill), far more than the
 * copy into it, and a session reads the same output sizes every run. Up to
 * `keepBytes` are kept; the owner destroys them with destroy().
 */
export class StagingPool {
  private readonly idle = new Map<number, GPUBuffer[]>();
  private bytes = 0;

  constructor(private readonly keepBytes = 64 << 20) {}

  take(device: GPUDevice, size: number): GPUBuffer {
    const kept = this.idle.get(size)?.pop();
    if (kept) {
      this.bytes -= size;
      return kept;
    }
    return device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'read-back' });
  }

  /** Keeps an unmapped buffer for the next read of its size, or destroys it when the pool is full. */
  give(buffer: GPUBuffer): void {
    if (this.bytes + buffer.size > this.keepBytes) {
      buffer.destroy();
      return;
    }
    this.bytes += buffer.size;
    this.idle.set(buffer.size, [...(this.idle.get(buffer.size) ?? []), buffer]);
  }

  destroy(): void {
    for (const list of this.idle.values()) for (const b of list) b.destroy();
    this.idle.clear();
    this.bytes = 0;
  }
}

/**
 * Reads `bytes` from `offset` (default 0) of each buffer after everything
 * `encoder` recorded: records the copies, submits the encoder (before the
 * first await, so callers may free their temporaries right after calling),
 * maps the staging buffers (from `pool` when given, which gets them back)
 * and copies out. A failure is the device-lost error, or a GpuError.
 */
export async function readBack(
  gpu: Gpu,
  encoder: GPUCommandEncoder,
  reads: readonly { buffer: GPUBuffer; bytes: number; offset?: number }[],
  pool: StagingPool = new StagingPool(0),
): Promise<ArrayBuffer[]> {
  const { device } = gpu;
  const staging = reads.map(({ bytes }) => pool.take(device, align4(bytes)));
  for (const [k, r] of reads.entries()) encoder.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging[k]!, 0, align4(r.bytes));
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
      pool.give(s);
    }
    return values;
  } catch (e) {
    for (const s of staging) s.destroy();
    throw gpu.lost ?? new GpuError(`reading results back from the GPU failed: ${(e as Error).message}`);
  }
}
