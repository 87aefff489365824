import type { Node, TensorType, TypedInput } from '../model/graph.js';
import type { Kernel, KernelTarget } from '../kernels/types.js';

export type { TensorType };
/** One node input as an op sees it at compile time. */
export type OpInput = TypedInput;

/** The implementation of one ONNX op type on the GPU. */
export interface OpImpl {
  /** Output types from the inputs' types (and any compile-time values). Throws ModelError when inputs do not fit. */
  infer(node: Node, inputs: OpInput[], opset: number): TensorType[];
  /**
   * `alias`: output 0 is input 0 reinterpreted with another shape (Reshape,
   * Flatten, Squeeze, Identity…); it shares the buffer and costs no dispatch.
   */
  alias?: true;
  /**
   * Where each input is one contiguous block of output 0 (Concat along an
   * axis with nothing but ones before it): the blocks' element offsets, for
   * the plan to have the inputs computed there (runtime/in-place.ts);
   * undefined otherwise. The op's kernels remain the fallback.
   */
  inPlace?(node: Node, inputs: TensorType[], opset: number): number[] | undefined;
  /**
   * The dispatches that compute the outputs, run in order. Ops that can split
   * themselves over tensors larger than one binding read `target.limits`; the
   * others are refused by the plan's limit check when a binding does not fit.
   */
  kernels?(node: Node, inputs: OpInput[], outputs: TensorType[], opset: number, target: KernelTarget): Kernel[];
}
