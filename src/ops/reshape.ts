import { ModelError, UnsupportedOpError } from '../errors.js';
import { flattenDims, reshapeDims, squeezeDims, unsqueezeDims } from '../model/dims.js';
import type { Node } from '../model/graph.js';
import { constInts } from './inputs.js';
import type { OpImpl, OpInput, TensorType } from './types.js';

/**
 * Ops whose output is their input with another shape. They share the input's
 * buffer (row-major order is unchanged) and cost no dispatch.
 */

const same = (x: OpInput, dims: number[]): TensorType[] => [{ type: x.type, dims }];

/** Axes from the attribute (opset < 13) or the optional second input (opset ≥ 13). */
const axesOf = (node: Node, inputs: OpInput[]): number[] | undefined =>
  node.attrs.has('axes') ? node.attrs.ints('axes') : inputs[1]?.name ? constInts(node, inputs, 1) : undefined;

const alias = (infer: OpImpl['infer']): OpImpl => ({ alias: true, infer });

export const reshapeOps: Record<string, OpImpl> = {
  Reshape: alias((node, inputs) => same(inputs[0]!, reshapeDims(node, inputs[0]!.dims, constInts(node, inputs, 1), node.attrs.int('allowzero', 0) === 1))),
  Flatten: alias((node, [x]) => same(x!, flattenDims(node, x!.dims, node.attrs.int('axis', 1)))),
  Squeeze: alias((node, inputs) => same(inputs[0]!, squeezeDims(node, inputs[0]!.dims, axesOf(node, inputs)))),
  Unsqueeze: alias((node, inputs) => {
    const axes = axesOf(node, inputs);
    if (!axes) throw new ModelError(`Unsqueeze node '${node.name}': axes are missing`);
    return same(inputs[0]!, unsqueezeDims(node, inputs[0]!.dims, axes));
  }),
  Identity: alias((_, [x]) => same(x!, [...x!.dims])),
  // At inference Dropout is the identity. training_mode=true (random masks) is refused.
  Dropout: alias((node, inputs) => {
    if (node.outputs.length > 1 && node.outputs[1]) {
      throw new UnsupportedOpError(`Dropout node '${node.name}': the mask output is not supported`);
    }
    if (inputs[2]?.name && constInts(node, inputs, 2)[0]) {
      throw new UnsupportedOpError(`Dropout node '${node.name}': training_mode=true is not supported (inference only)`);
    }
    return same(inputs[0]!, [...inputs[0]!.dims]);
  }),
};
