import { ModelError } from '../../errors.js';
import type { Node } from '../../model/graph.js';
import { mapKernel } from '../../kernels/unary.js';
import { f32 } from '../../kernels/wgsl.js';
import type { OpImpl } from '../types.js';
import { expectDims, floatInputs, knownAttrs, where } from './common.js';

/**
 * segscope::ActivationGrad: inputs (dy, t), attribute `op` (the forward's op
 * type) and its parameters. dx = dy·f'(x), from whichever of the forward's
 * input x or output y the formula reads (t), as PyTorch's backward kernels
 * compute it (threshold_backward, leaky_relu_backward, hardtanh_backward,
 * sigmoid_backward, tanh_backward, hardsigmoid_backward, hardswish_backward).
 * One thread per element (kernels/unary.ts).
 */

interface Derivative {
  /** What t is: the forward's input x or its output y. */
  reads: 'x' | 'y';
  /** Float attributes besides `op`, with their defaults. */
  params: Record<string, number>;
  /** WGSL of dx from `dy`, `t` and the parameters. */
  expr: (p: Record<string, number>) => string;
}

/** `lo < t && t < hi`, leaving out an infinite bound (WGSL has no infinity literal). */
function strictlyInside(lo: number, hi: number): string {
  const tests = [...(lo === -Infinity ? [] : [`t > ${f32(lo)}`]), ...(hi === Infinity ? [] : [`t < ${f32(hi)}`])];
  return tests.join(' && ') || 'true';
}

export const derivatives: Record<string, Derivative> = {
  // threshold_backward(dy, y, 0): y <= 0 ? 0 : dy.
  Relu: { reads: 'y', params: {}, expr: () => 'select(dy, 0.0f, t <= 0.0f)' },
  LeakyRelu: { reads: 'x', params: { alpha: 0.01 }, expr: ({ alpha }) => `select(${f32(alpha!)} * dy, dy, t > 0.0f)` },
  // hardtanh_backward: zero at and outside the bounds.
  Clip: { reads: 'x', params: { min: -Infinity, max: Infinity }, expr: ({ min, max }) => `select(0.0f, dy, ${strictlyInside(min!, max!)})` },
  Sigmoid: { reads: 'y', params: {}, expr: () => 'dy * (1.0f - t) * t' },
  Tanh: { reads: 'y', params: {}, expr: () => 'dy * (1.0f - t * t)' },
  HardSigmoid: {
    reads: 'x',
    params: { alpha: 0.2, beta: 0.5 },
    expr: ({ alpha, beta }) => {
      const z = `${f32(alpha!)} * t + ${f32(beta!)}`;
      return `select(0.0f, ${f32(alpha!)} * dy, ${z} > 0.0f && ${z} < 1.0f)`;
    },
  },
  HardSwish: { reads: 'x', params: {}, expr: () => 'select(select(dy * (t / 3.0f + 0.5f), dy, t > 3.0f), 0.0f, t < -3.0f)' },
};

/** The node's derivative and its parameters, checked. */
function derivativeOf(node: Node): { d: Derivative; params: Record<string, number> } {
  const op = node.attrs.string('op');
  const d = derivatives[op];
  if (!d) throw new ModelError(`${where(node)}: unknown op '${op}' (known: ${Object.keys(derivatives).join(', ')})`);
  knownAttrs(node, ['op', ...Object.keys(d.params)]);
  const params = Object.fromEntries(
    Object.entries(d.params).map(([name, fallback]) => {
      const v = node.attrs.float(name, fallback);
      if (Number.isNaN(v) || (!['min', 'max'].includes(name) && !Number.isFinite(v)))
        throw new ModelError(`${where(node)}: ${name} must be a finite number, got ${v}`);
      return [name, v];
    }),
  );
  return { d, params };
}

export const activationGrad: OpImpl = {
  infer(node, inputs) {
    const [dy, t] = floatInputs(node, inputs, ['dy', 't']);
    const { d } = derivativeOf(node);
    expectDims(node, `t (the forward's ${d.reads === 'x' ? 'input' : 'output'})`, t!, dy!.dims, "dy's shape");
    return [{ type: dy!.type, dims: [...dy!.dims] }];
  },
  kernels(node, [dy, t], [out]) {
    const { d, params } = derivativeOf(node);
    return [
      mapKernel(
        `${node.attrs.string('op').toLowerCase()}_grad`,
        d.expr(params),
        [
          ['dy', dy!],
          ['t', t!],
        ],
        out!,
      ),
    ];
  },
};
