import { GpuError, InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { checked } from '../gpu/device.js';
import type { Graph, HostTensor } from '../model/graph.js';
import { isFloatType, sizeOf } from '../model/graph.js';
import { inferTypes, type TypedGraph } from '../model/infer.js';
import { checkFeedType, foldBatchNorm, freezeInputs } from '../model/passes.js';
import { registry } from '../ops/registry.js';
import { buildPlan, checkLimits, toGpuArray, type Plan } from './plan.js';

export interface SessionOptions {
  /** Concrete shape of each graph input, by name. Inputs the file fixes completely may be omitted. */
  inputShapes?: Record<string, number[]>;
  /**
   * Tensors to materialise so they can be read after a run. Passes never fuse
   * such a tensor away, so its value is exactly the ONNX tensor of that name.
   */
  keep?: Iterable<string>;
  /** Graph inputs whose values are fixed for the session (e.g. a shape fed as an input). */
  constants?: Record<string, HostTensor>;
}

interface Encoded {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

/**
 * A model compiled for one input shape: pipelines, bind groups and buffers are
 * built once; each `run` is one command encoder and one submit.
 */
export class Session {
  private constructor(
    readonly gpu: Gpu,
    readonly typed: TypedGraph,
    readonly plan: Plan,
    private readonly slots: GPUBuffer[],
    private readonly uploads: GPUBuffer[],
    private readonly encoded: Encoded[],
    readonly kept: ReadonlySet<string>,
  ) {}

  static async create(gpu: Gpu, graph: Graph, options: SessionOptions = {}): Promise<Session> {
    const keep = new Set(options.keep ?? []);
    const inputDims = new Map(Object.entries(options.inputShapes ?? {}));
    const typed = foldBatchNorm(
      inferTypes(freezeInputs(graph, options.constants ?? {}), inputDims, (op) => registry.get(op)?.infer),
      keep,
    );
    const plan = buildPlan(typed, registry, keep);
    checkLimits(plan, gpu.limits);
    const { device } = gpu;
    return checked(gpu, `compiling ${graph.source || 'model'}`, async () => {
      const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
      const slots = plan.slotBytes.map((bytes, i) => device.createBuffer({ size: align4(bytes), usage, label: `slot${i}` }));
      const uploaded = new Map<string, GPUBuffer>();
      const pipelines = new Map<string, Promise<GPUComputePipeline>>();
      const encoded = await Promise.all(
        plan.kernels.map(async ({ node, kernel, buffers }): Promise<Encoded> => {
          let pipeline = pipelines.get(kernel.wgsl);
          if (!pipeline) {
            pipeline = compilePipeline(device, kernel.wgsl, `${node.opType} node '${node.name}' (${kernel.label})`);
            pipelines.set(kernel.wgsl, pipeline);
          }
          const entries = buffers.map((ref, binding): GPUBindGroupEntry => {
            if (ref.kind === 'slot') return { binding, resource: { buffer: slots[ref.slot]! } };
            let buffer = uploaded.get(ref.key);
            if (!buffer) {
              buffer = device.createBuffer({ size: align4(ref.data.byteLength), usage, label: ref.key });
              device.queue.writeBuffer(buffer, 0, ref.data);
              uploaded.set(ref.key, buffer);
            }
            return { binding, resource: { buffer } };
          });
          const p = await pipeline;
          return { pipeline: p, bindGroup: device.createBindGroup({ layout: p.getBindGroupLayout(0), entries }), workgroups: kernel.workgroups };
        }),
      );
      await warmUp(device, encoded);
      return new Session(gpu, typed, plan, slots, [...uploaded.values()], encoded, keep);
    });
  }

  get inputNames(): string[] {
    return this.typed.graph.inputs.map((i) => i.name);
  }

  get outputNames(): string[] {
    return this.typed.graph.outputs.map((o) => o.name);
  }

  /** The shape and element type of any tensor of the graph. */
  typeOf(name: string) {
    return this.typed.types.get(name);
  }

  /**
   * Runs the model. `inputs` maps input names to tensors (a single tensor is
   * fed to the only input). Returns the graph outputs plus `read` tensors,
   * which must be graph outputs or named in `keep` when the session was built.
   */
  async run(inputs: Record<string, HostTensor> | HostTensor, read: readonly string[] = []): Promise<Map<string, HostTensor>> {
    const feeds = 'dims' in inputs ? this.feedSingle(inputs as HostTensor) : (inputs as Record<string, HostTensor>);
    const { device } = this.gpu;
    const names = [...new Set([...this.outputNames, ...read])];
    for (const name of read) {
      if (!this.kept.has(name) && !this.outputNames.includes(name) && this.plan.placement.get(name)?.kind !== 'constant') {
        throw new InputError(`tensor '${name}' was not kept when the session was built: pass it in SessionOptions.keep`);
      }
    }
    return checked(this.gpu, `running ${this.typed.graph.source || 'model'}`, async () => {
      for (const input of this.typed.graph.inputs) {
        const placement = this.plan.placement.get(input.name);
        const feed = feeds[input.name];
        if (!feed) throw new InputError(`input '${input.name}' was not given (inputs: ${this.inputNames.join(', ')})`);
        checkFeedType(input, feed);
        const expected = this.typed.types.get(input.name)!;
        if (feed.dims.length !== expected.dims.length || feed.dims.some((d, i) => d !== expected.dims[i])) {
          throw new InputError(`input '${input.name}': expected shape [${expected.dims.join(',')}], got [${feed.dims.join(',')}]`);
        }
        if (placement?.kind === 'buffer') device.queue.writeBuffer(this.slots[placement.slot]!, 0, toGpuArray(feed));
      }
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      for (const e of this.encoded) {
        pass.setPipeline(e.pipeline);
        pass.setBindGroup(0, e.bindGroup);
        pass.dispatchWorkgroups(...e.workgroups);
      }
      pass.end();
      const staging = new Map<string, GPUBuffer>();
      for (const name of names) {
        const p = this.plan.placement.get(name);
        if (p?.kind !== 'buffer') continue;
        const bytes = align4(sizeOf(p.type.dims) * 4);
        const buffer = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        encoder.copyBufferToBuffer(this.slots[p.slot]!, 0, buffer, 0, bytes);
        staging.set(name, buffer);
      }
      device.queue.submit([encoder.finish()]);
      const out = new Map<string, HostTensor>();
      await Promise.all(
        names.map(async (name) => {
          const p = this.plan.placement.get(name);
          if (!p) throw new InputError(`unknown tensor '${name}'`);
          if (p.kind === 'constant') return out.set(name, p.value);
          const buffer = staging.get(name)!;
          await buffer.mapAsync(GPUMapMode.READ).catch((e: Error) => {
            throw this.gpu.lost ?? new GpuError(`reading '${name}' back from the GPU failed: ${e.message}`);
          });
          const n = sizeOf(p.type.dims);
          const raw = buffer.getMappedRange(0, align4(n * 4));
          const data = isFloatType(p.type.type) ? new Float32Array(raw, 0, n).slice() : Float64Array.from(new Int32Array(raw, 0, n));
          buffer.unmap();
          buffer.destroy();
          out.set(name, { type: isFloatType(p.type.type) ? 'float32' : p.type.type, dims: [...p.type.dims], data });
        }),
      );
      return out;
    });
  }

  /** Frees the session's GPU buffers. The device stays usable. */
  destroy(): void {
    for (const b of [...this.slots, ...this.uploads]) b.destroy();
  }

  private feedSingle(x: HostTensor): Record<string, HostTensor> {
    if (this.inputNames.length !== 1) {
      throw new InputError(`the model has ${this.inputNames.length} inputs (${this.inputNames.join(', ')}): pass them by name`);
    }
    return { [this.inputNames[0]!]: x };
  }
}

const align4 = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);

/**
 * Dispatches one workgroup of every pipeline once. Drivers may compile a
 * pipeline at its first use (Mesa's lavapipe does, seconds per model), which
 * would otherwise land in the first run. The values written are garbage, and
 * harmless: buffers are shared between tensors by the memory plan, so no
 * kernel relies on what a buffer held before its run.
 */
async function warmUp(device: GPUDevice, encoded: readonly Encoded[]): Promise<void> {
  const seen = new Set<GPUComputePipeline>();
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (const e of encoded) {
    if (seen.has(e.pipeline)) continue;
    seen.add(e.pipeline);
    pass.setPipeline(e.pipeline);
    pass.setBindGroup(0, e.bindGroup);
    pass.dispatchWorkgroups(1);
  }
  pass.end();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
}

/**
 * Compiles one kernel. Synchronous createComputePipeline: dawn.node's
 * createComputePipelineAsync crashes the process on Mesa's lavapipe.
 */
async function compilePipeline(device: GPUDevice, code: string, what: string): Promise<GPUComputePipeline> {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code, label: what });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: what });
  const error = await device.popErrorScope();
  if (error) {
    const info = await module.getCompilationInfo();
    const messages = info.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ');
    throw new GpuError(`${what}: shader failed to compile: ${messages || error.message}`);
  }
  return pipeline;
}
