/**
 * Bytes ⇄ ONNX messages. Decoding never lets a protobufjs error escape:
 * truncated or corrupted files surface as a ModelError naming the file.
 */
import type { IConversionOptions, Type } from 'protobufjs';
import { ModelError } from '../errors.js';
import { ModelProtoType, TensorProtoType, type ModelProto, type TensorProto } from './schema.js';

/**
 * int64 as JS numbers; bytes stay the Uint8Array views protobufjs decoded
 * (no copy, so raw_data may sit at any byteOffset of the file's buffer).
 */
const PLAIN: IConversionOptions = { longs: Number };

function decodeMessage(type: Type, bytes: Uint8Array, source: string, what: string): unknown {
  try {
    return type.toObject(type.decode(bytes), PLAIN);
  } catch (e) {
    // protobufjs reports malformed input as RangeError, ProtocolError or plain Error.
    const reason = e instanceof Error ? e.message : String(e);
    throw new ModelError(`${source}: not a valid ${what}: the protobuf data is truncated or corrupted (${reason})`);
  }
}

/** Decodes a .onnx file. `source` names the file in errors. */
export function decodeModel(bytes: Uint8Array, source: string): ModelProto {
  return decodeMessage(ModelProtoType, bytes, source, 'ONNX model') as ModelProto;
}

/** Decodes a serialized TensorProto, e.g. the test_data_set_N/*.pb files of the ONNX backend tests. */
export function decodeTensor(bytes: Uint8Array, source: string): TensorProto {
  return decodeMessage(TensorProtoType, bytes, source, 'ONNX TensorProto') as TensorProto;
}

/** Serializes a model; used to build test models and to expose intermediate tensors to onnxruntime. */
export function encodeModel(model: ModelProto): Uint8Array {
  return ModelProtoType.encode(ModelProtoType.fromObject(model)).finish();
}
