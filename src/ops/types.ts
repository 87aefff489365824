import type { Node, TensorType, TypedInput } from '../model/graph.js';

export type { TensorType };
/** Typed arrays WebGPU can upload. */
export type GpuArray = Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Uint32Array<ArrayBuffer>;
/** One node input as an op sees it at compile time. */
export type OpInput = TypedInput;

/**
 * A buffer bound at `@group(0) @binding(i)`, i being its index in
 * `Kernel.bindings`. Float tensors live on the GPU as `array<f32>`, integer
 * and bool tensors as `array<i32>`.
 */
export type KernelBinding =
  /** The node's input `index`: a runtime tensor, or a constant uploaded once. */
  | { kind: 'input'; index: number }
  /** The node's output `index` (read_write). */
  | { kind: 'output'; index: number }
  /** Kernel-private constant data (pre-packed weights, lookup tables), uploaded once. */
  | { kind: 'param'; data: GpuArray }
  /** A temporary shared by the node's kernels, identified by `id` (read_write). */
  | { kind: 'scratch'; id: number; bytes: number };

/** One compute dispatch. Shapes are baked into the WGSL source. */
export interface Kernel {
  /** Short label, e.g. 'conv3x3_d6'; shows in profiles and errors. */
  label: string;
  wgsl: string;
  workgroups: [number, number, number];
  bindings: KernelBinding[];
}

/** The implementation of one ONNX op type on the GPU. */
export interface OpImpl {
  /** Output types from the inputs' types (and any compile-time values). Throws ModelError when inputs do not fit. */
  infer(node: Node, inputs: OpInput[], opset: number): TensorType[];
  /**
   * `alias`: output 0 is input 0 reinterpreted with another shape (Reshape,
   * Flatten, Squeeze, Identity…); it shares the buffer and costs no dispatch.
   */
  alias?: true;
  /** The dispatches that compute the outputs, run in order. */
  kernels?(node: Node, inputs: OpInput[], outputs: TensorType[], opset: number): Kernel[];
}
