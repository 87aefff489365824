import { UnsupportedOpError } from '../errors.js';
import { ONNX_TYPE_CODES } from '../model/fold.js';
import { isFloatType, sizeOf, type ElemType } from '../model/graph.js';
import { runWindow, shifted, splitUnits, type Strided } from './split.js';
import type { Kernel, OpImpl } from './types.js';
import { flatMain, fromStorage, gpuElementBytes, grid, storage, toStorage, wgslType } from './wgsl.js';

/**
 * Cast between float types computed at run time: the joins a session adds
 * between float32 feeds, outputs and captures and float16 activations at
 * --precision f16 (model/precision.ts), and a model's own float casts.
 * Casts of integers are evaluated at load time (model/fold.ts), as they
 * belong to shape computations.
 */

const WORKGROUP = 256;

export const castOps: Record<string, OpImpl> = {
  Cast: {
    infer(node, [x]) {
      const to = ONNX_TYPE_CODES[node.attrs.int('to')];
      if (!to || !isFloatType(to) || !isFloatType(x!.type)) {
        throw new UnsupportedOpError(
          `Cast node '${node.name}': casting ${x!.type} to ${to ?? `type ${node.attrs.int('to')}`} is supported only at load time (its input '${x!.name}' is computed at run time); on the GPU only float to float`,
        );
      }
      return [{ type: to, dims: [...x!.dims] }];
    },
    // An output cast to float32 doubles its bytes (1x21x1024x2048 logits: 176 MB), so it splits into element runs that fit one binding.
    kernels(_node, [x], [out], _opset, { limits }) {
      const count = sizeOf(out!.dims);
      const elements = (type: ElemType): Strided => ({ unitBytes: gpuElementBytes(type), baseBytes: 0, elementBytes: gpuElementBytes(type) });
      const [from, to] = [elements(x!.type), elements(out!.type)];
      const runs = count * Math.max(from.unitBytes, to.unitBytes) <= limits.maxBytes ? [[0, count] as [number, number]] : splitUnits(count, [from, to], limits)!;
      return runs.map((run): Kernel => {
        const [input, output] = [runWindow(from, run, limits), runWindow(to, run, limits)];
        const n = run[1] - run[0];
        return {
          label: `cast_${wgslType(x!.type)}_${wgslType(out!.type)}`,
          wgsl: `${storage(0, 'X', wgslType(x!.type))}
${storage(1, 'Y', wgslType(out!.type))}
${flatMain(WORKGROUP, `  if (i >= ${n}u) { return; }
  Y[${shifted(output.shift)}i] = ${toStorage(out!.type, fromStorage(x!.type, `X[${shifted(input.shift)}i]`))};`)}`,
          workgroups: grid(n, WORKGROUP),
          bindings: [
            { kind: 'input', index: 0, ...(runs.length > 1 ? { window: input.window } : {}) },
            { kind: 'output', index: 0, ...(runs.length > 1 ? { window: output.window } : {}) },
          ],
        };
      });
    },
  },
};
