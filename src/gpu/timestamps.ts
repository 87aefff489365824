/**
 * GPU time of each dispatch, from timestamp queries: every dispatch is
 * recorded in its own compute pass whose beginning and end write a
 * timestamp. Needs the device feature 'timestamp-query'.
 */
import { readBack } from './buffers.js';
import type { Gpu } from './device.js';

/** One compute dispatch, ready to record. */
export interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

/** WebGPU caps a query set at 4096 queries: 2048 timed passes. */
const QUERIES_PER_SET = 4096;

export const hasTimestamps = (gpu: Gpu): boolean => gpu.features.has('timestamp-query');

/**
 * Records `dispatches` into `encoder`, one timed compute pass each, and the
 * resolution of their timestamps. After the encoder is submitted, `read()`
 * returns each dispatch's GPU time in nanoseconds (0 where a driver's clock
 * went backwards), in dispatch order.
 */
export function recordTimed(gpu: Gpu, encoder: GPUCommandEncoder, dispatches: readonly Dispatch[]): { read(): Promise<number[]> } {
  const { device } = gpu;
  const queries = 2 * dispatches.length;
  const resolved = device.createBuffer({ size: Math.max(8, queries * 8), usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'timestamps' });
  const querySets: GPUQuerySet[] = [];
  for (let first = 0; first < queries; first += QUERIES_PER_SET) {
    const count = Math.min(QUERIES_PER_SET, queries - first);
    const querySet = device.createQuerySet({ type: 'timestamp', count, label: 'timestamps' });
    querySets.push(querySet);
    for (let q = 0; q < count; q += 2) {
      const e = dispatches[(first + q) / 2]!;
      const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: q, endOfPassWriteIndex: q + 1 } });
      pass.setPipeline(e.pipeline);
      pass.setBindGroup(0, e.bindGroup);
      pass.dispatchWorkgroups(...e.workgroups);
      pass.end();
    }
    encoder.resolveQuerySet(querySet, 0, count, resolved, first * 8);
  }
  return {
    async read() {
      const [bytes] = await readBack(gpu, device.createCommandEncoder(), [{ buffer: resolved, bytes: queries * 8 }]);
      resolved.destroy();
      for (const s of querySets) s.destroy();
      const ticks = new BigUint64Array(bytes!);
      return dispatches.map((_, k) => Math.max(0, Number(ticks[2 * k + 1]! - ticks[2 * k]!)));
    },
  };
}
