/**
 * Kernel profiling: every dispatching node once, sane times and shares,
 * FLOPs against an independent formula, and results unchanged by profiling.
 * Speeds are never asserted beyond being non-negative and finite.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasTimestamps } from '../src/gpu/timestamps.js';
import { readModelFile } from '../src/io/model-file.js';
import type { Graph, HostTensor } from '../src/model/graph.js';
import { planMemory, profileNodes } from '../src/runtime/profile.js';
import { Session } from '../src/runtime/session.js';
import { gpu, randomTensor } from './helpers/gpu.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const DIMS = [1, 3, 65, 65];

async function open(file: string): Promise<{ graph: Graph; session: Session; x: HostTensor }> {
  const graph = await readModelFile(join(FIXTURES, file));
  const session = await Session.create(await gpu(), graph, { inputShapes: { input: DIMS } });
  return { graph, session, x: randomTensor(DIMS, 7) };
}

/** 2·N·C_out·H_out·W_out·(C_in/groups)·kH·kW, from the node's attributes and the typed shapes. */
function convFlops(graph: Graph, session: Session, name: string): number {
  const node = graph.nodes.find((n) => n.name === name)!;
  const [n, cIn] = session.typeOf(node.inputs[0]!)!.dims;
  const [, cOut, hOut, wOut] = session.typeOf(node.outputs[0]!)!.dims;
  const [kh, kw] = node.attrs.ints('kernel_shape', graph.initializers.get(node.inputs[1]!)!.dims.slice(2) as number[]);
  return 2 * n! * cOut! * hOut! * wOut! * (cIn! / node.attrs.int('group', 1)) * kh! * kw!;
}

const bytesOf = (t: HostTensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe('profiling a session with timestamp queries', async () => {
  const timed = hasTimestamps(await gpu());

  it.runIf(timed)('lists every dispatching node once, with sane times, shares and FLOPs', async () => {
    const { graph, session, x } = await open('deeplabv3plus_os16.onnx');
    const nodes = (await profileNodes(session, { input: x }, 2))!;
    // A fused node ('<conv>::relu', '<conv>::bn_folded') reports under the ONNX node it started from.
    const dispatching = new Set((await session.plan()).kernels.map((k) => k.node.name.split('::')[0]!));
    expect(nodes.map((n) => n.node).sort()).toEqual([...dispatching].sort());

    for (const n of nodes) {
      expect(n.ms, n.node).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(n.gflops), n.node).toBe(true);
      expect(n.kernels.length, n.node).toBeGreaterThan(0);
      expect(n.outputShape, n.node).toEqual(session.typeOf(graph.nodes.find((g) => g.name === n.node)!.outputs[0]!)!.dims);
    }
    expect(nodes.reduce((a, n) => a + n.share, 0)).toBeCloseTo(100, 6);
    expect(nodes.map((n) => n.ms)).toEqual(nodes.map((n) => n.ms).sort((a, b) => b - a));

    const convs = nodes.filter((n) => n.opType === 'Conv');
    expect(convs.length).toBe(graph.nodes.filter((n) => n.opType === 'Conv').length);
    for (const c of convs) expect(c.flops, c.node).toBe(convFlops(graph, session, c.node));
    // Every op but the matrix products counts its output elements (Relu and Add are fused into the convs here).
    const other = nodes.find((n) => n.opType !== 'Conv')!;
    expect(other.flops, other.node).toBe(other.outputShape.reduce((a, b) => a * b, 1));

    const memory = planMemory(await session.plan());
    expect(memory.activationBytes).toBeGreaterThanOrEqual(21 * 65 * 65 * 4);
    expect(memory.weightBytes).toBeGreaterThan(0);
    expect(memory.totalBytes).toBe(memory.activationBytes + memory.weightBytes);
    session.destroy();
  });

  it.runIf(timed)("reports a Conv with BatchNorm folded in under the Conv, with the Conv's FLOPs", async () => {
    const { graph, session, x } = await open('deeplabv3plus_bn.onnx');
    const nodes = (await profileNodes(session, { input: x }, 1))!;
    expect(nodes.some((n) => n.opType === 'BatchNormalization' || n.node.includes('::'))).toBe(false);
    const stem = nodes.find((n) => n.node === '/backbone/conv1/Conv')!;
    expect(stem.flops).toBe(convFlops(graph, session, stem.node));
    session.destroy();
  });

  it.runIf(timed)('changes no result: outputs and kernel list equal an ordinary run, bit for bit', async () => {
    const { session, x } = await open('deeplabv3plus_os16.onnx');
    const ordinary = await session.run(x);
    const profiled = await session.profile(x);
    expect(profiled.kernels.length).toBe((await session.plan()).kernels.length);
    for (const [name, t] of ordinary.outputs) expect(bytesOf(profiled.outputs.get(name)!), name).toEqual(bytesOf(t));
    session.destroy();
  });

  it.skipIf(timed)('without timestamp queries there is no per-node profile', async () => {
    const { session, x } = await open('deeplabv3plus_os16.onnx');
    expect(await profileNodes(session, { input: x }, 1)).toBeNull();
    session.destroy();
  });
});
