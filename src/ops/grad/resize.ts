import { ModelError } from '../../errors.js';
import { sizeOf, type Node, type TensorType } from '../../model/graph.js';
import { param, type Kernel, type KernelBinding } from '../../kernels/types.js';
import {
  axisCoordinates,
  collapseAxes,
  converted,
  flatMain,
  fromStorage,
  grid,
  storage,
  stridedIndex,
  strides,
  toStorage,
  wgslType,
} from '../../kernels/wgsl.js';
import { type Axis, type Interpolation, isIdentity, type Plan, resizePlans, tapsOf } from '../resize.js';
import type { OpImpl, OpInput } from '../types.js';
import { expectDims, floatInputs, knownAttrs, where } from './common.js';

/**
 * segscope::ResizeGrad: inputs (dy, x, then the forward's other inputs:
 * roi, scales, sizes as it had them), the forward's attributes and `forward`
 * ('Resize', the default, or 'Upsample'). dx, of x's shape, is the adjoint of
 * the forward's linear map: dx[p] = Σ over outputs o whose taps read p of
 * weight(o, p)·dy[o]. The taps are the forward's own (ops/resize.ts
 * `resizePlans`, `tapsOf`), so the adjoint is exact for everything the
 * forward runs, and what it refuses (tf_crop_and_resize, antialias) is
 * refused here with the same error.
 *
 * Per resized axis the taps are inverted on the CPU into a table from input
 * index to its (output index, weight) list (CSR); one thread per dx element
 * sums over the product of its axes' lists.
 */

const THREADS = 256;

const FORWARD_ATTRS = {
  Resize: [
    'antialias',
    'axes',
    'coordinate_transformation_mode',
    'cubic_coeff_a',
    'exclude_outside',
    'extrapolation_value',
    'keep_aspect_ratio_policy',
    'mode',
    'nearest_mode',
  ],
  Upsample: ['mode', 'scales'],
};

/** The forward's plan, dy and x, after checking that dy has the forward output's shape. */
function planOf(node: Node, inputs: OpInput[], opset: number): { plan: Plan; dy: OpInput; x: OpInput } {
  const [dy, x] = floatInputs(node, inputs, ['dy', 'x']);
  const forward = node.attrs.string('forward', 'Resize');
  if (forward !== 'Resize' && forward !== 'Upsample') throw new ModelError(`${where(node)}: forward must be Resize or Upsample, got '${forward}'`);
  knownAttrs(node, ['forward', ...FORWARD_ATTRS[forward]]);
  // The forward's inputs: x, then the rest as the forward node had them.
  const plan = resizePlans[forward](node, inputs.slice(1), opset);
  expectDims(
    node,
    'dy',
    dy!,
    plan.axes.map((a) => a.output),
    `the forward ${forward}'s output for x of shape [${x!.dims}]`,
  );
  return { plan, dy: dy!, x: x! };
}

/** One resized axis inverted: for input index p, entries ptr[p] to ptr[p + 1] of (output, weight). */
interface Inverted {
  a: number;
  ptr: number[];
  output: number[];
  weight: number[];
}

/** The taps of an axis grouped by the input index they read, in output order. */
function invert(f: Interpolation, axis: Axis, a: number): Inverted | undefined {
  const taps = tapsOf(f, axis);
  if (isIdentity(taps, axis)) return undefined;
  const lists = Array.from({ length: axis.input }, (): [number, number][] => []);
  taps.index.forEach((p, e) => {
    lists[p]!.push([Math.floor(e / taps.count), taps.weight[e]!]);
  });
  const ptr = [0];
  for (const list of lists) ptr.push(ptr[ptr.length - 1]! + list.length);
  return { a, ptr, output: lists.flatMap((l) => l.map(([o]) => o)), weight: lists.flatMap((l) => l.map(([, w]) => w)) };
}

function resizeGradKernel(dy: TensorType, x: TensorType, out: TensorType, { f, axes }: Plan): Kernel {
  const n = sizeOf(x.dims);
  const dyStrides = strides(dy.dims);
  const resized = axes.flatMap((axis, a) => invert(f, axis, a) ?? []);
  // Nearest only gathers (weights 1), as the forward.
  const weighted = f.mode !== 'nearest';
  const coordinates = axisCoordinates(x.dims);
  // Axes left as they are address dy at their own coordinate.
  const copied = stridedIndex(
    collapseAxes(
      x.dims,
      dyStrides.map((s, a) => (resized.some((r) => r.a === a) ? 0 : s)),
    ),
  );
  // IDX: every axis' ptr table (entry numbers), then every axis' output indices; W: the entries' weights.
  let ptrAt = 0;
  let entryAt = 0;
  const tables = resized.map((r) => {
    const at = { ptr: ptrAt, entries: entryAt };
    ptrAt += r.ptr.length;
    entryAt += r.output.length;
    return at;
  });
  const idx = Int32Array.from([...resized.flatMap((r, k) => r.ptr.map((e) => e + tables[k]!.entries)), ...resized.flatMap((r) => r.output)]);
  let q = 'q';
  let w = '';
  const loops = resized.map(({ a }, k) => {
    const loop = `for (var e${a} = u32(IDX[${tables[k]!.ptr}u + p${a}]); e${a} < u32(IDX[${tables[k]!.ptr + 1}u + p${a}]); e${a}++) {
  let q${a} = ${q} + u32(IDX[${ptrAt}u + e${a}]) * ${dyStrides[a]}u;${weighted ? `\n  let w${a} = ${w && `${w} * `}W[e${a}];` : ''}`;
    q = `q${a}`;
    w = `w${a}`;
    return loop;
  });
  const term = fromStorage(dy.type, `DY[${q}]`);
  const innermost = `acc += ${weighted ? `${w} * ${term}` : term};`;
  const nested = loops.reduceRight((inner, loop) => `${loop}\n${inner.replace(/^/gm, '  ')}\n}`, innermost);
  const body = resized.length
    ? `${resized.map((r) => `  let p${r.a} = ${coordinates[r.a]};`).join('\n')}\n  var acc = 0.0f;\n${nested.replace(/^/gm, '  ')}\n  DX[i] = ${toStorage(out.type, 'acc')};`
    : `  DX[i] = ${converted(dy.type, out.type, 'DY[q]')};`;
  const declarations = [storage(0, 'DY', wgslType(dy.type)), storage(1, 'DX', wgslType(out.type))];
  const bindings: KernelBinding[] = [
    { kind: 'input', index: 0 },
    { kind: 'output', index: 0 },
  ];
  // Tables only when something reads them: a binding the shader does not use is not in its layout.
  if (resized.length) {
    declarations.push(storage(2, 'IDX', 'i32'));
    bindings.push(param(idx));
    if (weighted) {
      declarations.push(storage(3, 'W', 'f32'));
      // Rounded to f32 as the forward uploads them, so the adjoint is the forward's map's transpose.
      bindings.push(param(Float32Array.from(resized.flatMap((r) => r.weight))));
    }
  }
  return {
    label: `resize_${f.mode}_grad_${resized.map((r) => `${axes[r.a]!.output}to${axes[r.a]!.input}`).join('_') || 'copy'}`,
    wgsl: `${declarations.join('\n')}
${flatMain(
  THREADS,
  `  if (i >= ${n}u) { return; }
  let q = ${copied};
${body}`,
)}`,
    workgroups: grid(n, THREADS),
    bindings,
  };
}

export const resizeGrad: OpImpl = {
  infer(node, inputs, opset) {
    const { x } = planOf(node, inputs, opset);
    return [{ type: x.type, dims: [...x.dims] }];
  },
  kernels(node, inputs, [out], opset) {
    const { plan, dy, x } = planOf(node, inputs, opset);
    if (sizeOf(x.dims) === 0) return [];
    return [resizeGradKernel(dy, x, out!, plan)];
  },
};
