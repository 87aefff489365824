import { GpuError, InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { align4, readBack } from '../gpu/buffers.js';
import { computePipeline, pipelinesValidated } from '../gpu/pipelines.js';
import type { Kernel } from '../kernels/types.js';
import { isFloatType, sizeOf, type ElemType } from '../model/graph.js';
import { storage } from '../kernels/wgsl.js';

/**
 * A float32 tensor on the GPU: `buffer` holds it in row-major (NCHW) order
 * from offset 0 (the buffer may be larger). Every stage returns one; the
 * caller owns its buffer (`t.buffer.destroy()`).
 */
export interface GpuTensor {
  readonly buffer: GPUBuffer;
  readonly dims: readonly number[];
}

/**
 * What the stages accept: a GpuTensor or a CapturedTensor as it is (whose
 * buffer is undefined for a load-time constant: refused with an InputError).
 */
export interface TensorLike {
  readonly buffer: GPUBuffer | undefined;
  readonly dims: readonly number[];
  /** Where the tensor starts in `buffer`, in bytes (default 0; a session packs tensors into shared buffers). */
  readonly offset?: number;
}

/** `bytes` of a buffer from `offset` (default 0). */
export interface BufferRange {
  buffer: GPUBuffer;
  bytes: number;
  offset?: number;
}

/** What a vis stage dispatches: a kernel as the ops build them, bound to concrete buffers instead of node tensors. */
export type Dispatch = Pick<Kernel, 'label' | 'wgsl' | 'workgroups'>;

/** Where a stage records its dispatches: a shared CommandBatch, or (default) its own, submitted at once. */
export interface StageOptions {
  batch?: CommandBatch;
}

const STORAGE = (): number => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * One command encoder that several stages record into, submitted once.
 * Buffers marked temporary are destroyed right after the submit (WebGPU
 * frees them once the submitted work is done).
 */
export class CommandBatch {
  readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | undefined;
  private readonly temporaries: GPUBuffer[] = [];
  private submitted = false;

  constructor(readonly gpu: Gpu) {
    if (gpu.lost) throw gpu.lost;
    this.encoder = gpu.device.createCommandEncoder({ label: 'segscope vis' });
  }

  /** A zero-filled float/u32 storage buffer of `bytes` (rounded up to 4). */
  buffer(bytes: number, label: string): GPUBuffer {
    this.checkBinding(bytes, label);
    return this.gpu.device.createBuffer({ size: align4(bytes), usage: STORAGE(), label });
  }

  /** A zero-filled buffer destroyed after the submit. */
  temporary(bytes: number, label: string): GPUBuffer {
    return this.adopt(this.buffer(bytes, label));
  }

  /** A temporary buffer holding `data` (written before the batch runs). */
  upload(data: Uint32Array<ArrayBuffer> | Float32Array<ArrayBuffer>, label: string): GPUBuffer {
    const b = this.temporary(data.byteLength, label);
    this.gpu.device.queue.writeBuffer(b, 0, data);
    return b;
  }

  /** Destroys `buffer` after the submit. */
  adopt(buffer: GPUBuffer): GPUBuffer {
    this.temporaries.push(buffer);
    return buffer;
  }

  /**
   * Records one dispatch of `kernel` (WGSL, label and grid, as the ops'
   * kernels have them) with `buffers` bound at 0, 1, … (each bound whole, or
   * `bytes` of it from `offset`). A binding over the device's limit is
   * refused with the stage's label, before recording.
   */
  dispatch({ label, wgsl: code, workgroups }: Dispatch, buffers: (GPUBuffer | BufferRange)[]): void {
    this.open();
    for (const b of buffers) this.checkBinding('bytes' in b ? b.bytes : b.size, label);
    const pipeline = computePipeline(this.gpu.device, code, label);
    const entries = buffers.map(
      (b, binding): GPUBindGroupEntry =>
        'bytes' in b ? { binding, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: align4(b.bytes) } } : { binding, resource: { buffer: b } },
    );
    const bindGroup = this.gpu.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label });
    this.pass ??= this.encoder.beginComputePass({ label });
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(...workgroups);
  }

  /** Records a copy of `bytes` (a multiple of 4) from the start of `from` to `to` at `offset`. */
  copy(from: GPUBuffer, to: GPUBuffer, bytes: number, offset = 0): void {
    this.open();
    this.endPass();
    this.encoder.copyBufferToBuffer(from, 0, to, offset, align4(bytes));
  }

  /** Submits everything recorded and releases the temporaries. The batch cannot be used again. */
  submit(): void {
    this.open();
    this.endPass();
    this.submitted = true;
    this.gpu.device.queue.submit([this.encoder.finish()]);
    for (const b of this.temporaries.splice(0)) b.destroy();
  }

  /** Drops everything recorded (after an error): destroys the temporaries; the batch cannot be used again. */
  discard(): void {
    this.submitted = true;
    this.pass = undefined;
    for (const b of this.temporaries.splice(0)) b.destroy();
  }

  /** Reads `bytes` of `buffer` back after everything recorded so far: records the copy, submits the batch, maps. */
  async readAfterSubmit(reads: BufferRange[]): Promise<ArrayBuffer[]> {
    this.open();
    this.endPass();
    this.submitted = true;
    const values = readBack(this.gpu, this.encoder, reads);
    for (const b of this.temporaries.splice(0)) b.destroy();
    // A stage's refused shader fails the read, named, even outside `checked`.
    await pipelinesValidated(this.gpu.device);
    return values;
  }

  private open(): void {
    if (this.submitted) throw new InputError('this CommandBatch was already submitted: start a new one');
    if (this.gpu.lost) throw this.gpu.lost;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  private checkBinding(bytes: number, what: string): void {
    const limit = this.gpu.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new GpuError(`${what}: ${bytes} bytes exceed the device's storage binding limit (maxStorageBufferBindingSize ${limit})`);
    }
  }
}

/** Runs `body` in `options.batch`, or in a batch of its own submitted right after. */
export function record<T>(gpu: Gpu, options: StageOptions, body: (batch: CommandBatch) => T): T {
  if (options.batch) {
    if (options.batch.gpu.device !== gpu.device) throw new InputError('the CommandBatch belongs to another device');
    return body(options.batch);
  }
  const batch = new CommandBatch(gpu);
  const result = body(batch);
  batch.submit();
  return result;
}

/**
 * Checks that `t` is a float tensor with positive sizes whose buffer holds
 * it and, unless the stage `splits` it into runs of channels (reduce.ts
 * channelRuns), that the device can bind.
 */
export function checkTensor(gpu: Gpu, t: TensorLike, what: string, splits = false): void {
  const type = (t as { type?: unknown }).type;
  if (typeof type === 'string' && !isFloatType(type as ElemType)) {
    throw new InputError(`${what}: feature maps must be float tensors, got ${type}`);
  }
  if (t.dims.length === 0 || t.dims.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new InputError(`${what}: expected positive sizes, got [${t.dims.join(',')}]`);
  }
  if (!t.buffer) throw new InputError(`${what}: the tensor has no GPU buffer (a load-time constant?): upload it first`);
  const bytes = sizeOf(t.dims) * 4;
  if (t.buffer.size < (t.offset ?? 0) + bytes) {
    throw new InputError(`${what}: buffer of ${t.buffer.size} bytes is too small for [${t.dims.join(',')}] float32 at offset ${t.offset ?? 0}`);
  }
  const limit = gpu.limits.maxStorageBufferBindingSize;
  if (bytes > limit && !splits)
    throw new GpuError(`${what}: [${t.dims.join(',')}] (${bytes} bytes) exceeds the device's storage binding limit (maxStorageBufferBindingSize ${limit})`);
}

/** Checks that `t` is an [N,C,H,W] float tensor the device can bind, and returns its dims. */
export function nchw(gpu: Gpu, t: TensorLike, what: string, splits = false): [number, number, number, number] {
  if (t.dims.length !== 4) throw new InputError(`${what}: expected an [N,C,H,W] tensor, got [${t.dims.join(',')}]`);
  checkTensor(gpu, t, what, splits);
  return t.dims as [number, number, number, number];
}

/**
 * Storage declarations for `list` ([name, element type, access, buffer]),
 * bound at 0, 1, … in order, and the buffers to dispatch with.
 */
export function bindings(list: readonly (readonly [string, 'f32' | 'u32', 'read' | 'read_write', GPUBuffer | BufferRange])[]) {
  return {
    declarations: list.map(([name, type, access], i) => storage(i, name, type, access)).join('\n'),
    buffers: list.map(([, , , buffer]) => buffer),
  };
}

/** The tensor's own bytes of its buffer (a captured tensor shares a larger one). */
export function binding(t: TensorLike): { buffer: GPUBuffer; bytes: number; offset: number } {
  if (!t.buffer) throw new InputError(`tensor [${t.dims.join(',')}] has no GPU buffer (a load-time constant?): upload it first`);
  return { buffer: t.buffer, bytes: sizeOf(t.dims) * 4, offset: t.offset ?? 0 };
}

/** Uploads host data as a GpuTensor (the caller destroys `buffer`). */
export function uploadTensor(gpu: Gpu, dims: readonly number[], data: ArrayLike<number>): GpuTensor {
  const n = sizeOf(dims);
  if (data.length !== n) throw new InputError(`uploadTensor: ${data.length} values for shape [${dims.join(',')}] (${n} elements)`);
  const buffer = gpu.device.createBuffer({ size: align4(n * 4), usage: STORAGE(), label: `vis [${dims.join(',')}]` });
  gpu.device.queue.writeBuffer(buffer, 0, Float32Array.from(data));
  return { buffer, dims: [...dims] };
}

/** Reads a GpuTensor back (meant for small maps and tests: the stages never read back large intermediates). */
export async function readTensor(gpu: Gpu, t: TensorLike): Promise<Float32Array> {
  const [raw] = await new CommandBatch(gpu).readAfterSubmit([binding(t)]);
  return new Float32Array(raw!);
}
