import { align4 } from '../gpu/buffers.js';
import type { ElemType, TensorType } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import { float32ToFloat16 } from '../model/numeric.js';
import { param, type KernelBinding, type ParamBinding } from './types.js';

/**
 * WGSL scalar type a tensor is stored as on the GPU: float16 tensors as f16
 * (the 'shader-f16' feature; a session stores float tensors as float16 only
 * at --precision f16, see model/precision.ts), other floats as f32,
 * integers and bool as i32.
 */
export const wgslType = (t: ElemType): StorageType => (t === 'float16' ? 'f16' : isFloatType(t) ? 'f32' : 'i32');
export type StorageType = 'f32' | 'f16' | 'i32';

/** Bytes one element of a tensor takes on the GPU. */
export const gpuElementBytes = (t: ElemType): number => (t === 'float16' ? 2 : 4);

/** Bytes of a tensor of `t` in a GPU buffer (gpuElementBytes each). */
export const gpuTensorBytes = (t: TensorType): number => sizeOf(t.dims) * gpuElementBytes(t.type);

/**
 * Float values as a buffer of a tensor stored as `type` holds them: f16 bits
 * for float16, padded to whole 4-byte words as buffer writes need, else f32.
 * For constants and the weights kernels pack from them, which are stored as
 * their tensor is (float16 at --precision f16, model/precision.ts).
 */
export function storedFloats(data: Float32Array | Float64Array, type: ElemType): Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer> {
  if (type === 'float16') return float32ToFloat16(data, new Uint16Array(storedFloatsBytes(data.length, type) / 2));
  // Float32 data goes as it is: writeBuffer copies it anyway, and a feed may be tens of MB every run.
  return data instanceof Float32Array && data.buffer instanceof ArrayBuffer ? (data as Float32Array<ArrayBuffer>) : Float32Array.from(data);
}

/** The bytes storedFloats makes of `length` floats. */
export const storedFloatsBytes = (length: number, type: ElemType): number => (type === 'float16' ? align4(2 * length) : 4 * length);

/**
 * Weights that `pack` writes as a kernel reads them into `length` floats
 * (zeros where it writes nothing), stored as `type` (storedFloats). Packing
 * waits for the upload (runtime/program.ts): a session that holds these
 * weights already never packs them again, and float32 weights are packed
 * straight into the upload's staging memory instead of into new memory
 * that the plan would keep.
 */
export function packedParam(length: number, type: ElemType, pack: (packed: Float32Array<ArrayBuffer>) => void): ParamBinding {
  const bytes = storedFloatsBytes(length, type);
  return {
    kind: 'param',
    bytes,
    data: (target) => {
      if (type === 'float16') {
        const packed = new Float32Array(length);
        pack(packed);
        return float32ToFloat16(packed, target ? new Uint16Array(target.buffer, target.byteOffset, bytes / 2) : new Uint16Array(bytes / 2));
      }
      const packed = target ? new Float32Array(target.buffer, target.byteOffset, length).fill(0) : new Float32Array(length);
      pack(packed);
      return packed;
    },
  };
}

/*
 * Kernels compute floats in f32 whatever the storage: an f16 element is
 * widened where it is loaded and rounded where it is stored, so only the
 * stored activations lose precision, never the accumulations.
 */

/** WGSL of a loaded element of a tensor of type `t`, in its compute type (f32 for any float). */
export const fromStorage = (t: ElemType, expr: string): string => (t === 'float16' ? `f32(${expr})` : expr);

/** WGSL of a computed value converted for storing into a tensor of type `t`. */
export const toStorage = (t: ElemType, expr: string): string => (t === 'float16' ? `f16(${expr})` : expr);

/**
 * WGSL of an element of a `from` tensor stored into a `to` tensor, for
 * kernels that move elements without computing: unchanged when both are
 * stored alike; at --precision f16 a node may read a float32 graph input or
 * write a float32 graph output (model/precision.ts).
 */
export const converted = (from: ElemType, to: ElemType, expr: string): string =>
  wgslType(from) === wgslType(to) ? expr : toStorage(to, fromStorage(from, expr));

/**
 * A WGSL literal of `v` in a tensor's storage type, for kernels that copy
 * stored elements without computing (Pad's fill). WGSL has no literal for
 * infinities: like f32() they become the largest finite value, 65504 in f16.
 */
export function storageLiteral(t: ElemType, v: number): string {
  if (t === 'float16') return `f16(${f32(Math.max(-HALF_MAX, Math.min(HALF_MAX, v)))})`;
  return isFloatType(t) ? f32(v) : `${v | 0}i`;
}
const HALF_MAX = 65504;

/** The most workgroups one dimension of a dispatch may have (WebGPU default limit). */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/**
 * A 2-D dispatch covering `invocations` threads of `workgroupSize` each,
 * because one dimension stops at 65535 workgroups (a 48x1024x2048 map needs
 * 393k). Use with `flatIndex` in the shader.
 */
export function grid(invocations: number, workgroupSize: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(invocations / workgroupSize));
  if (groups <= MAX_WORKGROUPS_PER_DIM) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(groups / y), y, 1];
}

/**
 * Shader header for a flat kernel: `main` receives the linear thread index
 * `i` (may exceed the element count: callers guard it).
 */
export function flatMain(workgroupSize: number, body: string): string {
  return `
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${workgroupSize}u;
${body}
}`;
}

/** 0, 1, …, n - 1: for unrolling generated code. */
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Row-major strides of a shape. */
export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let d = dims.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= dims[d]!;
  }
  return s;
}

/** A WGSL float literal that always parses as f32 (`1` would be an integer). */
export function f32(x: number): string {
  if (Number.isNaN(x)) throw new Error('NaN has no WGSL literal');
  if (x === Infinity) return '0x1.fffffep+127f';
  if (x === -Infinity) return '-0x1.fffffep+127f';
  const s = Math.fround(x).toString();
  return /[.e]/.test(s) ? `${s}f` : `${s}.0f`;
}

/**
 * Storage declaration for a binding. The runtime's kernels declare every
 * binding read_write, inputs too: a session packs tensors into shared
 * buffers (model/memory.ts), so one dispatch may read one range of a buffer
 * and write another, and WebGPU refuses a buffer bound both read-only and
 * writable in one dispatch, while writable bindings may share it.
 */
export const storage = (binding: number, name: string, type: StorageType | 'u32' | 'vec4f' | 'vec4<f16>', access: 'read' | 'read_write' = 'read_write') =>
  `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${type}>;`;

/**
 * Sizes a kernel reads from a small buffer of its own (`let name =
 * Sizes[i];` at the top of main) instead of baking them into its code, so
 * kernels that differ only in those sizes share one pipeline: on lavapipe a
 * cold session build is nearly all llvmpipe compiling each pipeline. The
 * buffer is read-only (bound nowhere else): WGSL's uniformity analysis takes
 * values read from read_write storage as non-uniform, and loops around
 * subgroup operations must be uniform.
 */
export function sizesFromBuffer(sizes: Readonly<Record<string, number>>, binding: number): { declaration: string; lets: string; binding: KernelBinding } {
  const names = Object.keys(sizes);
  return {
    declaration: storage(binding, 'Sizes', 'u32', 'read'),
    lets: names.map((name, i) => `  let ${name} = Sizes[${i}];`).join('\n'),
    binding: param(Uint32Array.from(names, (name) => sizes[name]!)),
  };
}

/*
 * Strided index math shared by the data-movement and elementwise ops: thread
 * `i` walks a row-major shape and reads (or writes) the element at
 * `sum(coord[a] * stride[a])` of another buffer.
 */

/** A shape walked row-major, and the stride each of its axes has in another buffer (0: broadcast). */
export interface StridedView {
  dims: number[];
  strides: number[];
}

/**
 * Drops size-1 axes and merges neighbours the other buffer walks
 * contiguously (outer stride = inner stride * inner size, which two broadcast
 * axes satisfy too), so the shader does as few divisions as possible: a
 * per-channel [C,1,1] operand against [1,C,H,W] becomes dims [C, H*W] with
 * strides [1, 0].
 */
export function collapseAxes(dims: readonly number[], srcStrides: readonly number[]): StridedView {
  const view: StridedView = { dims: [], strides: [] };
  dims.forEach((d, a) => {
    if (d === 1) return;
    const last = view.dims.length - 1;
    if (last >= 0 && view.strides[last] === srcStrides[a]! * d) {
      view.dims[last] *= d;
      view.strides[last] = srcStrides[a]!;
    } else {
      view.dims.push(d);
      view.strides.push(srcStrides[a]!);
    }
  });
  return view;
}

/**
 * WGSL u32 expression of `sum(coord[a] * strides[a])`, the coordinates being
 * those of the flat index `i` (< the view's size: callers guard it) in
 * `view.dims`. Axes of stride 0 cost nothing.
 */
export function stridedIndex(view: StridedView, i = 'i'): string {
  const total = sizeOf(view.dims);
  const rowMajor = strides(view.dims);
  const terms = view.dims.flatMap((d, a) => {
    const s = view.strides[a]!;
    if (s === 0) return [];
    const step = rowMajor[a]!;
    let coord = step === 1 ? i : `(${i} / ${step}u)`;
    // The outermost axis needs no modulo: i / step < d already.
    if (step * d < total) coord = `(${coord} % ${d}u)`;
    return [s === 1 ? coord : `${coord} * ${s}u`];
  });
  return terms.join(' + ') || '0u';
}

/** WGSL expressions of the coordinates of the flat index `i` in the row-major `dims`. */
export function axisCoordinates(dims: readonly number[], i = 'i'): string[] {
  const total = sizeOf(dims);
  return strides(dims).map((step, a) => {
    const c = step === 1 ? i : `(${i} / ${step}u)`;
    // The outermost axis needs no modulo.
    return step * dims[a]! < total ? `(${c} % ${dims[a]}u)` : c;
  });
}

/**
 * WGSL of i32_to_f32: an i32 rounded to the nearest f32, ties to even, as a
 * CPU converts it (int32 sums beyond 2^24). WGSL lets a conversion that must
 * round pick either neighbour; the sum of two exactly converted parts is
 * correctly rounded.
 */
export const I32_TO_F32 = `
fn i32_to_f32(v: i32) -> f32 {
  let high = v & ~255i;
  return f32(high) + f32(v - high);
}`;

/**
 * ReLU of the WGSL expression `x`, as onnxruntime and PyTorch compute it:
 * 0 where x < 0, else x, so NaN stays NaN (WGSL's max(x, 0.0) may return
 * either operand when one is NaN, and lavapipe returns 0). The one
 * definition for the Relu kernel and the fused epilogues, so that fusing
 * changes no bit.
 */
export const relu = (x: string): string => `select(${x}, 0.0f, ${x} < 0.0f)`;
