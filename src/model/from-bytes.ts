/**
 * A model from bytes in memory: what a browser has (fetch, a file input) and
 * what io/model-file.ts has once it has read the file. External data files,
 * which a browser cannot open by name, come as bytes by name, or through a
 * reader (io/model-file.ts reads them from the model's folder).
 */
import { ModelError } from '../errors.js';
import { decodeModel } from '../onnx/decode.js';
import { graphFromModel } from './from-onnx.js';
import type { Graph } from './graph.js';
import type { ExternalDataReader } from './tensor-proto.js';

/**
 * The model's external data files, by the `location` the model names them
 * with (e.g. 'model.onnx.data'); a location that is not a key is refused, so
 * a model reads nothing it was not given. Or a reader, for files on disk.
 */
export type ExternalData = ReadonlyMap<string, Uint8Array> | ExternalDataReader;

/**
 * Decodes an ONNX model held in memory into a Graph; `source` names it in
 * errors. With `adoptBytes` the caller gives up `bytes` and the arrays a
 * reader `externalData` returns (io/model-file.ts reads them for this):
 * float32 tensors become views of them instead of copies, and `bytes` is
 * changed in place (see TensorContext.adoptBytes).
 */
export function modelFromBytes(bytes: Uint8Array, source: string, externalData?: ExternalData, options: { adoptBytes?: boolean } = {}): Graph {
  const readExternal = typeof externalData === 'function' ? externalData : externalData && readFromMap(externalData);
  // Arrays from a map are the caller's, shared between tensors: never adopted.
  const adoptBytes = options.adoptBytes && typeof externalData !== 'object';
  return graphFromModel(decodeModel(bytes, source), { source, readExternal, adoptBytes });
}

function readFromMap(files: ReadonlyMap<string, Uint8Array>): ExternalDataReader {
  return (location, offset, length) => {
    const file = files.get(location);
    if (!file) {
      const given = [...files.keys()].map((name) => `'${name}'`).join(', ') || 'none';
      throw new ModelError(`external data file '${location}' was not given (given: ${given})`);
    }
    return file.subarray(offset, externalDataEnd(location, file.length, offset, length));
  };
}

/** Where `length` bytes at `offset` end in a file of `size` bytes (its end when length is undefined); refuses ranges past it. */
export function externalDataEnd(file: string, size: number, offset: number, length: number | undefined): number {
  const end = length === undefined ? size : offset + length;
  if (offset > size || end > size) {
    const want = length === undefined ? `offset ${offset}` : `${length} bytes at offset ${offset}`;
    throw new ModelError(`external data file '${file}' is ${size} bytes, too short for ${want}`);
  }
  return end;
}
