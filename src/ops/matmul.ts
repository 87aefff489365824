import { ModelError } from '../errors.js';
import { broadcastDims } from '../model/dims.js';
import type { ElemType, Node } from '../model/graph.js';
import { sizeOf } from '../model/graph.js';
import { chooseTile, gemmKernel } from '../kernels/gemm.js';
import type { Kernel, KernelBinding } from '../kernels/types.js';
import { f32, fromStorage, storage, strides, toStorage, wgslType } from '../kernels/wgsl.js';
import { checkAttrs, requireFloat } from './attrs.js';
import type { OpImpl, OpInput } from './types.js';

/** WGSL expression for the element offset of batch `z` of an operand with per-batch-axis `strides` (0 where broadcast). */
export function batchOffset(batch: readonly number[], operandStrides: readonly number[]): string {
  const inner = strides(batch);
  const terms = batch.flatMap((d, i) => (operandStrides[i] === 0 || d === 1 ? [] : [`(z / ${inner[i]}u % ${d}u) * ${operandStrides[i]}u`]));
  return terms.length ? terms.join(' + ') : '0u';
}

/** Strides of `dims` laid against the batch axes `batch` (right-aligned), 0 where `dims` broadcasts. */
export function broadcastStrides(dims: readonly number[], batch: readonly number[], elementsPerBatch: number): number[] {
  const s = strides(dims).map((x) => x * elementsPerBatch);
  return batch.map((_, i) => {
    const d = i - (batch.length - dims.length);
    return d < 0 || dims[d] === 1 ? 0 : s[d]!;
  });
}

/**
 * A general strided product: A(m, k) at aOffset + m·am + k·ak, B(k, n) at
 * bOffset + k·bk + n·bn, Y row-major [batches][M][N], each stored as its
 * `type`. `epilogue` maps the f32 sum `acc` to the f32 result (may use m, n
 * and extra bindings).
 */
interface StridedProduct {
  label: string;
  m: number;
  n: number;
  k: number;
  batch: number[];
  a: { type: ElemType; strides: number[]; am: number; ak: number };
  b: { type: ElemType; strides: number[]; bk: number; bn: number };
  y: ElemType;
  extra?: { declarations: string; binding: KernelBinding };
  epilogue: string;
}

function stridedKernel(p: StridedProduct): Kernel {
  const quad = (ok: (r: string) => string, at: (r: string) => string) =>
    `  var v = vec4f();
  for (var r = 0u; r < 4u; r++) {
    if (${ok('r')}) { v[r] = ${at('r')}; }
  }
  return v;`;
  const extra = p.extra ? [p.extra.binding] : [];
  return gemmKernel({
    label: p.label,
    m: p.m,
    n: p.n,
    k: p.k,
    batches: sizeOf(p.batch),
    tile: chooseTile(p.m),
    declarations: [
      storage(0, 'A', wgslType(p.a.type)),
      storage(1, 'B', wgslType(p.b.type)),
      ...(p.extra ? [p.extra.declarations] : []),
      storage(2 + extra.length, 'Y', wgslType(p.y)),
    ].join('\n'),
    bindings: [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }, ...extra, { kind: 'output', index: 0 }],
    loadA: quad(
      (r) => `k < ${p.k}u && m + ${r} < ${p.m}u`,
      (r) => fromStorage(p.a.type, `A[${batchOffset(p.batch, p.a.strides)} + (m + ${r}) * ${p.a.am}u + k * ${p.a.ak}u]`),
    ),
    loadB: quad(
      (r) => `k < ${p.k}u && n + ${r} < ${p.n}u`,
      (r) => fromStorage(p.b.type, `B[${batchOffset(p.batch, p.b.strides)} + k * ${p.b.bk}u + (n + ${r}) * ${p.b.bn}u]`),
    ),
    store: `  Y[(z * ${p.m}u + m) * ${p.n}u + n] = ${toStorage(p.y, p.epilogue)};`,
  });
}

const where = (node: Node) => `${node.opType} node '${node.name}'`;

/** Numpy matmul shapes: 1-D operands are promoted (and the added axis dropped from the result), batch axes broadcast. */
export function matmulShape(node: Node, a: readonly number[], b: readonly number[]) {
  if (a.length === 0 || b.length === 0) throw new ModelError(`${where(node)}: operands must have rank ≥ 1, got [${a}] and [${b}]`);
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const [m, k] = a2.slice(-2) as [number, number];
  const [kb, n] = b2.slice(-2) as [number, number];
  if (k !== kb) throw new ModelError(`${where(node)}: inner dimensions differ: [${a}] x [${b}]`);
  const aBatch = a2.slice(0, -2);
  const bBatch = b2.slice(0, -2);
  const batch = broadcastDims(node, [aBatch, bBatch]);
  const out = [...batch, ...(a.length === 1 ? [] : [m]), ...(b.length === 1 ? [] : [n])];
  return { m, n, k, batch, aBatch, bBatch, out };
}

const matMul: OpImpl = {
  infer(node, inputs) {
    requireFloat(node, inputs);
    checkAttrs(node, []);
    const [a, b] = inputs;
    return [{ type: a!.type, dims: matmulShape(node, a!.dims, b!.dims).out }];
  },
  kernels(node, [a, b], [out]) {
    const { m, n, k, batch, aBatch, bBatch } = matmulShape(node, a!.dims, b!.dims);
    return [
      stridedKernel({
        label: 'matmul',
        m,
        n,
        k,
        batch,
        a: { type: a!.type, strides: broadcastStrides(aBatch, batch, m * k), am: k, ak: 1 },
        b: { type: b!.type, strides: broadcastStrides(bBatch, batch, k * n), bk: n, bn: 1 },
        y: out!.type,
        epilogue: 'acc',
      }),
    ];
  },
};

/** Gemm's product shape and C's strides over [M, N] (0 where C broadcasts). */
function gemmShape(node: Node, inputs: OpInput[], opset: number) {
  const [a, b, c] = inputs;
  if (a!.dims.length !== 2 || b!.dims.length !== 2) {
    throw new ModelError(`${where(node)}: A and B must be matrices, got [${a!.dims}] and [${b!.dims}]`);
  }
  const flag = (name: string) => {
    const v = node.attrs.int(name, 0);
    if (v !== 0 && v !== 1) throw new ModelError(`${where(node)}: ${name} must be 0 or 1, got ${v}`);
    return v === 1;
  };
  const transA = flag('transA');
  const transB = flag('transB');
  const [m, k] = transA ? [a!.dims[1]!, a!.dims[0]!] : [a!.dims[0]!, a!.dims[1]!];
  const [kb, n] = transB ? [b!.dims[1]!, b!.dims[0]!] : [b!.dims[0]!, b!.dims[1]!];
  if (k !== kb) throw new ModelError(`${where(node)}: inner dimensions differ: A' is ${m}x${k}, B' is ${kb}x${n}`);
  let cStrides: [number, number] | undefined;
  if (c?.name) {
    const cd = c.dims;
    // Before opset 7, C broadcasts only with broadcast=1 (default 0); since then, always.
    const exact = opset < 7 && node.attrs.int('broadcast', 0) === 0;
    const target = [m, n].slice(2 - cd.length);
    const fits = exact ? cd.length === 2 && cd[0] === m && cd[1] === n : cd.length <= 2 && cd.every((d, i) => d === target[i] || d === 1);
    if (!fits) throw new ModelError(`${where(node)}: C of shape [${cd}] does not broadcast to [${m},${n}]`);
    const [cm, cn] = [...Array(2 - cd.length).fill(1), ...cd] as [number, number];
    cStrides = [cm === 1 ? 0 : cn, cn === 1 ? 0 : 1];
  }
  return { m, n, k, transA, transB, cStrides };
}

const gemm: OpImpl = {
  infer(node, inputs, opset) {
    requireFloat(node, inputs);
    checkAttrs(node, ['alpha', 'beta', 'transA', 'transB', ...(opset < 7 ? ['broadcast'] : [])]);
    const { m, n } = gemmShape(node, inputs, opset);
    return [{ type: inputs[0]!.type, dims: [m, n] }];
  },
  kernels(node, inputs, [out], opset) {
    const [a, b, c] = inputs;
    const { m, n, k, transA, transB, cStrides } = gemmShape(node, inputs, opset);
    const alpha = node.attrs.float('alpha', 1);
    const beta = node.attrs.float('beta', 1);
    const scaled = alpha === 1 ? 'acc' : `${f32(alpha)} * acc`;
    return [
      stridedKernel({
        label: 'gemm',
        m,
        n,
        k,
        batch: [],
        a: { type: a!.type, strides: [], am: transA ? 1 : k, ak: transA ? m : 1 },
        b: { type: b!.type, strides: [], bk: transB ? 1 : n, bn: transB ? k : 1 },
        y: out!.type,
        extra: cStrides && { declarations: storage(2, 'C', wgslType(c!.type)), binding: { kind: 'input', index: 2 } },
        epilogue: cStrides ? `${scaled} + ${f32(beta)} * ${fromStorage(c!.type, `C[m * ${cStrides[0]}u + n * ${cStrides[1]}u]`)}` : scaled,
      }),
    ];
  },
};

export const matmulOps: Record<string, OpImpl> = { MatMul: matMul, Gemm: gemm };
