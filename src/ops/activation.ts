import { ModelError, UnsupportedOpError } from '../errors.js';
import type { Node } from '../model/graph.js';
import { isFloatType } from '../model/graph.js';
import { unaryKernel } from '../kernels/unary.js';
import { f32, relu } from '../kernels/wgsl.js';
import { constInts } from './inputs.js';
import type { OpImpl, OpInput } from './types.js';

/** Elementwise activations: y = f(x), one thread per element (kernels/unary.ts). */

/** WGSL expression of `x` for the node, e.g. `clamp(x, 0.0f, 6.0f)`. */
type Activation = (node: Node, inputs: OpInput[]) => string;

/** Clip's bounds: attributes before opset 11, optional inputs after. */
export function clipBounds(node: Node, inputs: OpInput[]): [number, number] {
  const bound = (i: number, attr: string, fallback: number) => {
    if (!inputs[i]?.name) return node.attrs.float(attr, fallback);
    const values = constInts(node, inputs, i);
    if (values.length !== 1) throw new ModelError(`Clip node '${node.name}': ${attr} must be a scalar, got ${values.length} values`);
    return values[0]!;
  };
  return [bound(1, 'min', -Infinity), bound(2, 'max', Infinity)];
}

export const activations: Record<string, Activation> = {
  Relu: () => relu('x'),
  LeakyRelu: (node) => `select(${f32(node.attrs.float('alpha', 0.01))} * x, x, x >= 0.0f)`,
  Clip: (node, inputs) => {
    // min(max(x, lo), hi) as onnxruntime computes it (std::min, std::max): hi where lo > hi, which WGSL's
    // clamp refuses to compile, and NaN kept.
    const [lo, hi] = clipBounds(node, inputs).map(f32) as [string, string];
    const atLeast = `select(x, ${lo}, x < ${lo})`;
    return `select(${atLeast}, ${hi}, ${hi} < ${atLeast})`;
  },
  Sigmoid: () => '1.0f / (1.0f + exp(-x))',
  HardSigmoid: (node) => `clamp(${f32(node.attrs.float('alpha', 0.2))} * x + ${f32(node.attrs.float('beta', 0.5))}, 0.0f, 1.0f)`,
  HardSwish: () => 'x * clamp(x / 6.0f + 0.5f, 0.0f, 1.0f)',
  Tanh: () => 'tanh(x)',
};

function activationOp(expr: Activation): OpImpl {
  return {
    infer: (node, [x]) => {
      if (!isFloatType(x!.type)) throw new UnsupportedOpError(`${node.opType} node '${node.name}': ${x!.type} input is not supported (float only)`);
      return [{ type: x!.type, dims: [...x!.dims] }];
    },
    kernels: (node, inputs, [out]) => [unaryKernel(node.opType, expr(node, inputs), inputs[0]!, out!)],
  };
}

export const activationOps: Record<string, OpImpl> = Object.fromEntries(Object.entries(activations).map(([op, expr]) => [op, activationOp(expr)]));
