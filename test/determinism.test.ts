/**
 * The same input on the same adapter gives the same bits: across runs of one
 * session, across sessions, across devices, for the outputs and for every
 * captured intermediate tensor. And running does not leak GPU buffers: the
 * count of live buffers (deterministic, unlike heap bytes) stays flat.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/device.js';
import { openDawn } from '../src/gpu/dawn.js';
import { readModelFile } from '../src/io/model-file.js';
import type { Graph } from '../src/model/graph.js';
import { Session } from '../src/runtime/session.js';
import { countBuffers, type BufferCount } from './helpers/buffers.js';
import { gpu, randomTensor } from './helpers/gpu.js';

const FIXTURE = join(import.meta.dirname, 'fixtures/deeplabv3plus_os16.onnx');
const DIMS = [1, 3, 65, 65];
const x = randomTensor(DIMS, 65, -2, 2);

let graph: Graph;
let device: Gpu;
let buffers: BufferCount;
beforeAll(async () => {
  graph = await readModelFile(FIXTURE);
  device = await gpu();
  buffers = countBuffers(device.device);
});

const open = (on: Gpu) => Session.create(on, graph, { inputShapes: { input: DIMS } });
const bytesOf = (data: Float32Array | Float64Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** The output of a run without capture, and every output and captured tensor of a run capturing '*', as bytes. */
async function snapshot(session: Session): Promise<Map<string, Buffer>> {
  const tensors = new Map<string, Buffer>();
  const lean = await session.run(x);
  for (const [name, t] of lean.outputs) tensors.set(`lean ${name}`, bytesOf(t.data));
  const { outputs, captured } = await session.run(x, { capture: ['*'] });
  for (const [name, t] of outputs) tensors.set(`output ${name}`, bytesOf(t.data));
  for (const t of captured.values()) if (t.buffer) tensors.set(t.name, bytesOf((await t.toHost()).data));
  return tensors;
}

/** The names whose bytes differ (or that only one side has): [] when bitwise identical. */
function differences(a: Map<string, Buffer>, b: Map<string, Buffer>): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((name) => !a.get(name)?.equals(b.get(name) ?? Buffer.alloc(0)));
}

describe('bitwise determinism of deeplabv3plus_os16 at 1x3x65x65', () => {
  let first: Map<string, Buffer>;
  let session: Session;
  beforeAll(async () => {
    session = await open(device);
    first = await snapshot(session);
  });
  afterAll(() => session.destroy());

  it('captures the intermediates, and capturing them does not change the output', () => {
    expect(first.size).toBeGreaterThan(50);
    expect(first.get('output output')!.equals(first.get('lean output')!)).toBe(true);
  });

  it('repeats across runs of one session', async () => {
    expect(differences(await snapshot(session), first)).toEqual([]);
  });

  it('repeats across two sessions on one device', async () => {
    const other = await open(device);
    try {
      expect(differences(await snapshot(other), first)).toEqual([]);
    } finally {
      other.destroy();
    }
  });

  it('repeats on a fresh device', async () => {
    const fresh = await openDawn();
    try {
      expect(differences(await snapshot(await open(fresh)), first)).toEqual([]);
    } finally {
      fresh.device.destroy();
    }
  });
});

describe('GPU buffers over many runs', () => {
  it('stay flat over 100 runs, with and without capture, and are all freed by destroy()', async () => {
    const before = buffers.live();
    const session = await open(device);
    // Warm-up: both programs (lean and capture-all) built, read-back staging freed.
    await snapshot(session);
    const warm = buffers.live();
    for (let i = 0; i < 50; i++) {
      await session.run(x);
      const { captured } = await session.run(x, { capture: ['*'] });
      await [...captured.values()]
        .filter((t) => t.buffer)
        .at(-1)!
        .toHost();
    }
    expect(buffers.live()).toBe(warm);
    session.destroy();
    expect(buffers.live()).toBe(before);
  });
});
