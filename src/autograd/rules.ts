import { UnsupportedOpError } from '../errors.js';
import type { HostTensor, Node } from '../model/graph.js';
import { clipBounds } from '../ops/activation.js';
import { convGeometry } from '../ops/conv/geometry.js';
import { reducedAxes } from '../ops/reduce.js';
import type { GraphBuilder } from './builder.js';

/**
 * Backward rules: for a forward node and the gradient `dy` of its output 0,
 * the gradients of the inputs `wanted` (those that depend on the tensor
 * being explained), as new nodes. The formulas are PyTorch autograd's, so
 * that a gradient here is the one torch computes for the exported module.
 * Ops come from the forward set where they serve (Conv, Mul, ReduceSum,
 * Reshape, Transpose), else from the internal gradient ops (ops/grad/).
 */
export type Rule = (node: Node, dy: string, b: GraphBuilder, wanted: (input: number) => boolean) => (string | undefined)[];

const G = 'segscope::';

/** Elementwise activations: the ActivationGrad kernel with the forward tensor its formula reads. */
function activation(reads: 'input' | 'output', params: (node: Node, b: GraphBuilder) => Record<string, number> = () => ({})): Rule {
  return (node, dy, b) => {
    const t = reads === 'input' ? node.inputs[0]! : node.outputs[0]!;
    return [b.emit(`${G}ActivationGrad`, [dy, t], { op: node.opType, ...params(node, b) }, node.name)[0]];
  };
}

/** Reshape-like ops: the gradient is dy reshaped back to the input's shape. */
const reshapeBack: Rule = (node, dy, b) => [b.emit('Reshape', [dy, b.ints('shape', b.typeOf(node.inputs[0]!).dims)], {}, node.name)[0]];

/**
 * Conv's input gradient, a transposed convolution, as ops the forward
 * already runs fast: dy with stride-1 zeros inserted (ZeroInsert), then a
 * Conv with the weights flipped in space and transposed per group, padded so
 * that its output is x's size; padding past the kernel's reach is cropped.
 */
const conv: Rule = (node, dy, b, wanted) => {
  const inputs = node.inputs.map((n) => b.input(n));
  if (wanted(1) || wanted(2))
    throw new UnsupportedOpError(`Conv node '${node.name}': its weights or bias depend on the explained tensor; only input gradients are computed`);
  const w = inputs[1]!.value;
  if (!w) throw new UnsupportedOpError(`Conv node '${node.name}': weights computed at run time have no backward rule (they must be constants)`);
  if (inputs[0]!.dims.length !== 4) throw new UnsupportedOpError(`Conv node '${node.name}': only 2-D convolutions have a backward rule`);
  const g = convGeometry(node, inputs);
  const { cIn, cOut, groups } = g;
  const [kh, kw] = [g.y.kernel, g.x.kernel];
  const inPerGroup = cIn / groups;
  const outPerGroup = cOut / groups;
  // W'[ci, co_local, i, j] = W[group(ci)·outPerGroup + co_local, ci mod inPerGroup, kh-1-i, kw-1-j]
  const flipped = new Float32Array(w.data.length);
  for (let ci = 0; ci < cIn; ci++) {
    const group = Math.floor(ci / inPerGroup);
    for (let co = 0; co < outPerGroup; co++) {
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const from = (((group * outPerGroup + co) * inPerGroup + (ci % inPerGroup)) * kh + (kh - 1 - i)) * kw + (kw - 1 - j);
          flipped[((ci * outPerGroup + co) * kh + i) * kw + j] = w.data[from]!;
        }
      }
    }
  }
  const weights = b.constant('conv_grad_weights', { type: 'float32', dims: [cIn, outPerGroup, kh, kw], data: flipped });
  const strided = g.y.stride > 1 || g.x.stride > 1;
  const [spread] = strided ? b.emit(`${G}ZeroInsert`, [dy], { strides: [g.y.stride, g.x.stride] }, node.name) : [dy];
  // Per axis: the zero-spread dy is (out-1)·stride+1 long; pad it so a stride-1 conv with extent e gives `size`.
  const pads = [g.y, g.x].map((a) => {
    const extent = (a.kernel - 1) * a.dilation;
    const spreadLength = (a.out - 1) * a.stride + 1;
    const begin = extent - a.begin;
    return [begin, a.size - spreadLength - begin + extent];
  }) as [[number, number], [number, number]];
  const positive = pads.map(([p, q]) => [Math.max(0, p), Math.max(0, q)]);
  const [dx] = b.emit(
    'Conv',
    [spread!, weights],
    {
      group: groups,
      kernel_shape: [kh, kw],
      dilations: [g.y.dilation, g.x.dilation],
      strides: [1, 1],
      pads: [positive[0]![0]!, positive[1]![0]!, positive[0]![1]!, positive[1]![1]!],
    },
    node.name,
  );
  const crop = pads.map(([p]) => Math.max(0, -p!));
  if (!pads.some(([p, q]) => p! < 0 || q! < 0)) return [dx];
  const [N, C, H, W] = inputs[0]!.dims as [number, number, number, number];
  return [b.emit(`${G}Slice`, [dx!], { starts: [0, 0, crop[0]!, crop[1]!], ends: [N, C, crop[0]! + H, crop[1]! + W] }, node.name)[0]];
};

/** Inference BatchNormalization: dx = dy · scale / sqrt(var + eps), per channel. */
const batchNorm: Rule = (node, dy, b, wanted) => {
  if ([1, 2, 3, 4].some(wanted)) throw new UnsupportedOpError(`BatchNormalization node '${node.name}': only the input's gradient has a rule`);
  const [scale, , , variance] = node.inputs.slice(1).map((n) => b.input(n).value);
  if (!scale || !variance) throw new UnsupportedOpError(`BatchNormalization node '${node.name}': scale and variance must be constants for its backward rule`);
  const eps = node.attrs.float('epsilon', 1e-5);
  const C = scale.data.length;
  const factor = Float32Array.from({ length: C }, (_, c) => scale.data[c]! / Math.sqrt(variance.data[c]! + eps));
  const rank = b.typeOf(node.inputs[0]!).dims.length;
  const dims = [1, C, ...Array<number>(rank - 2).fill(1)];
  return [b.emit('Mul', [dy, b.constant('bn_grad_scale', { type: 'float32', dims, data: factor })], {}, node.name)[0]];
};

/** Add and Sub: dy to each input (negated for Sub's second), summed over the axes it broadcast along. */
function addSub(sign: -1 | 1): Rule {
  return (node, dy, b, wanted) => {
    const out = b.typeOf(node.outputs[0]!).dims;
    return node.inputs.map((name, k) => {
      if (!wanted(k)) return undefined;
      const g = b.unbroadcast(dy, out, b.typeOf(name).dims, node.name);
      return k === 1 && sign < 0 ? b.emit('Neg', [g], {}, node.name)[0] : g;
    });
  };
}

/** Mul: dA = dy·B, dB = dy·A, each summed back to its input's shape. */
const mul: Rule = (node, dy, b, wanted) => {
  const out = b.typeOf(node.outputs[0]!).dims;
  return node.inputs.map((name, k) => {
    if (!wanted(k)) return undefined;
    const [product] = b.emit('Mul', [dy, node.inputs[1 - k]!], {}, node.name);
    return b.unbroadcast(product!, out, b.typeOf(name).dims, node.name);
  });
};

/** Concat: each input's part of dy along the axis. */
const concat: Rule = (node, dy, b, wanted) => {
  const out = b.typeOf(node.outputs[0]!).dims;
  const rank = out.length;
  const axis = (node.attrs.int('axis', 1) + rank) % rank;
  let start = 0;
  return node.inputs.map((name, k) => {
    const length = b.typeOf(name).dims[axis]!;
    const starts = out.map((_, a) => (a === axis ? start : 0));
    const ends = out.map((d, a) => (a === axis ? start + length : d));
    start += length;
    return wanted(k) ? b.emit(`${G}Slice`, [dy], { starts, ends }, node.name)[0] : undefined;
  });
};

/** A constant-mode Pad: dy cropped back to the input. */
const pad: Rule = (node, dy, b) => {
  const mode = node.attrs.string('mode', 'constant');
  if (mode !== 'constant') throw new UnsupportedOpError(`Pad node '${node.name}': mode '${mode}' has no backward rule (constant only)`);
  const dims = b.typeOf(node.inputs[0]!).dims;
  const given = node.inputs[1] ? b.input(node.inputs[1]).value : undefined;
  const pads = given ? Array.from(given.data) : node.attrs.ints('pads', []);
  if (node.inputs[3]) throw new UnsupportedOpError(`Pad node '${node.name}': padding selected axes has no backward rule`);
  if (pads.length !== 2 * dims.length || pads.some((p) => p < 0)) {
    throw new UnsupportedOpError(`Pad node '${node.name}': pads [${pads}] (negative pads crop) have no backward rule`);
  }
  return [b.emit(`${G}Slice`, [dy], { starts: pads.slice(0, dims.length), ends: dims.map((d, a) => pads[a]! + d) }, node.name)[0]];
};

/** Averages over axes (GlobalAveragePool, ReduceMean): dy spread evenly back over them. */
function spread(node: Node, dy: string, b: GraphBuilder, axes: readonly number[], keepdims: boolean): string {
  const dims = b.typeOf(node.inputs[0]!).dims;
  const kept = dims.map((d, a) => (axes.includes(a) ? 1 : d));
  const [shaped] = keepdims ? [dy] : b.emit('Reshape', [dy, b.ints('shape', kept)], {}, node.name);
  const count = axes.reduce((n, a) => n * dims[a]!, 1);
  const weightDims = dims.map((d, a) => (axes.includes(a) ? d : 1));
  const weights: HostTensor = { type: 'float32', dims: weightDims, data: new Float32Array(count).fill(1 / count) };
  return b.emit('Mul', [shaped!, b.constant('mean_grad', weights)], {}, node.name)[0]!;
}

const globalAveragePool: Rule = (node, dy, b) => {
  const rank = b.typeOf(node.inputs[0]!).dims.length;
  return [
    spread(
      node,
      dy,
      b,
      Array.from({ length: rank - 2 }, (_, k) => k + 2),
      true,
    ),
  ];
};

const reduceMean: Rule = (node, dy, b) => {
  const axes = reducedAxes(
    node,
    node.inputs.map((n) => b.input(n)),
    b.opset,
  );
  if (!axes.length) return [dy];
  return [spread(node, dy, b, axes, node.attrs.int('keepdims', 1) !== 0)];
};

/** Pools and Resize: their gradient kernels take dy, x and the forward's other inputs and attributes. */
function withForward(op: string): Rule {
  return (node, dy, b) => {
    const attrs = Object.fromEntries(node.attrs.names().map((n) => [n, node.attrs.raw(n)!]));
    return [b.emit(`${G}${op}`, [dy, ...node.inputs], { ...attrs, ...(op === 'ResizeGrad' ? { forward: node.opType } : {}) }, node.name)[0]];
  };
}

const maxPool: Rule = (node, dy, b) => {
  if (node.outputs[1]) throw new UnsupportedOpError(`MaxPool node '${node.name}': a MaxPool with an Indices output has no backward rule`);
  return withForward('MaxPoolGrad')(node, dy, b, () => true);
};

const transpose: Rule = (node, dy, b) => {
  const rank = b.typeOf(node.inputs[0]!).dims.length;
  const perm = node.attrs.ints(
    'perm',
    Array.from({ length: rank }, (_, k) => rank - 1 - k),
  );
  const inverse = perm.map((_, k) => perm.indexOf(k));
  return [b.emit('Transpose', [dy], { perm: inverse }, node.name)[0]];
};

/** A float-to-float Cast: the gradient passes unchanged (kernels compute in f32 at any storage precision). */
const castBack: Rule = (node, dy, b) => {
  const from = b.typeOf(node.inputs[0]!).type;
  const to = b.typeOf(node.outputs[0]!).type;
  if (!['float32', 'float16'].includes(from) || !['float32', 'float16'].includes(to)) {
    throw new UnsupportedOpError(`Cast node '${node.name}': a cast from ${from} to ${to} has no gradient`);
  }
  return [dy];
};

export const RULES: Readonly<Record<string, Rule>> = {
  Conv: conv,
  BatchNormalization: batchNorm,
  Relu: activation('output'),
  Sigmoid: activation('output'),
  Tanh: activation('output'),
  LeakyRelu: activation('input', (node) => ({ alpha: node.attrs.float('alpha', 0.01) })),
  HardSigmoid: activation('input', (node) => ({ alpha: node.attrs.float('alpha', 0.2), beta: node.attrs.float('beta', 0.5) })),
  HardSwish: activation('input'),
  Clip: activation('input', (node, b) => {
    const [min, max] = clipBounds(
      node,
      node.inputs.map((n) => b.input(n)),
    );
    return { min, max };
  }),
  Add: addSub(1),
  Sub: addSub(-1),
  Mul: mul,
  Concat: concat,
  Pad: pad,
  GlobalAveragePool: globalAveragePool,
  ReduceMean: reduceMean,
  AveragePool: withForward('AveragePoolGrad'),
  MaxPool: maxPool,
  Resize: withForward('ResizeGrad'),
  Upsample: withForward('ResizeGrad'),
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Identity: reshapeBack,
  Dropout: reshapeBack,
  Transpose: transpose,
  Cast: castBack,
};
