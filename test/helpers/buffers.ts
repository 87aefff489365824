/**
 * Live GPU buffer accounting. WebGPU has no query for it, so the device's
 * createBuffer is wrapped: each buffer counts from its creation until its
 * destroy(). A count is deterministic where heap or RSS bytes are not, so
 * tests can assert on it.
 */
export interface BufferCount {
  /** Buffers created and not yet destroyed. */
  live(): number;
  /** Their bytes. */
  liveBytes(): number;
  created(): number;
}

export function countBuffers(device: GPUDevice): BufferCount {
  const live = new Map<GPUBuffer, number>();
  let created = 0;
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor): GPUBuffer => {
    const buffer = create(descriptor);
    const destroy = buffer.destroy.bind(buffer);
    created++;
    live.set(buffer, descriptor.size);
    buffer.destroy = () => {
      live.delete(buffer);
      destroy();
    };
    return buffer;
  };
  return {
    live: () => live.size,
    liveBytes: () => [...live.values()].reduce((a, b) => a + b, 0),
    created: () => created,
  };
}
