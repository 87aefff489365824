/**
 * Buffer planning by liveness: tensors whose lifetimes do not overlap share
 * a buffer, so peak memory stays close to the largest live set instead of
 * the sum of all activations.
 */
export interface Lifetime {
  id: string;
  bytes: number;
  /** Index of the step that writes the tensor (-1: written before the first step, e.g. a graph input). */
  first: number;
  /** Index of the last step that reads it (Infinity: kept to the end, e.g. an output). */
  last: number;
}

export interface BufferPlan {
  slotOf: Map<string, number>;
  slotBytes: number[];
}

export function planBuffers(lifetimes: readonly Lifetime[]): BufferPlan {
  const slotOf = new Map<string, number>();
  const slotBytes: number[] = [];
  const free = new Set<number>();
  let active: Lifetime[] = [];
  for (const t of [...lifetimes].sort((a, b) => a.first - b.first)) {
    // A tensor read by step s is released only after s: never reuse a buffer a step both reads and writes.
    active = active.filter((a) => {
      if (a.last < t.first) free.add(slotOf.get(a.id)!);
      return a.last >= t.first;
    });
    let best = -1;
    for (const s of free) {
      const fits = slotBytes[s]! >= t.bytes;
      const bestFits = best >= 0 && slotBytes[best]! >= t.bytes;
      // Prefer the smallest slot that fits; failing that, grow the largest free one.
      if (best < 0 || (fits && (!bestFits || slotBytes[s]! < slotBytes[best]!)) || (!fits && !bestFits && slotBytes[s]! > slotBytes[best]!)) best = s;
    }
    if (best < 0) {
      best = slotBytes.length;
      slotBytes.push(0);
    }
    free.delete(best);
    slotBytes[best] = Math.max(slotBytes[best]!, t.bytes);
    slotOf.set(t.id, best);
    active.push(t);
  }
  return { slotOf, slotBytes };
}
