import { GpuError, InputError, ModelError, ValueNeededError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { StagingPool } from '../gpu/buffers.js';
import { checked } from '../gpu/device.js';
import { hasTimestamps, recordTimed } from '../gpu/timestamps.js';
import type { Graph, HostTensor, Node, ValueInfo } from '../model/graph.js';
import { sizeOf } from '../model/graph.js';
import type { GpuArray } from '../kernels/types.js';
import { inferTypes, resolveInput, type TypedGraph } from '../model/infer.js';
import { checkFeedType, freezeInputs } from '../model/passes.js';
import { PRECISIONS, type Precision } from '../model/precision.js';
import { registry } from '../ops/registry.js';
import { CapturedTensor } from './captured.js';
import { describeParameters, inputsDeciding, MAX_PARAMETER_ELEMENTS, parameterKey } from './parameters.js';
import { toGpuArray, type Plan } from './plan.js';
import { compileProgram, planDevice, planProgram, recordInOnePass, type Compiled } from './program.js';
import { resolvePatterns, type TensorPattern } from './select.js';

export interface SessionOptions {
  /** Concrete shape of each graph input, by name. Inputs the file fixes completely may be omitted. */
  inputShapes?: Record<string, number[]>;
  /** Tensors to capture on every run unless `run` names others: compiled eagerly. */
  capture?: readonly TensorPattern[];
  /**
   * Graph inputs whose values are fixed for the session (e.g. a shape fed as
   * an input): planned for once, at `create`, instead of at run time (see Session).
   */
  constants?: Record<string, HostTensor>;
  /**
   * Called while `create` compiles the kernels, with the pipelines compiled
   * so far and their total: drivers compile at first use, seconds for a
   * large model on a software adapter, so a CLI can show it. (A model with
   * parameter inputs compiles at the first run of each set of their values,
   * without it.)
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
   * What activations and weights are stored as on the GPU (default 'f32').
   * 'f16' halves their memory and traffic and needs the adapter's
   * 'shader-f16' feature: weights are stored as float16 too (a float16
   * model's own values; a float32 model's rounded to float16, after
   * BatchNorm is folded into its convs), so the weight memory halves as well.
   * Kernels still compute in f32, and feeds, outputs and captured tensors
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
 *
 * Shapes are static, so values that decide them (a Reshape's shape, Resize's
 * sizes, Pad's pads, Clip's bounds) must be known when the model is planned.
 * When such a value comes from graph inputs ("parameter inputs", at most
 * MAX_PARAMETER_ELEMENTS elements each), the session reads them on the host
 * at every run and plans the model for their values: one plan per distinct
 * set of values, the latest MAX_INSTANCES kept, each with its own programs
 * and buffers. A run whose parameter values were seen before reuses their
 * plan and programs; the other inputs are fed to the GPU as usual. Until a
 * first run gives the values, what depends on them (`typed`, `typeOf`,
 * `resolve`, `plan`) is an InputError naming the inputs; afterwards it
 * describes the latest run's plan. SessionOptions.constants fixes inputs
 * for the session instead.
 */
export class Session {
  /** The model planned per set of parameter values (parameterKey; '' without parameters), least recently used first. */
  private readonly instances = new Map<string, Instance>();
  /** The parameter inputs found so far, with their shapes (a run may find more, behind the first ones). */
  private readonly parameters = new Map<string, { input: ValueInfo; dims: number[] }>();
  /** Staging buffers for reading outputs and captures back, reused run after run. */
  private readonly staging = new StagingPool();
  /** Per graph input, the mappable buffer large feeds go through (see feed). */
  private readonly feedStaging = new Map<string, GPUBuffer>();
  /** The latest run (settled either way): the next one starts after it. */
  private lastRun: Promise<unknown> = Promise.resolve();
  private runs = 0;

  private constructor(
    readonly gpu: Gpu,
    /** The model, with SessionOptions.constants frozen. */
    private readonly graph: Graph,
    private readonly inputDims: ReadonlyMap<string, readonly number[]>,
    private readonly defaultCapture: readonly TensorPattern[],
    private readonly maxBindingBytes: number,
    /** What activations and weights are stored as (SessionOptions.precision). */
    readonly precision: Precision,
  ) {}

  static async create(gpu: Gpu, graph: Graph, options: SessionOptions = {}): Promise<Session> {
    const precision = options.precision ?? 'f32';
    if (!PRECISIONS.includes(precision)) throw new InputError(`precision '${precision}': expected one of ${PRECISIONS.join(', ')}`);
    if (precision === 'f16' && !gpu.features.has('shader-f16')) {
      throw new GpuError(`${gpu.description} has no 'shader-f16' feature: precision 'f16' cannot run here (use 'f32')`);
    }
    const inputDims = new Map(Object.entries(options.inputShapes ?? {}));
    const frozen = freezeInputs(graph, options.constants ?? {});
    const session = new Session(gpu, frozen, inputDims, options.capture ?? [], options.maxBindingBytes ?? Infinity, precision);
    const prepared = session.prepare(undefined);
    if (prepared) await session.instantiate(prepared, options.onCompile);
    return session;
  }

  get inputNames(): string[] {
    return this.graph.inputs.map((i) => i.name);
  }

  get outputNames(): string[] {
    return this.graph.outputs.map((o) => o.name);
  }

  /** The typed graph before fusion passes: every ONNX tensor with its shape (for the latest run's parameter values). */
  get typed(): TypedGraph {
    return this.latest().typed;
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
    return this.inTurn(async () => {
      const instance = this.latest();
      return (await instance.program(resolvePatterns(instance.typed, patterns))).plan;
    });
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
    const wanted = options.outputs ?? this.outputNames;
    const unknown = wanted.filter((name) => !this.outputNames.includes(name));
    if (unknown.length)
      throw new InputError(`outputs: ${unknown.map((n) => `'${n}'`).join(', ')} not among the graph outputs (${this.outputNames.join(', ')})`);
    // Never the latest run's instance is evicted here (MAX_INSTANCES > 1): its captures stay readable if this fails.
    const instance = await this.instanceFor(feeds);
    const { typed } = instance;
    const captureNames = resolvePatterns(typed, options.capture ?? this.defaultCapture);
    // Earlier captures go stale now: building this run's program may free their buffers.
    const run = ++this.runs;
    const program = await instance.program(captureNames);
    const { device } = this.gpu;
    const stale = () => this.runs !== run;
    return checked(this.gpu, `running ${typed.graph.source || 'model'}`, async () => {
      const encoder = device.createCommandEncoder();
      for (const input of typed.graph.inputs) {
        const feed = this.checkedFeed(feeds, input, typed.types.get(input.name)!.dims);
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
    for (const instance of this.instances.values()) instance.destroy();
  }

  /** The feed of `input`, checked against its kind and `dims`. */
  private checkedFeed(feeds: Record<string, HostTensor>, input: ValueInfo, dims: readonly number[]): HostTensor {
    const feed = feeds[input.name];
    if (!feed) throw new InputError(`input '${input.name}' was not given (inputs: ${this.inputNames.join(', ')})`);
    checkFeedType(input, feed);
    if (feed.dims.length !== dims.length || feed.dims.some((d, i) => d !== dims[i])) {
      throw new InputError(`input '${input.name}': expected shape [${dims.join(',')}], got [${feed.dims.join(',')}]`);
    }
    return feed;
  }

  /** The latest run's instance (the only one, without parameter inputs); before a first run gives their values, an InputError naming them. */
  private latest(): Instance {
    const instance = [...this.instances.values()].at(-1);
    if (instance) return instance;
    const names = [...this.parameters.keys()].map((n) => `'${n}'`).join(', ');
    throw new InputError(
      `${this.graph.source || 'the model'}: shapes depend on the values of input${this.parameters.size > 1 ? 's' : ''} ${names}, read at each run: run the session first, or give them as SessionOptions.constants`,
    );
  }

  /** The instance planned for `feeds`' parameter values: the cached one, else planned (and compiled) now. */
  private async instanceFor(feeds: Record<string, HostTensor>): Promise<Instance> {
    const key = parameterKey(this.parameterValues(feeds));
    const cached = this.instances.get(key);
    if (!cached) return this.instantiate(this.prepare(feeds));
    this.instances.delete(key);
    this.instances.set(key, cached);
    return cached;
  }

  /** The parameter inputs' feeds, each checked against its kind and shape. */
  private parameterValues(feeds: Record<string, HostTensor>): Map<string, HostTensor> {
    const values = new Map<string, HostTensor>();
    for (const [name, { input, dims }] of this.parameters) {
      const feed = this.checkedFeed(feeds, input, dims);
      if (feed.data.length !== sizeOf(dims))
        throw new InputError(`input '${name}': shape [${dims.join(',')}] needs ${sizeOf(dims)} values, got ${feed.data.length}`);
      values.set(name, feed);
    }
    return values;
  }

  /**
   * Types the model with the parameter inputs' values from `feeds` and plans
   * the default captures, on the CPU: nothing is allocated on the GPU yet, so
   * values that make a plan impossible (a negative or huge shape, a tensor
   * beyond the device's limits) leave the session as it was. A node that
   * needs a value computed from other inputs makes them parameter inputs
   * too, and planning starts again; without `feeds` (at create) that ends
   * it, with undefined.
   */
  private prepare(feeds: Record<string, HostTensor>): Prepared;
  private prepare(feeds: undefined): Prepared | undefined;
  private prepare(feeds: Record<string, HostTensor> | undefined): Prepared | undefined {
    for (;;) {
      if (!feeds && this.parameters.size) return undefined;
      const values = this.parameterValues(feeds ?? {});
      let needed: ValueNeededError;
      try {
        // A frozen input is no longer an input: its shape goes with its value.
        const dims = new Map([...this.inputDims].filter(([name]) => !values.has(name)));
        const typed = inferTypes(freezeInputs(this.graph, Object.fromEntries(values)), dims, (op) => registry.get(op)?.infer);
        const keep = resolvePatterns(typed, this.defaultCapture);
        return { values, typed, keep, plan: this.planFor(typed, keep) };
      } catch (e) {
        if (!(e instanceof ValueNeededError)) {
          const fromValues = values.size > 0 && (e instanceof ModelError || e instanceof GpuError);
          throw fromValues ? new InputError(`with ${describeParameters(values)}: ${e.message}`) : e;
        }
        needed = e;
      }
      this.addParameters(needed);
    }
  }

  /**
   * Makes the graph inputs that `needed`'s tensors are computed from
   * parameter inputs. Throws `needed` when there are none left to add (the
   * value is computed on the GPU), and a ModelError when one is too large to
   * read on the host.
   */
  private addParameters(needed: ValueNeededError): void {
    const names = inputsDeciding(this.graph, needed.tensors).filter((name) => !this.parameters.has(name));
    if (!names.length) throw needed;
    for (const name of names) {
      const input = this.graph.inputs.find((i) => i.name === name)!;
      const dims = resolveInput(this.graph, input, this.inputDims);
      if (sizeOf(dims) > MAX_PARAMETER_ELEMENTS) {
        throw new ModelError(
          `${needed.message}; that value is computed from input '${name}' of shape [${dims.join(',')}], too large to read on the host at each run (at most ${MAX_PARAMETER_ELEMENTS} elements)`,
        );
      }
      this.parameters.set(name, { input, dims });
    }
  }

  /** Compiles `prepared`'s default program and caches it under its parameter values, evicting the least recently used instance beyond MAX_INSTANCES. */
  private async instantiate(prepared: Prepared, onCompile?: SessionOptions['onCompile']): Promise<Instance> {
    const instance = new Instance(this.gpu, prepared.typed, (keep) => this.planFor(prepared.typed, keep));
    try {
      await instance.program(prepared.keep, { plan: prepared.plan, onCompile });
    } catch (e) {
      instance.destroy();
      throw e;
    }
    this.instances.set(parameterKey(prepared.values), instance);
    for (const [key, old] of this.instances) {
      if (this.instances.size <= MAX_INSTANCES) break;
      old.destroy();
      this.instances.delete(key);
    }
    return instance;
  }

  /** The CPU half of compiling `keep`'s program (program.ts planProgram), for this session's device and precision. */
  private planFor(typed: TypedGraph, keep: readonly string[]): Plan {
    return planProgram(typed, new Set(keep), planDevice(this.gpu, this.maxBindingBytes), this.precision);
  }

  private feedSingle(x: HostTensor): Record<string, HostTensor> {
    if (this.inputNames.length !== 1) {
      throw new InputError(`the model has ${this.inputNames.length} inputs (${this.inputNames.join(', ')}): pass them by name`);
    }
    return { [this.inputNames[0]!]: x };
  }
}
/** A typed graph and plan for one set of parameter values (Session.prepare). */
interface Prepared {
  values: Map<string, HostTensor>;
  typed: TypedGraph;
  /** The default captures, resolved, and their plan. */
  keep: string[];
  plan: Plan;
}

/**
 * The model planned for one set of parameter values: its typed graph, and a
 * program per set of kept tensors, built on first use. The two most recently
 * used programs are kept; older ones give their buffers back, so
 * alternating capture sets stay cheap without memory growing per set.
 */
class Instance {
  private readonly programs = new Map<string, Compiled>();
  /** Weights and other load-time data on the GPU, shared by the instance's programs. */
  private readonly uploads = new Map<string, GPUBuffer>();

  constructor(
    private readonly gpu: Gpu,
    readonly typed: TypedGraph,
    private readonly planFor: (keep: readonly string[]) => Plan,
  ) {}

  /** The program materialising `keep` (planned with `options.plan` when given). */
  async program(keep: readonly string[], options: { plan?: Plan; onCompile?: SessionOptions['onCompile'] } = {}): Promise<Compiled> {
    const key = [...keep].sort().join('\u0000');
    const cached = this.programs.get(key);
    if (cached) {
      this.programs.delete(key);
      this.programs.set(key, cached);
      return cached;
    }
    const plan = options.plan ?? this.planFor(keep);
    const compiled = await compileProgram(this.gpu, plan, this.uploads, this.typed.graph.source || 'model', options.onCompile);
    this.programs.set(key, compiled);
    for (const [old, p] of this.programs) {
      if (this.programs.size <= MAX_PROGRAMS) break;
      for (const b of p.slots) b.destroy();
      this.programs.delete(old);
    }
    return compiled;
  }

  /** Frees the instance's GPU buffers; a later `program` builds them again. */
  destroy(): void {
    for (const p of this.programs.values()) for (const b of p.slots) b.destroy();
    for (const b of this.uploads.values()) b.destroy();
    this.programs.clear();
    this.uploads.clear();
  }
}
const MAX_PROGRAMS = 2;
/** Plans kept per session, by parameter values. */
const MAX_INSTANCES = 4;
/** Feeds from this size on go through a kept mappable buffer rather than writeBuffer. */
const FEED_STAGING_BYTES = 256 << 10;

/** One kernel's GPU time in a profiled run. */
export interface KernelTime {
  /** The node the kernel computes (after fusion: a Conv with BatchNorm folded in is named '<conv>::bn_folded'). */
  node: Node;
  label: string;
  ms: number;
}
