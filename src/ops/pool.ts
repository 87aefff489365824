import { ModelError, UnsupportedOpError } from '../errors.js';
import type { Node } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import { axisCoordinates } from '../kernels/wgsl.js';
import { reduceKernel, type Reducer, reducers } from './reduce.js';
import type { Kernel } from '../kernels/types.js';
import type { OpImpl, OpInput, TensorType } from './types.js';
import { collapseAxes, flatMain, fromStorage, grid, storage, stridedIndex, strides, toStorage, wgslType } from '../kernels/wgsl.js';

/**
 * MaxPool, AveragePool (N, C, then any number of spatial axes) and the
 * global pools. One thread per output walks its window.
 */

const THREADS = 256;

/** The window geometry of one spatial axis. */
export interface Window {
  input: number;
  output: number;
  kernel: number;
  stride: number;
  dilation: number;
  padBegin: number;
  padEnd: number;
}

export function checkSpatial(node: Node, x: OpInput): void {
  if (x.dims.length < 3) {
    throw new ModelError(`${node.opType} node '${node.name}': expects an (N, C, spatial…) input of rank 3 or more, got [${x.dims}]`);
  }
}

/** An attribute that must be 0 or 1. */
function flag(node: Node, name: string): boolean {
  const v = node.attrs.int(name, 0);
  if (v !== 0 && v !== 1) throw new ModelError(`${node.opType} node '${node.name}': ${name} must be 0 or 1, got ${v}`);
  return v === 1;
}

/**
 * The windows of a MaxPool/AveragePool node over input `dims`, from its
 * attributes (also read by the gradient ops, which copy them: ops/grad/pool.ts).
 */
export function windows(node: Node, dims: readonly number[]): Window[] {
  const where = `${node.opType} node '${node.name}'`;
  const input = dims.slice(2);
  const n = input.length;
  const list = (name: string, length: number, fallback: number | undefined, min: number) => {
    const v = node.attrs.ints(name, fallback === undefined ? undefined : new Array<number>(length).fill(fallback));
    if (v.length !== length || v.some((k) => !Number.isInteger(k) || k < min)) {
      throw new ModelError(`${where}: ${name} must be ${length} integers ≥ ${min} for ${n} spatial axes, got [${v}]`);
    }
    return v;
  };
  const kernel = list('kernel_shape', n, undefined, 1);
  const stride = list('strides', n, 1, 1);
  const dilation = list('dilations', n, 1, 1);
  const pads = list('pads', 2 * n, 0, 0);
  const autoPad = node.attrs.string('auto_pad', 'NOTSET');
  const ceil = flag(node, 'ceil_mode');
  if (autoPad !== 'NOTSET' && pads.some((p) => p !== 0)) throw new ModelError(`${where}: pads cannot be given with auto_pad ${autoPad}`);
  return input.map((size, a) => {
    const k = kernel[a]!;
    const s = stride[a]!;
    const extent = (k - 1) * dilation[a]! + 1;
    const window = { input: size, kernel: k, stride: s, dilation: dilation[a]! };
    switch (autoPad) {
      case 'NOTSET': {
        const [padBegin, padEnd] = [pads[a]!, pads[a + n]!];
        // As onnxruntime: a window must hold at least one real value.
        if (padBegin >= k || padEnd >= k) throw new ModelError(`${where}: pads [${pads}] must be smaller than kernel_shape [${kernel}]`);
        const span = size + padBegin + padEnd - extent;
        if (span < 0)
          throw new ModelError(`${where}: kernel extent ${extent} is larger than the padded input (${size + padBegin + padEnd}) on spatial axis ${a}`);
        let output = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
        // ceil_mode: the last window must start inside the input or its left padding.
        if (ceil && (output - 1) * s >= size + padBegin) output--;
        return { ...window, output, padBegin, padEnd };
      }
      case 'VALID':
        if (size < extent) throw new ModelError(`${where}: kernel extent ${extent} is larger than the input (${size}) on spatial axis ${a}`);
        return { ...window, output: Math.floor((size - extent) / s) + 1, padBegin: 0, padEnd: 0 };
      case 'SAME_UPPER':
      case 'SAME_LOWER': {
        const output = Math.ceil(size / s);
        const total = Math.max(0, (output - 1) * s + extent - size);
        const padBegin = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
        return { ...window, output, padBegin, padEnd: total - padBegin };
      }
      default:
        throw new ModelError(`${where}: auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, got '${autoPad}'`);
    }
  });
}

/** How a window's values become the output. */
export interface Pooling {
  reducer: Reducer;
  /** Divide the reduction by the window's count: of input values, or with `includePad` of positions, padding included. */
  average: boolean;
  includePad: boolean;
}

/**
 * WGSL: nested loops over the window at output coordinates o0, o1… (u32,
 * named by `names.o`), one loop per spatial axis, axis 0 outermost (a
 * row-major scan), binding each window position p0, p1… (i32, from the
 * input's start; `names.p`) for `innermost`. Positions in the begin padding are skipped and the loop of an
 * axis ends at the input's end, unless `includePad`: then every position up
 * to the end padding is visited (as PyTorch: windows that ceil_mode lets run
 * past it stop at it) and `innermost` tells the padding apart. The one
 * definition of a window's positions for the pools and their gradients.
 */
export function windowLoops(wins: Window[], includePad: boolean, innermost: string, names = { o: 'o', k: 'k', p: 'p' }): string {
  const { o, k, p } = names;
  return wins.reduceRight(
    (body, w, a) => `for (var ${k}${a} = 0u; ${k}${a} < ${w.kernel}u; ${k}${a}++) {
  let ${p}${a} = i32(${o}${a} * ${w.stride}u + ${k}${a} * ${w.dilation}u) - ${w.padBegin};
  if (${p}${a} >= ${includePad ? w.input + w.padEnd : w.input}) { break; }
${includePad ? '' : `  if (${p}${a} < 0) { continue; }\n`}${body.replace(/^/gm, '  ')}
}`,
    innermost,
  );
}

/**
 * WGSL: one thread per output element walks its window (windowLoops). With
 * count_include_pad the divisor also counts padded positions up to the end
 * padding.
 */
function poolKernel(label: string, x: TensorType, out: TensorType, wins: Window[], { reducer, average, includePad }: Pooling): Kernel {
  const type = wgslType(x.type);
  const inputStrides = strides(x.dims).slice(2);
  const n = sizeOf(out.dims);
  const coordinates = axisCoordinates(out.dims)
    .slice(2)
    .map((c, a) => `  let o${a} = ${c};`)
    .join('\n');
  // The (n, c) plane's first input element.
  const plane = stridedIndex(collapseAxes([sizeOf(out.dims.slice(0, 2)), sizeOf(out.dims.slice(2))], [sizeOf(x.dims.slice(2)), 0]));
  const inside = wins.map((w, a) => `p${a} < ${w.input}`).join(' && ');
  const offset = wins.map((_, a) => `u32(p${a}) * ${inputStrides[a]}u`).join(' + ');
  const accumulate = `acc = ${reducer.combine('acc', fromStorage(x.type, `X[plane + ${offset}]`))};`;
  const innermost = includePad
    ? `count += 1.0f;\nif (${wins.map((_, a) => `p${a} >= 0`).join(' && ')} && ${inside}) { ${accumulate} }`
    : `${accumulate}${average ? '\ncount += 1.0f;' : ''}`;
  const loops = windowLoops(wins, includePad, innermost);
  const init = isFloatType(x.type) ? reducer.init : 'i32(-2147483648)';
  return {
    label,
    wgsl: `${storage(0, 'X', type)}
${storage(1, 'Y', wgslType(out.type))}
${flatMain(
  THREADS,
  `  if (i >= ${n}u) { return; }
${coordinates}
  let plane = ${plane};
  var acc = ${init};${average ? '\n  var count = 0.0f;' : ''}
${loops.replace(/^/gm, '  ')}
  Y[i] = ${toStorage(out.type, average ? 'acc / count' : 'acc')};`,
)}`,
    workgroups: grid(n, THREADS),
    bindings: [
      { kind: 'input', index: 0 },
      { kind: 'output', index: 0 },
    ],
  };
}

const windowLabel = (op: string, wins: Window[]) => `${op}${wins.map((w) => w.kernel).join('x')}_s${wins.map((w) => w.stride).join('x')}`;

function windowPool(pooling: (node: Node) => Pooling, acceptsIntegers: boolean): OpImpl {
  return {
    infer(node, [x]) {
      checkSpatial(node, x!);
      if (!acceptsIntegers && !isFloatType(x!.type)) throw new ModelError(`${node.opType} node '${node.name}': expects a float tensor, got ${x!.type}`);
      pooling(node);
      return [{ type: x!.type, dims: [...x!.dims.slice(0, 2), ...windows(node, x!.dims).map((w) => w.output)] }];
    },
    kernels(node, [x], [out]) {
      const wins = windows(node, x!.dims);
      return [poolKernel(windowLabel(node.opType.toLowerCase(), wins), x!, out!, wins, pooling(node))];
    },
  };
}

export const maxPooling = (node: Node): Pooling => {
  if (node.outputs[1]) throw new UnsupportedOpError(`MaxPool node '${node.name}': the Indices output is not supported`);
  // storage_order only orders Indices, which is refused above.
  flag(node, 'storage_order');
  return { reducer: reducers.ReduceMax, average: false, includePad: false };
};

export const averagePooling = (node: Node): Pooling => ({
  reducer: reducers.ReduceSum,
  average: true,
  includePad: flag(node, 'count_include_pad'),
});

/** GlobalAveragePool/GlobalMaxPool: the reduction over every spatial axis, keeping them as 1. */
function globalPool(op: 'ReduceMean' | 'ReduceMax'): OpImpl {
  return {
    infer(node, [x]) {
      checkSpatial(node, x!);
      if (!isFloatType(x!.type)) throw new ModelError(`${node.opType} node '${node.name}': expects a float tensor, got ${x!.type}`);
      return [{ type: x!.type, dims: x!.dims.map((d, a) => (a < 2 ? d : 1)) }];
    },
    kernels(node, [x], [out], _opset, target) {
      const spatial = x!.dims.map((_, a) => a).slice(2);
      return [reduceKernel(node.opType.toLowerCase(), reducers[op], x!, out!, spatial, target)];
    },
  };
}

export const poolOps: Record<string, OpImpl> = {
  MaxPool: windowPool(maxPooling, true),
  AveragePool: windowPool(averagePooling, false),
  GlobalAveragePool: globalPool('ReduceMean'),
  GlobalMaxPool: globalPool('ReduceMax'),
};
