import { afterAll } from 'vitest';
import type { Gpu } from '../../src/gpu/device.js';
import { openDawn } from '../../src/gpu/dawn.js';
import { Attrs, isFloatType, type AttrValue, type Graph, type HostTensor, type Node } from '../../src/model/graph.js';
import { inferTypes } from '../../src/model/infer.js';
import type { GpuArray } from '../../src/kernels/types.js';
import { registry } from '../../src/ops/registry.js';
import { relativeL2 } from '../../src/metrics/agreement.js';
import { float16ToFloat32, float32ToFloat16 } from '../../src/model/numeric.js';
import type { Precision } from '../../src/model/precision.js';
import { Session } from '../../src/runtime/session.js';

let shared: Promise<Gpu> | undefined;
/** One Dawn device per test process. */
export function gpu(): Promise<Gpu> {
  shared ??= openDawn();
  return shared;
}

/** Seeded uniform random numbers in [lo, hi) (mulberry32), so failures reproduce. */
export function random(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

export const tensor = (dims: number[], data: ArrayLike<number>, type: HostTensor['type'] = 'float32'): HostTensor => ({
  type,
  dims,
  data: type === 'float32' ? Float32Array.from(data) : Float64Array.from(data),
});

export const randomTensor = (dims: number[], seed: number, lo = -1, hi = 1): HostTensor =>
  tensor(
    dims,
    random(
      dims.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
  );

/**
 * Relative L2 error allowed of a result computed at precision 'f16' against
 * the float64 reference: float16 keeps 11 significant bits, so rounding the
 * stored inputs and outputs alone gives ~3e-4 on values of one scale.
 */
export const F16_TOLERANCE = 2e-3;

/** The relative L2 error op tests allow at each precision. */
export const TOLERANCE: Record<Precision, number> = { f32: 1e-5, f16: F16_TOLERANCE };

/** Values as float16 holds them: what a copy (Concat, Transpose, Pad…) at precision 'f16' must give exactly. */
export const roundToFloat16 = (data: ArrayLike<number>): number[] => Array.from(float16ToFloat32(float32ToFloat16(data)));

/** A tensor as a node reads it at `precision`: for references that must not count the rounding of the input. */
export const storedAs = (x: HostTensor, precision: Precision): HostTensor => (precision === 'f16' ? tensor([...x.dims], roundToFloat16(x.data)) : x);

/** Relative L2 error ||a - b|| / ||b||; results of different lengths fail the test. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  return relativeL2(a, b);
}

export interface NodeCase {
  op: string;
  attrs?: Record<string, AttrValue>;
  /** Runtime inputs (fed at run time), in node input order with `constants` interleaved by position. */
  inputs: (HostTensor | { constant: HostTensor } | null)[];
  outputs?: number;
  opset?: number;
}

/**
 * Runs one ONNX node on the GPU through a real Session and returns its
 * outputs. At precision 'f16' the node reads and writes float16 tensors:
 * Casts join them to the float32 feeds and outputs, as in a float16 model
 * (else the session would let the node read its float32 feeds and write its
 * float32 outputs directly, see model/precision.ts).
 */
export async function runNode(c: NodeCase, precision: Precision = 'f32'): Promise<HostTensor[]> {
  const graph = precision === 'f16' ? throughFloat16Casts(nodeGraph(c)) : nodeGraph(c);
  const session = await Session.create(await gpu(), graph, { precision });
  const feeds: Record<string, HostTensor> = {};
  c.inputs.forEach((x, i) => {
    if (x && !('constant' in x)) feeds[`in${i}`] = x;
  });
  try {
    const out = await session.run(feeds);
    return graph.outputs.map((o) => out.outputs.get(o.name)!);
  } finally {
    session.destroy();
  }
}

/**
 * Runs one node at precision 'f16' without runNode's Casts: the session
 * reads its float32 feeds and writes its float32 outputs directly (see
 * model/precision.ts), so the node's constants (weights, bias), stored as
 * float16, are the only values rounded, and a reference on the rounded
 * constants (roundToFloat16) must agree to f32 accuracy. Also returns the
 * plan's uploads: what the constants are stored as on the GPU.
 */
export async function runWithFloat16Constants(c: NodeCase, maxBindingBytes?: number): Promise<{ outputs: HostTensor[]; uploads: PlannedUpload[] }> {
  const graph = nodeGraph(c);
  const session = await Session.create(await gpu(), graph, { precision: 'f16', maxBindingBytes });
  const feeds: Record<string, HostTensor> = {};
  c.inputs.forEach((x, i) => {
    if (x && !('constant' in x)) feeds[`in${i}`] = x;
  });
  try {
    const uploads = (await session.plan()).kernels.flatMap((k) =>
      k.buffers.flatMap((b) => (b.kind === 'upload' ? [{ kernel: k.kernel.label, data: b.data() }] : [])),
    );
    const out = await session.run(feeds);
    return { outputs: graph.outputs.map((o) => out.outputs.get(o.name)!), uploads };
  } finally {
    session.destroy();
  }
}
export interface PlannedUpload {
  /** The label of the kernel that binds it. */
  kernel: string;
  data: GpuArray;
}

/**
 * A one-node graph with the node's float graph inputs fed and float outputs
 * read through Casts from and to float32: at precision 'f16' the node then
 * reads and writes float16 tensors.
 */
export function throughFloat16Casts(graph: Graph): Graph {
  const types = inferTypes(graph, new Map(), (op) => registry.get(op)?.infer).types;
  const node = graph.nodes[0]!;
  const isFloat = (name: string) => isFloatType(types.get(name)!.type);
  const cast = (from: string, to: string, type: number): Node => ({
    name: `cast_${to}`,
    opType: 'Cast',
    domain: '',
    inputs: [from],
    outputs: [to],
    attrs: new Attrs(new Map([['to', type]]), `Cast node 'cast_${to}'`),
  });
  const fed = graph.inputs.filter((i) => isFloat(i.name)).map((i) => i.name);
  const read = node.outputs.filter(isFloat);
  const half = (name: string) => (fed.includes(name) || read.includes(name) ? `${name}_f16` : name);
  return {
    ...graph,
    nodes: [
      ...fed.map((name) => cast(name, half(name), 10)),
      { ...node, inputs: node.inputs.map(half), outputs: node.outputs.map(half) },
      ...read.map((name) => cast(half(name), name, 1)),
    ],
  };
}

/** A node of a hand-written test graph, named after its one output. */
export const namedNode = (opType: string, inputs: string[], output: string, attrs: Record<string, AttrValue> = {}): Node => ({
  name: output,
  opType,
  domain: '',
  inputs,
  outputs: [output],
  attrs: new Attrs(new Map(Object.entries(attrs)), `${opType} node '${output}'`),
});

export function nodeGraph(c: NodeCase): Graph {
  const initializers = new Map<string, HostTensor>();
  const inputs: Graph['inputs'] = [];
  const names = c.inputs.map((x, i) => {
    if (!x) return '';
    const name = `in${i}`;
    if ('constant' in x) initializers.set(name, x.constant);
    else inputs.push({ name, type: x.type, dims: [...x.dims] });
    return name;
  });
  const outputs = Array.from({ length: c.outputs ?? 1 }, (_, k) => `out${k}`);
  const node: Node = {
    name: `test_${c.op}`,
    opType: c.op,
    domain: '',
    inputs: names,
    outputs,
    attrs: new Attrs(new Map(Object.entries(c.attrs ?? {})), `${c.op} node 'test_${c.op}'`),
  };
  return {
    nodes: [node],
    inputs,
    outputs: outputs.map((name) => ({ name, type: 'float32' })),
    initializers,
    opset: c.opset ?? 17,
    metadata: {},
    source: `test ${c.op}`,
  };
}

/**
 * GPU buffers a test file creates, destroyed after the file's tests:
 * `const keep = freeAfterAll();` then `keep(t)` returns `t`.
 */
export function freeAfterAll(): <T extends { buffer: GPUBuffer }>(t: T) => T {
  const owned: { buffer: GPUBuffer }[] = [];
  afterAll(() => {
    for (const t of owned) t.buffer.destroy();
  });
  return (t) => {
    owned.push(t);
    return t;
  };
}
