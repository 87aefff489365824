import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, ModelError, UnsupportedOpError } from '../src/errors.js';
import { inferTypes } from '../src/model/infer.js';
import { registry } from '../src/ops/registry.js';
import { readModelFile } from '../src/io/model-file.js';
import { modelFromBytes } from '../src/model/from-bytes.js';
import { graphFromModel } from '../src/model/from-onnx.js';
import type { Graph, HostTensor } from '../src/model/graph.js';
import { decodeModel, decodeTensor, encodeModel } from '../src/onnx/decode.js';
import {
  AttributeType,
  DataLocation,
  DataType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../src/onnx/schema.js';
import { tensorFromProto } from '../src/model/tensor-proto.js';

const SOURCE = 'mem.onnx';

const tensorInfo = (name: string, dims: (number | string | undefined)[] = [1], elem_type: number = DataType.FLOAT): ValueInfoProto => ({
  name,
  type: {
    tensor_type: {
      elem_type,
      shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : typeof d === 'string' ? { dim_param: d } : {})) },
    },
  },
});

const modelOf = (graph: GraphProto, opset = 17): ModelProto => ({
  ir_version: 8,
  producer_name: 'segscope-test',
  opset_import: [{ domain: '', version: opset }],
  graph,
});

/** Encodes and decodes, so every test also exercises the wire format. */
const load = (model: ModelProto): Graph => graphFromModel(decodeModel(encodeModel(model), SOURCE), { source: SOURCE });

/** A model whose only content is the initializer `t` exposed as output. */
const loadTensor = (t: TensorProto): HostTensor => {
  const graph = load(modelOf({ initializer: [{ name: 'w', ...t }], output: [tensorInfo('w')] }));
  return graph.initializers.get('w')!;
};

const rawOf = (array: ArrayBufferView): Uint8Array => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

/** The small valid model of the corruption tests: x → Relu → Add(bias) → Transpose(perm) → y. */
const smallModel = (): ModelProto =>
  modelOf({
    name: 'small',
    input: [tensorInfo('x', ['N', 3])],
    output: [tensorInfo('y', [3, 'N'])],
    initializer: [{ name: 'bias', data_type: DataType.FLOAT, dims: [3], raw_data: rawOf(new Float32Array([1, 2, 3])) }],
    node: [
      { name: 'relu', op_type: 'Relu', input: ['x'], output: ['r'] },
      { name: 'add', op_type: 'Add', input: ['r', 'bias'], output: ['a'] },
      { op_type: 'Transpose', input: ['a'], output: ['y'], attribute: [{ name: 'perm', type: AttributeType.INTS, ints: [1, 0] }] },
    ],
  });

function expectModelError(run: () => unknown, ...fragments: string[]): void {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ModelError);
  for (const f of fragments) expect((error as Error).message).toContain(f);
}

async function expectModelErrorAsync(run: () => Promise<unknown>, ...fragments: string[]): Promise<void> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelError);
  for (const f of fragments) expect((error as Error).message).toContain(f);
}

describe('tensor data fields', () => {
  it('reads float_data', () => {
    const t = loadTensor({ data_type: DataType.FLOAT, dims: [2, 2], float_data: [1, -2.5, 0.25, 1e10] });
    expect(t.type).toBe('float32');
    expect(t.dims).toEqual([2, 2]);
    expect(t.data).toBeInstanceOf(Float32Array);
    expect([...t.data]).toEqual([1, -2.5, 0.25, Math.fround(1e10)]);
  });

  it('reads int32_data for int32, int16, uint16, int8, uint8 and bool', () => {
    const cases: [number, string, number[], number[]][] = [
      [DataType.INT32, 'int32', [-2147483648, 7, 2147483647], [-2147483648, 7, 2147483647]],
      [DataType.INT16, 'int16', [-32768, 0, 32767], [-32768, 0, 32767]],
      [DataType.UINT16, 'uint16', [0, 1, 65535], [0, 1, 65535]],
      [DataType.INT8, 'int8', [-128, 5, 127], [-128, 5, 127]],
      [DataType.UINT8, 'uint8', [0, 200, 255], [0, 200, 255]],
      [DataType.BOOL, 'bool', [0, 1, 1], [0, 1, 1]],
    ];
    for (const [data_type, type, int32_data, expected] of cases) {
      const t = loadTensor({ data_type, dims: [3], int32_data });
      expect(t.type).toBe(type);
      expect(t.data).toBeInstanceOf(Float64Array);
      expect([...t.data]).toEqual(expected);
    }
  });

  it('reads int64_data, including the INT64 sentinels', () => {
    const t = loadTensor({ data_type: DataType.INT64, dims: [4], int64_data: [2 ** 63, -(2 ** 63), -1, 2 ** 53] });
    expect(t.type).toBe('int64');
    expect([...t.data]).toEqual([2 ** 63, -(2 ** 63), -1, 2 ** 53]);
  });

  it('reads double_data as float32', () => {
    const t = loadTensor({ data_type: DataType.DOUBLE, dims: [2], double_data: [0.1, -1e300] });
    expect(t.type).toBe('float32');
    expect([...t.data]).toEqual([Math.fround(0.1), -Infinity]);
  });

  it('reads uint64_data for uint32 and uint64', () => {
    expect([...loadTensor({ data_type: DataType.UINT32, dims: [2], uint64_data: [0, 4294967295] }).data]).toEqual([0, 4294967295]);
    const t = loadTensor({ data_type: DataType.UINT64, dims: [2], uint64_data: [3, 2 ** 53] });
    expect(t.type).toBe('uint64');
    expect([...t.data]).toEqual([3, 2 ** 53]);
  });

  it('reads raw_data of every supported type', () => {
    const cases: [number, string, ArrayBufferView, number[]][] = [
      [DataType.FLOAT, 'float32', new Float32Array([1.5, -3]), [1.5, -3]],
      [DataType.DOUBLE, 'float32', new Float64Array([0.1, 2]), [Math.fround(0.1), 2]],
      [DataType.INT32, 'int32', new Int32Array([-5, 2147483647]), [-5, 2147483647]],
      [DataType.UINT32, 'uint32', new Uint32Array([4294967295, 1]), [4294967295, 1]],
      [DataType.INT16, 'int16', new Int16Array([-32768, 12]), [-32768, 12]],
      [DataType.UINT16, 'uint16', new Uint16Array([65535, 12]), [65535, 12]],
      [DataType.INT8, 'int8', new Int8Array([-128, 127]), [-128, 127]],
      [DataType.UINT8, 'uint8', new Uint8Array([255, 0]), [255, 0]],
      [DataType.BOOL, 'bool', new Uint8Array([0, 1]), [0, 1]],
    ];
    for (const [data_type, type, array, expected] of cases) {
      const t = loadTensor({ data_type, dims: [2], raw_data: rawOf(array) });
      expect(t.type, `type ${data_type}`).toBe(type);
      expect([...t.data], `type ${data_type}`).toEqual(expected);
    }
  });

  it('reads int64 and uint64 raw_data sentinels', () => {
    const signed = new BigInt64Array([2n ** 63n - 1n, -(2n ** 63n), -1n, 2n ** 53n + 1n, -(2n ** 40n) - 3n]);
    expect([...loadTensor({ data_type: DataType.INT64, dims: [5], raw_data: rawOf(signed) }).data]).toEqual([2 ** 63, -(2 ** 63), -1, 2 ** 53, -(2 ** 40) - 3]);
    const unsigned = new BigUint64Array([2n ** 64n - 1n, 2n ** 32n + 7n]);
    expect([...loadTensor({ data_type: DataType.UINT64, dims: [2], raw_data: rawOf(unsigned) }).data]).toEqual([2 ** 64, 2 ** 32 + 7]);
  });

  it('reads raw_data that sits at an odd byteOffset', () => {
    const backing = new Uint8Array(1 + 3 * 8);
    const raw = backing.subarray(1);
    new DataView(raw.buffer, raw.byteOffset).setFloat32(0, 1.25, true);
    new DataView(raw.buffer, raw.byteOffset).setFloat32(4, -7, true);
    const f = tensorFromProto({ name: 'f', data_type: DataType.FLOAT, dims: [2], raw_data: raw.subarray(0, 8) }, { source: '' });
    expect([...f.data]).toEqual([1.25, -7]);
    const view = new DataView(raw.buffer, raw.byteOffset);
    view.setBigInt64(0, -3n, true);
    view.setBigInt64(8, 2n ** 62n, true);
    view.setBigInt64(16, 9n, true);
    const i = tensorFromProto({ name: 'i', data_type: DataType.INT64, dims: [3], raw_data: raw }, { source: '' });
    expect([...i.data]).toEqual([-3, 2 ** 62, 9]);
    // Node Buffers too: Buffer.prototype.slice shares memory instead of copying.
    const buffer = Buffer.alloc(9);
    buffer.writeFloatLE(2.5, 1);
    buffer.writeFloatLE(-1, 5);
    const b = tensorFromProto({ name: 'b', data_type: DataType.FLOAT, dims: [2], raw_data: buffer.subarray(1) }, { source: '' });
    expect([...b.data]).toEqual([2.5, -1]);
    const h = tensorFromProto({ name: 'h', data_type: DataType.FLOAT16, dims: [1], raw_data: new Uint8Array([0, 0x00, 0x3c]).subarray(1) }, { source: '' });
    expect([...h.data]).toEqual([1]);
  });

  it('converts float16 from int32_data and raw_data', () => {
    const bits = [0x3c00, 0xc100, 0x7bff, 0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x3555];
    const expected = [1, -2.5, 65504, 2 ** -24, 1023 * 2 ** -24, -0, Infinity, -Infinity, Math.fround(0.333251953125)];
    for (const t of [
      loadTensor({ data_type: DataType.FLOAT16, dims: [bits.length], int32_data: bits }),
      loadTensor({ data_type: DataType.FLOAT16, dims: [bits.length], raw_data: rawOf(new Uint16Array(bits)) }),
    ]) {
      expect(t.type).toBe('float32');
      expect([...t.data]).toEqual(expected);
      expect(Object.is(t.data[5], -0)).toBe(true);
    }
    expect(Number.isNaN(loadTensor({ data_type: DataType.FLOAT16, dims: [], int32_data: [0x7e00] }).data[0])).toBe(true);
  });

  it('converts bfloat16 from int32_data and raw_data', () => {
    const bits = [0x3f80, 0xc020, 0x7f80, 0x0001, 0x4049];
    const expected = [1, -2.5, Infinity, 2 ** -133, 3.140625];
    expect([...loadTensor({ data_type: DataType.BFLOAT16, dims: [5], int32_data: bits }).data]).toEqual(expected);
    const t = loadTensor({ data_type: DataType.BFLOAT16, dims: [5], raw_data: rawOf(new Uint16Array(bits)) });
    expect(t.type).toBe('float32');
    expect([...t.data]).toEqual(expected);
  });

  it('handles scalars and empty tensors', () => {
    const scalar = loadTensor({ data_type: DataType.INT64, dims: [], int64_data: [42] });
    expect(scalar.dims).toEqual([]);
    expect([...scalar.data]).toEqual([42]);
    const empty = loadTensor({ data_type: DataType.FLOAT, dims: [0, 3] });
    expect(empty.dims).toEqual([0, 3]);
    expect(empty.data.length).toBe(0);
  });

  it('refuses inconsistent or unsupported tensors, naming the tensor', () => {
    expectModelError(
      () => loadTensor({ data_type: DataType.FLOAT, dims: [2, 3], float_data: [1, 2] }),
      SOURCE,
      "tensor 'w'",
      'float_data holds 2 values, expected 6',
    );
    expectModelError(() => loadTensor({ data_type: DataType.FLOAT, dims: [3], raw_data: new Uint8Array(11) }), "tensor 'w'", '11 bytes');
    expectModelError(() => loadTensor({ data_type: DataType.FLOAT, dims: [-1] }), "tensor 'w'", 'non-negative');
    expectModelError(() => loadTensor({ data_type: DataType.FLOAT, dims: [65536, 65536] }), "tensor 'w'", '2^31');
    expectModelError(() => loadTensor({ data_type: DataType.FLOAT, dims: [2 ** 40, 0] }), "tensor 'w'", '2^31');
    expectModelError(
      () => loadTensor({ data_type: DataType.STRING, dims: [1], string_data: [new Uint8Array([104])] }),
      "tensor 'w'",
      'string tensors are not supported',
    );
    expectModelError(() => loadTensor({ data_type: DataType.FLOAT8E4M3FN, dims: [1], raw_data: new Uint8Array(1) }), "tensor 'w'", 'FLOAT8E4M3FN');
    expectModelError(() => loadTensor({ dims: [1], float_data: [1] }), "tensor 'w'", 'UNDEFINED');
    expectModelError(() => loadTensor({ data_type: DataType.FLOAT, dims: [1], float_data: [1], raw_data: new Uint8Array(4) }), 'both raw_data and float_data');
    expectModelError(() => loadTensor({ data_type: DataType.FLOAT, dims: [1], float_data: [1], segment: { begin: 0, end: 1 } }), 'segment');
  });
});

describe('external data', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'segscope-onnx-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const externalTensor = (location: string, dims: number[], extra: Record<string, string> = {}): TensorProto => ({
    name: 'weights',
    data_type: DataType.FLOAT,
    dims,
    data_location: DataLocation.EXTERNAL,
    external_data: [{ key: 'location', value: location }, ...Object.entries(extra).map(([key, value]) => ({ key, value }))],
  });

  /** Writes model.onnx (with the given initializer) into `dir` and returns its path. */
  const writeModel = (dir: string, initializer: TensorProto): string => {
    const file = join(dir, 'model.onnx');
    writeFileSync(file, encodeModel(modelOf({ initializer: [initializer], output: [tensorInfo('weights')] })));
    return file;
  };

  it('reads tensors at an offset and with a length, relative to the model folder', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'data'));
    const values = new Float32Array([9, 9, 1, 2, 3, 4, 9]);
    writeFileSync(join(dir, 'data', 'weights.bin'), rawOf(values));
    const graph = await readModelFile(writeModel(dir, externalTensor('data/weights.bin', [2, 2], { offset: '8', length: '16' })));
    expect([...graph.initializers.get('weights')!.data]).toEqual([1, 2, 3, 4]);
    expect(graph.source).toBe(join(dir, 'model.onnx'));
  });

  it("lends a model file's float32 tensors its own bytes, moved onto 4-byte boundaries in place: the values of copies", async () => {
    // Names of 1-4 letters shift where each raw_data starts; small and non-float tensors are copied.
    const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed) * 10 ** ((i % 7) - 3));
    const initializer: TensorProto[] = [
      ...['a', 'bb', 'ccc', 'dddd'].map((name, k) => ({ name, data_type: DataType.FLOAT, dims: [40 + k], raw_data: rawOf(values(40 + k, k)) })),
      { name: 'small', data_type: DataType.FLOAT, dims: [5], raw_data: rawOf(values(5, 9)) },
      { name: 'ints', data_type: DataType.INT64, dims: [3], raw_data: rawOf(new BigInt64Array([-3n, 7n, 2n ** 40n])) },
    ];
    const bytes = encodeModel(modelOf({ initializer, output: initializer.map((t) => tensorInfo(t.name!)) }));
    const offsets = decodeModel(bytes, SOURCE).graph!.initializer!.map((t) => t.raw_data!.byteOffset % 4);
    expect(offsets.slice(0, 4).some((o) => o !== 0)).toBe(true);
    const file = join(tempDir(), 'model.onnx');
    writeFileSync(file, bytes);
    const adopted = (await readModelFile(file)).initializers;
    const copied = modelFromBytes(bytes, SOURCE).initializers;
    for (const t of initializer) expect(Array.from(adopted.get(t.name!)!.data), t.name).toEqual(Array.from(copied.get(t.name!)!.data));
    const big = ['a', 'bb', 'ccc', 'dddd'].map((name) => adopted.get(name)!.data.buffer);
    expect(new Set(big).size).toBe(1);
    expect(big[0]!.byteLength).toBeGreaterThanOrEqual(bytes.length);
  });

  it('reads to the end of the file when length is absent', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'w.bin'), rawOf(new Float32Array([7, 5, 6])));
    const graph = await readModelFile(writeModel(dir, externalTensor('w.bin', [2], { offset: '4' })));
    expect([...graph.initializers.get('weights')!.data]).toEqual([5, 6]);
  });

  it('allows a symlink that stays inside the folder', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'real.bin'), rawOf(new Float32Array([3])));
    symlinkSync(join(dir, 'real.bin'), join(dir, 'link.bin'));
    const graph = await readModelFile(writeModel(dir, externalTensor('link.bin', [1])));
    expect([...graph.initializers.get('weights')!.data]).toEqual([3]);
  });

  it("refuses '../', absolute paths and symlinks that escape the model's folder", async () => {
    const outside = tempDir();
    const secret = join(outside, 'secret.bin');
    writeFileSync(secret, rawOf(new Float32Array([1])));
    const dir = join(outside, 'model');
    mkdirSync(dir);
    symlinkSync(secret, join(dir, 'escape.bin'));
    symlinkSync(outside, join(dir, 'up'));

    await expectModelErrorAsync(() => readModelFile(writeModel(dir, externalTensor('../secret.bin', [1]))), "'weights'", '../secret.bin', 'leaves the folder');
    await expectModelErrorAsync(() => readModelFile(writeModel(dir, externalTensor('sub/../../secret.bin', [1]))), 'leaves the folder');
    await expectModelErrorAsync(() => readModelFile(writeModel(dir, externalTensor(secret, [1]))), "'weights'", 'is absolute');
    await expectModelErrorAsync(() => readModelFile(writeModel(dir, externalTensor('escape.bin', [1]))), "'weights'", 'symlink');
    await expectModelErrorAsync(() => readModelFile(writeModel(dir, externalTensor('up/secret.bin', [1]))), 'symlink');
  });

  it('refuses missing and short data files, naming the tensor and the file', async () => {
    const dir = tempDir();
    await expectModelErrorAsync(() => readModelFile(writeModel(dir, externalTensor('missing.bin', [1]))), "tensor 'weights'", 'missing.bin');
    writeFileSync(join(dir, 'short.bin'), new Uint8Array(12));
    await expectModelErrorAsync(
      () => readModelFile(writeModel(dir, externalTensor('short.bin', [4], { offset: '0', length: '16' }))),
      "tensor 'weights'",
      join(dir, 'short.bin'),
      '12 bytes',
    );
    await expectModelErrorAsync(() => readModelFile(writeModel(dir, externalTensor('short.bin', [4]))), "tensor 'weights'", 'short.bin', 'need 16');
    await expectModelErrorAsync(() => readModelFile(writeModel(dir, externalTensor('short.bin', [1], { offset: '20' }))), "tensor 'weights'", 'short.bin');
    await expectModelErrorAsync(() => readModelFile(writeModel(dir, externalTensor('short.bin', [1], { offset: '-4' }))), "tensor 'weights'", 'offset');
  });

  it('needs a reader for external data when the model is built in memory', () => {
    expectModelError(() => load(modelOf({ initializer: [externalTensor('w.bin', [1])], output: [tensorInfo('weights')] })), "tensor 'weights'", 'w.bin');
    const calls: unknown[][] = [];
    const graph = graphFromModel(modelOf({ initializer: [externalTensor('w.bin', [1], { offset: '4096' })], output: [tensorInfo('weights')] }), {
      source: SOURCE,
      readExternal: (...args) => {
        calls.push(args);
        return rawOf(new Float32Array([8]));
      },
    });
    expect(calls).toEqual([['w.bin', 4096, undefined]]);
    expect([...graph.initializers.get('weights')!.data]).toEqual([8]);
  });

  it('reads external data given as bytes by file name, and nothing else (modelFromBytes, as a browser loads)', () => {
    const bytes = (t: TensorProto) => encodeModel(modelOf({ initializer: [t], output: [tensorInfo('weights')] }));
    const files = new Map([['model.onnx.data', rawOf(new Float32Array([9, 1, 2, 3, 4, 9]))]]);
    const graph = modelFromBytes(bytes(externalTensor('model.onnx.data', [2, 2], { offset: '4', length: '16' })), SOURCE, files);
    expect([...graph.initializers.get('weights')!.data]).toEqual([1, 2, 3, 4]);
    expect(graph.source).toBe(SOURCE);
    expect([...modelFromBytes(bytes(externalTensor('model.onnx.data', [1], { offset: '20' })), SOURCE, files).initializers.get('weights')!.data]).toEqual([9]);

    expectModelError(
      () => modelFromBytes(bytes(externalTensor('../model.onnx.data', [1])), SOURCE, files),
      SOURCE,
      "tensor 'weights'",
      "'../model.onnx.data' was not given",
      "given: 'model.onnx.data'",
    );
    expectModelError(() => modelFromBytes(bytes(externalTensor('other.bin', [1])), SOURCE, new Map()), "'other.bin' was not given (given: none)");
    expectModelError(
      () => modelFromBytes(bytes(externalTensor('model.onnx.data', [4], { offset: '16', length: '16' })), SOURCE, files),
      "'model.onnx.data' is 24 bytes",
      'too short for 16 bytes at offset 16',
    );
    expectModelError(() => modelFromBytes(bytes(externalTensor('model.onnx.data', [4], { offset: '16' })), SOURCE, files), 'holds 8 bytes', 'need 16');
    expectModelError(() => modelFromBytes(bytes(externalTensor('model.onnx.data', [1], { offset: '28' })), SOURCE, files), 'too short for offset 28');
    expectModelError(() => modelFromBytes(bytes(externalTensor('model.onnx.data', [1])), SOURCE), 'no external data was given', 'modelFromBytes');
  });

  it('reports a missing model file as an InputError naming the path', async () => {
    const file = join(tempDir(), 'nope.onnx');
    const error = await readModelFile(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toContain(file);
  });
});

describe('graph construction', () => {
  it('builds the graph IR from a model', () => {
    const model = smallModel();
    model.metadata_props = [{ key: 'classes', value: '21' }];
    model.graph!.input!.push(tensorInfo('bias', [3]), tensorInfo('mystery', [undefined, 2]));
    model.graph!.node!.push({ op_type: 'Identity', input: ['mystery'], output: ['m'] });
    const graph = load(model);
    expect(graph.opset).toBe(17);
    expect(graph.metadata).toEqual({ classes: '21' });
    expect(graph.source).toBe(SOURCE);
    // 'bias' is an initializer, so it is not a runtime input.
    expect(graph.inputs).toEqual([
      { name: 'x', type: 'float32', dims: ['N', 3] },
      { name: 'mystery', type: 'float32', dims: ['?', 2] },
    ]);
    expect(graph.outputs).toEqual([{ name: 'y', type: 'float32', dims: [3, 'N'] }]);
    expect([...graph.initializers.keys()]).toEqual(['bias']);
    expect(graph.nodes.map((n) => n.name)).toEqual(['relu', 'add', 'Transpose_2', 'Identity_3']);
    const transpose = graph.nodes[2]!;
    expect(transpose).toMatchObject({ opType: 'Transpose', domain: '', inputs: ['a'], outputs: ['y'] });
    expect(transpose.attrs.ints('perm')).toEqual([1, 0]);
  });

  it('converts every supported attribute type', () => {
    const attribute = [
      { name: 'alpha', type: AttributeType.FLOAT, f: 0.5 },
      { name: 'axis', type: AttributeType.INT, i: -1 },
      { name: 'big', type: AttributeType.INT, i: 2 ** 63 },
      { name: 'mode', type: AttributeType.STRING, s: new TextEncoder().encode('linéaire') },
      { name: 'scales', type: AttributeType.FLOATS, floats: [1, 2.5] },
      { name: 'pads', type: AttributeType.INTS, ints: [0, 1, -2] },
      { name: 'names', type: AttributeType.STRINGS, strings: [new TextEncoder().encode('a'), new TextEncoder().encode('b')] },
      { name: 'value', type: AttributeType.TENSOR, t: { data_type: DataType.INT64, dims: [2], int64_data: [1, -1] } },
    ];
    const graph = load(modelOf({ node: [{ op_type: 'Constant', output: ['c'], attribute }], output: [tensorInfo('c', [2], DataType.INT64)] }));
    const attrs = graph.nodes[0]!.attrs;
    expect(attrs.float('alpha')).toBe(0.5);
    expect(attrs.int('axis')).toBe(-1);
    expect(attrs.int('big')).toBe(2 ** 63);
    expect(attrs.string('mode')).toBe('linéaire');
    expect(attrs.floats('scales')).toEqual([1, 2.5]);
    expect(attrs.ints('pads')).toEqual([0, 1, -2]);
    expect(attrs.raw('names')).toEqual(['a', 'b']);
    const value = attrs.tensor('value');
    expect(value.type).toBe('int64');
    expect([...value.data]).toEqual([1, -1]);
    // Constant nodes stay nodes: folding them is a later pass.
    expect(graph.nodes[0]!.opType).toBe('Constant');
    expect(graph.outputs[0]!.type).toBe('int64');
  });

  it('refuses subgraph and unknown attributes, naming the node', () => {
    const withAttr = (attribute: NodeProto['attribute']): ModelProto =>
      modelOf({ input: [tensorInfo('x')], output: [tensorInfo('y')], node: [{ name: 'branch', op_type: 'If', input: ['x'], output: ['y'], attribute }] });
    expectModelError(() => load(withAttr([{ name: 'then_branch', type: AttributeType.GRAPH, g: { name: 'g' } }])), "node 'branch'", 'then_branch', 'subgraph');
    expectModelError(() => load(withAttr([{ name: 'tp', type: AttributeType.TYPE_PROTO, tp: {} }])), "node 'branch'", 'TYPE_PROTO');
    expectModelError(() => load(withAttr([{ name: 'old', f: 1 }])), "'old'", 'no type');
    expectModelError(
      () =>
        load(
          withAttr([
            { name: 'a', type: AttributeType.INT },
            { name: 'a', type: AttributeType.INT },
          ]),
        ),
      "attribute 'a' twice",
    );
    expectModelError(
      () => load(withAttr([{ name: 't', type: AttributeType.TENSOR, t: { data_type: DataType.STRING, dims: [0] } }])),
      "node 'branch' (If) attribute 't'",
      'string',
    );
  });

  it('names unnamed nodes <opType>_<index> and suffixes duplicates', () => {
    const graph = load(
      modelOf({
        input: [tensorInfo('x')],
        output: [tensorInfo('e')],
        node: [
          { name: 'dup', op_type: 'Relu', input: ['x'], output: ['a'] },
          { name: 'dup', op_type: 'Relu', input: ['a'], output: ['b'] },
          { op_type: 'Relu', input: ['b'], output: ['c'] },
          { name: 'Relu_2', op_type: 'Sigmoid', input: ['c'], output: ['d'] },
          { name: 'dup', op_type: 'Relu', input: ['d'], output: ['e'] },
        ],
      }),
    );
    const names = graph.nodes.map((n) => n.name);
    expect(names).toEqual(['dup', 'dup_1', 'Relu_2_1', 'Relu_2', 'dup_2']);
    expect(new Set(names).size).toBe(names.length);
  });

  it('sorts unsorted nodes topologically and keeps sorted files in order', () => {
    const graph = load(
      modelOf({
        input: [tensorInfo('x')],
        output: [tensorInfo('z'), tensorInfo('w')],
        node: [
          { name: 'last', op_type: 'Add', input: ['y', 'b'], output: ['z'] },
          { name: 'middle', op_type: 'Relu', input: ['a'], output: ['y'] },
          { name: 'first', op_type: 'Neg', input: ['x'], output: ['a'] },
          { name: 'side', op_type: 'Abs', input: ['x'], output: ['b', ''] },
          { name: 'free', op_type: 'Abs', input: ['x', ''], output: ['w'] },
        ],
      }),
    );
    expect(graph.nodes.map((n) => n.name)).toEqual(['first', 'middle', 'side', 'last', 'free']);
    expect(load(smallModel()).nodes.map((n) => n.name)).toEqual(['relu', 'add', 'Transpose_2']);
  });

  it('sorts a long chain without overflowing the stack', () => {
    const count = 20000;
    const node: NodeProto[] = [];
    for (let i = count - 1; i >= 0; i--) node.push({ name: `n${i}`, op_type: 'Relu', input: [i === 0 ? 'x' : `t${i - 1}`], output: [`t${i}`] });
    const graph = load(modelOf({ input: [tensorInfo('x')], output: [tensorInfo(`t${count - 1}`)], node }));
    expect(graph.nodes[0]!.name).toBe('n0');
    expect(graph.nodes[count - 1]!.name).toBe(`n${count - 1}`);
  });

  it('refuses cycles, naming a node in the cycle', () => {
    expectModelError(
      () =>
        load(
          modelOf({
            input: [tensorInfo('x')],
            output: [tensorInfo('y')],
            node: [
              { name: 'entry', op_type: 'Add', input: ['x', 'c'], output: ['a'] },
              { name: 'loop1', op_type: 'Relu', input: ['a'], output: ['b'] },
              { name: 'loop2', op_type: 'Relu', input: ['b'], output: ['c'] },
              { name: 'exit', op_type: 'Relu', input: ['c'], output: ['y'] },
            ],
          }),
        ),
      SOURCE,
      'cycle',
      "'loop1'",
      "'loop2'",
      "'entry'",
    );
    expectModelError(
      () => load(modelOf({ output: [tensorInfo('a')], node: [{ name: 'self', op_type: 'Relu', input: ['a'], output: ['a'] }] })),
      "'self'",
      'cycle',
    );
  });

  it('refuses an input that nothing produces, naming the node and the tensor', () => {
    expectModelError(
      () =>
        load(modelOf({ input: [tensorInfo('x')], output: [tensorInfo('y')], node: [{ name: 'add', op_type: 'Add', input: ['x', 'ghost'], output: ['y'] }] })),
      SOURCE,
      "node 'add'",
      "'ghost'",
    );
    expectModelError(() => load(modelOf({ input: [tensorInfo('x')], output: [tensorInfo('nowhere')] })), "graph output 'nowhere'");
  });

  it('refuses a tensor produced twice', () => {
    const twice = (extra: Partial<GraphProto>): ModelProto =>
      modelOf({
        input: [tensorInfo('x')],
        output: [tensorInfo('y')],
        node: [
          { name: 'one', op_type: 'Relu', input: ['x'], output: ['y'] },
          { name: 'two', op_type: 'Neg', input: ['x'], output: ['y'] },
        ],
        ...extra,
      });
    expectModelError(() => load(twice({})), "tensor 'y'", "node 'one'", "node 'two'");
    expectModelError(() => load(twice({ node: [{ name: 'shadow', op_type: 'Relu', input: ['x'], output: ['x'] }] })), "tensor 'x'", 'graph input');
    expectModelError(
      () =>
        load(
          twice({
            node: [{ name: 'one', op_type: 'Relu', input: ['x'], output: ['y'] }],
            initializer: [{ name: 'y', data_type: DataType.FLOAT, dims: [1], float_data: [0] }],
          }),
        ),
      "tensor 'y'",
      'initializer',
    );
    expectModelError(
      () =>
        load(
          twice({
            node: [],
            initializer: [
              { name: 'y', data_type: DataType.FLOAT, float_data: [0] },
              { name: 'y', data_type: DataType.FLOAT, float_data: [1] },
            ],
          }),
        ),
      "initializer 'y' appears twice",
    );
  });

  it('checks the default-domain opset', () => {
    expect(load(smallModel()).opset).toBe(17);
    for (const version of [1, 6, 7, 22]) expect(load(modelOf(smallModel().graph!, version)).opset).toBe(version);
    expectModelError(() => load(modelOf(smallModel().graph!, 0)), SOURCE, 'opset 0');
    expectModelError(() => load(modelOf(smallModel().graph!, 23)), 'opset 23');
    const aliased = smallModel();
    aliased.opset_import = [
      { domain: 'com.microsoft', version: 1 },
      { domain: 'ai.onnx', version: 13 },
    ];
    expect(load(aliased).opset).toBe(13);
    const none = smallModel();
    none.opset_import = [{ domain: 'com.microsoft', version: 1 }];
    expectModelError(() => load(none), 'no opset');
  });

  it('refuses, by name, the nodes whose op meant otherwise at the opset a model imports', () => {
    const infer = (opset: number) => () => inferTypes(load(modelOf(smallModel().graph!, opset)), new Map([['x', [2, 3]]]), (op) => registry.get(op)?.infer);
    // Relu, Add (its legacy broadcast read) and Transpose mean at opset 6 what segscope implements.
    expect(infer(6)).not.toThrow();
    // Relu before 6 had the legacy consumed_inputs attribute.
    expect(infer(5)).toThrow(new UnsupportedOpError(`${SOURCE} uses ops segscope cannot run: Relu at opset 5 (implemented from opset 6) (1 node: relu)`));
  });

  it('refuses graph values that are not tensors or have no type', () => {
    const m = smallModel();
    m.graph!.input = [{ name: 'x', type: { sequence_type: { elem_type: { tensor_type: { elem_type: DataType.FLOAT } } } } }];
    expectModelError(() => load(m), "graph input 'x'", 'sequence');
    m.graph!.input = [{ name: 'x' }];
    expectModelError(() => load(m), "graph input 'x'", 'no tensor type');
    expectModelError(() => load({ opset_import: [{ version: 17 }] }), 'no graph');
  });

  it('takes an untyped graph output type from value_info', () => {
    const m = smallModel();
    m.graph!.output!.push({ name: 'r' });
    m.graph!.value_info = [tensorInfo('r', ['N', 3], DataType.FLOAT16)];
    expect(load(m).outputs[1]).toEqual({ name: 'r', type: 'float16', dims: ['N', 3] });
  });

  it('round-trips through encodeModel, so intermediate tensors can be exposed as outputs', () => {
    const decoded = decodeModel(encodeModel(smallModel()), SOURCE);
    decoded.graph!.output!.push(tensorInfo('a', ['N', 3]));
    const again = decodeModel(encodeModel(decoded), SOURCE);
    expect(again.graph!.output!.map((o) => o.name)).toEqual(['y', 'a']);
    expect(again.producer_name).toBe('segscope-test');
    expect(again.ir_version).toBe(8);
    expect([...load(again).initializers.get('bias')!.data]).toEqual([1, 2, 3]);
  });
});

describe('malformed bytes', () => {
  /** Each outcome must be a Graph or a ModelError: no RangeError, crash or hang. */
  const tryLoad = (bytes: Uint8Array): 'ok' | 'refused' => {
    try {
      graphFromModel(decodeModel(bytes, 'corrupt.onnx'), { source: 'corrupt.onnx' });
      return 'ok';
    } catch (e) {
      if (!(e instanceof ModelError)) throw new Error(`expected ModelError, got ${String(e)}`, { cause: e });
      expect(e.message).toContain('corrupt.onnx');
      return 'refused';
    }
  };

  it('refuses every truncation of a valid model', () => {
    const bytes = encodeModel(smallModel());
    expect(tryLoad(bytes)).toBe('ok');
    let refused = 0;
    for (let n = 0; n < bytes.length; n++) if (tryLoad(bytes.subarray(0, n)) === 'refused') refused++;
    // Truncation can land on a field boundary and still decode, but most cuts are caught.
    expect(refused).toBeGreaterThan(bytes.length / 2);
  });

  it('gives a ModelError or a valid graph for seeded random corruptions', () => {
    const original = encodeModel(smallModel());
    let seed = 0x5e65c09e;
    const random = (): number => {
      // mulberry32: small, seeded, deterministic.
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const outcomes = { ok: 0, refused: 0 };
    for (let trial = 0; trial < 400; trial++) {
      const bytes = Uint8Array.from(original);
      const edits = 1 + Math.floor(random() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * bytes.length);
        if (random() < 0.5) bytes[at]! ^= 1 << Math.floor(random() * 8);
        else bytes[at] = Math.floor(random() * 256);
      }
      outcomes[tryLoad(bytes)]++;
    }
    expect(outcomes.ok + outcomes.refused).toBe(400);
    expect(outcomes.refused).toBeGreaterThan(0);
  });

  it('refuses varint overflow, lengths past the end and bad wire types', () => {
    const cases = [
      new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // 11-byte varint
      new Uint8Array([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]), // graph: length 4 GiB
      new Uint8Array([0x3a, 0x05, 0x0a, 0x10]), // graph → node: length past the end
      new Uint8Array([0x0f]), // wire type 7
      new Uint8Array([0x0b, 0x0b, 0x0b]), // unterminated groups
      new TextEncoder().encode('not an onnx file at all'),
    ];
    for (const bytes of cases) expect(tryLoad(bytes)).toBe('refused');
  });
});

describe('ONNX backend test data (libonnx-testdata)', () => {
  const dir = '/usr/share/libonnx-testdata/data/node/test_relu';
  it.skipIf(!existsSync(join(dir, 'model.onnx')))('loads test_relu and its test tensors', async () => {
    const graph = await readModelFile(join(dir, 'model.onnx'));
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Relu']);
    expect(graph.inputs).toEqual([{ name: 'x', type: 'float32', dims: [3, 4, 5] }]);
    expect(graph.outputs).toEqual([{ name: 'y', type: 'float32', dims: [3, 4, 5] }]);

    const dataDir = join(dir, 'test_data_set_0');
    expect(readdirSync(dataDir)).toContain('input_0.pb');
    const read = (name: string): HostTensor => {
      const file = join(dataDir, name);
      return tensorFromProto(decodeTensor(readFileSync(file), file), { source: file });
    };
    const x = read('input_0.pb');
    const y = read('output_0.pb');
    expect(x.dims).toEqual([3, 4, 5]);
    expect(x.type).toBe('float32');
    expect([...y.data]).toEqual([...x.data].map((v) => Math.max(v, 0)));
    expectModelError(() => decodeTensor(readFileSync(join(dataDir, 'input_0.pb')).subarray(0, 100), 'cut.pb'), 'cut.pb');
  });
});
