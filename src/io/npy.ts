import { InputError } from '../errors.js';
import type { ElemType, HostTensor } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import { float16ToFloat32 } from '../model/numeric.js';

/**
 * NumPy .npy (format versions 1-3), the interchange format of NumPy and
 * PyTorch (`np.save(t.numpy())`). Reading accepts the dtypes an exported
 * model's inputs can have; writing uses the tensor's ONNX element type:
 * float32 as '<f4', integers in their own dtype (a quantized model's uint8
 * activations as '|u1', ArgMax's int64 as '<i8'), bool as '|b1'.
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DESCR: Record<string, { bytes: number; type: ElemType; read: (v: DataView, o: number) => number; write?: (v: DataView, o: number, x: number) => void }> =
  {
    '<f4': { bytes: 4, type: 'float32', read: (v, o) => v.getFloat32(o, true), write: (v, o, x) => v.setFloat32(o, x, true) },
    '<f8': { bytes: 8, type: 'float32', read: (v, o) => v.getFloat64(o, true) },
    '<f2': { bytes: 2, type: 'float32', read: (v, o) => float16ToFloat32([v.getUint16(o, true)])[0]! },
    '<i8': { bytes: 8, type: 'int64', read: (v, o) => Number(v.getBigInt64(o, true)), write: (v, o, x) => v.setBigInt64(o, BigInt(Math.trunc(x)), true) },
    '<i4': { bytes: 4, type: 'int32', read: (v, o) => v.getInt32(o, true), write: (v, o, x) => v.setInt32(o, x, true) },
    '<i2': { bytes: 2, type: 'int16', read: (v, o) => v.getInt16(o, true), write: (v, o, x) => v.setInt16(o, x, true) },
    '|i1': { bytes: 1, type: 'int8', read: (v, o) => v.getInt8(o), write: (v, o, x) => v.setInt8(o, x) },
    '|u1': { bytes: 1, type: 'uint8', read: (v, o) => v.getUint8(o), write: (v, o, x) => v.setUint8(o, x) },
    '|b1': { bytes: 1, type: 'bool', read: (v, o) => v.getUint8(o), write: (v, o, x) => v.setUint8(o, x) },
  };

/** The dtype a tensor is written as: its own where NumPy has it (floats as float32, as held on the host), else int64, which holds every other integer type's values. */
function writtenDescr(type: ElemType): string {
  if (isFloatType(type)) return '<f4';
  return Object.keys(DESCR).find((d) => DESCR[d]!.write && DESCR[d]!.type === type) ?? '<i8';
}

export function decodeNpy(bytes: Uint8Array, source: string): HostTensor {
  const fail = (why: string) => new InputError(`${source}: not a readable .npy file: ${why}`);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw fail('missing the \\x93NUMPY magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw fail(`unknown format version ${major}`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLength > bytes.length) throw fail('header runs past the end of the file');
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw fail(`malformed header ${JSON.stringify(header.trim())}`);
  const kind = DESCR[descr === '<b1' ? '|b1' : descr];
  if (!kind) throw fail(`dtype '${descr}' is not supported (use float32, float64, float16, int64, int32, int16, int8, uint8 or bool)`);
  if (fortran === 'True') throw fail('fortran_order arrays are not supported: save with np.ascontiguousarray');
  const dims = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw fail(`bad shape (${shapeText})`);
  const n = sizeOf(dims);
  const offset = start + headerLength;
  if (offset + n * kind.bytes > bytes.length)
    throw fail(`shape (${dims.join(', ')}) needs ${n * kind.bytes} data bytes, the file has ${bytes.length - offset}`);
  const data = isFloatType(kind.type) ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = kind.read(view, offset + i * kind.bytes);
  return { type: kind.type, dims, data };
}

export function encodeNpy(t: HostTensor): Uint8Array {
  const descr = writtenDescr(t.type);
  const { bytes, write } = DESCR[descr]!;
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad so that the data starts on a 64-byte boundary, as NumPy does.
  header += `${' '.repeat(63 - ((10 + header.length) % 64))}\n`;
  const headerBytes = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + headerBytes.length + t.data.length * bytes);
  out.set(MAGIC);
  out[6] = 1;
  const view = new DataView(out.buffer);
  view.setUint16(8, headerBytes.length, true);
  out.set(headerBytes, 10);
  const offset = 10 + headerBytes.length;
  for (let i = 0; i < t.data.length; i++) write!(view, offset + i * bytes, t.data[i]!);
  return out;
}
