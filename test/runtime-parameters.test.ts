/**
 * Parameter inputs: graph inputs that decide shapes (a Reshape's shape,
 * Resize's sizes or scales) are read on the host at run time, and the model is
 * planned per distinct set of their values (src/runtime/parameters.ts,
 * Session). Results are checked against onnxruntime's CPU provider.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { InputError, ModelError, UnsupportedOpError } from '../src/errors.js';
import { readModelFile } from '../src/io/model-file.js';
import { decodeNpy, encodeNpy } from '../src/io/npy.js';
import type { HostTensor } from '../src/model/graph.js';
import { encodeModel } from '../src/onnx/decode.js';
import { AttributeType, DataType } from '../src/onnx/schema.js';
import { compileProgram } from '../src/runtime/program.js';
import { Session } from '../src/runtime/session.js';
import { errors, segscope } from './helpers/cli.js';
import { gpu, randomTensor, relL2, tensor } from './helpers/gpu.js';
import { runOrt } from './helpers/ort.js';

// Counts the programs sessions compile: a run whose parameter values were seen before compiles none.
vi.mock('../src/runtime/program.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../src/runtime/program.js')>();
  return { ...original, compileProgram: vi.fn(original.compileProgram) };
});
const compiled = () => vi.mocked(compileProgram).mock.calls.length;

const tensorType = (elem: number, dims: number[]) => ({ tensor_type: { elem_type: elem, shape: { dim: dims.map((d) => ({ dim_value: d })) } } });
const mode = (m: string) => ({ name: 'mode', type: AttributeType.STRING, s: new TextEncoder().encode(m) });

/**
 * y = Sigmoid(Reshape(Relu(x), shape)); sized = Resize(x, sizes) (linear);
 * scaled = Resize(x, scales) (nearest): every shape but x's is fed at run time.
 */
function parameterModel(): Uint8Array {
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'parameters',
      node: [
        { name: 'relu', op_type: 'Relu', input: ['x'], output: ['r'] },
        { name: 'reshape', op_type: 'Reshape', input: ['r', 'shape'], output: ['reshaped'] },
        { name: 'sigmoid', op_type: 'Sigmoid', input: ['reshaped'], output: ['y'] },
        { name: 'up', op_type: 'Resize', input: ['x', '', '', 'sizes'], output: ['sized'], attribute: [mode('linear')] },
        { name: 'near', op_type: 'Resize', input: ['x', '', 'scales'], output: ['scaled'], attribute: [mode('nearest')] },
      ],
      input: [
        { name: 'x', type: tensorType(DataType.FLOAT, [1, 3, 8, 12]) },
        { name: 'shape', type: tensorType(DataType.INT64, [3]) },
        { name: 'sizes', type: tensorType(DataType.INT64, [4]) },
        { name: 'scales', type: tensorType(DataType.FLOAT, [4]) },
      ],
      output: ['y', 'sized', 'scaled'].map((name) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT } } })),
    },
  });
}

const int64 = (values: number[]) => tensor([values.length], values, 'int64');
const floats = (values: number[]) => tensor([values.length], values);
const feedsOf = (seed: number, shape: number[], sizes: number[], scales: number[]): Record<string, HostTensor> => ({
  x: randomTensor([1, 3, 8, 12], seed),
  shape: int64(shape),
  sizes: int64(sizes),
  scales: floats(scales),
});
const A = () => feedsOf(1, [2, -1, 12], [1, 3, 16, 24], [1, 1, 2, 2]);
const B = () => feedsOf(2, [0, 96, 3], [1, 3, 5, 7], [1, 1, 0.5, 1.5]);

let file: string;
beforeAll(() => {
  file = join(mkdtempSync(join(tmpdir(), 'segscope-parameters-')), 'parameters.onnx');
  writeFileSync(file, parameterModel());
});

const create = async () => Session.create(await gpu(), await readModelFile(file));

function expectOrtOutputs(actual: Map<string, HostTensor>, expected: Map<string, HostTensor>): void {
  for (const name of ['y', 'sized', 'scaled']) {
    expect(actual.get(name)!.dims, name).toEqual(expected.get(name)!.dims);
    expect(relL2(actual.get(name)!.data, expected.get(name)!.data), name).toBeLessThanOrEqual(1e-6);
  }
}

describe('parameter inputs read on the host at run time', () => {
  it("gives onnxruntime's outputs, at the shapes each run's values make", async () => {
    const s = await create();
    try {
      expect(s.inputNames).toEqual(['x', 'shape', 'sizes', 'scales']);
      for (const feeds of [A(), B(), A()]) {
        const { outputs } = await s.run(feeds);
        expectOrtOutputs(outputs, await runOrt(file, feeds, []));
        expect(s.typeOf('sized')!.dims).toEqual(outputs.get('sized')!.dims);
      }
      expect((await s.run(B())).outputs.get('y')!.dims).toEqual([1, 96, 3]);
      expect(s.typeOf('y')!.dims).toEqual([1, 96, 3]);
      expect(s.typeOf('scaled')!.dims).toEqual([1, 3, 4, 18]);
      expect(s.resolve(['sized'])).toEqual(['sized']);
    } finally {
      s.destroy();
    }
  });

  it('plans each set of values once: repeated values reuse their programs, the least recently used of more than four are freed', async () => {
    const before = compiled();
    const s = await create();
    try {
      expect(compiled() - before, 'nothing compiles before the values are known').toBe(0);
      const first = await s.run(A());
      await s.run(B());
      expect(compiled() - before).toBe(2);
      // New data, the same parameter values: no planning, no compiling.
      const again = await s.run({ ...A(), x: randomTensor([1, 3, 8, 12], 9) });
      await s.run(B());
      expect(compiled() - before).toBe(2);
      expect((await s.run(A())).outputs.get('sized')!.data).toEqual(first.outputs.get('sized')!.data);
      expect(again.outputs.get('sized')!.data).not.toEqual(first.outputs.get('sized')!.data);

      const sized = (n: number) => ({ ...A(), sizes: int64([1, 3, 4 + n, 6]) });
      for (let n = 0; n < 4; n++) await s.run(sized(n));
      expect(compiled() - before).toBe(6);
      for (let n = 3; n >= 0; n--) await s.run(sized(n));
      expect(compiled() - before, 'the four latest sets are cached').toBe(6);
      await s.run(A());
      expect(compiled() - before, "A's plan was freed when the fourth new set came").toBe(7);
    } finally {
      s.destroy();
    }
  });

  it('before a first run, what depends on the values is an InputError naming the inputs; constants fix them at create', async () => {
    const s = await create();
    const unknown = /parameters\.onnx: shapes depend on the values of inputs 'shape', 'sizes', 'scales', read at each run: run the session first/;
    expect(() => s.typed).toThrow(InputError);
    expect(() => s.typeOf('y')).toThrow(unknown);
    expect(() => s.resolve(['y'])).toThrow(unknown);
    await expect(s.plan()).rejects.toThrow(unknown);
    s.destroy();

    const { x, ...constants } = B();
    const fixed = await Session.create(await gpu(), await readModelFile(file), { constants });
    try {
      expect(fixed.inputNames).toEqual(['x']);
      expect(fixed.typeOf('sized')!.dims).toEqual([1, 3, 5, 7]);
      expectOrtOutputs((await fixed.run(x!)).outputs, await runOrt(file, B(), []));
    } finally {
      fixed.destroy();
    }
  });

  it('values that make a negative, huge or too large tensor are an InputError naming the node, before anything is allocated; the session goes on', async () => {
    const s = await create();
    try {
      const good = await s.run(A());
      const before = compiled();
      await expect(s.run({ ...A(), shape: int64([-2, -144, 1]) })).rejects.toThrow(
        /^with 'shape' = \[-2,-144,1\], 'sizes' = \[1,3,16,24\], 'scales' = \[1,1,2,2\]: Reshape node 'reshape': cannot reshape \[1,3,8,12\] to \[-2,-144,1\]$/,
      );
      await expect(s.run({ ...A(), sizes: int64([1, 3, 100000, 100000]) })).rejects.toThrow(
        /node 'up' \(Resize\): its output \[1,3,100000,100000\] has more than 2\^31 elements/,
      );
      // 4.8 GB: within 2^31 elements, beyond the adapter's limits.
      const tooLarge = s.run({ ...A(), sizes: int64([1, 3, 20000, 20000]) });
      await expect(tooLarge).rejects.toThrow(InputError);
      await expect(tooLarge).rejects.toThrow(/Resize node 'up' output 'sized' needs a 4800000000 byte binding; the adapter allows \d+ bytes per binding/);
      expect(compiled() - before, 'no program was built for them').toBe(0);
      expect((await s.run(A())).outputs.get('sized')!.data).toEqual(good.outputs.get('sized')!.data);
    } finally {
      s.destroy();
    }
  });

  it('a parameter input of the wrong type or shape, or missing, is an InputError naming it', async () => {
    const s = await create();
    try {
      await expect(s.run({ ...A(), shape: floats([2, -1, 12]) })).rejects.toThrow(/^input 'shape' is int64, got a float32 tensor$/);
      await expect(s.run({ ...A(), sizes: int64([1, 3, 16, 24, 1]) })).rejects.toThrow(/^input 'sizes': expected shape \[4\], got \[5\]$/);
      const { scales: _, ...noScales } = A();
      await expect(s.run(noScales)).rejects.toThrow(/^input 'scales' was not given \(inputs: x, shape, sizes, scales\)$/);
      await expect(s.run(A())).resolves.toBeDefined();
    } finally {
      s.destroy();
    }
  });

  it('refuses a value only the GPU computes, and one from an input too large to read on the host', async () => {
    const float = (name: string) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT } } });
    const graph = (nodes: object[], inputs: object[], initializer: object[] = []) =>
      encodeModel({
        ir_version: 8,
        opset_import: [{ domain: '', version: 17 }],
        graph: { name: 'g', node: nodes, input: inputs, output: [float('y')], initializer },
      });
    const dir = mkdtempSync(join(tmpdir(), 'segscope-parameters-'));

    // The shape is Relu(p) cast to int64: p is read on the host, but Relu runs on the GPU.
    writeFileSync(
      join(dir, 'gpu.onnx'),
      graph(
        [
          { name: 'relu', op_type: 'Relu', input: ['p'], output: ['rp'] },
          { name: 'cast', op_type: 'Cast', input: ['rp'], output: ['s'], attribute: [{ name: 'to', type: AttributeType.INT, i: DataType.INT64 }] },
          { name: 'reshape', op_type: 'Reshape', input: ['x', 's'], output: ['y'] },
        ],
        [
          { name: 'x', type: tensorType(DataType.FLOAT, [2, 3]) },
          { name: 'p', type: tensorType(DataType.FLOAT, [2]) },
        ],
      ),
    );
    const s = await Session.create(await gpu(), await readModelFile(join(dir, 'gpu.onnx')));
    const run = s.run({ x: randomTensor([2, 3], 1), p: floats([3, 2]) });
    await expect(run).rejects.toThrow(UnsupportedOpError);
    await expect(run).rejects.toThrow(/^Cast node 'cast': a cast of float32 to int64 is evaluated only at load time, but input 'rp' is computed at run time/);
    s.destroy();

    // The shape is sliced out of a 2000-element input.
    const starts = { name: 'starts', dims: [1], data_type: DataType.INT64, int64_data: [0] };
    const ends = { ...starts, name: 'ends', int64_data: [2] };
    writeFileSync(
      join(dir, 'large.onnx'),
      graph(
        [
          { name: 'slice', op_type: 'Slice', input: ['big', 'starts', 'ends'], output: ['s'] },
          { name: 'reshape', op_type: 'Reshape', input: ['x', 's'], output: ['y'] },
        ],
        [
          { name: 'x', type: tensorType(DataType.FLOAT, [2, 3]) },
          { name: 'big', type: tensorType(DataType.INT64, [2000]) },
        ],
        [starts, ends],
      ),
    );
    const created = Session.create(await gpu(), await readModelFile(join(dir, 'large.onnx')));
    await expect(created).rejects.toThrow(ModelError);
    await expect(created).rejects.toThrow(
      "Slice node 'slice': evaluated only at load time, but input 'big' is computed at run time; that value is computed from input 'big' of shape [2000], too large to read on the host at each run (at most 1024 elements)",
    );
  });
});

describe('segscope run', () => {
  it('feeds parameter inputs given as --input NAME=FILE.npy, as onnxruntime does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'segscope-run-parameters-'));
    const feeds = B();
    const args = Object.entries(feeds).flatMap(([name, t]) => {
      writeFileSync(join(dir, `${name}.npy`), encodeNpy(t));
      return ['--input', `${name}=${join(dir, `${name}.npy`)}`];
    });
    const { code, stdout, stderr } = await segscope('run', file, ...args, '--dump-dir', join(dir, 'out'));
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/y: float32\[1,96,3\]/);
    expect(stdout).toMatch(/sized: float32\[1,3,5,7\]/);
    expect(stdout).toMatch(/scaled: float32\[1,3,4,18\]/);
    const index = JSON.parse(readFileSync(join(dir, 'out', 'index.json'), 'utf8')) as Record<string, string>;
    const dumped = new Map(Object.entries(index).map(([name, f]) => [name, decodeNpy(readFileSync(join(dir, 'out', f)), f)]));
    expectOrtOutputs(dumped, await runOrt(file, feeds, []));
  });
});
