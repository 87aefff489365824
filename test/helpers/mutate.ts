/**
 * Seeded corruptions of the real fixture models, and the one way to judge
 * them: load the mutated bytes exactly as `readModelFile` does, plan a
 * session at the fixture's input size and, when asked, compile and run it.
 * A case passes when it ends in a typed error (SegscopeError) or a run, in
 * bounded time and memory; a run, when onnxruntime runs the same bytes on
 * the same input, must give its outputs. Shared by test/fuzz.test.ts and
 * bench/fuzz.ts.
 *
 * Every case is a function of its seed alone, so `bench/fuzz.ts --replay SEED`
 * rebuilds the same bytes.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { SegscopeError } from '../../src/errors.js';
import type { Gpu } from '../../src/gpu/device.js';
import { readModelFile } from '../../src/io/model-file.js';
import { relativeL2 } from '../../src/metrics/agreement.js';
import type { Graph, HostTensor } from '../../src/model/graph.js';
import { inferTypes } from '../../src/model/infer.js';
import { decodeModel, encodeModel } from '../../src/onnx/decode.js';
import { AttributeType, DataLocation, DataType, type ModelProto, type NodeProto, type TensorProto } from '../../src/onnx/schema.js';
import { registry } from '../../src/ops/registry.js';
import type { Plan } from '../../src/runtime/plan.js';
import { planDevice, planProgram } from '../../src/runtime/program.js';
import { Session } from '../../src/runtime/session.js';
import { random, randomTensor } from './gpu.js';
import { OrtReference } from './reference.js';

const FIXTURE_DIR = join(import.meta.dirname, '../fixtures');

/** Each fixture at its export size (test/fixtures/README.md). */
export const FIXTURES: readonly { file: string; dims: number[] }[] = [
  { file: 'deeplabv3plus_os16.onnx', dims: [1, 3, 65, 65] },
  { file: 'deeplabv3plus_os8_ac.onnx', dims: [1, 3, 65, 65] },
  { file: 'deeplabv3plus_sep.onnx', dims: [1, 3, 61, 83] },
  { file: 'deeplabv3plus_opset11.onnx', dims: [1, 3, 65, 65] },
  { file: 'deeplabv3plus_bn.onnx', dims: [1, 3, 65, 65] },
  { file: 'tv_deeplabv3.onnx', dims: [1, 3, 65, 81] },
  { file: 'tv_fcn.onnx', dims: [1, 3, 64, 64] },
  { file: 'tv_lraspp.onnx', dims: [1, 3, 97, 65] },
  { file: 'deeplabv3plus_dynamo/model.onnx', dims: [1, 3, 65, 65] },
];

/** Bounds a case must stay within (issue #8). */
export const BOUNDS = {
  /** Decoding, graph building, shape inference, folding and planning. */
  cpuMs: 2000,
  /**
   * Shader compilation and one run on lavapipe: ~0.5-1.5 s per fixture on 2
   * shared cores with Mesa's shader cache warm, up to ~25 s cold (a fresh CI
   * machine, the test files compiling side by side). A bound against hangs,
   * not a speed check.
   */
  gpuMs: 60_000,
  /** Growth of the process's peak RSS during one case. */
  rssGrowthBytes: 512 * 2 ** 20,
};

/** Plans larger than this are not run: lavapipe would spend minutes of CPU on them. */
const MAX_RUN_BYTES = 256 * 2 ** 20;

/** What test/models.test.ts allows the fixtures against onnxruntime, on every output. */
const RELATIVE_L2 = 1e-4;

/** Uniform draws in [0, 1) from a seed: mulberry32 blocks of test/helpers/gpu.ts's `random`. */
export class Rng {
  private draws: Float32Array;
  private used = 0;
  private block = 0;

  constructor(private readonly seed: number) {
    this.draws = random(256, seed, 0, 1);
  }

  next(): number {
    if (this.used === this.draws.length) {
      this.draws = random(256, (this.seed ^ Math.imul(++this.block, 0x9e3779b9)) >>> 0, 0, 1);
      this.used = 0;
    }
    return this.draws[this.used++]!;
  }

  /** An integer in [0, n); float32 draws can round up to 1, hence the min. */
  below(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)]!;
  }
}

// ---------------------------------------------------------------------------
// Byte-level mutations. They aim at the wire format's structure (tags and
// length varints of messages), found by walking the known message fields.

interface WireField {
  /** Offset of the tag varint. */
  tag: number;
  /** Offset of the length varint (length-delimited fields), else -1. */
  length: number;
  /** Offset just past the field. */
  end: number;
}

/** Field numbers holding sub-messages, by message: enough to reach nodes, tensors and attributes. */
const SUBMESSAGES: Record<string, Record<number, string>> = {
  model: { 7: 'graph', 8: 'leaf' },
  graph: { 1: 'node', 5: 'tensor', 11: 'leaf', 12: 'leaf', 13: 'leaf' },
  node: { 5: 'attribute' },
  attribute: { 5: 'tensor' },
  tensor: {},
  leaf: {},
};

function wireFields(bytes: Uint8Array, start = 0, end = bytes.length, message = 'model', out: WireField[] = []): WireField[] {
  const reader = protobuf.Reader.create(bytes.subarray(0, end));
  reader.pos = start;
  while (reader.pos < end) {
    const tag = reader.pos;
    const key = reader.uint32();
    let length = -1;
    if ((key & 7) === 2) {
      length = reader.pos;
      const n = reader.uint32();
      const child = SUBMESSAGES[message]![key >>> 3];
      if (child) wireFields(bytes, reader.pos, reader.pos + n, child, out);
      reader.pos += n;
    } else {
      reader.skipType(key & 7);
    }
    out.push({ tag, length, end: reader.pos });
  }
  return out;
}

const splice = (bytes: Uint8Array, at: number, remove: number, insert: ArrayLike<number>): Uint8Array => {
  const out = new Uint8Array(bytes.length - remove + insert.length);
  out.set(bytes.subarray(0, at));
  out.set(insert, at);
  out.set(bytes.subarray(at + remove), at + insert.length);
  return out;
};

const varintBytes = (n: number): number[] => {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n % 0x80) | 0x80);
  return [...out, n];
};

const varintLength = (bytes: Uint8Array, at: number): number => {
  let n = 1;
  while (bytes[at + n - 1]! & 0x80) n++;
  return n;
};

type ByteMutation = (bytes: Uint8Array, rng: Rng) => { bytes: Uint8Array; detail: string };

const byteMutations: Record<string, ByteMutation> = {
  truncate: (bytes, rng) => {
    const at = rng.below(bytes.length);
    return { bytes: bytes.slice(0, at), detail: `cut at ${at} of ${bytes.length}` };
  },
  'bit-flip': (bytes, rng) => {
    // Half the flips land on field headers: most of a file is raw weights.
    const headers = wireFields(bytes);
    const out = Uint8Array.from(bytes);
    const flips: string[] = [];
    for (let k = 1 + rng.below(8); k > 0; k--) {
      const at = rng.next() < 0.5 ? rng.pick(headers).tag + rng.below(3) : rng.below(out.length);
      const bit = rng.below(8);
      if (at >= out.length) continue;
      out[at]! ^= 1 << bit;
      flips.push(`${at}:${bit}`);
    }
    return { bytes: out, detail: `flipped byte:bit ${flips.join(' ')}` };
  },
  'varint-overflow': (bytes, rng) => {
    const field = rng.pick(wireFields(bytes).filter((f) => f.length >= 0));
    const n = 10 + rng.below(6);
    const overflow = [...new Array<number>(n).fill(0xff), 0x01];
    return { bytes: splice(bytes, field.length, varintLength(bytes, field.length), overflow), detail: `length at ${field.length} → ${n + 1}-byte varint` };
  },
  'length-past-end': (bytes, rng) => {
    const field = rng.pick(wireFields(bytes).filter((f) => f.length >= 0));
    const size = varintLength(bytes, field.length);
    const left = bytes.length - field.length - size;
    const length = rng.pick([left + 1, left + 1 + rng.below(1 << 20), 2 ** 31 - 1, 2 ** 32 - 1]);
    return { bytes: splice(bytes, field.length, size, varintBytes(length)), detail: `length at ${field.length} → ${length} (${left} bytes left)` };
  },
  'bad-tag': (bytes, rng) => {
    const field = rng.pick(wireFields(bytes));
    const key = rng.pick([0x00, 0x07, 0x06, 0x0b, 0x0c, 0x03]); // field 0, wire types 7/6/3/4
    return { bytes: splice(bytes, field.tag, varintLength(bytes, field.tag), [key]), detail: `tag at ${field.tag} → 0x${key.toString(16)}` };
  },
};

// ---------------------------------------------------------------------------
// Decoded-proto mutations: the message decodes, but the model is wrong.

type ProtoMutation = (model: ModelProto, rng: Rng) => string;

const nodesOf = (m: ModelProto): NodeProto[] => m.graph?.node ?? [];
const initializersOf = (m: ModelProto): TensorProto[] => m.graph?.initializer ?? [];
const tensorNames = (m: ModelProto): string[] => [
  ...nodesOf(m).flatMap((n) => n.output ?? []),
  ...initializersOf(m).map((t) => t.name ?? ''),
  ...(m.graph?.input ?? []).map((v) => v.name ?? ''),
];

/** Some initializer, or a Constant node's value (where the shape constants of TorchScript exports live). */
function someTensor(m: ModelProto, rng: Rng): { tensor: TensorProto; name: string } {
  const constants = nodesOf(m).flatMap((n) => (n.attribute ?? []).flatMap((a) => (a.t ? [{ tensor: a.t, name: `${n.name}.${a.name}` }] : [])));
  const initializers = initializersOf(m).map((t) => ({ tensor: t, name: t.name ?? '' }));
  return rng.pick(constants.length && rng.next() < 0.5 ? constants : initializers);
}

const someNode = (m: ModelProto, rng: Rng): NodeProto => rng.pick(nodesOf(m));

const HUGE_DIMS: number[][] = [
  [2 ** 31 + 1],
  [2 ** 40],
  [65536, 65536, 65536],
  [2 ** 26, 2 ** 26],
  [2 ** 27, 2 ** 27, 3],
  [Number.MAX_SAFE_INTEGER],
  [2 ** 62],
  [1, 2 ** 31, 2],
  [-1],
  [3, -5],
  [-(2 ** 40)],
  [2 ** 63],
];

const HUGE_INTS = [2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 53, -(2 ** 53), 2 ** 62, -1, 0, 1e6, 65536];

/** Bytes of `values` in the layout `dataType` has in raw_data. */
function rawOf(values: ArrayLike<number>, dataType: number): Uint8Array {
  const view =
    dataType === DataType.INT64 ? BigInt64Array.from(Array.from(values, (v) => BigInt(Number.isFinite(v) ? Math.trunc(v) : 0))) : Float32Array.from(values);
  return new Uint8Array(view.buffer);
}

const f32Values = (t: TensorProto): Float32Array =>
  t.raw_data?.length && t.data_type === DataType.FLOAT ? new Float32Array(Uint8Array.from(t.raw_data).buffer) : Float32Array.from(t.float_data ?? []);

const protoMutations: Record<string, ProtoMutation> = {
  'huge-dims': (m, rng) => {
    const { tensor, name } = someTensor(m, rng);
    tensor.dims = rng.pick(HUGE_DIMS);
    return `${name}.dims = [${tensor.dims}]`;
  },
  'huge-shape-value': (m, rng) => {
    // Integer constants decide shapes (Resize sizes, Reshape targets, Slice ends, ConstantOfShape).
    const ints = [...initializersOf(m), ...nodesOf(m).flatMap((n) => (n.attribute ?? []).flatMap((a) => (a.t ? [a.t] : [])))].filter(
      (t) => t.data_type === DataType.INT64,
    );
    if (!ints.length) return 'no int64 constant';
    const tensor = rng.pick(ints);
    const count = (tensor.dims ?? []).reduce((a, b) => a * b, 1);
    const values = Array.from({ length: count }, () => rng.pick(HUGE_INTS));
    tensor.raw_data = rawOf(values, DataType.INT64);
    tensor.int64_data = [];
    return `${tensor.name ?? 'constant'} = [${values}]`;
  },
  'short-raw': (m, rng) => {
    const withRaw = initializersOf(m).filter((t) => t.raw_data?.length);
    if (!withRaw.length) return 'no raw_data';
    const t = rng.pick(withRaw);
    const keep = rng.below(t.raw_data!.length);
    t.raw_data = t.raw_data!.subarray(0, keep);
    return `${t.name}.raw_data cut to ${keep} bytes`;
  },
  'missing-initializer': (m, rng) => {
    const list = initializersOf(m);
    const [gone] = list.splice(rng.below(list.length), 1);
    return `removed initializer ${gone?.name}`;
  },
  cycle: (m, rng) => {
    const nodes = nodesOf(m);
    const i = rng.below(nodes.length);
    const later = nodes[i + rng.below(nodes.length - i)]!;
    const node = nodes[i]!;
    node.input ??= [];
    const slot = rng.below(node.input.length + 1);
    node.input[slot] = later.output![0]!;
    return `${node.name}.input[${slot}] = ${later.output![0]} (output of ${later.name})`;
  },
  'dangling-input': (m, rng) => {
    const node = someNode(m, rng);
    node.input = [...(node.input ?? []), 'fuzz_nobody_makes_this'];
    if (node.input.length > 1 && rng.next() < 0.5) node.input.splice(rng.below(node.input.length - 1), 1, 'fuzz_nobody_makes_this');
    return `${node.name} reads fuzz_nobody_makes_this`;
  },
  'duplicate-output': (m, rng) => {
    const node = someNode(m, rng);
    const name = rng.pick(tensorNames(m));
    node.output = [name, ...(node.output ?? []).slice(1)];
    return `${node.name}.output[0] = ${name}`;
  },
  'wrong-dtype': (m, rng) => {
    const { tensor, name } = someTensor(m, rng);
    if (rng.next() < 0.5 && tensor.data_type === DataType.FLOAT) {
      // Consistent data of the wrong type: int64 weights for a Conv.
      tensor.raw_data = rawOf(f32Values(tensor), DataType.INT64);
      tensor.float_data = [];
      tensor.data_type = DataType.INT64;
      return `${name} re-encoded as int64`;
    }
    tensor.data_type = rng.below(30);
    return `${name}.data_type = ${tensor.data_type}`;
  },
  'string-tensor': (m, rng) => {
    const { tensor, name } = someTensor(m, rng);
    const count = (tensor.dims ?? []).reduce((a, b) => a * b, 1);
    Object.assign(tensor, { data_type: DataType.STRING, raw_data: undefined, float_data: [], int64_data: [] });
    tensor.string_data = Array.from({ length: Math.min(count, 4) }, () => new TextEncoder().encode('fuzz'));
    return `${name} turned into a string tensor`;
  },
  'zero-size': (m, rng) => {
    const { tensor, name } = someTensor(m, rng);
    const dims = tensor.dims?.length ? [...tensor.dims] : [1];
    dims[rng.below(dims.length)] = 0;
    Object.assign(tensor, { dims, raw_data: new Uint8Array(0), float_data: [], int64_data: [], int32_data: [] });
    return `${name}.dims = [${dims}], no data`;
  },
  'unknown-op': (m, rng) => {
    const node = someNode(m, rng);
    const op = rng.pick(['FuzzOp', 'LSTM', 'If', 'NonMaxSuppression', 'conv', '']);
    const was = node.op_type;
    node.op_type = op;
    return `${node.name}: ${was} → '${op}'`;
  },
  'op-swap': (m, rng) => {
    // A supported op with inputs meant for another: shape rules meet arities and ranks they did not expect.
    const node = someNode(m, rng);
    const ops = [
      'Conv',
      'MatMul',
      'Gemm',
      'Resize',
      'Concat',
      'Softmax',
      'Transpose',
      'Pad',
      'Reshape',
      'MaxPool',
      'ReduceMean',
      'Slice',
      'Gather',
      'Cast',
      'ConstantOfShape',
      'Expand',
      'Range',
      'BatchNormalization',
      'Add',
      'Where',
    ];
    const was = node.op_type;
    node.op_type = rng.pick(ops);
    return `${node.name}: ${was} → ${node.op_type}`;
  },
  'foreign-domain': (m, rng) => {
    const node = someNode(m, rng);
    node.domain = rng.pick(['com.microsoft', 'ai.onnx.ml', 'org.pytorch.aten']);
    return `${node.name}.domain = ${node.domain}`;
  },
  opset: (m, rng) => {
    const version = rng.pick([99, 0, -1, 6, 23, 2 ** 40]);
    if (rng.next() < 0.5) m.opset_import = [{ domain: '', version }];
    else m.opset_import = [...(m.opset_import ?? []), { domain: 'ai.onnx', version }];
    return `opset_import = ${JSON.stringify(m.opset_import)}`;
  },
  'no-opset': (m) => {
    m.opset_import = [];
    return 'no opset_import';
  },
  'empty-graph': (m, rng) => {
    const how = rng.pick(['no graph', 'empty graph', 'no nodes', 'no outputs', 'no inputs']);
    if (how === 'no graph') delete m.graph;
    else if (how === 'empty graph') m.graph = {};
    else if (how === 'no nodes') m.graph!.node = [];
    else if (how === 'no outputs') m.graph!.output = [];
    else m.graph!.input = [];
    return how;
  },
  'attr-type': (m, rng) => {
    const node = rng.pick(nodesOf(m).filter((n) => n.attribute?.length));
    const a = rng.pick(node.attribute!);
    const was = a.type;
    const values = [...(a.ints ?? []), ...(a.floats ?? []), a.i ?? a.f ?? 1];
    const type = rng.pick([
      AttributeType.FLOATS,
      AttributeType.FLOAT,
      AttributeType.INT,
      AttributeType.INTS,
      AttributeType.STRING,
      AttributeType.TENSOR,
      AttributeType.GRAPH,
      AttributeType.UNDEFINED,
      AttributeType.SPARSE_TENSOR,
      99,
    ]);
    Object.assign(a, { type, ints: [], floats: [], i: 0, f: 0, t: undefined });
    // Non-integer floats where ints are expected: kernel_shape 3.5.
    if (type === AttributeType.FLOATS) a.floats = values.map((v) => v + 0.5);
    if (type === AttributeType.FLOAT) a.f = values[0]! + 0.5;
    if (type === AttributeType.INTS) a.ints = values.map(Math.trunc);
    if (type === AttributeType.INT) a.i = Math.trunc(values[0]!);
    if (type === AttributeType.STRING) a.s = new TextEncoder().encode('fuzz');
    return `${node.name}.${a.name}: type ${was} → ${type}`;
  },
  'attr-value': (m, rng) => {
    const node = rng.pick(nodesOf(m).filter((n) => n.attribute?.some((a) => a.type === AttributeType.INTS || a.type === AttributeType.INT)));
    const a = rng.pick(node.attribute!.filter((x) => x.type === AttributeType.INTS || x.type === AttributeType.INT));
    if (a.type === AttributeType.INT) {
      a.i = rng.pick(HUGE_INTS);
      return `${node.name}.${a.name} = ${a.i}`;
    }
    const ints = [...(a.ints ?? [])];
    const how = rng.pick(['negative', 'shorter', 'longer', 'huge', 'zero']);
    if (how === 'shorter') ints.pop();
    else if (how === 'longer') ints.push(1);
    else if (ints.length) ints[rng.below(ints.length)] = how === 'negative' ? -1 - rng.below(4) : how === 'huge' ? rng.pick(HUGE_INTS) : 0;
    a.ints = ints;
    return `${node.name}.${a.name} = [${ints}] (${how})`;
  },
  'external-outside': (m, rng) => {
    const t = rng.pick(initializersOf(m));
    const location = rng.pick(['../../../../../etc/passwd', '/etc/passwd', 'C:\\Windows\\win.ini', 'missing.bin', 'a\0b', '.', 'model.onnx', '..']);
    const entries = [{ key: 'location', value: location }];
    const extra = rng.pick(['', 'offset', 'length']);
    if (extra) entries.push({ key: extra, value: rng.pick(['-1', '1e3', '99999999999', String(2 ** 60), 'abc', '0']) });
    Object.assign(t, { data_location: DataLocation.EXTERNAL, external_data: entries, raw_data: undefined });
    return `${t.name} external_data ${JSON.stringify(entries)}`;
  },
  'input-dims': (m, rng) => {
    const input = m.graph!.input![0]!;
    const dims = rng.pick([
      [-1, 3, 65, 65],
      [1, 3, 65],
      [2 ** 40, 3, 65, 65],
      [1, 0, 65, 65],
      [1, 3, 65, 65, 1],
    ]);
    input.type!.tensor_type!.shape = { dim: dims.map((d) => ({ dim_value: d })) };
    return `input ${input.name} declared [${dims}]`;
  },
  arity: (m, rng) => {
    const node = someNode(m, rng);
    const inputs = node.input ?? [];
    if (rng.next() < 0.5) node.input = inputs.slice(0, rng.below(inputs.length + 1));
    else node.input = [...inputs, ...Array.from({ length: 1 + rng.below(3) }, () => rng.pick(tensorNames(m)))];
    return `${node.name}.input = [${node.input}]`;
  },
  'swap-inputs': (m, rng) => {
    const node = rng.pick(nodesOf(m).filter((n) => (n.input?.length ?? 0) >= 2));
    const inputs = node.input!;
    const [i, j] = [rng.below(inputs.length), rng.below(inputs.length)];
    [inputs[i], inputs[j]] = [inputs[j]!, inputs[i]!];
    return `${node.name}: swapped inputs ${i} and ${j}`;
  },
  'graph-output': (m, rng) => {
    const name = rng.pick([...tensorNames(m), '', 'fuzz_no_such_tensor']);
    m.graph!.output = [{ ...m.graph!.output![0], name }];
    return `graph output → '${name}'`;
  },
};

export const MUTATION_KINDS = [...Object.keys(byteMutations), ...Object.keys(protoMutations)];

export interface FuzzCase {
  seed: number;
  fixture: (typeof FIXTURES)[number];
  kind: string;
  detail: string;
  bytes: Uint8Array;
}

const fixtureBytes = new Map<string, Uint8Array>();
const original = (file: string): Uint8Array => {
  let bytes = fixtureBytes.get(file);
  if (!bytes) {
    bytes = readFileSync(join(FIXTURE_DIR, file));
    fixtureBytes.set(file, bytes);
  }
  return bytes;
};

/** The case of `seed`: a fixture, a mutation kind and its bytes. */
export function makeCase(seed: number): FuzzCase {
  const rng = new Rng(seed);
  const fixture = rng.pick(FIXTURES);
  const kind = rng.pick(MUTATION_KINDS);
  const bytes = original(fixture.file);
  const byteMutation = byteMutations[kind];
  if (byteMutation) return { seed, fixture, kind, ...byteMutation(bytes, rng) };
  // Decoded tensors are views of the fixture's bytes: mutations replace them, never write into them.
  const model = decodeModel(bytes, fixture.file);
  const detail = protoMutations[kind]!(model, rng);
  return { seed, fixture, kind, detail, bytes: encodeModel(model) };
}

// ---------------------------------------------------------------------------
// Judging a case.

export type Stage = 'load' | 'plan' | 'gpu';

export interface CaseResult {
  /** 'typed': a SegscopeError; 'ran': a session ran; 'planned': planned but not run (see `skipped`); 'fail': anything else. */
  outcome: 'typed' | 'ran' | 'planned' | 'fail';
  stage: Stage;
  /** The error's class and message, when there was one. */
  error?: string;
  /** 'ran' cases: every output value finite. */
  finite?: boolean;
  /**
   * 'ran' cases: onnxruntime on the same bytes and input. 'equal': the same
   * outputs (`outputDifference`); 'refused': onnxruntime refused the model
   * (or crashed or hung on it), which segscope may accept; 'mismatch': a
   * failure.
   */
  reference?: 'equal' | 'refused' | 'mismatch';
  /** onnxruntime's refusal, or how the outputs differ. */
  referenceDetail?: string;
  /** Time onnxruntime took, outside the GPU bound. */
  referenceMs?: number;
  /** 'planned' cases: why the GPU was skipped. */
  skipped?: 'not-selected' | 'too-large';
  cpuMs: number;
  gpuMs: number;
  rssGrowthBytes: number;
  /** Why a case failed: the error, or the bound it broke. */
  failure?: string;
}

export interface Workspace {
  gpu: Gpu;
  /** A folder per fixture, holding its external data files. */
  dir: string;
  /** Started on the first run; the owner closes it. */
  reference: OrtReference;
}

/** Lays out a scratch folder for the mutated model files, with the dynamo fixture's external data next to it. */
export function workspace(gpu: Gpu, dir: string): Workspace {
  for (const { file } of FIXTURES) {
    const folder = join(dir, dirname(file));
    mkdirSync(folder, { recursive: true });
    if (file.startsWith('deeplabv3plus_dynamo/')) copyFileSync(join(FIXTURE_DIR, `${file}.data`), join(folder, `${basename(file)}.data`));
  }
  return { gpu, dir, reference: new OrtReference() };
}

/**
 * The CPU half of Session.create: shape inference and folding, then
 * Session's own planning (planProgram), without compiling shaders.
 */
function planOf(gpu: Gpu, graph: Graph, dims: number[]): Plan {
  const typed = inferTypes(graph, new Map([[graph.inputs[0]?.name ?? 'input', dims]]), (op) => registry.get(op)?.infer);
  return planProgram(typed, new Set(), planDevice(gpu));
}

/** Two plans with the same kernels (shaders carry the shapes) and buffers run the same way. */
export function planKey(plan: Plan): string {
  const hash = createHash('sha1');
  for (const { kernel } of plan.kernels) hash.update(kernel.wgsl).update(kernel.workgroups.join(','));
  return hash.update(plan.slotBytes.join(',')).digest('hex');
}

/** A short description of an unexpected throw, with the top of its stack. */
const explain = (e: unknown): string =>
  e instanceof Error ? `${e.name}: ${e.message}\n${e.stack?.split('\n').slice(1, 4).join('\n')}` : `non-error thrown: ${String(e)}`;

/**
 * Loads, plans and (when `runOnGpu` says so) runs one case, and judges it.
 * `runOnGpu` sees the plan: the fuzzer runs only plans it has not run yet.
 */
export async function runCase(ws: Workspace, c: FuzzCase, runOnGpu: (plan: Plan) => boolean): Promise<CaseResult> {
  const file = join(ws.dir, c.fixture.file);
  writeFileSync(file, c.bytes);
  const peakBefore = process.resourceUsage().maxRSS * 1024;
  const t0 = performance.now();
  let stage: Stage = 'load';
  let cpuMs = 0;
  let result: Omit<CaseResult, 'cpuMs' | 'gpuMs' | 'rssGrowthBytes'>;
  let run: { feeds: Record<string, HostTensor>; outputs: Map<string, HostTensor> } | undefined;
  try {
    const graph = await readModelFile(file);
    stage = 'plan';
    const plan = planOf(ws.gpu, graph, c.fixture.dims);
    cpuMs = performance.now() - t0;
    if (plan.slotBytes.reduce((a, b) => a + b, 0) > MAX_RUN_BYTES) result = { outcome: 'planned', stage, skipped: 'too-large' };
    else if (!runOnGpu(plan)) result = { outcome: 'planned', stage, skipped: 'not-selected' };
    else {
      stage = 'gpu';
      const feeds = { [graph.inputs[0]!.name]: randomTensor(c.fixture.dims, c.seed) };
      run = { feeds, outputs: await runOnce(ws.gpu, graph, feeds) };
      result = { outcome: 'ran', stage, finite: [...run.outputs.values()].every((t) => t.data.every(Number.isFinite)) };
    }
  } catch (e) {
    result =
      e instanceof SegscopeError
        ? { outcome: 'typed', stage, error: `${e.name}: ${e.message}` }
        : { outcome: 'fail', stage, error: explain(e), failure: `untyped error at ${stage}` };
  }
  const total = performance.now() - t0;
  if (stage !== 'gpu') cpuMs = total;
  const timed = { ...result, cpuMs, gpuMs: total - cpuMs, rssGrowthBytes: process.resourceUsage().maxRSS * 1024 - peakBefore };
  // Judged once the bounds are measured: onnxruntime's time, and its outputs arriving here, are not segscope's.
  const judged = run ? { ...timed, ...(await judge(ws.reference, file, run.feeds, run.outputs)) } : timed;
  return { ...judged, failure: judged.failure ?? boundBroken(judged) };
}

function boundBroken(r: Omit<CaseResult, 'failure'>): string | undefined {
  if (r.cpuMs > BOUNDS.cpuMs) return `load+plan took ${r.cpuMs.toFixed(0)} ms > ${BOUNDS.cpuMs} ms`;
  if (r.gpuMs > BOUNDS.gpuMs) return `compile+run took ${r.gpuMs.toFixed(0)} ms > ${BOUNDS.gpuMs} ms`;
  if (r.rssGrowthBytes > BOUNDS.rssGrowthBytes) return `peak RSS grew by ${(r.rssGrowthBytes / 2 ** 20).toFixed(0)} MiB`;
  return undefined;
}

/** Builds a session for the shapes of `feeds` and runs it once. */
async function runOnce(gpu: Gpu, graph: Graph, feeds: Record<string, HostTensor>): Promise<Map<string, HostTensor>> {
  const inputShapes = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, [...t.dims]]));
  const session = await Session.create(gpu, graph, { inputShapes });
  try {
    return (await session.run(feeds)).outputs;
  } finally {
    session.destroy();
  }
}

/** onnxruntime's verdict on a run of `file`: it refused the model, or its outputs are `ours` (`outputDifference`) or not. */
async function judge(reference: OrtReference, file: string, feeds: Record<string, HostTensor>, ours: Map<string, HostTensor>) {
  const t0 = performance.now();
  const answer = await reference.run(file, feeds);
  const referenceMs = performance.now() - t0;
  if ('refused' in answer) return { reference: 'refused' as const, referenceDetail: answer.refused, referenceMs };
  const difference = outputDifference(ours, answer.outputs);
  if (difference === undefined) return { reference: 'equal' as const, referenceMs };
  return { reference: 'mismatch' as const, referenceDetail: difference, referenceMs, failure: `differs from onnxruntime: ${difference}` };
}

/**
 * How segscope's outputs differ from onnxruntime's, or undefined when they
 * are the same: the same names and dims, NaN or the same infinity wherever
 * onnxruntime has one (a mutated weight: a negative variance, a huge scale),
 * finite values wherever onnxruntime's are finite, and those within
 * RELATIVE_L2. WGSL lets a GPU drop NaN (lavapipe's max(NaN, 0) is 0):
 * segscope's ops keep them as onnxruntime does, and this finds one that does not.
 */
function outputDifference(ours: Map<string, HostTensor>, reference: Map<string, Pick<HostTensor, 'dims' | 'data'>>): string | undefined {
  const [names, expected] = [[...ours.keys()].sort(), [...reference.keys()].sort()];
  if (names.join('\0') !== expected.join('\0')) return `outputs [${names}], onnxruntime's [${expected}]`;
  for (const [name, { dims, data }] of ours) {
    const want = reference.get(name)!;
    if (dims.join() !== want.dims.join()) return `${name} is [${dims}], onnxruntime's [${want.dims}]`;
    let allFinite = true;
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      const y = want.data[i]!;
      if (Number.isFinite(y) ? !Number.isFinite(x) : !Object.is(x, y)) return `${name}[${i}] is ${x}, onnxruntime's ${y}`;
      allFinite &&= Number.isFinite(y);
    }
    // An output can be tens of millions of values (a Conv with its inputs swapped): copied only where onnxruntime has NaN or infinities.
    const finite = <T extends Float32Array | Float64Array>(values: T) => (allFinite ? values : values.filter((_, i) => Number.isFinite(want.data[i]!)));
    const error = relativeL2(finite(data), finite(want.data));
    if (!(error <= RELATIVE_L2)) return `${name} has relative L2 ${error.toExponential(2)} to onnxruntime's > ${RELATIVE_L2}`;
  }
  return undefined;
}

/** A failure as one replayable line. */
export const describeFailure = (c: FuzzCase, r: CaseResult): string =>
  `seed ${c.seed} (${c.fixture.file}, ${c.kind}: ${c.detail}) at ${r.stage}: ${r.failure}${r.error ? `\n  ${r.error.replace(/\n/g, '\n  ')}` : ''}`;
