import { ModelError } from '../../errors.js';
import { sizeOf, type Node } from '../../model/graph.js';
import type { KernelBinding } from '../../kernels/types.js';
import { flatMain, fromStorage, grid, storage, toStorage, wgslType } from '../../kernels/wgsl.js';
import type { OpImpl, OpInput } from '../types.js';
import { expectDims, floatInputs, knownAttrs, where } from './common.js';

/**
 * segscope::SegmentationSeed: the gradient seed of pytorch-grad-cam's
 * SemanticSegmentationTarget. Inputs logits [N, K, H, W], classIndex [1],
 * mask [N, 1, H, W], usePrediction [1] (floats). seed[n, c, h, w] is m[n, h, w]
 * where c is the class index, else 0; m is 1 where the class is the first
 * argmax over c of the logits (usePrediction ≠ 0), or the mask. A class index
 * outside [0, K), or not an integer, gives an all-zero seed. One thread per
 * pixel writes its K channels. When usePrediction is a constant, the input it
 * leaves unread is not bound.
 */

const THREADS = 256;

function checked(node: Node, inputs: OpInput[]): { logits: OpInput; usePrediction: number | undefined } {
  knownAttrs(node, []);
  const [logits, classIndex, mask, use] = floatInputs(node, inputs, ['logits', 'classIndex', 'mask', 'usePrediction']);
  const [n, , h, w] = logits!.dims;
  if (logits!.dims.length !== 4) throw new ModelError(`${where(node)}: logits '${logits!.name}' must be [N, K, H, W], got [${logits!.dims}]`);
  for (const [what, x] of [
    ['classIndex', classIndex!],
    ['usePrediction', use!],
  ] as const) {
    if (sizeOf(x.dims) !== 1) throw new ModelError(`${where(node)}: ${what} '${x.name}' must hold one value, got shape [${x.dims}]`);
  }
  expectDims(node, 'mask', mask!, [n!, 1, h!, w!], "one channel of the logits' shape");
  return { logits: logits!, usePrediction: use!.value?.data[0] };
}

export const segmentationSeed: OpImpl = {
  infer(node, inputs) {
    const { logits } = checked(node, inputs);
    return [{ type: logits.type, dims: [...logits.dims] }];
  },
  kernels(node, inputs, [out]) {
    const { logits, usePrediction } = checked(node, inputs);
    const [n, k, h, w] = logits.dims as [number, number, number, number];
    const plane = h * w;
    const pixels = n * plane;
    if (pixels * k === 0) return [];
    const declarations: string[] = [];
    const bindings: KernelBinding[] = [];
    const bind = (name: string, index: number) => {
      declarations.push(storage(bindings.length, name, wgslType(inputs[index]!.type)));
      bindings.push({ kind: 'input', index });
      return (at: string) => fromStorage(inputs[index]!.type, `${name}[${at}]`);
    };
    const classIndex = bind('CLASS', 1);
    const predicted = () => {
      const l = bind('L', 0);
      return `var best = ${l('base')};
    var arg = 0u;
    for (var c = 1u; c < ${k}u; c++) {
      let v = ${l(`base + c * ${plane}u`)};
      if (v > best) {
        best = v;
        arg = c;
      }
    }
    m = select(0.0f, 1.0f, f32(arg) == cls);`;
    };
    const masked = () => `m = ${bind('MASK', 2)(`n * ${plane}u + s`)};`;
    let choose: string;
    if (usePrediction === undefined) {
      const use = bind('USE', 3);
      choose = `if (${use('0')} != 0.0f) {
    ${predicted()}
  } else {
    ${masked()}
  }`;
    } else choose = usePrediction !== 0 ? predicted() : masked();
    declarations.push(storage(bindings.length, 'Y', wgslType(out!.type)));
    bindings.push({ kind: 'output', index: 0 });
    return [
      {
        label: 'segmentation_seed',
        wgsl: `${declarations.join('\n')}
${flatMain(
  THREADS,
  `  if (i >= ${pixels}u) { return; }
  let n = i / ${plane}u;
  let s = i % ${plane}u;
  let base = n * ${k * plane}u + s;
  let cls = ${classIndex('0')};
  var m = 0.0f;
  ${choose}
  for (var c = 0u; c < ${k}u; c++) {
    Y[base + c * ${plane}u] = ${toStorage(out!.type, 'select(0.0f, m, f32(c) == cls)')};
  }`,
)}`,
        workgroups: grid(pixels, THREADS),
        bindings,
      },
    ];
  },
};
