/**
 * The earliest default-domain opset whose semantics segscope implements,
 * per op type (7 unless listed). Models may import any opset from 1: a node
 * is refused, by name, only when its op meant something else at the
 * model's opset that segscope does not implement (Reshape before 5 took its
 * shape as an attribute, Upsample before 7 had other attributes, …).
 */
const EARLIEST: Readonly<Record<string, number>> = {
  // Unchanged since opset 1 (the reductions' negative axes, from 11, are read at any opset).
  Conv: 1,
  GlobalAveragePool: 1,
  GlobalMaxPool: 1,
  Not: 1,
  ReduceSum: 1,
  ReduceMean: 1,
  ReduceMax: 1,
  ReduceMin: 1,
  ReduceProd: 1,
  ReduceSumSquare: 1,
  ReduceLogSum: 1,
  ReduceL1: 1,
  ReduceL2: 1,
  Transpose: 1,
  // Pad before 2 named its pads `paddings`, before 11 took them as an attribute; Concat before 4 had axis 1 by default: both read.
  Pad: 1,
  Concat: 1,
  // Before 7 these broadcast only with broadcast=1, along `axis`: ops/elementwise.ts and ops/matmul.ts read it.
  Add: 1,
  Sub: 1,
  Mul: 1,
  Div: 1,
  Gemm: 1,
  // Opset 6 removed the legacy `consumed_inputs` attribute and nothing else.
  Relu: 6,
  LeakyRelu: 6,
  Sigmoid: 6,
  Tanh: 6,
  HardSigmoid: 6,
  Clip: 6,
  // Before 7 with is_test=1 (ops/batchnorm.ts refuses is_test=0, training).
  BatchNormalization: 6,
  // The quantized ops came with opset 10 (QuantizeLinear's per-axis form with 13: model/quant.ts checks it); Round with 11.
  QuantizeLinear: 10,
  DequantizeLinear: 10,
  ConvInteger: 10,
  MatMulInteger: 10,
  QLinearConv: 10,
  QLinearMatMul: 10,
  DynamicQuantizeLinear: 11,
  Round: 11,
};

const DEFAULT_EARLIEST = 7;

export const earliestOpset = (opType: string): number => EARLIEST[opType] ?? DEFAULT_EARLIEST;
