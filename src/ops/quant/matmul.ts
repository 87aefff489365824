/**
 * MatMulInteger and QLinearMatMul, with numpy's batch broadcasting: one
 * thread per output element sums (a - a_zero_point) · (b - b_zero_point)
 * over K in i32, exactly. A's zero point may be per row and B's per column,
 * as ONNX allows: one value, a vector of M (N) values, or a tensor of A's
 * (B's) shape with K as 1. QLinearMatMul requantizes as onnxruntime does,
 * with a per-tensor a_scale and a per-tensor or per-column b_scale.
 */
import { ModelError } from '../../errors.js';
import type { Node } from '../../model/graph.js';
import { sizeOf } from '../../model/graph.js';
import type { Kernel } from '../../kernels/types.js';
import { flatMain, grid } from '../../kernels/wgsl.js';
import { checkAttrs } from '../attrs.js';
import { batchOffset, broadcastStrides, matmulShape } from '../matmul.js';
import type { OpImpl, OpInput } from '../types.js';
import {
  Bindings,
  checkEightBit,
  checkEightBitOutput,
  checkPerTensorOr,
  checkZeroPoint,
  isPerTensor,
  knownScale,
  paramReader,
  int32Store,
  qlinearOutputType,
  QUANT_WGSL,
  requantizedStore,
  requantMultiplier,
  where,
} from './common.js';

const WORKGROUP = 64;

type Shape = ReturnType<typeof matmulShape>;

/** Node input indices of an integer product's operands. */
interface Operands {
  a: number;
  aZeroPoint: number;
  b: number;
  bZeroPoint: number;
}

/** Which side a parameter belongs to: A's rows or B's columns. */
type Side = 'row' | 'column';

/**
 * The WGSL index of a parameter's entry for output (row m, column n) of the
 * batch whose A and B start at a_offset and b_offset: 0u for one value, m (n)
 * for a vector, the row (column) of the whole operand for a tensor of its
 * shape with K as 1. Refuses other shapes.
 */
function entryOf(node: Node, p: OpInput | undefined, operand: OpInput, side: Side, s: Shape, what: string): string {
  if (!p?.name || isPerTensor(p)) return '0u';
  const [length, index, within] = side === 'row' ? [s.m, 'm', `a_offset / ${s.k}u + m`] : [s.n, 'n', `b_offset / ${s.k}u + n`];
  if (p.dims.length === 1 && p.dims[0] === length) return index;
  const rank = operand.dims.length;
  const expected = operand.dims.map((d, i) => (i === (side === 'row' ? rank - 1 : rank - 2) ? 1 : d));
  if (rank >= 2 && p.dims.length === rank && p.dims.every((d, i) => d === expected[i])) return within;
  throw new ModelError(`${where(node)}: ${what} '${p.name}' has shape [${p.dims}]; expected one element, [${length}] or [${expected}] (one per ${side})`);
}

/** Checks an integer product's operands and zero points; returns its shape and the zero points' entry indices. */
function integerProduct(node: Node, inputs: OpInput[], at: Operands) {
  checkAttrs(node, []);
  const [a, b] = [inputs[at.a], inputs[at.b]];
  checkEightBit(node, a, 'a');
  checkEightBit(node, b, 'b');
  const s = matmulShape(node, a!.dims, b!.dims);
  checkZeroPoint(node, inputs[at.aZeroPoint], a!.type, 'a_zero_point');
  checkZeroPoint(node, inputs[at.bZeroPoint], b!.type, 'b_zero_point');
  const aEntry = entryOf(node, inputs[at.aZeroPoint], a!, 'row', s, 'a_zero_point');
  const bEntry = entryOf(node, inputs[at.bZeroPoint], b!, 'column', s, 'b_zero_point');
  return { s, aEntry, bEntry };
}

/** The kernel: `acc` (i32) is the sum over K, then the statements `extra` returns write Y[i]; `extra` adds its bindings after the operands'. */
function productKernel(label: string, node: Node, inputs: OpInput[], at: Operands, extra: (b: Bindings, s: Shape) => string): Kernel {
  const { s, aEntry, bEntry } = integerProduct(node, inputs, at);
  const { m, n, k, batch, aBatch, bBatch } = s;
  const b = new Bindings();
  b.add({ kind: 'input', index: at.a }, 'A', 'i32');
  b.add({ kind: 'input', index: at.b }, 'B', 'i32');
  const aZeroPoint = paramReader(b, inputs, at.aZeroPoint, 'AZeroPoint');
  const bZeroPoint = paramReader(b, inputs, at.bZeroPoint, 'BZeroPoint');
  const store = extra(b, s);
  const total = sizeOf(batch) * m * n;
  return {
    label: `${label}_${m}x${k}x${n}`,
    wgsl: `${b.declarations}
${QUANT_WGSL}
${flatMain(
  WORKGROUP,
  `  if (i >= ${total}u) { return; }
  let n = i % ${n}u;
  let m = (i / ${n}u) % ${m}u;
  let z = i / ${m * n}u;
  let a_offset = ${batchOffset(batch, broadcastStrides(aBatch, batch, m * k))};
  let b_offset = ${batchOffset(batch, broadcastStrides(bBatch, batch, k * n))};
  let a_zero_point = ${aZeroPoint(aEntry)};
  let b_zero_point = ${bZeroPoint(bEntry)};
  var acc = 0i;
  for (var k = 0u; k < ${k}u; k++) {
    acc += (A[a_offset + m * ${k}u + k] - a_zero_point) * (B[b_offset + k * ${n}u + n] - b_zero_point);
  }
${store}`,
)}`,
    workgroups: grid(total, WORKGROUP),
    bindings: b.list,
  };
}

const MATMUL_INTEGER: Operands = { a: 0, b: 1, aZeroPoint: 2, bZeroPoint: 3 };
const QLINEAR_MATMUL: Operands = { a: 0, aZeroPoint: 2, b: 3, bZeroPoint: 5 };

/** Checks QLinearMatMul's scales and y_zero_point; returns the requantization multipliers, one per b_scale entry. */
function qlinearMatMul(node: Node, inputs: OpInput[]) {
  const { s } = integerProduct(node, inputs, QLINEAR_MATMUL);
  const type = qlinearOutputType(inputs);
  checkEightBitOutput(node, type);
  checkZeroPoint(node, inputs[7], type, 'y_zero_point');
  checkPerTensorOr(node, inputs[7], 1, 'tensor', 'y_zero_point');
  // A per-row a_scale would make the multiplier an M x N table; onnxruntime refuses it too.
  checkPerTensorOr(node, inputs[1], 1, 'tensor', 'a_scale');
  checkPerTensorOr(node, inputs[2], 1, 'tensor', 'a_zero_point');
  checkPerTensorOr(node, inputs[6], 1, 'tensor', 'y_scale');
  const [aScale, bScale, yScale] = [knownScale(node, inputs[1], 'a_scale'), knownScale(node, inputs[4], 'b_scale'), knownScale(node, inputs[6], 'y_scale')];
  entryOf(node, inputs[4], inputs[3]!, 'column', s, 'b_scale');
  const multipliers = bScale.map((v) => requantMultiplier(aScale[0]!, v, yScale[0]!));
  return { s, type, multipliers };
}

export const matmulOps: Record<string, OpImpl> = {
  MatMulInteger: {
    infer(node, inputs) {
      return [{ type: 'int32', dims: integerProduct(node, inputs, MATMUL_INTEGER).s.out }];
    },
    kernels(node, inputs) {
      return [productKernel('matmul_integer', node, inputs, MATMUL_INTEGER, int32Store)];
    },
  },
  QLinearMatMul: {
    infer(node, inputs) {
      const { s, type } = qlinearMatMul(node, inputs);
      return [{ type, dims: s.out }];
    },
    kernels(node, inputs, [out]) {
      const { multipliers } = qlinearMatMul(node, inputs);
      return [
        productKernel('qlinear_matmul', node, inputs, QLINEAR_MATMUL, (b, s) =>
          requantizedStore(b, inputs, multipliers, entryOf(node, inputs[4], inputs[3]!, 'column', s, 'b_scale'), out!.type, 'acc'),
        ),
      ];
    },
  },
};
