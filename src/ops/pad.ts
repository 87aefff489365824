import { ModelError } from '../errors.js';
import { axis } from '../model/dims.js';
import type { Node } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import { constInts } from './inputs.js';
import type { Kernel } from '../kernels/types.js';
import type { OpImpl, OpInput, TensorType } from './types.js';
import { converted, flatMain, grid, storage, storageLiteral, strides, wgslType } from '../kernels/wgsl.js';

/**
 * Pad: every output element maps back to one input element, or to the fill
 * value (constant mode). Negative pads crop first, and the other modes then
 * reflect/replicate/wrap the cropped data, as onnxruntime does.
 */

const WORKGROUP = 256;

const MODES = ['constant', 'reflect', 'edge', 'wrap'] as const;
type Mode = (typeof MODES)[number];

export interface PadSpec {
  mode: Mode;
  /** Per axis: elements added before (negative: cropped) and after. */
  begin: number[];
  end: number[];
  /** The fill of constant mode. */
  value: number;
}

/** Pads from the attributes (opset < 11: `paddings` before opset 2, then `pads`) or the inputs (pads, constant_value, axes). */
function padSpec(node: Node, inputs: OpInput[], opset: number): PadSpec {
  const where = `Pad node '${node.name}'`;
  const x = inputs[0]!;
  const rank = x.dims.length;
  const mode = node.attrs.string('mode', 'constant') as Mode;
  if (!MODES.includes(mode)) throw new ModelError(`${where}: unknown mode '${mode}' (expected ${MODES.join(', ')})`);
  const pads = opset < 11 ? node.attrs.ints(opset < 2 ? 'paddings' : 'pads') : constInts(node, inputs, 1);
  let value = node.attrs.float('value', 0);
  if (opset >= 11) {
    const fill = inputs[2]?.name ? constInts(node, inputs, 2) : [0];
    if (fill.length !== 1) throw new ModelError(`${where}: constant_value '${inputs[2]!.name}' must be one value, got ${fill.length}`);
    value = fill[0]!;
  }
  const axes = (inputs[3]?.name ? constInts(node, inputs, 3) : Array.from({ length: rank }, (_, a) => a)).map((a) => axis(node, a, rank));
  if (new Set(axes).size !== axes.length) throw new ModelError(`${where}: repeated axes [${axes}]`);
  if (pads.length !== 2 * axes.length) {
    throw new ModelError(`${where}: ${pads.length} pads for ${axes.length} axes; expected ${2 * axes.length} (all begins, then all ends)`);
  }
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  axes.forEach((a, k) => {
    begin[a] = pads[k]!;
    end[a] = pads[k + axes.length]!;
  });
  return { mode, begin, end, value: isFloatType(x.type) ? value : Math.trunc(value) };
}

/** One axis as the kernel sees it: `kept` input elements from `crop` on, `before` added in front. */
interface PaddedAxis {
  size: number;
  stride: number;
  before: number;
  crop: number;
  kept: number;
  padded: boolean;
}

function paddedAxes(node: Node, dims: readonly number[], spec: PadSpec): PaddedAxis[] {
  const inStrides = strides(dims);
  return dims.map((n, a) => {
    const [b, e] = [spec.begin[a]!, spec.end[a]!];
    const size = n + b + e;
    const kept = n - Math.max(0, -b) - Math.max(0, -e);
    if (size < 0 || kept < 0) throw new ModelError(`${node.opType} node '${node.name}': pads ${b}, ${e} crop more than axis ${a} of size ${n} has`);
    if (kept === 0 && size > 0 && spec.mode !== 'constant') {
      throw new ModelError(`${node.opType} node '${node.name}': ${spec.mode} mode has no elements to extend along axis ${a}`);
    }
    return { size, stride: inStrides[a]!, before: Math.max(0, b), crop: Math.max(0, -b), kept, padded: b !== 0 || e !== 0 };
  });
}

/** Merges runs of unpadded axes (they copy contiguously) and drops unpadded size-1 axes. */
function mergeUnpadded(axes: PaddedAxis[]): PaddedAxis[] {
  const merged: PaddedAxis[] = [];
  for (const ax of axes) {
    const last = merged[merged.length - 1];
    if (!ax.padded && ax.size === 1) continue;
    if (last && !last.padded && !ax.padded && last.stride === ax.stride * ax.size) {
      merged[merged.length - 1] = { ...ax, size: last.size * ax.size, kept: last.kept * ax.kept };
    } else merged.push(ax);
  }
  return merged;
}

/** WGSL statements mapping the output coordinate `s` (i32, relative to the kept data) into [0, kept). */
function mapInto(s: string, kept: number, spec: PadSpec, fill: string): string {
  switch (spec.mode) {
    case 'constant':
      return `  if (${s} < 0i || ${s} >= ${kept}i) { Y[i] = ${fill}; return; }`;
    case 'edge':
      return `  ${s} = clamp(${s}, 0i, ${kept - 1}i);`;
    case 'wrap':
      return `  ${s} = ((${s} % ${kept}i) + ${kept}i) % ${kept}i;`;
    case 'reflect': {
      // A triangle wave of period 2 (kept - 1): numpy's reflection, repeated for pads wider than the axis.
      if (kept === 1) return `  ${s} = 0i;`;
      const period = 2 * (kept - 1);
      return `  ${s} = ((${s} % ${period}i) + ${period}i) % ${period}i;
  ${s} = select(${s}, ${period}i - ${s}, ${s} >= ${kept}i);`;
    }
  }
}

/**
 * The dispatch padding (and cropping) `x` into `out` as `spec` says; also
 * segscope's Slice (ops/grad/data.ts), a crop.
 */
export function padKernels(node: Node, x: TensorType, out: TensorType, spec: PadSpec, label = `pad_${spec.mode}`): Kernel[] {
  const axes = mergeUnpadded(paddedAxes(node, x.dims, spec));
  const n = sizeOf(out.dims);
  if (n === 0) return [];
  const fill = storageLiteral(out.type, spec.value);
  // Innermost axis first: peel its coordinate off the flat index.
  const body = axes.map((ax, k) => {
    const c = `c${k}`;
    const peel = k === 0 ? `  let ${c} = r;` : `  let ${c} = r % ${ax.size}u;\n  r = r / ${ax.size}u;`;
    if (!ax.padded) return `${peel}\n  src += ${c} * ${ax.stride}u;`;
    // An axis that is only cropped reads inside the kept data.
    if (ax.before === 0 && ax.size === ax.kept) return `${peel}\n  src += (${c} + ${ax.crop}u) * ${ax.stride}u;`;
    const s = `s${k}`;
    return `${peel}
  var ${s} = i32(${c}) - ${ax.before}i;
${mapInto(s, ax.kept, spec, fill)}
  src += u32(${s} + ${ax.crop}i) * ${ax.stride}u;`;
  });
  return [
    {
      label,
      wgsl: `${storage(0, 'X', wgslType(x.type))}
${storage(1, 'Y', wgslType(out.type))}
${flatMain(
  WORKGROUP,
  `  if (i >= ${n}u) { return; }
  var r = i;
  var src = 0u;
${body.reverse().join('\n')}
  Y[i] = ${converted(x.type, out.type, 'X[src]')};`,
)}`,
      workgroups: grid(n, WORKGROUP),
      bindings: [
        { kind: 'input', index: 0 },
        { kind: 'output', index: 0 },
      ],
    },
  ];
}

const kernels = (node: Node, inputs: OpInput[], [out]: TensorType[], opset: number): Kernel[] =>
  padKernels(node, inputs[0]!, out!, padSpec(node, inputs, opset));

export const padOps: Record<string, OpImpl> = {
  Pad: {
    infer(node, inputs, opset) {
      const x = inputs[0];
      if (!x?.name) throw new ModelError(`Pad node '${node.name}': the data input is missing`);
      const axes = paddedAxes(node, x.dims, padSpec(node, inputs, opset));
      return [{ type: x.type, dims: axes.map((ax) => ax.size) }];
    },
    kernels,
  },
};
