/**
 * Parameter inputs: graph inputs that decide a value the engine needs at
 * load time (a Reshape's shape, Resize's scales or sizes, Pad's pads, Clip's
 * bounds, the inputs of ops only the CPU folder evaluates). Shapes are
 * static, so a Session reads these inputs on the host at run time and plans
 * the model for their values, one plan per distinct set of values
 * (session.ts). They must be small: their values become constants of a plan.
 */
import { FOLDS_FROM_TYPE } from '../model/fold.js';
import { type Graph, type HostTensor, producers } from '../model/graph.js';

/** The most elements a parameter input may have. */
export const MAX_PARAMETER_ELEMENTS = 1024;

/**
 * The graph inputs that `tensors`' values are computed from, in graph
 * order: their ancestors, up to initializers and ops that fold from their
 * inputs' types alone (Shape of the image input needs no pixels).
 */
export function inputsDeciding(graph: Graph, tensors: readonly string[]): string[] {
  const producerOf = producers(graph.nodes);
  const inputs = new Set(graph.inputs.map((i) => i.name));
  const found = new Set<string>();
  const seen = new Set<string>();
  const pending = [...tensors];
  while (pending.length) {
    const t = pending.pop()!;
    if (!t || seen.has(t)) continue;
    seen.add(t);
    if (inputs.has(t)) found.add(t);
    const producer = producerOf.get(t);
    if (producer && !FOLDS_FROM_TYPE.has(producer.opType)) pending.push(...producer.inputs);
  }
  return graph.inputs.map((i) => i.name).filter((name) => found.has(name));
}

const valueText = (v: number) => (Object.is(v, -0) ? '-0' : String(v));

/** The key of a set of parameter values: equal exactly when names, types, shapes and every value (-0 and NaN included) are. */
export function parameterKey(values: ReadonlyMap<string, HostTensor>): string {
  return [...values].map(([name, t]) => `${name}:${t.type}[${t.dims.join(',')}]${Array.from(t.data, valueText).join(',')}`).join(';');
}

/** Parameter values for messages: `'shape' = [1,-1,4]`, long ones cut short. */
export function describeParameters(values: ReadonlyMap<string, HostTensor>): string {
  const shown = 8;
  return [...values]
    .map(([name, t]) => {
      const head = Array.from(t.data.subarray(0, shown), valueText).join(',');
      return `'${name}' = [${head}${t.data.length > shown ? `,… (${t.data.length} values)` : ''}]`;
    })
    .join(', ');
}
