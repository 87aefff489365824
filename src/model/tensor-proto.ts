/**
 * TensorProto → HostTensor. Floating-point data becomes Float32Array
 * (float16, bfloat16 and double are converted), integer and bool data
 * becomes Float64Array of exact integers (see HostTensor in model/graph.ts).
 */
import { ModelError } from '../errors.js';
import { MAX_ELEMENTS, type ElemType, type HostTensor } from './graph.js';
import { float16ToFloat32 } from './numeric.js';
import { DataLocation, DataType, enumName, type TensorProto } from '../onnx/schema.js';

/**
 * Reads `length` bytes at `offset` of an external data file named by a
 * TensorProto's `location` (relative to the model's folder); `length`
 * undefined means up to the end of the file. Supplied by the caller: the
 * engine itself has no file access.
 */
export type ExternalDataReader = (location: string, offset: number, length: number | undefined) => Uint8Array;

export interface TensorContext {
  /** The model file, for error messages ('' when built in memory). */
  source: string;
  readExternal?: ExternalDataReader;
  /**
   * The model's bytes and what readExternal returns are the loader's own,
   * given up to the graph: float32 tensors may be views of them, moved into
   * alignment in place (adoptedFloats) instead of copied.
   */
  adoptBytes?: boolean;
}

type TypedField = 'float_data' | 'int32_data' | 'int64_data' | 'double_data' | 'uint64_data';

interface ElemInfo {
  type: ElemType;
  /** Bytes per element in raw_data. */
  size: number;
  /** Where the spec puts the values when raw_data is not used. */
  field: TypedField;
}

const ELEM_INFO: ReadonlyMap<number, ElemInfo> = new Map<number, ElemInfo>([
  [DataType.FLOAT, { type: 'float32', size: 4, field: 'float_data' }],
  [DataType.UINT8, { type: 'uint8', size: 1, field: 'int32_data' }],
  [DataType.INT8, { type: 'int8', size: 1, field: 'int32_data' }],
  [DataType.UINT16, { type: 'uint16', size: 2, field: 'int32_data' }],
  [DataType.INT16, { type: 'int16', size: 2, field: 'int32_data' }],
  [DataType.INT32, { type: 'int32', size: 4, field: 'int32_data' }],
  [DataType.INT64, { type: 'int64', size: 8, field: 'int64_data' }],
  [DataType.BOOL, { type: 'bool', size: 1, field: 'int32_data' }],
  // float16/bfloat16 values travel in int32_data as their 16-bit patterns.
  [DataType.FLOAT16, { type: 'float16', size: 2, field: 'int32_data' }],
  [DataType.DOUBLE, { type: 'float64', size: 8, field: 'double_data' }],
  [DataType.UINT32, { type: 'uint32', size: 4, field: 'uint64_data' }],
  [DataType.UINT64, { type: 'uint64', size: 8, field: 'uint64_data' }],
  [DataType.BFLOAT16, { type: 'bfloat16', size: 2, field: 'int32_data' }],
]);

/**
 * The ElemType of an ONNX data type (as used by TypeProto.Tensor.elem_type),
 * or undefined for types segscope does not know (complex, float8, int4, …).
 */
export function elemTypeOf(dataType: number): ElemType | undefined {
  return dataType === DataType.STRING ? 'string' : ELEM_INFO.get(dataType)?.type;
}

/** `label` names the tensor in errors; defaults to `tensor '<name>'`. */
export function tensorFromProto(t: TensorProto, ctx: TensorContext, label = `tensor '${t.name ?? ''}'`): HostTensor {
  const where = ctx.source ? `${ctx.source}: ${label}` : label;
  const fail = (problem: string): never => {
    throw new ModelError(`${where}: ${problem}`);
  };

  const dataType = t.data_type ?? DataType.UNDEFINED;
  const info = ELEM_INFO.get(dataType);
  if (!info) {
    const name = enumName(DataType, dataType);
    return fail(dataType === DataType.STRING ? 'string tensors are not supported' : `data type ${name} is not supported`);
  }
  if (t.segment) fail('segmented tensors (TensorProto.segment) are not supported');

  const dims = t.dims ?? [];
  const count = elementCount(dims, fail);

  let raw = t.raw_data;
  const external = t.data_location === DataLocation.EXTERNAL;
  if (external) {
    raw = readExternalData(t, ctx, info.size * count, fail);
  } else if (raw?.length && t[info.field]?.length) {
    fail(`sets both raw_data and ${info.field}`);
  }

  const adopted = ctx.adoptBytes && dataType === DataType.FLOAT && raw?.length === count * info.size ? adoptedFloats(raw, count, !external) : undefined;
  const data = adopted ?? (raw?.length ? fromRaw(raw, dataType, info, count, fail) : fromTypedField(t[info.field] ?? [], dataType, info, count, fail));
  const type: ElemType = data instanceof Float32Array ? 'float32' : info.type;
  return { type, dims: [...dims], data };
}

/**
 * Float32 raw data as a view of the bytes it lies in, where those are the
 * loader's own (TensorContext.adoptBytes). Data off a 4-byte boundary is
 * moved back onto one, by up to 3 bytes, over the tag and length of its own
 * raw_data field, which precede it in the file and which nothing reads
 * once the model is decoded (`framed`: raw_data's tag takes 1 byte, a
 * length of 128 or more 2 at least; other data is copied). Why: copying
 * ResNet-101's 237 MB of weights into new arrays was 0.7 s of its 1.8 s
 * read, most of it touching fresh memory. The price: the file's buffer
 * lives as long as any of its tensors.
 */
function adoptedFloats(raw: Uint8Array, count: number, framed: boolean): Float32Array | undefined {
  const shift = raw.byteOffset % 4;
  if (shift && !(framed && raw.length >= 128)) return undefined;
  const start = raw.byteOffset - shift;
  if (shift) new Uint8Array(raw.buffer, start, raw.length + shift).copyWithin(0, shift);
  return new Float32Array(raw.buffer, start, count);
}

function elementCount(dims: readonly number[], fail: (problem: string) => never): number {
  let count = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) fail(`dims [${dims.join(',')}] must be non-negative integers`);
    // Both factors stay ≤ 2^31, so the product is exact and the check is sound.
    count = d > MAX_ELEMENTS ? Infinity : count * d;
    if (count > MAX_ELEMENTS) fail(`dims [${dims.join(',')}] give more than 2^31 elements, which segscope does not support`);
  }
  return count;
}

function readExternalData(t: TensorProto, ctx: TensorContext, expectedBytes: number, fail: (problem: string) => never): Uint8Array {
  const keys = new Map((t.external_data ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = keys.get('location');
  if (!location) return fail("stores its data externally but external_data has no 'location'");
  const offset = externalInt(keys.get('offset'), 'offset', fail) ?? 0;
  const length = externalInt(keys.get('length'), 'length', fail);
  if (!ctx.readExternal) {
    return fail(
      `stores its data in external file '${location}', but no external data was given (pass its files to modelFromBytes, or load the model from a file)`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = ctx.readExternal(location, offset, length);
  } catch (e) {
    return fail(e instanceof Error ? e.message : String(e));
  }
  if (bytes.length !== expectedBytes) {
    fail(`external data '${location}' (offset ${offset}) holds ${bytes.length} bytes, but dims [${(t.dims ?? []).join(',')}] need ${expectedBytes}`);
  }
  return bytes;
}

function externalInt(value: string | undefined, key: string, fail: (problem: string) => never): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) fail(`external_data '${key}' must be a non-negative integer, got '${value}'`);
  return n;
}

function fromRaw(raw: Uint8Array, dataType: number, info: ElemInfo, count: number, fail: (problem: string) => never): Float32Array | Float64Array {
  if (raw.length !== count * info.size) {
    fail(`raw_data holds ${raw.length} bytes, expected ${count * info.size} (${count} × ${enumName(DataType, dataType)})`);
  }
  // Typed-array views need an element-aligned offset, and protobufjs hands
  // out views into the file buffer at arbitrary offsets: copy once into a
  // fresh buffer (set() is a memcpy), which also lets the file buffer be freed.
  // The views read host byte order; every platform with WebGPU is little-endian, like raw_data.
  const bytes = new Uint8Array(raw.length);
  bytes.set(raw);
  const { buffer } = bytes;
  switch (dataType) {
    case DataType.FLOAT:
      return new Float32Array(buffer);
    case DataType.DOUBLE:
      return Float32Array.from(new Float64Array(buffer));
    case DataType.FLOAT16:
      return float16ToFloat32(new Uint16Array(buffer));
    case DataType.BFLOAT16:
      return bfloatBitsToFloat32(new Uint16Array(buffer));
    case DataType.UINT8:
      return Float64Array.from(new Uint8Array(buffer));
    case DataType.INT8:
      return Float64Array.from(new Int8Array(buffer));
    case DataType.UINT16:
      return Float64Array.from(new Uint16Array(buffer));
    case DataType.INT16:
      return Float64Array.from(new Int16Array(buffer));
    case DataType.INT32:
      return Float64Array.from(new Int32Array(buffer));
    case DataType.UINT32:
      return Float64Array.from(new Uint32Array(buffer));
    case DataType.BOOL:
      return Float64Array.from(new Uint8Array(buffer), (b) => (b !== 0 ? 1 : 0));
    case DataType.INT64:
      return words64ToFloat64(new Uint32Array(buffer), true);
    case DataType.UINT64:
      return words64ToFloat64(new Uint32Array(buffer), false);
    default:
      return fail(`raw_data of type ${enumName(DataType, dataType)} is not supported`);
  }
}

function fromTypedField(
  values: readonly number[],
  dataType: number,
  info: ElemInfo,
  count: number,
  fail: (problem: string) => never,
): Float32Array | Float64Array {
  if (values.length !== count) fail(`${info.field} holds ${values.length} values, expected ${count}`);
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.DOUBLE:
      return Float32Array.from(values);
    case DataType.FLOAT16:
      return float16ToFloat32(values);
    case DataType.BFLOAT16:
      return bfloatBitsToFloat32(Uint16Array.from(values, (v) => v & 0xffff));
    case DataType.BOOL:
      return Float64Array.from(values, (v) => (v !== 0 ? 1 : 0));
    default:
      return Float64Array.from(values);
  }
}

/** Little-endian (low, high) 32-bit word pairs → nearest doubles. */
function words64ToFloat64(words: Uint32Array, signed: boolean): Float64Array {
  const out = new Float64Array(words.length / 2);
  for (let i = 0; i < out.length; i++) {
    const high = signed ? words[2 * i + 1] | 0 : words[2 * i + 1];
    // high * 2^32 is exact, so the sum rounds once: exact below 2^53, nearest double beyond.
    out[i] = high * 2 ** 32 + words[2 * i];
  }
  return out;
}

/** bfloat16 is the high half of a float32. */
function bfloatBitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const words = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) words[i] = bits[i] << 16;
  return out;
}
