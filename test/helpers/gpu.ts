import { afterAll } from 'vitest';
import type { Gpu } from '../../src/gpu/device.js';
import { openDawn } from '../../src/gpu/dawn.js';
import { Attrs, type AttrValue, type Graph, type HostTensor, type Node } from '../../src/model/graph.js';
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
  tensor(dims, random(dims.reduce((a, b) => a * b, 1), seed, lo, hi));

/**
 * Relative L2 error allowed of a result computed at precision 'f16' against
 * the float64 reference: float16 keeps 11 significant bits, so rounding the
 * stored inputs and outputs alone gives ~3e-4 on values of one scale.
 */
export const F16_TOLERANCE = 2e-3;

/** Relative L2 error ||a - b|| / ||b||. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
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
 * outputs. At precision 'f16' the node computes on float16 activations
 * between casts of its float32 feeds and outputs.
 */
export async function runNode(c: NodeCase, precision: Precision = 'f32'): Promise<HostTensor[]> {
  const graph = nodeGraph(c);
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
