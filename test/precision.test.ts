/**
 * --precision f16: float16 activations between float32 feeds, outputs and
 * captures. The host's float16 rounding is checked exhaustively, the GPU's
 * Cast against it bit for bit, and whole models against their f32 runs.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GpuError, InputError } from '../src/errors.js';
import { readModelFile } from '../src/io/model-file.js';
import { readImage } from '../src/io/image.js';
import { decodeNpy } from '../src/io/npy.js';
import { argmaxAgreement, relativeL2 } from '../src/metrics/agreement.js';
import { evaluators } from '../src/model/fold.js';
import { isFloatType } from '../src/model/graph.js';
import { inferTypes } from '../src/model/infer.js';
import { float16ToFloat32, float32ToFloat16 } from '../src/model/numeric.js';
import { storeFloatsAs } from '../src/model/precision.js';
import { jetLevels } from './helpers/images.js';
import { registry } from '../src/ops/registry.js';
import { planProgram } from '../src/runtime/program.js';
import { planMemory } from '../src/runtime/profile.js';
import { Session } from '../src/runtime/session.js';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { F16_TOLERANCE, gpu, nodeGraph, random, randomTensor, tensor } from './helpers/gpu.js';

const MODEL = join(ROOT, 'test/fixtures/deeplabv3plus_os16.onnx');
const INPUT = join(ROOT, 'test/fixtures/input_1x3x65x65.npy');

/** Every float16 bit pattern but the NaNs, and the values halfway between neighbours (ties round to the even pattern). */
function float16Values(): { exact: Float32Array; halfway: Float32Array; evenNeighbour: number[] } {
  const bits = Array.from({ length: 0x10000 }, (_, b) => b).filter((b) => (b & 0x7c00) !== 0x7c00 || (b & 0x3ff) === 0);
  const exact = float16ToFloat32(bits);
  // Positive finite neighbours k, k + 1 (bits 0 .. 0x7bfe): halfway is exact in float32 (12 significant bits).
  const below = Array.from({ length: 0x7bff }, (_, k) => k);
  const halfway = Float32Array.from(below, (k) => (float16ToFloat32([k])[0]! + float16ToFloat32([k + 1])[0]!) / 2);
  return { exact, halfway, evenNeighbour: below.map((k) => (k % 2 === 0 ? k : k + 1)) };
}

describe('float16 rounding on the host', () => {
  it('round-trips every float16 value, rounds halfway values to even, overflows at 65520 and keeps NaN', () => {
    const { exact, halfway, evenNeighbour } = float16Values();
    expect(Array.from(float16ToFloat32(float32ToFloat16(exact)))).toEqual(Array.from(exact));
    expect(Array.from(float32ToFloat16(halfway))).toEqual(evenNeighbour);
    expect(Array.from(float32ToFloat16([65519.996, 65520, -1e6, Infinity, 2 ** -25, 2 ** -25 * 1.0001, -(2 ** -26)]))).toEqual([
      0x7bff, 0x7c00, 0xfc00, 0x7c00, 0, 1, 0x8000,
    ]);
    expect(float16ToFloat32(float32ToFloat16([NaN]))[0]).toBeNaN();
  });
});

/** Runs Cast(x, to) on the GPU at precision f32, where a float16 or bfloat16 result is held in f32. */
async function castOnGpu(x: Float32Array, to: number): Promise<Float32Array> {
  const graph = nodeGraph({ op: 'Cast', attrs: { to }, inputs: [tensor([x.length], x)] });
  const session = await Session.create(await gpu(), graph);
  try {
    return (await session.run(tensor([x.length], x))).outputs.get('out0')!.data as Float32Array;
  } finally {
    session.destroy();
  }
}

describe('Cast on the GPU', () => {
  it('rounds to float16 bit for bit as the host does: every value, every tie, subnormals, overflow, infinities', async () => {
    const { exact, halfway } = float16Values();
    const beyond = Float32Array.from([65504, 65519.996, 65520, 70000, -70000, Infinity, -Infinity, 1e-8, -1e-8, 2 ** -24 * 1.5]);
    const x = Float32Array.from([...exact, ...halfway, ...halfway.map((v) => -v), ...random(4096, 5, -3, 3), ...beyond]);
    const y = await castOnGpu(x, 10);
    expect(Array.from(y)).toEqual(Array.from(float16ToFloat32(float32ToFloat16(x))));
  });

  it('rounds to bfloat16 as the constant folder does', async () => {
    const x = Float32Array.from([...random(4096, 7, -100, 100), 1 + 2 ** -8, 1 + 3 * 2 ** -8, Infinity, -Infinity, 3e38]);
    const node = nodeGraph({ op: 'Cast', attrs: { to: 16 }, inputs: [tensor([x.length], x)] }).nodes[0]!;
    const [folded] = evaluators.Cast!(node, [{ name: 'in0', type: 'float32', dims: [x.length], value: tensor([x.length], x) }], 17);
    expect(Array.from(await castOnGpu(x, 16))).toEqual(Array.from(folded!.data));
  });

  it('refuses casts of run-time tensors to integers, pointing at load-time evaluation', async () => {
    // Too large to be read on the host at each run, as a small input would be (runtime/parameters.ts).
    const graph = nodeGraph({ op: 'Cast', attrs: { to: 7 }, inputs: [randomTensor([2048], 1)] });
    await expect(Session.create(await gpu(), graph)).rejects.toThrow(
      /a cast of float32 to int64 is evaluated only at load time, but input 'in0' is computed at run time .*too large to read on the host/,
    );
  });
});

describe('storeFloatsAs', () => {
  const isAlias = (op: string) => registry.get(op)?.alias === true;

  it('at f16 stores every float tensor as float16 but the inputs and outputs; a kept tensor is cast from its float16 twin', async () => {
    const graph = await readModelFile(MODEL);
    const typed = inferTypes(graph, new Map([['input', [1, 3, 65, 65]]]), (op) => registry.get(op)?.infer);
    const kept = typed.nodes.find((n) => n.opType === 'Relu')!.outputs[0]!;
    const before = new Map(typed.types);
    const half = storeFloatsAs(typed, new Set([kept]), 'f16', isAlias);
    expect(typed.types).toEqual(before);
    const float32 = ['input', 'output', kept];
    for (const [name, t] of half.types) {
      if (isFloatType(before.get(name)?.type ?? 'int32')) expect([name, t.type]).toEqual([name, float32.includes(name) ? 'float32' : 'float16']);
    }
    // The input is read and the output (read by no node) written as float32 directly; the kept tensor's readers use its twin.
    const casts = half.nodes.filter((n) => n.opType === 'Cast');
    expect(casts.map((n) => [n.inputs[0], n.outputs[0]])).toEqual([[`${kept}::f16`, kept]]);
    expect(half.nodes.filter((n) => n.inputs.includes(kept))).toEqual([]);
    expect(half.nodes.length).toBe(typed.nodes.length + 1);

    const full = storeFloatsAs(typed, new Set([kept]), 'f32', isAlias);
    expect(full.nodes).toBe(typed.nodes);
    expect([...full.types.values()].some((t) => t.type === 'float16')).toBe(false);
  });

  it('gives tensors sharing a buffer through alias ops one type: float32 when one of them is a graph output', async () => {
    // x -> Relu -> r -> Reshape -> y (output): r is stored as y is.
    const graph = nodeGraph({ op: 'Relu', inputs: [randomTensor([2, 6], 1)] });
    const reshape = { ...graph.nodes[0]!, name: 'reshape', opType: 'Reshape', inputs: ['out0', 'shape'], outputs: ['y'] };
    const withReshape = {
      ...graph,
      nodes: [graph.nodes[0]!, reshape],
      outputs: [{ name: 'y', type: 'float32' as const }],
      initializers: new Map([['shape', tensor([2], [3, 4], 'int64')]]),
    };
    const typed = inferTypes(withReshape, new Map(), (op) => registry.get(op)?.infer);
    const half = storeFloatsAs(typed, new Set(), 'f16', isAlias);
    expect([half.types.get('out0')!.type, half.types.get('y')!.type]).toEqual(['float32', 'float32']);
  });
});

describe('a session at precision f16', () => {
  it('gives float32 logits and captures close to the f32 run', async () => {
    const graph = await readModelFile(MODEL);
    const x = decodeNpy(readFileSync(INPUT), INPUT);
    const capture = ['/backbone/layer1/layer1.0/relu/Relu_output_0'];
    const run = async (precision: 'f32' | 'f16') => {
      const session = await Session.create(await gpu(), graph, { inputShapes: { input: [1, 3, 65, 65] }, precision });
      try {
        const { outputs, captured } = await session.run(x, { capture });
        return { logits: outputs.get('output')!, feature: await captured.get(capture[0]!)!.toHost() };
      } finally {
        session.destroy();
      }
    };
    const full = await run('f32');
    const half = await run('f16');
    expect([half.logits.type, half.feature.type]).toEqual(['float32', 'float32']);
    expect(relativeL2(half.logits.data, full.logits.data)).toBeLessThan(1e-2);
    expect(relativeL2(half.feature.data, full.feature.data)).toBeLessThan(2e-3);
    expect(argmaxAgreement(half.logits.data, full.logits.data, full.logits.dims)).toBeGreaterThan(0.99);
  });

  it('plans about half the activation memory of f32 for the default model', async () => {
    const graph = await readModelFile(join(ROOT, 'weights/deeplabv3plus_scenes.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 257, 257]]]), (op) => registry.get(op)?.infer);
    const device = { maxStorageBufferBindingSize: Infinity, maxBufferSize: Infinity, minStorageBufferOffsetAlignment: 256 };
    const [full, half] = (['f32', 'f16'] as const).map((precision) => planProgram(typed, new Set(), device, precision).liveBytes);
    expect(half! / full!).toBeLessThan(0.55);
    expect(half! / full!).toBeGreaterThan(0.45);
  });

  it("stores the weights as float16: half the weight memory of f32 on GPUs' conv lowering, at most half on CPU adapters' (f32 Winograd), for float16 and float32 models", async () => {
    const device = { maxStorageBufferBindingSize: Infinity, maxBufferSize: Infinity, minStorageBufferOffsetAlignment: 256 };
    // The float16 model; BatchNorm folded into convs (rounded once, after folding); depthwise convs.
    for (const file of ['deeplabv3plus_os16_fp16.onnx', 'deeplabv3plus_bn.onnx', 'deeplabv3plus_sep.onnx']) {
      const graph = await readModelFile(join(ROOT, 'test/fixtures', file));
      const typed = inferTypes(graph, new Map([['input', [1, 3, 65, 65]]]), (op) => registry.get(op)?.infer);
      for (const lowering of [{}, { cpuSubgroupSize: 8 }]) {
        const [full, half] = (['f32', 'f16'] as const).map((precision) => planProgram(typed, new Set(), { ...device, ...lowering }, precision));
        const ratio = planMemory(half!).weightBytes / planMemory(full!).weightBytes;
        // On CPU adapters f32's stride-1 3x3 convs run as Winograd, whose transformed weights are 16/9 or 36/9 as large (ops/conv/winograd.ts).
        expect(ratio, file).toBeGreaterThan(lowering.cpuSubgroupSize ? 0.5 * (9 / 36) : 0.49);
        expect(ratio, file).toBeLessThan(0.51);
        // At f16 every float upload is float16 but Resize's interpolation tables, which are no weights (ops/resize.ts; these models' bilinear resizes compute their taps in the kernel and have none).
        const wide = half!.kernels.flatMap((k) => k.buffers.filter((b) => b.kind === 'upload' && b.data() instanceof Float32Array).map(() => k.node.opType));
        expect(
          wide.filter((op) => op !== 'Resize'),
          file,
        ).toEqual([]);
      }
    }
  });

  it('splits the cast of a capture to float32 over runs when it exceeds the binding limit', async () => {
    const xs = [randomTensor([1, 2, 40, 40], 1), randomTensor([1, 2, 40, 40], 2)];
    const graph = nodeGraph({ op: 'Concat', attrs: { axis: 1 }, inputs: xs });
    const pool = { ...graph.nodes[0]!, name: 'pool', opType: 'GlobalAveragePool', inputs: ['out0'], outputs: ['y'] };
    const pooled = { ...graph, nodes: [graph.nodes[0]!, pool], outputs: [{ name: 'y', type: 'float32' as const }] };
    // The captured concat is 12.8 KB as float16 and 25.6 KB as float32: only its cast splits.
    const session = await Session.create(await gpu(), pooled, { precision: 'f16', maxBindingBytes: 16384, capture: ['out0'] });
    try {
      const casts = (await session.plan()).kernels.filter((k) => k.node.opType === 'Cast');
      expect(casts.length).toBeGreaterThan(1);
      const { captured } = await session.run({ in0: xs[0]!, in1: xs[1]! });
      const y = await captured.get('out0')!.toHost();
      expect(Array.from(y.data)).toEqual(Array.from(float16ToFloat32(float32ToFloat16([...xs[0]!.data, ...xs[1]!.data]))));
    } finally {
      session.destroy();
    }
  });

  it("is refused on an adapter without 'shader-f16', and an unknown precision is an InputError", async () => {
    const graph = nodeGraph({ op: 'Relu', inputs: [randomTensor([4], 1)] });
    const plain = { ...(await gpu()), features: new Set<string>() };
    await expect(Session.create(plain, graph, { precision: 'f16' })).rejects.toThrow(GpuError);
    await expect(Session.create(plain, graph, { precision: 'f16' })).rejects.toThrow(/no 'shader-f16' feature/);
    await expect(Session.create(await gpu(), graph, { precision: 'f64' as 'f16' })).rejects.toThrow(InputError);
  });
});

describe('a float16 model (model.half() exported)', () => {
  // The second keeps its BatchNormalization nodes: segscope folds them into the convs, then stores the folded weights as float16 at f16.
  for (const name of ['deeplabv3plus_os16_fp16.onnx', 'deeplabv3plus_bn_fp16.onnx'])
    it(`${name} runs at f32 and f16 and matches onnxruntime on the same float16 model`, async () => {
      const file = join(ROOT, 'test/fixtures', name);
      const x = decodeNpy(readFileSync(INPUT), INPUT);
      const ortSession = await ort.InferenceSession.create(file, { executionProviders: ['cpu'] });
      const fed = new ort.Tensor('float16', float32ToFloat16(x.data), [...x.dims]);
      const expected = float16ToFloat32((await ortSession.run({ input: fed })).output!.data as Uint16Array);
      await ortSession.release();
      const graph = await readModelFile(file);
      for (const precision of ['f32', 'f16'] as const) {
        const session = await Session.create(await gpu(), graph, { inputShapes: { input: [1, 3, 65, 65] }, precision });
        try {
          const y = (await session.run(x)).outputs.get('output')!;
          expect([y.type, y.dims]).toEqual(['float32', [1, 21, 65, 65]]);
          expect(relativeL2(y.data, expected), precision).toBeLessThan(F16_TOLERANCE);
        } finally {
          session.destroy();
        }
      }
    });
});

describe('--precision on the command line', () => {
  it("segscope run --precision f16 reports it and writes float32 logits within 2e-3 of f32, keeping 99.5% of the pixels' class", async () => {
    const dirs = ['f32', 'f16'].map(() => mkdtempSync(join(tmpdir(), 'segscope-precision-')));
    const runs = await Promise.all(['f32', 'f16'].map((p, k) => segscope('run', MODEL, '--input', INPUT, '--precision', p, '--dump-dir', dirs[k]!, '--json')));
    for (const r of runs) expect([errors(r.stderr), r.code]).toEqual([[], 0]);
    const [a, b] = runs.map((r) => JSON.parse(r.stdout)) as {
      precision: string;
      outputs: { type: string }[];
      memory: { weight_bytes: number; activation_bytes: number };
    }[];
    expect([a!.precision, b!.precision, b!.outputs[0]!.type]).toEqual(['f32', 'f16', 'float32']);
    // The planned memory: float16 weights and activations (the float32 input and logits stay: most of this small model's activations).
    // At most half the weights: on a CPU adapter f32's stride-1 3x3 convs keep Winograd's transformed weights, 16/9 or 36/9 as large.
    const weightRatio = b!.memory.weight_bytes / a!.memory.weight_bytes;
    expect(weightRatio).toBeLessThanOrEqual(0.51);
    expect(weightRatio).toBeGreaterThan(0.5 * (9 / 36));
    expect(b!.memory.activation_bytes).toBeLessThan(a!.memory.activation_bytes);
    const [full, half] = dirs.map((d) => decodeNpy(readFileSync(join(d, 'output.npy')), 'output.npy'));
    expect(half!.dims).toEqual(full!.dims);
    expect(relativeL2(half!.data, full!.data)).toBeLessThanOrEqual(2e-3);
    expect(argmaxAgreement(half!.data, full!.data, full!.dims)).toBeGreaterThanOrEqual(0.995);
    const bad = await segscope('run', MODEL, '--input', INPUT, '--precision', 'f64');
    expect([bad.code, errors(bad.stderr)]).toEqual([1, [expect.stringMatching(/--precision 'f64': expected f32 or f16/)]]);
  });

  it('segscope vis --precision f16 draws the pictures of f32 within one JET level per pixel, and the prediction on 99% of the pixels', async () => {
    const image = join(ROOT, 'test/fixtures/images/rgb.png');
    const outs = ['f32', 'f16'].map(() => mkdtempSync(join(tmpdir(), 'segscope-precision-')));
    const runs = await Promise.all(
      ['f32', 'f16'].map((p, k) =>
        segscope('vis', MODEL, image, '--layer', 'classifier.aspp.project', '--input-size', '65x65', '--precision', p, '--out', outs[k]!, '--json'),
      ),
    );
    for (const r of runs) expect([errors(r.stderr), r.code]).toEqual([[], 0]);
    const files = (k: number) => (JSON.parse(runs[k]!.stdout) as { images: { files: { file: string }[] }[] }).images[0]!.files.map((f) => f.file);
    expect(files(1)).toEqual(files(0));
    // Each coloured pixel back to its JET level (0-255): float16 moves a normalised value by at most one level, on few pixels.
    const levels = ({ data }: { data: Uint8Array }) => jetLevels(data, 3) as number[];
    for (const file of files(0).filter((f) => /_(max|mean)\.png$/.test(f))) {
      const [full, half] = (await Promise.all(outs.map((d) => readImage(join(d, file))))).map(levels);
      expect(full!.every((v) => v !== undefined) && half!.every((v) => v !== undefined), `${file}: every pixel a JET colour`).toBe(true);
      const moved = full!.map((v, p) => Math.abs(half![p]! - v));
      expect(Math.max(...moved), file).toBeLessThanOrEqual(1);
      expect(moved.filter((d) => d > 0).length / moved.length, file).toBeLessThan(0.2);
    }
    const [full, half] = await Promise.all(outs.map((d) => readImage(join(d, 'rgb_prediction.png'))));
    const same = Array.from({ length: full!.width * full!.height }, (_, p) => [0, 1, 2].every((c) => full!.data[3 * p + c] === half!.data[3 * p + c]));
    expect(same.filter(Boolean).length / same.length).toBeGreaterThanOrEqual(0.99);
    const bad = await segscope('vis', '--tensor', INPUT, '--precision', 'f16');
    expect(errors(bad.stderr)).toEqual([expect.stringMatching(/--precision applies to model runs on images, not to --tensor/)]);
  });

  it('segscope bench --precision f16 reports the accuracy against f32', async () => {
    const { code, stdout, stderr } = await segscope('bench', MODEL, '--size', '33x33', '--runs', '1', '--warmup', '0', '--precision', 'f16', '--json');
    expect([errors(stderr), code]).toEqual([[], 0]);
    const r = JSON.parse(stdout) as { precision: string; vs_f32: { output: string; rel_l2: number; argmax_agreement: number }[] };
    expect(r.precision).toBe('f16');
    expect(r.vs_f32).toEqual([{ output: 'output', rel_l2: expect.any(Number), argmax_agreement: expect.any(Number) }]);
    expect(r.vs_f32[0]!.rel_l2).toBeGreaterThan(0);
    expect(r.vs_f32[0]!.rel_l2).toBeLessThan(1e-2);
    expect(r.vs_f32[0]!.argmax_agreement).toBeGreaterThan(0.98);
  });
});
