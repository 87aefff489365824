/**
 * Weights reach the GPU once per session (runtime/program.ts writeUploads):
 * packed when first uploaded, not when planned, so programs for other
 * capture sets reuse them; and packed through two staging buffers that take
 * turns, so a model's weights beyond one staging buffer arrive intact.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Graph, HostTensor } from '../src/model/graph.js';
import { packedParam } from '../src/kernels/wgsl.js';
import { inferTypes } from '../src/model/infer.js';
import { registry } from '../src/ops/registry.js';
import { compileProgram, planDevice, planProgram } from '../src/runtime/program.js';
import { Session } from '../src/runtime/session.js';
import { gpu, namedNode, randomTensor, relL2, TOLERANCE } from './helpers/gpu.js';

// Counts the weight packings that happen: every conv kernel packs its weights through packedParam.
let packings = 0;
vi.mock('../src/kernels/wgsl.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../src/kernels/wgsl.js')>();
  return {
    ...original,
    packedParam: vi.fn((length: number, type: Parameters<typeof packedParam>[1], pack: Parameters<typeof packedParam>[2]) =>
      original.packedParam(length, type, (packed) => {
        packings++;
        pack(packed);
      }),
    ),
  };
});

/** Convs of `x` [1, c, size, size] by `weights` (3x3, padding 1, a bias each): outputs y0, y1…, each through a Relu into r0, r1…. */
function convGraph(c: number, size: number, weights: HostTensor[], biases: HostTensor[]): Graph {
  const initializers = new Map<string, HostTensor>();
  const nodes = weights.flatMap((w, k) => {
    initializers.set(`w${k}`, w);
    initializers.set(`b${k}`, biases[k]!);
    return [namedNode('Conv', ['x', `w${k}`, `b${k}`], `y${k}`, { pads: [1, 1, 1, 1] }), namedNode('Relu', [`y${k}`], `r${k}`)];
  });
  return {
    nodes,
    inputs: [{ name: 'x', type: 'float32', dims: [1, c, size, size] }],
    outputs: weights.map((_, k) => ({ name: `r${k}`, type: 'float32' })),
    initializers,
    opset: 17,
    metadata: {},
    source: 'uploads test',
  };
}

/** Relu(conv) of a 3x3 padding-1 conv, NCHW, batch 1, in float64, written for the test. */
function reluConvRef(x: HostTensor, w: HostTensor, b: HostTensor): Float64Array {
  const [cOut, cIn] = w.dims as [number, number];
  const size = x.dims[2]!;
  const y = new Float64Array(cOut * size * size);
  for (let co = 0; co < cOut; co++)
    for (let oy = 0; oy < size; oy++)
      for (let ox = 0; ox < size; ox++) {
        let sum = b.data[co]!;
        for (let ci = 0; ci < cIn; ci++)
          for (let ky = 0; ky < 3; ky++)
            for (let kx = 0; kx < 3; kx++) {
              const [iy, ix] = [oy + ky - 1, ox + kx - 1];
              if (iy >= 0 && iy < size && ix >= 0 && ix < size) sum += w.data[((co * cIn + ci) * 3 + ky) * 3 + kx]! * x.data[(ci * size + iy) * size + ix]!;
            }
        y[(co * size + oy) * size + ox] = Math.max(sum, 0);
      }
  return y;
}

describe('weight uploads', () => {
  it('packs into staging memory whatever it held: zeros where the packer writes nothing, float16 converted', () => {
    const stale = () => new Uint8Array(new Float32Array(8).fill(Number.NaN).buffer);
    const pack = (packed: Float32Array) => {
      packed[1] = 2.5;
      packed[4] = -1;
    };
    const target = stale();
    const f32 = packedParam(6, 'float32', pack);
    expect(f32.bytes).toBe(24);
    const made = f32.data(target.subarray(4, 28));
    expect(made.buffer).toBe(target.buffer);
    expect(Array.from(made)).toEqual([0, 2.5, 0, 0, -1, 0]);
    expect(Array.from(f32.data())).toEqual([0, 2.5, 0, 0, -1, 0]);
    // float16: 6 halves, 12 bytes; 5 would still take whole words.
    const f16 = packedParam(6, 'float16', pack);
    expect([f16.bytes, packedParam(5, 'float16', pack).bytes]).toEqual([12, 12]);
    expect(Array.from(f16.data(stale().subarray(0, 12)))).toEqual([0, 0x4100, 0, 0, 0xbc00, 0]);
  });

  it('packs each conv once per session: programs for other capture sets reuse its uploads', async () => {
    const [c, size] = [8, 6];
    const weights = [0, 1].map((k) => randomTensor([c, c, 3, 3], 10 + k));
    const biases = [0, 1].map((k) => randomTensor([c], 20 + k));
    const session = await Session.create(await gpu(), convGraph(c, size, weights, biases));
    try {
      const before = packings;
      const x = randomTensor([1, c, size, size], 3);
      const plain = await session.run(x);
      expect(packings - before).toBe(0);
      // Capturing a conv's output before its Relu unfuses the epilogue: a new program, the same weights.
      for (const capture of [['y0'], ['y1'], ['y0', 'y1']]) {
        const run = await session.run(x, { capture });
        expect(run.outputs.get('r1')!.data).toEqual(plain.outputs.get('r1')!.data);
      }
      expect(packings - before).toBe(0);
      const code = async (capture: string[]) => (await session.plan(capture)).kernels.map((k) => k.kernel.wgsl);
      expect(await code(['y0'])).not.toEqual(await code([]));
    } finally {
      session.destroy();
    }
    // The same graph in a new session packs again, once per conv: the count above saw packings happen.
    const before = packings;
    (await Session.create(await gpu(), convGraph(c, size, weights, biases))).destroy();
    expect(packings - before).toBe(2);
  });

  it('keeps no upload of a build that failed while packing, so the next build packs them all', async () => {
    const g = await gpu();
    const graph = convGraph(8, 6, [randomTensor([8, 8, 3, 3], 30)], [randomTensor([8], 31)]);
    const plan = planProgram(
      inferTypes(graph, new Map(), (op) => registry.get(op)?.infer),
      new Set(),
      planDevice(g),
    );
    const refs = plan.kernels.flatMap((k) => k.buffers.filter((b) => b.kind === 'upload'));
    expect(refs.length).toBeGreaterThan(1);
    const failing = {
      ...plan,
      kernels: plan.kernels.map((k) => ({
        ...k,
        buffers: k.buffers.map((b) =>
          b === refs[refs.length - 1]
            ? {
                ...b,
                data: () => {
                  throw new Error('packer failed');
                },
              }
            : b,
        ),
      })),
    };
    const uploads = new Map<string, GPUBuffer>();
    await expect(compileProgram(g, failing, uploads, 'failing')).rejects.toThrow('packer failed');
    expect(uploads.size).toBe(0);
    const compiled = await compileProgram(g, plan, uploads, 'retried');
    expect([...uploads.keys()].sort()).toEqual([...new Set(refs.map((r) => (r.kind === 'upload' ? r.key : '')))].sort());
    for (const slot of compiled.slots) slot.destroy();
    for (const buffer of uploads.values()) buffer.destroy();
  });

  it("uploads more weights than two staging buffers hold (32 MB each), each arriving intact over the last turn's", async () => {
    // Five 3x3 convs of 640 channels on a 2x2 map run as Winograd F(2x2): 26 MB of transformed weights each, one staging buffer's worth, so the two take five turns.
    // A last conv, to one channel, packs into the first buffer's third turn, over older weights.
    const [c, size] = [640, 2];
    const outChannels = [c, c, c, c, c, 1];
    const count = outChannels.length;
    const weights = outChannels.map((m, k) => randomTensor([m, c, 3, 3], 100 + k, -0.05, 0.05));
    const biases = outChannels.map((m, k) => randomTensor([m], 200 + k, -0.1, 0.1));
    const x = randomTensor([1, c, size, size], 7);
    const session = await Session.create(await gpu(), convGraph(c, size, weights, biases));
    try {
      const { outputs } = await session.run(x);
      for (let k = 0; k < count; k++)
        expect(relL2(outputs.get(`r${k}`)!.data, reluConvRef(x, weights[k]!, biases[k]!)), `conv ${k}`).toBeLessThan(TOLERANCE.f32);
    } finally {
      session.destroy();
    }
  });
});
