import { InputError } from '../errors.js';
import type { ElemType, HostTensor } from '../model/graph.js';
import { readBack, type StagingPool } from '../gpu/buffers.js';
import type { Gpu } from '../gpu/device.js';
import { isFloatType, sizeOf } from '../model/graph.js';

/**
 * A tensor captured by a run. It stays on the GPU (at `offset` in the
 * session's buffer that holds it) until read, so GPU stages can consume it
 * without a round trip; it is valid until the session runs again.
 */
export class CapturedTensor {
  constructor(
    readonly name: string,
    readonly type: ElemType,
    readonly dims: readonly number[],
    /** The GPU buffer holding the tensor from `offset` (f32, or i32 for integer types); undefined for load-time constants. */
    readonly buffer: GPUBuffer | undefined,
    private readonly gpu: Gpu,
    private readonly constant: HostTensor | undefined,
    /** Whether a later run has overwritten the buffer. */
    private readonly stale: () => boolean,
    /** Where the tensor starts in `buffer`, in bytes (a multiple of the device's minStorageBufferOffsetAlignment). */
    readonly offset = 0,
    /** The session's staging buffers for reading back. */
    private readonly staging?: StagingPool,
  ) {}

  get size(): number {
    return sizeOf(this.dims);
  }

  /** The values as float32 (integer tensors too, exact below 2^24). */
  async read(): Promise<Float32Array> {
    const t = await this.toHost();
    return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
  }

  /** The tensor on the host, in its ONNX element type and logical NCHW shape. */
  async toHost(): Promise<HostTensor> {
    if (this.constant) return this.constant;
    if (this.stale()) {
      throw new InputError(`captured tensor '${this.name}' was overwritten by a later run of its session: read it before running again`);
    }
    const [raw] = await readBack(
      this.gpu,
      this.gpu.device.createCommandEncoder(),
      [{ buffer: this.buffer!, offset: this.offset, bytes: this.size * 4 }],
      this.staging,
    );
    const float = isFloatType(this.type);
    const data = float ? new Float32Array(raw!) : Float64Array.from(new Int32Array(raw!));
    return { type: float ? 'float32' : this.type, dims: [...this.dims], data };
  }
}
