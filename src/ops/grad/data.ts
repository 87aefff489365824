import { ModelError } from '../../errors.js';
import { sizeOf, type Node } from '../../model/graph.js';
import { axisCoordinates, converted, flatMain, grid, storage, storageLiteral, strides, wgslType } from '../../kernels/wgsl.js';
import { padKernels } from '../pad.js';
import type { OpImpl } from '../types.js';
import { floatInputs, knownAttrs, where } from './common.js';

/** Data movement for gradients: ZeroInsert (a strided conv's input gradient) and Slice (Concat's and Pad's). */

const THREADS = 256;

/** ZeroInsert's `strides`, one per spatial axis of an (N, C, spatial…) input. */
function zeroInsertStrides(node: Node, dims: readonly number[]): number[] {
  knownAttrs(node, ['strides']);
  if (dims.length < 3) throw new ModelError(`${where(node)}: expects an (N, C, spatial…) input of rank 3 or more, got [${dims}]`);
  const s = node.attrs.ints('strides');
  if (s.length !== dims.length - 2 || s.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new ModelError(`${where(node)}: strides must be ${dims.length - 2} integers ≥ 1, got [${s}]`);
  }
  return s;
}

/**
 * segscope::ZeroInsert: x [N, C, H, W…] spread out by `strides` [sh, sw…]:
 * y[n, c, i·sh, j·sw] = x[n, c, i, j], zero elsewhere; output
 * [N, C, (H - 1)·sh + 1, (W - 1)·sw + 1]. One thread per output element.
 */
const zeroInsert: OpImpl = {
  infer(node, inputs) {
    const [x] = floatInputs(node, inputs, ['x']);
    const s = zeroInsertStrides(node, x!.dims);
    const dims = x!.dims.map((d, a) => (a < 2 || d === 0 ? d : (d - 1) * s[a - 2]! + 1));
    return [{ type: x!.type, dims }];
  },
  kernels(node, [x], [out]) {
    const s = zeroInsertStrides(node, x!.dims);
    const n = sizeOf(out!.dims);
    if (n === 0) return [];
    const xStrides = strides(x!.dims);
    const coordinates = axisCoordinates(out!.dims);
    // Output coordinate c of a spatial axis reads c / stride where the stride divides it.
    const onGrid = s.flatMap((v, k) => (v === 1 ? [] : [`${coordinates[k + 2]} % ${v}u == 0u`]));
    const source = coordinates.map((c, a) => `${a < 2 || s[a - 2] === 1 ? c : `${c} / ${s[a - 2]}u`} * ${xStrides[a]}u`).join(' + ');
    const value = converted(x!.type, out!.type, `X[${source}]`);
    const zero = storageLiteral(out!.type, 0);
    return [
      {
        label: `zero_insert_s${s.join('x')}`,
        wgsl: `${storage(0, 'X', wgslType(x!.type))}
${storage(1, 'Y', wgslType(out!.type))}
${flatMain(
  THREADS,
  `  if (i >= ${n}u) { return; }
  if (${onGrid.join(' && ') || 'true'}) {
    Y[i] = ${value};
  } else {
    Y[i] = ${zero};
  }`,
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

/** Slice's starts and ends, checked against the input's shape. */
function sliceBounds(node: Node, dims: readonly number[]): { starts: number[]; ends: number[] } {
  knownAttrs(node, ['starts', 'ends']);
  const starts = node.attrs.ints('starts');
  const ends = node.attrs.ints('ends');
  if (starts.length !== dims.length || ends.length !== dims.length) {
    throw new ModelError(`${where(node)}: needs one start and one end per axis of [${dims}], got starts [${starts}], ends [${ends}]`);
  }
  dims.forEach((d, a) => {
    const [b, e] = [starts[a]!, ends[a]!];
    if (!Number.isInteger(b) || !Number.isInteger(e) || b < 0 || b >= e || e > d) {
      throw new ModelError(`${where(node)}: axis ${a} of size ${d} cannot be sliced from ${b} to ${e} (0 ≤ start < end ≤ size)`);
    }
  });
  return { starts, ends };
}

/**
 * segscope::Slice: x[starts : ends] on every axis (ends exclusive), as Pad
 * with negative pads computes it (a crop: ops/pad.ts).
 */
const slice: OpImpl = {
  infer(node, inputs) {
    const [x] = floatInputs(node, inputs, ['x']);
    const { starts, ends } = sliceBounds(node, x!.dims);
    return [{ type: x!.type, dims: ends.map((e, a) => e - starts[a]!) }];
  },
  kernels(node, [x], [out]) {
    const { starts, ends } = sliceBounds(node, x!.dims);
    const spec = { mode: 'constant' as const, begin: starts.map((b) => -b), end: ends.map((e, a) => e - x!.dims[a]!), value: 0 };
    return padKernels(node, x!, out!, spec, 'slice');
  },
};

export const dataGradOps: Record<string, OpImpl> = { ZeroInsert: zeroInsert, Slice: slice };
