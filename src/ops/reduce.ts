import { ModelError, UnsupportedOpError } from '../errors.js';
import { axis } from '../model/dims.js';
import type { Node } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import { combineAcross, ROW_THREADS, rowGrid, rowMain } from '../kernels/rows.js';
import { unaryKernel } from '../kernels/unary.js';
import { constInts } from './inputs.js';
import type { Kernel, KernelTarget } from '../kernels/types.js';
import type { OpImpl, OpInput, TensorType } from './types.js';
import { collapseAxes, f32, flatMain, fromStorage, grid, storage, stridedIndex, strides, toStorage, wgslType } from '../kernels/wgsl.js';

/**
 * Reductions over any set of axes (ReduceMean, ReduceMax…) and ArgMax/ArgMin.
 * A reduction folds `map(x)` of every reduced value into an accumulator with
 * `combine`, starting from `init`; `finish` turns the accumulator into the output.
 */
export interface Reducer {
  init: string;
  map: (x: string) => string;
  combine: (a: string, b: string) => string;
  finish: (acc: string, count: number) => string;
}

const same = (x: string) => x;
const summing = (map: Reducer['map'], finish: Reducer['finish'] = same): Reducer => ({
  init: '0.0f',
  map,
  combine: (a, b) => `${a} + ${b}`,
  finish,
});
const folding = (init: string, combine: Reducer['combine']): Reducer => ({ init, map: same, combine, finish: same });

export const reducers = {
  ReduceSum: summing(same),
  ReduceMean: summing(same, (acc, n) => `${acc} / ${f32(n)}`),
  ReduceMax: folding(f32(-Infinity), (a, b) => `max(${a}, ${b})`),
  ReduceMin: folding(f32(Infinity), (a, b) => `min(${a}, ${b})`),
  ReduceProd: folding('1.0f', (a, b) => `${a} * ${b}`),
  ReduceL1: summing((x) => `abs(${x})`),
  ReduceL2: summing(
    (x) => `${x} * ${x}`,
    (acc) => `sqrt(${acc})`,
  ),
  ReduceSumSquare: summing((x) => `${x} * ${x}`),
  ReduceLogSum: summing(same, (acc) => `log(${acc})`),
} satisfies Record<string, Reducer>;

const THREADS = 256;

/**
 * On a CPU adapter a workgroup runs on one thread, its invocations as loops
 * over the SIMD lanes and its barriers as switches between them, so the
 * workgroup tree costs more than it shares: one thread per output, a SIMD
 * register of outputs at a time, is faster wherever there are enough outputs
 * to fill the lanes of several threads: ResNet-101's GlobalAveragePool of
 * 2048x33x33 took 8.9 ms as a tree and takes 2.8 (bench/ops).
 */
const threadPerOutputOnCpu = (outputs: number, { cpuSubgroupSize: lanes }: Pick<KernelTarget, 'cpuSubgroupSize'>) =>
  lanes !== undefined && outputs >= CPU_SUBGROUPS_OF_OUTPUTS * lanes;
const CPU_SUBGROUPS_OF_OUTPUTS = 8;

/**
 * Reduces a float tensor `x` over `axes` into `out`, accumulating in f32. Short reductions take one thread per output; long ones (global
 * pooling, ReduceMean over the 33x33 planes of a ResNet-101 feature map) one
 * workgroup per output, with a tree in workgroup memory.
 */
export function reduceKernel(
  label: string,
  reducer: Reducer,
  x: TensorType,
  out: TensorType,
  axes: readonly number[],
  target: Pick<KernelTarget, 'cpuSubgroupSize'> = {},
): Kernel {
  const { dims, type } = x;
  // Outputs walk the kept axes, each output's values the reduced ones; neighbouring
  // axes merge, so ReduceMean over [2,3] of NCHW reads N·C contiguous planes.
  const inputStrides = strides(dims);
  const kept = collapseAxes(
    dims.map((d, a) => (axes.includes(a) ? 1 : d)),
    inputStrides,
  );
  const folded = collapseAxes(
    dims.map((d, a) => (axes.includes(a) ? d : 1)),
    inputStrides,
  );
  const count = sizeOf(folded.dims);
  const outputs = sizeOf(kept.dims);
  const { init, map, combine, finish } = reducer;
  const load = fromStorage(type, `X[base + ${stridedIndex(folded, 'k')}]`);
  const result = toStorage(out.type, finish('acc', count));
  const header = `${storage(0, 'X', wgslType(type))}
${storage(1, 'Y', wgslType(out.type))}`;
  const bindings: Kernel['bindings'] = [
    { kind: 'input', index: 0 },
    { kind: 'output', index: 0 },
  ];
  if (count < ROW_THREADS || threadPerOutputOnCpu(outputs, target)) {
    return {
      label: `${label}_thread`,
      wgsl: `${header}
${flatMain(
  THREADS,
  `  if (i >= ${outputs}u) { return; }
  let base = ${stridedIndex(kept, 'i')};
  var acc = ${init};
  for (var k = 0u; k < ${count}u; k++) {
    let x = ${load};
    acc = ${combine('acc', map('x'))};
  }
  Y[i] = ${result};`,
)}`,
      workgroups: grid(outputs, THREADS),
      bindings,
    };
  }
  return {
    label: `${label}_workgroup`,
    wgsl: `${header}
${rowMain(`  if (row >= ${outputs}u) { return; }
  let base = ${stridedIndex(kept, 'row')};
  var acc = ${init};
  for (var k = t; k < ${count}u; k += ${ROW_THREADS}u) {
    let x = ${load};
    acc = ${combine('acc', map('x'))};
  }
${combineAcross('acc', combine)}
  if (t == 0u) { Y[row] = ${result}; }`)}`,
    workgroups: rowGrid(outputs),
    bindings,
  };
}

/** The opset from which the op takes `axes` as its second input instead of an attribute. */
export const axesInputSince = (opType: string) => (opType === 'ReduceSum' ? 13 : 18);

/** The reduced axes, normalised and sorted; [] means the node is the identity (noop_with_empty_axes). */
export function reducedAxes(node: Node, inputs: OpInput[], opset: number): number[] {
  const where = `${node.opType} node '${node.name}'`;
  const rank = inputs[0]!.dims.length;
  const since = axesInputSince(node.opType);
  let axes: number[];
  if (opset >= since) {
    if (node.attrs.has('axes')) throw new ModelError(`${where}: axes are an input from opset ${since} on, not an attribute`);
    const given = inputs[1];
    // An empty axes tensor is known from its shape alone, even when fed at run time.
    axes = given?.name && sizeOf(given.dims) > 0 ? constInts(node, inputs, 1) : [];
    if (axes.length === 0 && node.attrs.int('noop_with_empty_axes', 0) !== 0) return [];
  } else {
    if (inputs[1]?.name) throw new ModelError(`${where}: takes one input before opset ${since} (axes are an attribute)`);
    axes = node.attrs.ints('axes', []);
  }
  if (axes.length === 0) return Array.from({ length: rank }, (_, a) => a);
  const normalised = axes.map((a) => axis(node, a, rank));
  if (new Set(normalised).size !== normalised.length) throw new ModelError(`${where}: repeated axes [${axes}]`);
  return normalised.sort((a, b) => a - b);
}

/** Output dims of reducing `axes`: kept as 1 or dropped. */
const reducedDims = (dims: readonly number[], axes: readonly number[], keepdims: boolean): number[] =>
  keepdims ? dims.map((d, a) => (axes.includes(a) ? 1 : d)) : dims.filter((_, a) => !axes.includes(a));

function keepdims(node: Node): boolean {
  const k = node.attrs.int('keepdims', 1);
  if (k !== 0 && k !== 1) throw new ModelError(`${node.opType} node '${node.name}': keepdims must be 0 or 1, got ${k}`);
  return k === 1;
}

function reduceOp(reducer: Reducer): OpImpl {
  return {
    infer(node, inputs, opset) {
      const x = inputs[0]!;
      if (!isFloatType(x.type)) {
        throw new UnsupportedOpError(`${node.opType} node '${node.name}': ${x.type} input is not supported (float tensors only)`);
      }
      const axes = reducedAxes(node, inputs, opset);
      return [{ type: x.type, dims: axes.length ? reducedDims(x.dims, axes, keepdims(node)) : [...x.dims] }];
    },
    kernels(node, inputs, [out], opset, target) {
      const axes = reducedAxes(node, inputs, opset);
      const label = node.opType.replace(/^Reduce/, 'reduce_').toLowerCase();
      if (axes.length === 0) return [unaryKernel(`${label}_noop`, 'x', inputs[0]!, out!)];
      return [reduceKernel(label, reducer, inputs[0]!, out!, axes, target)];
    },
  };
}

/**
 * ArgMax/ArgMin: one thread per output walks the axis. Over the class axis of
 * segmentation logits that is one thread per pixel looping over the classes.
 */
function argOp(better: '>' | '<'): OpImpl {
  const geometry = (node: Node, dims: readonly number[]) => {
    const a = axis(node, node.attrs.int('axis', 0), dims.length);
    const last = node.attrs.int('select_last_index', 0);
    if (last !== 0 && last !== 1) throw new ModelError(`${node.opType} node '${node.name}': select_last_index must be 0 or 1, got ${last}`);
    return { a, last: last === 1, inner: sizeOf(dims.slice(a + 1)), length: dims[a]! };
  };
  return {
    infer(node, [x]) {
      const { a } = geometry(node, x!.dims);
      return [{ type: 'int64', dims: reducedDims(x!.dims, [a], keepdims(node)) }];
    },
    kernels(node, [x], [out]) {
      const { last, inner, length } = geometry(node, x!.dims);
      // On ties the first index wins with a strict comparison, the last with a loose one.
      const wins = last ? `${better}=` : better;
      const n = sizeOf(out!.dims);
      return [
        {
          label: `${node.opType.toLowerCase()}_${length}`,
          wgsl: `${storage(0, 'X', wgslType(x!.type))}
${storage(1, 'Y', 'i32')}
${flatMain(
  THREADS,
  `  if (i >= ${n}u) { return; }
  let base = ${stridedIndex(collapseAxes([n / inner, inner], [length * inner, 1]))};
  var best = X[base];
  var index = 0u;
  for (var k = 1u; k < ${length}u; k++) {
    let x = X[base + k * ${inner}u];
    if (x ${wins} best) {
      best = x;
      index = k;
    }
  }
  Y[i] = i32(index);`,
)}`,
          workgroups: grid(n, THREADS),
          bindings: [
            { kind: 'input', index: 0 },
            { kind: 'output', index: 0 },
          ],
        },
      ];
    },
  };
}

export const reduceOps: Record<string, OpImpl> = {
  ...Object.fromEntries(Object.entries(reducers).map(([op, r]) => [op, reduceOp(r)])),
  ArgMax: argOp('>'),
  ArgMin: argOp('<'),
};
