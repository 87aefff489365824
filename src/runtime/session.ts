import { GpuError, InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { StagingPool } from '../gpu/buffers.js';
import { checked } from '../gpu/device.js';
import { hasTimestamps, recordTimed } from '../gpu/timestamps.js';
import type { Graph, HostTensor, Node } from '../model/graph.js';
import type { GpuArray } from '../kernels/types.js';
import { inferTypes, type TypedGraph } from '../model/infer.js';
import { checkFeedType, freezeInputs } from '../model/passes.js';
import { PRECISIONS, type Precision } from '../model/precision.js';
import { registry } from '../ops/registry.js';
import { CapturedTensor } from './captured.js';
import { toGpuArray, type Plan } from './plan.js';
import { compileProgram, planDevice, planProgram, recordInOnePass, type Compiled } from './program.js';
import { resolvePatterns, type TensorPattern } from './select.js';

export interface SessionOptions {
  /** Concrete shape of each graph input, by name. Inputs the file fixes completely may be omitted. */
  inputShapes?: Record<string, number[]>;
  /** Tensors to capture on every run unless `run` names others: compiled eagerly. */
  capture?: readonly TensorPattern[];
  /** Graph inputs whose values are fixed for the session (e.g. a shape fed as an input). */
  constants?: Record<string, HostTensor>;
  /**
   * Called while `create` compiles the kernels, with the pipelines compiled
   * so far and their total: drivers compile at first use, seconds for a
   * large model on a software adapter, so a CLI can show it.
   */
  onCompile?: (done: number, total: number) => void;
  /**
   * The largest buffer binding to plan with, below the adapter's
   * maxStorageBufferBindingSize: nodes whose tensors exceed it run split over
   * windows of them (src/kernels/split.ts). For headroom, and to test splitting
   * on small models.
   */
  maxBindingBytes?: number;
  /**
   * What activations are stored as on the GPU (default 'f32'). 'f16' halves
   * their memory and traffic and needs the adapter's 'shader-f16' feature;
   * kernels still compute in f32, and feeds, outputs and captured tensors
   * stay float32 (see model/precision.ts).
   */
  precision?: Precision;
}

export interface RunOptions {
  /**
   * Tensors to capture: exact names, node names, module paths, globs or
   * regular expressions (see select.ts). A capture makes the engine
   * materialise the tensor, so it is exactly the ONNX tensor of that name even
   * where the engine would otherwise fuse its producer away; other outputs do
   * not change.
   */
  capture?: readonly TensorPattern[];
  /**
   * The graph outputs to read back to the host (default: all). `[]` reads
   * none: a caller that only needs captured tensors on the GPU (vis) skips
   * copying the logits out every run.
   */
  outputs?: readonly string[];
}

export interface RunResult {
  /** The graph outputs named by RunOptions.outputs (default all), on the host. */
  outputs: Map<string, HostTensor>;
  /** The captured tensors by resolved name, on the GPU until read. */
  captured: Map<string, CapturedTensor>;
}

/**
 * A model compiled for one input shape. Shapes are inferred once; each set of
 * captured tensors gets its program (pipelines, bind groups, buffers) built
 * once and reused, and each `run` is one command encoder and one submit.
 */
export class Session {
  private readonly programs = new Map<string, Compiled>();
  /** Weights and other load-time data on the GPU, shared by every program. */
  private readonly uploads = new Map<string, GPUBuffer>();
  /** Staging buffers for reading outputs and captures back, reused run after run. */
  private readonly staging = new StagingPool();
  /** Per graph input, the mappable buffer large feeds go through (see feed). */
  private readonly feedStaging = new Map<string, GPUBuffer>();
  /** The latest run (settled either way): the next one starts after it. */
  private lastRun: Promise<unknown> = Promise.resolve();
  private runs = 0;

  private constructor(
    readonly gpu: Gpu,
    /** The typed graph before fusion passes: every ONNX tensor with its shape. */
    readonly typed: TypedGraph,
    private readonly defaultCapture: readonly TensorPattern[],
    private readonly maxBindingBytes: number,
    /** What activations are stored as (SessionOptions.precision). */
    readonly precision: Precision,
  ) {}

  static async create(gpu: Gpu, graph: Graph, options: SessionOptions = {}): Promise<Session> {
    const precision = options.precision ?? 'f32';
    if (!PRECISIONS.includes(precision)) throw new InputError(`precision '${precision}': expected one of ${PRECISIONS.join(', ')}`);
    if (precision === 'f16' && !gpu.features.has('shader-f16')) {
      throw new GpuError(`${gpu.description} has no 'shader-f16' feature: precision 'f16' cannot run here (use 'f32')`);
    }
    const inputDims = new Map(Object.entries(options.inputShapes ?? {}));
    const typed = inferTypes(freezeInputs(graph, options.constants ?? {}), inputDims, (op) => registry.get(op)?.infer);
    const session = new Session(gpu, typed, options.capture ?? [], options.maxBindingBytes ?? Infinity, precision);
    await session.program(session.resolve(session.defaultCapture), options.onCompile);
    return session;
  }

  get inputNames(): string[] {
    return this.typed.graph.inputs.map((i) => i.name);
  }

  get outputNames(): string[] {
    return this.typed.graph.outputs.map((o) => o.name);
  }

  /** The shape and element type of any tensor of the graph at this session's input shapes. */
  typeOf(name: string) {
    return this.typed.types.get(name);
  }

  /** The tensor names patterns select (see select.ts). */
  resolve(patterns: readonly TensorPattern[]): string[] {
    return resolvePatterns(this.typed, patterns);
  }

  /** The buffer plan used when `patterns` are captured (for memory reports). It waits for a run in flight, whose program it may evict. */
  async plan(patterns: readonly TensorPattern[] = this.defaultCapture): Promise<Plan> {
    const names = this.resolve(patterns);
    return (await this.inTurn(() => this.program(names))).plan;
  }

  /**
   * Runs the model. `inputs` maps input names to tensors (a single tensor is
   * fed to the only input). Calls made while a run is in flight wait for it.
   */
  async run(inputs: Record<string, HostTensor> | HostTensor, options: RunOptions = {}): Promise<RunResult> {
    return (await this.execute(inputs, options, recordInOnePass)).result;
  }

  /**
   * `run`, with the GPU time of every kernel: each dispatch is recorded in its
   * own timed compute pass (src/gpu/timestamps.ts). The outputs and captures
   * are `run`'s, bit for bit. Needs the device feature 'timestamp-query'.
   */
  async profile(inputs: Record<string, HostTensor> | HostTensor, options: RunOptions = {}): Promise<RunResult & { kernels: KernelTime[] }> {
    if (!hasTimestamps(this.gpu)) throw new GpuError(`${this.gpu.description} has no 'timestamp-query' feature: kernels cannot be timed`);
    const { result, recorded } = await this.execute(inputs, options, (encoder, program) => ({
      timer: recordTimed(this.gpu, encoder, program.encoded),
      kernels: program.plan.kernels,
    }));
    const ns = await recorded.timer.read();
    return { ...result, kernels: recorded.kernels.map((k, i) => ({ node: k.node, label: k.kernel.label, ms: ns[i]! / 1e6 })) };
  }

  /** Feeds the inputs, records the program's dispatches with `record`, submits once and reads the outputs back. */
  private execute<T>(
    inputs: Record<string, HostTensor> | HostTensor,
    options: RunOptions,
    record: (encoder: GPUCommandEncoder, program: Compiled) => T,
  ): Promise<{ result: RunResult; recorded: T }> {
    return this.inTurn(() => this.executeNow(inputs, options, record));
  }

  /**
   * Runs `work` after everything queued before it. Runs of one session take
   * turns: each maps the same feed buffers and overwrites the same
   * activations, and building a program may free an older one's buffers.
   */
  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const turn = this.lastRun.then(work);
    this.lastRun = turn.catch(() => undefined);
    return turn;
  }

  private async executeNow<T>(
    inputs: Record<string, HostTensor> | HostTensor,
    options: RunOptions,
    record: (encoder: GPUCommandEncoder, program: Compiled) => T,
  ): Promise<{ result: RunResult; recorded: T }> {
    const feeds = 'dims' in inputs ? this.feedSingle(inputs as HostTensor) : (inputs as Record<string, HostTensor>);
    const captureNames = this.resolve(options.capture ?? this.defaultCapture);
    const wanted = options.outputs ?? this.outputNames;
    const unknown = wanted.filter((name) => !this.outputNames.includes(name));
    if (unknown.length)
      throw new InputError(`outputs: ${unknown.map((n) => `'${n}'`).join(', ')} not among the graph outputs (${this.outputNames.join(', ')})`);
    // Earlier captures go stale now: building this run's program may free their buffers.
    const run = ++this.runs;
    const program = await this.program(captureNames);
    const { device } = this.gpu;
    const stale = () => this.runs !== run;
    return checked(this.gpu, `running ${this.typed.graph.source || 'model'}`, async () => {
      const encoder = device.createCommandEncoder();
      for (const input of this.typed.graph.inputs) {
        const feed = feeds[input.name];
        if (!feed) throw new InputError(`input '${input.name}' was not given (inputs: ${this.inputNames.join(', ')})`);
        checkFeedType(input, feed);
        const expected = this.typed.types.get(input.name)!;
        if (feed.dims.length !== expected.dims.length || feed.dims.some((d, i) => d !== expected.dims[i])) {
          throw new InputError(`input '${input.name}': expected shape [${expected.dims.join(',')}], got [${feed.dims.join(',')}]`);
        }
        const placement = program.plan.placement.get(input.name);
        if (placement?.kind === 'buffer') await this.feed(encoder, input.name, toGpuArray(feed), program.slots[placement.slot]!, placement.offset);
      }
      const recorded = record(encoder, program);
      device.queue.submit([encoder.finish()]);

      const tensor = (name: string): CapturedTensor => {
        const p = program.plan.placement.get(name);
        if (!p) throw new InputError(`tensor '${name}' is not computed by this session`);
        if (p.kind === 'constant') return new CapturedTensor(name, p.value.type, p.value.dims, undefined, this.gpu, p.value, stale);
        return new CapturedTensor(name, p.type.type, p.type.dims, program.slots[p.slot], this.gpu, undefined, stale, p.offset, this.staging);
      };
      const outputs = new Map<string, HostTensor>();
      await Promise.all(
        wanted.map(async (name) => {
          outputs.set(name, await tensor(name).toHost());
        }),
      );
      return { result: { outputs, captured: new Map(captureNames.map((name) => [name, tensor(name)])) }, recorded };
    });
  }

  /**
   * Puts a feed at `offset` of `slot`: small ones by writeBuffer, large ones
   * through a mappable buffer kept per input, copied at the start of the
   * run's commands. Dawn's writeBuffer stages a large write in new memory
   * each time: 2 to 18 ms for a 4.4 MB feed on lavapipe, against 1.3 ms
   * through a reused mapping.
   */
  private async feed(encoder: GPUCommandEncoder, name: string, data: GpuArray, slot: GPUBuffer, offset: number): Promise<void> {
    const { device } = this.gpu;
    if (data.byteLength < FEED_STAGING_BYTES) return device.queue.writeBuffer(slot, offset, data);
    let staging = this.feedStaging.get(name);
    if (staging?.size !== data.byteLength) {
      staging?.destroy();
      staging = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, label: `feed ${name}` });
      this.feedStaging.set(name, staging);
    }
    await staging.mapAsync(GPUMapMode.WRITE);
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    encoder.copyBufferToBuffer(staging, 0, slot, offset, data.byteLength);
  }

  /** Frees the session's GPU buffers. The device stays usable. */
  destroy(): void {
    for (const b of this.feedStaging.values()) b.destroy();
    this.feedStaging.clear();
    this.staging.destroy();
    for (const p of this.programs.values()) for (const b of p.slots) b.destroy();
    for (const b of this.uploads.values()) b.destroy();
    this.programs.clear();
    this.uploads.clear();
  }

  /**
   * The program materialising `keep`, built on first use. The two most
   * recently used programs are kept; older ones give their buffers back, so
   * alternating capture sets stay cheap without memory growing per set.
   */
  private async program(keep: readonly string[], onCompile?: SessionOptions['onCompile']): Promise<Compiled> {
    const key = [...keep].sort().join('\u0000');
    const cached = this.programs.get(key);
    if (cached) {
      this.programs.delete(key);
      this.programs.set(key, cached);
      return cached;
    }
    const plan = planProgram(this.typed, new Set(keep), planDevice(this.gpu, this.maxBindingBytes), this.precision);
    const compiled = await compileProgram(this.gpu, plan, this.uploads, this.typed.graph.source || 'model', onCompile);
    this.programs.set(key, compiled);
    for (const [old, p] of this.programs) {
      if (this.programs.size <= MAX_PROGRAMS) break;
      for (const b of p.slots) b.destroy();
      this.programs.delete(old);
    }
    return compiled;
  }

  private feedSingle(x: HostTensor): Record<string, HostTensor> {
    if (this.inputNames.length !== 1) {
      throw new InputError(`the model has ${this.inputNames.length} inputs (${this.inputNames.join(', ')}): pass them by name`);
    }
    return { [this.inputNames[0]!]: x };
  }
}
const MAX_PROGRAMS = 2;
/** Feeds from this size on go through a kept mappable buffer rather than writeBuffer. */
const FEED_STAGING_BYTES = 256 << 10;

/** One kernel's GPU time in a profiled run. */
export interface KernelTime {
  /** The node the kernel computes (after fusion: a Conv with BatchNorm folded in is named '<conv>::bn_folded'). */
  node: Node;
  label: string;
  ms: number;
}
