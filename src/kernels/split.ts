/**
 * Splitting a node whose tensors are larger than one buffer binding may be
 * (maxStorageBufferBindingSize: 128 MiB on many adapters, while DeepLabv3+ at
 * 1024x2048 has 150-170 MiB tensors). The tensor stays whole in its buffer;
 * the node runs as several dispatches, each binding a window of it: a byte
 * range that fits the limit and starts at an offset the device can bind
 * (minStorageBufferOffsetAlignment).
 */

export interface BindingLimits {
  /** The largest byte range one binding may cover. */
  maxBytes: number;
  /** Binding offsets must be multiples of this many bytes. */
  offsetAlignment: number;
}

/** No limit: nothing is split (planning for a report, or an adapter with room). */
export const UNLIMITED: BindingLimits = { maxBytes: Infinity, offsetAlignment: 256 };

export function bindingLimits(limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'minStorageBufferOffsetAlignment'>): BindingLimits {
  return { maxBytes: limits.maxStorageBufferBindingSize, offsetAlignment: limits.minStorageBufferOffsetAlignment };
}

/** A byte range of a tensor's buffer. */
export interface Window {
  offset: number;
  bytes: number;
}

/** One tensor a split walks through: `unitBytes` per unit, from `baseBytes` into its buffer, of elements `elementBytes` wide (wgsl.ts gpuElementBytes). */
export interface Strided {
  unitBytes: number;
  baseBytes: number;
  elementBytes: number;
}

/**
 * Runs [start, end) covering `count` units (channels, planes, rows…), each as
 * long as every tensor's window for it (from the aligned offset at or below
 * the run's first byte, see runWindow) fits one binding. Undefined when even
 * one unit does not fit.
 */
export function splitUnits(count: number, tensors: readonly Strided[], limits: BindingLimits): [number, number][] | undefined {
  const runs: [number, number][] = [];
  for (let start = 0; start < count; ) {
    const fit = Math.min(...tensors.map((t) => Math.floor((limits.maxBytes - ((t.baseBytes + start * t.unitBytes) % limits.offsetAlignment)) / t.unitBytes)));
    if (fit < 1) return undefined;
    const end = Math.min(count, start + fit);
    runs.push([start, end]);
    start = end;
  }
  return runs;
}

/** A window, and the elements into it where a run's data begins. */
export interface Run {
  window: Window;
  shift: number;
}

/**
 * The window of tensor `t` covering units [start, end): it starts at the
 * aligned offset at or below the run's first byte, and `shift` is how many
 * elements into the window the run begins, which the kernel adds to its
 * indices.
 */
export function runWindow(t: Strided, [start, end]: [number, number], limits: BindingLimits): Run {
  const begin = t.baseBytes + start * t.unitBytes;
  const offset = begin - (begin % limits.offsetAlignment);
  return { window: { offset, bytes: t.baseBytes + end * t.unitBytes - offset }, shift: (begin - offset) / t.elementBytes };
}

/** WGSL adding a run's shift to an index: nothing when the run starts its window. */
export const shifted = (shift = 0): string => (shift ? `${shift}u + ` : '');
