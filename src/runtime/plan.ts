import { GpuError } from '../errors.js';
import type { ElemType, HostTensor, Node, TensorType } from '../model/graph.js';
import { isFloatType, opKey } from '../model/graph.js';
import { resolveAliases } from '../model/alias.js';
import type { TypedGraph } from '../model/infer.js';
import { planBuffers, type Place } from '../model/memory.js';
import { originalName } from '../model/passes.js';
import { bindingLimits } from '../kernels/split.js';
import { extentIn, planInPlace } from './in-place.js';
import type { GpuArray, Kernel, KernelBinding, ParamBinding } from '../kernels/types.js';
import type { OpImpl } from '../ops/types.js';
import type { Window } from '../kernels/split.js';
import { flatMain, grid, gpuTensorBytes, storage, storedFloats, storedFloatsBytes } from '../kernels/wgsl.js';

/** Where a tensor lives at run time. */
export type Placement =
  /** Computed on the GPU (or fed by the user) into buffer slot `slot` at byte `offset`. */
  | { kind: 'buffer'; slot: number; offset: number; type: TensorType }
  /** Known at load time. */
  | { kind: 'constant'; value: HostTensor };

export interface PlannedKernel {
  node: Node;
  kernel: Kernel;
  /** Buffer of each binding: a slot index, or a constant/param upload. */
  buffers: BufferRef[];
}

/** A binding's buffer: bytes [offset, offset + bytes) of a slot (the tensor's, or a window of it), or a constant/param upload. */
export type BufferRef = { kind: 'slot'; slot: number; offset: number; bytes: number } | Upload;
/** Made by `data` (`bytes` long, in `target` where it can) when the session holds no upload under `key` yet (kernels/types.ts, the param binding). */
export type Upload = { kind: 'upload'; bytes: number; data: (target?: Uint8Array<ArrayBuffer>) => GpuArray; key: string };

export interface Plan {
  kernels: PlannedKernel[];
  slotBytes: number[];
  /** The most activation bytes live at once: the least any plan of these kernels needs (see model/memory.ts). */
  liveBytes: number;
  /** Every tensor name -> where it is. Aliased tensors (Reshape…) share their source's slot. */
  placement: Map<string, Placement>;
}

/**
 * GPU representation of a host tensor stored as `type` (default: its own):
 * float16 as f16 bits, padded to whole 4-byte words as buffer writes need,
 * other floats as f32, integers and bool as i32.
 */
export function toGpuArray(t: HostTensor, type: ElemType = t.type): GpuArray {
  return isFloatType(type) ? storedFloats(t.data, type) : Int32Array.from(t.data);
}

/** The bytes toGpuArray makes of `t`. */
const gpuArrayBytes = (t: HostTensor, type: ElemType): number => (isFloatType(type) ? storedFloatsBytes(t.data.length, type) : 4 * t.data.length);

/**
 * Lowers a typed graph to kernels and a buffer plan. `keep` names tensors that
 * must stay readable after a run (graph outputs are always kept). Ops split
 * nodes whose tensors exceed `limits` where they can.
 */
export function buildPlan(typed: TypedGraph, impls: ReadonlyMap<string, OpImpl>, keep: ReadonlySet<string>, device: PlanDevice = NO_LIMITS): Plan {
  const binding = bindingLimits(device);
  const target = { limits: binding, cpuSubgroupSize: device.cpuSubgroupSize };
  const { graph, types } = typed;
  const { root, values } = resolveAliases(typed, (op) => impls.get(op)!.alias === true);
  const inPlace = planInPlace(typed, impls, root, (name) => values.has(name), binding.offsetAlignment);
  const steps: { node: Node; kernels: Kernel[] }[] = [];
  for (const node of typed.nodes) {
    const impl = impls.get(opKey(node))!;
    if (impl.alias || inPlace.nodes.has(node)) continue;
    const inputs = node.inputs.map((name) => ({ name, ...(types.get(name) ?? { type: 'float32' as const, dims: [] }), value: values.get(name) }));
    const outputs = node.outputs.map((name) => types.get(name)!);
    const input = (b: InputBinding) => node.inputs[b.index]!;
    const bytesOfBinding = (b: InputBinding) => b.window?.bytes ?? gpuTensorBytes(types.get(input(b))!);
    const extentOf = (b: InputBinding) => (values.has(input(b)) ? undefined : extentIn(inPlace, root(input(b)), b.window, bytesOfBinding(b)));
    const kernels = impl.kernels!(node, inputs, outputs, graph.opset, target);
    steps.push({ node, kernels: kernels.flatMap((k) => withRepeatsCopied(k, extentOf, bytesOfBinding)) });
  }

  // Lifetimes of buffer-backed tensors, by root.
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  for (const input of graph.inputs) first.set(input.name, -1);
  steps.forEach(({ node, kernels }, s) => {
    for (const k of kernels) {
      for (const b of k.bindings) {
        if (b.kind === 'input' && !values.has(node.inputs[b.index]!)) last.set(root(node.inputs[b.index]!), s);
      }
    }
    for (const name of node.outputs) if (name) first.set(name, s);
  });
  // An output computed in place is one lifetime with its parts: from its first part's producer to the last reader of any.
  for (const [part, { container }] of inPlace.parts) {
    const [f, l] = [first.get(part)!, last.get(part) ?? first.get(part)!];
    first.set(container, Math.min(first.get(container) ?? f, f));
    last.set(container, Math.max(last.get(container) ?? l, l));
    first.delete(part);
    last.delete(part);
  }
  const home = (name: string) => inPlace.parts.get(root(name))?.container ?? root(name);
  for (const name of [...keep, ...graph.outputs.map((o) => o.name)]) if (first.has(home(name))) last.set(home(name), Infinity);
  const lifetimes = [...first].map(([id, f]) => ({ id, first: f, last: last.get(id) ?? f, bytes: gpuTensorBytes(types.get(id)!) }));
  const scratch = new Map<string, number>();
  steps.forEach(({ node, kernels }, s) => {
    for (const k of kernels) {
      for (const b of k.bindings) {
        if (b.kind !== 'scratch') continue;
        const id = `${node.name}#scratch${b.id}`;
        scratch.set(id, Math.max(scratch.get(id) ?? 0, b.bytes));
        lifetimes.push({ id, first: s, last: s, bytes: scratch.get(id)! });
      }
    }
  });
  const { placeOf, slotBytes, liveBytes } = planBuffers(dedupe(lifetimes), { alignment: binding.offsetAlignment, maxArenaBytes: device.maxBufferSize });
  for (const [part, { container, offset }] of inPlace.parts) {
    const place = placeOf.get(container)!;
    placeOf.set(part, { slot: place.slot, offset: place.offset + offset });
  }

  const placement = new Map<string, Placement>();
  for (const [name, type] of types) {
    const value = values.get(name);
    if (value) placement.set(name, { kind: 'constant', value });
    else if (placeOf.has(root(name))) placement.set(name, { kind: 'buffer', ...placeOf.get(root(name))!, type });
  }

  /** The slot range a tensor binding covers: the whole tensor, or its window. */
  const slotRef = ({ slot, offset }: Place, type: TensorType, b: Extract<KernelBinding, { kind: 'input' | 'output' }>): BufferRef => ({
    kind: 'slot',
    slot,
    offset: offset + (b.window?.offset ?? 0),
    bytes: b.window?.bytes ?? gpuTensorBytes(type),
  });
  // One upload per param: kernels binding the same one (a chunked conv's weights, ops/conv/winograd.ts) share it.
  const paramKeys = new Map<ParamBinding['data'], string>();
  const kernels = steps.flatMap(({ node, kernels }) =>
    kernels.map(
      (kernel, k): PlannedKernel => ({
        node,
        kernel,
        buffers: kernel.bindings.map((b, i): BufferRef => {
          switch (b.kind) {
            case 'input': {
              const name = node.inputs[b.index]!;
              const value = values.get(name);
              const type = types.get(name)!.type;
              return value
                ? { kind: 'upload', bytes: gpuArrayBytes(value, type), data: () => toGpuArray(value, type), key: `const:${name}` }
                : slotRef(placeOf.get(root(name))!, types.get(name)!, b);
            }
            case 'output':
              return slotRef(placeOf.get(node.outputs[b.index]!)!, types.get(node.outputs[b.index]!)!, b);
            case 'scratch':
              return { kind: 'slot', ...placeOf.get(`${node.name}#scratch${b.id}`)!, bytes: b.bytes };
            case 'param': {
              const key = paramKeys.get(b.data) ?? `param:${node.name}:${k}:${i}`;
              paramKeys.set(b.data, key);
              return { kind: 'upload', bytes: b.bytes, data: b.data, key };
            }
            default:
              throw new Error(`unknown binding kind in ${node.name}`);
          }
        }),
      }),
    ),
  );
  return { kernels, slotBytes, liveBytes, placement };
}

/**
 * A kernel that binds one tensor (`extentOf`: its buffer's root, or the
 * output it is computed in place in, with the bytes it covers there;
 * undefined for constants) at two input bindings over overlapping bytes, as
 * MatMul(x, x), Add(x, Reshape(x)) or Mul(Concat(x, y), x) do, would be refused: every binding is
 * read_write (kernels/wgsl.ts storage) and WebGPU refuses writable bindings that
 * overlap. Each repeat reads a copy in a scratch buffer instead, made by a
 * dispatch before it.
 */
function withRepeatsCopied(
  kernel: Kernel,
  extentOf: (b: InputBinding) => { tensor: string; window?: Window } | undefined,
  bytesOfBinding: (b: InputBinding) => number,
): Kernel[] {
  const copies: Kernel[] = [];
  const seen: { tensor: string; window?: Window }[] = [];
  const overlap = (a?: Window, b?: Window) => !a || !b || (a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes);
  const bindings = kernel.bindings.map((b, i): KernelBinding => {
    if (b.kind !== 'input') return b;
    const extent = extentOf(b);
    if (extent === undefined) return b;
    const repeat = seen.some((s) => s.tensor === extent.tensor && overlap(s.window, extent.window));
    seen.push(extent);
    if (!repeat) return b;
    const words = Math.ceil(bytesOfBinding(b) / 4);
    const scratch = { kind: 'scratch', id: REPEAT_SCRATCH + i, bytes: 4 * words } as const;
    copies.push({
      label: 'copy_repeated_input',
      wgsl: `${storage(0, 'X', 'u32')}
${storage(1, 'Y', 'u32')}
${flatMain(
  COPY_WORKGROUP,
  `  if (i >= ${words}u) { return; }
  Y[i] = X[i];`,
)}`,
      workgroups: grid(words, COPY_WORKGROUP),
      bindings: [b, scratch],
    });
    return scratch;
  });
  return copies.length ? [...copies, { ...kernel, bindings }] : [kernel];
}
type InputBinding = Extract<KernelBinding, { kind: 'input' }>;
/** Scratch ids of repeat copies: past any an op uses itself. */
const REPEAT_SCRATCH = 1 << 20;
const COPY_WORKGROUP = 256;

/** A scratch id seen by several kernels of one node is one lifetime. */
function dedupe<T extends { id: string; bytes: number }>(items: T[]): T[] {
  const byId = new Map<string, T>();
  for (const t of items) byId.set(t.id, { ...t, bytes: Math.max(t.bytes, byId.get(t.id)?.bytes ?? 0) });
  return [...byId.values()];
}

/** What a binding holds, for messages. */
function bindingName(node: Node, b: KernelBinding): string {
  switch (b.kind) {
    case 'input':
      return `input '${node.inputs[b.index]}'`;
    case 'output':
      return `output '${node.outputs[b.index]}'`;
    case 'param':
      return '(its packed constants)';
    case 'scratch':
      return '(its scratch buffer)';
  }
}

/** The device limits a plan must fit. */
export type PlanLimits = Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize' | 'minStorageBufferOffsetAlignment'>;

/** The device a plan is for: its limits, and what kernels may assume of it (kernels/types.ts KernelTarget). */
export type PlanDevice = PlanLimits & { cpuSubgroupSize?: number };

/** Planning for no device in particular: nothing split, one arena, kernels for any GPU. */
const NO_LIMITS: PlanDevice = { maxStorageBufferBindingSize: Infinity, maxBufferSize: Infinity, minStorageBufferOffsetAlignment: 256 };

/** Refuses a plan that needs a buffer or a binding over the device's limits, before anything is allocated. */
export function checkLimits(plan: Plan, limits: PlanLimits): void {
  for (const k of plan.kernels) {
    k.buffers.forEach((ref, i) => {
      const bytes = ref.bytes;
      if (bytes > limits.maxStorageBufferBindingSize) {
        throw new GpuError(
          `${k.node.opType} node '${originalName(k.node)}' ${bindingName(k.node, k.kernel.bindings[i]!)} needs a ${bytes} byte binding; the adapter allows ${limits.maxStorageBufferBindingSize} bytes per binding and this op cannot be split`,
        );
      }
    });
  }
  plan.slotBytes.forEach((bytes, slot) => {
    if (bytes <= limits.maxBufferSize) return;
    // Only a tensor larger than the limit makes such a buffer (model/memory.ts): the binding reaching its end names it.
    const user = plan.kernels
      .flatMap((k) => k.buffers.flatMap((ref, i) => (ref.kind === 'slot' && ref.slot === slot ? [{ k, i, end: ref.offset + ref.bytes }] : [])))
      .reduce<{ k: PlannedKernel; i: number; end: number } | undefined>((a, b) => (a && a.end >= b.end ? a : b), undefined);
    const what = user ? `${user.k.node.opType} node '${originalName(user.k.node)}' ${bindingName(user.k.node, user.k.kernel.bindings[user.i]!)}` : 'the plan';
    throw new GpuError(`${what} needs a ${bytes} byte buffer; the adapter allows ${limits.maxBufferSize} bytes per buffer`);
  });
}
