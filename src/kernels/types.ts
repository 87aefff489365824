import type { BindingLimits, Window } from './split.js';

/** Typed arrays WebGPU can upload. */
export type GpuArray = Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | Uint16Array<ArrayBuffer>;
/**
 * A buffer bound at `@group(0) @binding(i)`, i being its index in
 * `Kernel.bindings`. A tensor is stored as `array<wgslType(its type)>`
 * (wgsl.ts): float32 as f32, float16 as f16, integers and bool as i32.
 */
export type KernelBinding =
  /**
   * The node's input `index`: a runtime tensor, or a constant uploaded once.
   * `window`: only that byte range of it (a node split over a tensor larger
   * than one binding, see split.ts); the shader indexes from the window's start.
   */
  | { kind: 'input'; index: number; window?: Window }
  /** The node's output `index` (read_write), or a window of it. */
  | { kind: 'output'; index: number; window?: Window }
  /**
   * Kernel-private constant data (pre-packed weights, lookup tables) of
   * `bytes` bytes, uploaded once per session. `data` makes it when the
   * session has no upload of it yet (a session plans a program for every
   * set of captured tensors, and packing ResNet-101's weights again for each
   * took seconds), in `target` where it can (staging memory of exactly
   * `bytes` bytes, any contents; wgsl.ts packedParam), else in new memory.
   */
  | { kind: 'param'; bytes: number; data: (target?: Uint8Array<ArrayBuffer>) => GpuArray }
  /** A temporary shared by the node's kernels, identified by `id` (read_write). */
  | { kind: 'scratch'; id: number; bytes: number };

/**
 * One compute dispatch. Shapes are baked into the WGSL source, but where a
 * kernel reads them from a param buffer so that kernels of different shapes
 * share one pipeline (kernels/wgsl.ts sizesFromBuffer: the subgroup conv
 * kernel, the Winograd transforms, Concat's copies).
 */
export interface Kernel {
  /** Short label, e.g. 'conv3x3_d6'; shows in profiles and errors. */
  label: string;
  wgsl: string;
  workgroups: [number, number, number];
  bindings: KernelBinding[];
}

/** What kernels may assume of the device they are planned for. */
export interface KernelTarget {
  limits: BindingLimits;
  /**
   * The subgroup size of a CPU adapter (lavapipe: 8, its SIMD width) with the
   * 'subgroups' feature and one fixed subgroup size; undefined on GPUs. Conv
   * kernels then share operands across a subgroup (ops/conv/subgroup.ts).
   */
  cpuSubgroupSize?: number;
}

export type ParamBinding = Extract<KernelBinding, { kind: 'param' }>;

/** A param of data already made (sizes, tables). */
export const param = (data: GpuArray): ParamBinding => ({ kind: 'param', bytes: data.byteLength, data: () => data });
