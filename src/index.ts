/**
 * segscope's library entry for Node: load an ONNX model, open a WebGPU
 * device through Dawn, build sessions. The engine itself (src/model, src/ops,
 * src/runtime) has no Node dependency and also runs on `navigator.gpu`.
 */
import type { Gpu } from './gpu/device.js';
import { openDawn, type DawnOptions } from './gpu/dawn.js';
import { readModelFile } from './io/model-file.js';
import type { Graph } from './model/graph.js';
import { Session, type SessionOptions } from './runtime/session.js';

export * from './errors.js';
export type { Gpu } from './gpu/device.js';
export { openDevice } from './gpu/device.js';
export { openDawn, type DawnOptions } from './gpu/dawn.js';
export type { Graph, HostTensor, ElemType } from './model/graph.js';
export { readModelFile } from './io/model-file.js';
export { decodeNpy, encodeNpy } from './io/npy.js';
export { Session, type SessionOptions } from './runtime/session.js';

export interface Model {
  graph: Graph;
  gpu: Gpu;
  /** Compiles the model for one set of input shapes. */
  session(options?: SessionOptions): Promise<Session>;
}

/** Reads `path` (with its external data) and opens a GPU device (or uses `options.gpu`). */
export async function loadModel(path: string, options: DawnOptions & { gpu?: Gpu } = {}): Promise<Model> {
  const graph = await readModelFile(path);
  const gpu = options.gpu ?? (await openDawn(options));
  return { graph, gpu, session: (o) => Session.create(gpu, graph, o) };
}
