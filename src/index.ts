/**
 * segscope's library entry for Node: everything the browser entry has
 * (browser.ts: the engine, vis, metrics, preprocessing, the workflow), plus
 * what needs Node: model, image and mask files, a WebGPU device through
 * Dawn, .npy/.npz.
 */
import type { Gpu } from './gpu/device.js';
import { openDawn, type DawnOptions } from './gpu/dawn.js';
import { readModelFile } from './io/model-file.js';
import { writeFileAtomic } from './io/files.js';
import { encodeNpy } from './io/npy.js';
import type { Graph, HostTensor } from './model/graph.js';
import { CapturedTensor } from './runtime/captured.js';
import { Session, type SessionOptions } from './runtime/session.js';

export * from './browser.js';
export { openDawn, type DawnOptions } from './gpu/dawn.js';
export { readModelFile } from './io/model-file.js';
export { decodeNpy, encodeNpy } from './io/npy.js';
export { decodeNpz, encodeNpz } from './io/npz.js';
export { decodeImage, readImage, writePng, type Image, type ReadImageOptions } from './io/image.js';
export { readLabel } from './io/labels.js';

export interface Model {
  graph: Graph;
  gpu: Gpu;
  /**
   * Compiles the model for one set of input shapes: either SessionOptions, or
   * just the shapes by input name (`{ input: [1, 3, 513, 513] }`).
   */
  session(options?: SessionOptions | Record<string, number[]>): Promise<Session>;
}

/** Reads `path` (with its external data) and opens a GPU device (or uses `options.gpu`). */
export async function loadModel(path: string, options: DawnOptions & { gpu?: Gpu } = {}): Promise<Model> {
  const graph = await readModelFile(path);
  const gpu = options.gpu ?? (await openDawn(options));
  return { graph, gpu, session: (o = {}) => Session.create(gpu, graph, isShapes(o) ? { inputShapes: o } : o) };
}

const isShapes = (o: object): o is Record<string, number[]> => Object.values(o).length > 0 && Object.values(o).every(Array.isArray);

/** Writes a tensor (on the host, or captured on the GPU) as a NumPy .npy file. */
export async function saveNpy(path: string, tensor: HostTensor | CapturedTensor): Promise<void> {
  await writeFileAtomic(path, encodeNpy(tensor instanceof CapturedTensor ? await tensor.toHost() : tensor));
}
