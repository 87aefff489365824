/**
 * A session's programs: the plan of one set of kept tensors, lowered to what
 * the GPU runs (buffers, pipelines, bind groups), and how a run records it.
 * Session (session.ts) decides when to build one and keeps the latest two.
 */
import type { Gpu } from '../gpu/device.js';
import { align4 } from '../gpu/buffers.js';
import { checked } from '../gpu/device.js';
import { computePipeline, pipelinesValidated } from '../gpu/pipelines.js';
import type { TypedGraph } from '../model/infer.js';
import { foldBatchNorm, fuseEpilogues, originalName } from '../model/passes.js';
import { storeFloatsAs, type Precision } from '../model/precision.js';
import { registry } from '../ops/registry.js';
import { buildPlan, checkLimits, type Plan, type PlanDevice, type Upload } from './plan.js';

export interface Encoded {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

/** The GPU program for one set of materialised tensors. */
export interface Compiled {
  plan: Plan;
  slots: GPUBuffer[];
  encoded: Encoded[];
}

/**
 * The CPU half of compiling: BatchNorm and epilogue fusion (never across a
 * tensor in `keep`), the storage precision, the kernels and buffer plan, and
 * the device-limit check, before anything is allocated.
 */
export function planProgram(typed: TypedGraph, keep: ReadonlySet<string>, device: PlanDevice, precision: Precision = 'f32'): Plan {
  const fused = fuseEpilogues(foldBatchNorm(typed, keep), keep);
  const isAlias = (op: string) => registry.get(op)?.alias === true;
  const plan = buildPlan(storeFloatsAs(fused, keep, precision, isAlias), registry, keep, device);
  checkLimits(plan, device);
  return plan;
}

/** What plans for `gpu` go by, with bindings held to `maxBindingBytes` if that is below the adapter's limit. */
export function planDevice(gpu: Gpu, maxBindingBytes = Infinity): PlanDevice {
  const { limits } = gpu;
  return {
    maxBufferSize: limits.maxBufferSize,
    minStorageBufferOffsetAlignment: limits.minStorageBufferOffsetAlignment,
    maxStorageBufferBindingSize: Math.min(limits.maxStorageBufferBindingSize, maxBindingBytes),
    cpuSubgroupSize: gpu.cpuSubgroupSize,
  };
}

/**
 * Builds `plan` on the GPU: its buffer slots, pipelines (shared per device,
 * gpu/pipelines.ts), bind groups, and uploads of load-time data, which go
 * into `uploads` and are shared by every program of a session. `onCompile`
 * sees the first dispatches of new pipelines (SessionOptions.onCompile).
 */
export async function compileProgram(
  gpu: Gpu,
  plan: Plan,
  uploads: Map<string, GPUBuffer>,
  source: string,
  onCompile?: (done: number, total: number) => void,
): Promise<Compiled> {
  const { device } = gpu;
  return checked(gpu, `compiling ${source}`, async () => {
    const slots = plan.slotBytes.map((bytes, i) => device.createBuffer({ size: align4(bytes), usage: bufferUsage(), label: `slot${i}` }));
    const pipelines = plan.kernels.map(({ node, kernel }) =>
      computePipeline(device, kernel.wgsl, `${node.opType} node '${originalName(node)}' (${kernel.label})`),
    );
    // A refused shader stops here, named, before bind groups are made from it.
    await pipelinesValidated(device);
    // New uploads get their buffers now and their data after the warm-up is submitted: the GPU's thread compiles pipelines while the host packs weights.
    const fresh = newUploads(device, plan, uploads);
    const encoded = plan.kernels.map(({ kernel, buffers }, k): Encoded => {
      const pipeline = pipelines[k]!;
      const entries = buffers.map((ref, binding): GPUBindGroupEntry => {
        if (ref.kind === 'slot') return { binding, resource: { buffer: slots[ref.slot]!, offset: ref.offset, size: align4(ref.bytes) } };
        return { binding, resource: { buffer: uploads.get(ref.key) ?? fresh.get(ref.key)!.buffer } };
      });
      return { pipeline, bindGroup: device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }), workgroups: kernel.workgroups };
    });
    const warming = warmUp(device, encoded, onCompile);
    // Awaited below; handled here too, so that a failure while the uploads are written is no unhandled rejection.
    warming.catch(() => undefined);
    try {
      await writeUploads(device, fresh);
    } catch (e) {
      await warming.catch(() => undefined);
      for (const { buffer } of fresh.values()) buffer.destroy();
      throw e;
    }
    for (const [key, { buffer }] of fresh) uploads.set(key, buffer);
    await warming;
    return { plan, slots, encoded };
  });
}

/** The usage of every buffer of a program (a function: WebGPU's globals exist once Dawn is loaded). */
const bufferUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Bytes of each of the two staging buffers of writeUploads, unless one upload is larger. */
const UPLOAD_STAGING_BYTES = 32 << 20;

/** A param or constant of a plan and the buffer it gets. */
type NewUpload = { ref: Upload; buffer: GPUBuffer };

/** Buffers for the params and constants of `plan` that `uploads` does not hold yet, by key, their data not yet written. */
function newUploads(device: GPUDevice, plan: Plan, uploads: Map<string, GPUBuffer>): Map<string, NewUpload> {
  const fresh = new Map<string, NewUpload>();
  for (const k of plan.kernels)
    for (const ref of k.buffers)
      if (ref.kind === 'upload' && !uploads.has(ref.key) && !fresh.has(ref.key))
        fresh.set(ref.key, { ref, buffer: device.createBuffer({ size: align4(ref.bytes), usage: bufferUsage(), label: ref.key }) });
  return fresh;
}

/**
 * Writes each new upload's data into its buffer through two mappable
 * staging buffers that take turns: weights are packed straight into one
 * (BufferRef data) while the GPU copies the other's out. Fresh memory is
 * slow to touch on some machines (2.6 ms per MB on the VM of the README's
 * figures), and writeBuffer staged every write in new memory, after packing
 * it into new memory too: ResNet-101's 405 MB took that path twice.
 */
async function writeUploads(device: GPUDevice, fresh: Map<string, NewUpload>): Promise<void> {
  if (!fresh.size) return;
  const sizes = [...fresh.values()].map(({ buffer }) => buffer.size);
  const size = Math.max(
    ...sizes,
    Math.min(
      UPLOAD_STAGING_BYTES,
      sizes.reduce((a, b) => a + b, 0),
    ),
  );
  const newStaging = (turn: number) =>
    device.createBuffer({ size, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true, label: `upload staging ${turn}` });
  const staging = [newStaging(0)];
  const mapping: Promise<void>[] = [];
  let turn = 0;
  let mapped = staging[0]!.getMappedRange();
  let used = 0;
  let encoder = device.createCommandEncoder();
  const send = () => {
    staging[turn]!.unmap();
    device.queue.submit([encoder.finish()]);
  };
  try {
    for (const { ref, buffer } of fresh.values()) {
      if (used + buffer.size > size) {
        send();
        mapping[turn] = staging[turn]!.mapAsync(GPUMapMode.WRITE);
        turn = 1 - turn;
        if (staging[turn]) await mapping[turn];
        else staging[turn] = newStaging(turn);
        mapped = staging[turn]!.getMappedRange();
        used = 0;
        encoder = device.createCommandEncoder();
      }
      const target = new Uint8Array(mapped, used, ref.bytes);
      const data = ref.data(target);
      if (data.byteLength !== ref.bytes) throw new Error(`upload ${ref.key}: made ${data.byteLength} bytes where the plan reserved ${ref.bytes}`);
      if (data.buffer !== mapped || data.byteOffset !== used) target.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      encoder.copyBufferToBuffer(staging[turn]!, used, buffer, 0, buffer.size);
      used += buffer.size;
    }
    send();
  } finally {
    // A staging buffer destroyed while it maps would reject its mapping; the copies may still run, and keep it until then.
    await Promise.allSettled(mapping);
    for (const b of staging) b.destroy();
  }
}

/** An ordinary run: every dispatch in one compute pass. */
export function recordInOnePass(encoder: GPUCommandEncoder, program: Compiled): void {
  const pass = encoder.beginComputePass();
  for (const e of program.encoded) {
    pass.setPipeline(e.pipeline);
    pass.setBindGroup(0, e.bindGroup);
    pass.dispatchWorkgroups(...e.workgroups);
  }
  pass.end();
}

/**
 * Dispatches one workgroup of every pipeline once. Drivers may compile a
 * pipeline at its first use (Mesa's lavapipe does, seconds per model), which
 * would otherwise land in the first run. The values written are garbage, and
 * harmless: buffers are shared between tensors by the memory plan, so no
 * kernel relies on what a buffer held before its run.
 */
async function warmUp(device: GPUDevice, encoded: readonly Encoded[], onCompile?: (done: number, total: number) => void): Promise<void> {
  const first = new Map<GPUComputePipeline, Encoded>();
  for (const e of encoded) if (!first.has(e.pipeline)) first.set(e.pipeline, e);
  const unique = [...first.values()];
  // One submit when nobody watches; with a watcher, about 20 so progress moves.
  const chunk = onCompile ? Math.max(1, Math.ceil(unique.length / 20)) : unique.length;
  for (let start = 0; start < unique.length; start += chunk) {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (const e of unique.slice(start, start + chunk)) {
      pass.setPipeline(e.pipeline);
      pass.setBindGroup(0, e.bindGroup);
      pass.dispatchWorkgroups(1);
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    onCompile?.(Math.min(unique.length, start + chunk), unique.length);
  }
}
