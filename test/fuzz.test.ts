/**
 * Corrupted models end in a typed error or a run, never a TypeError, a crash,
 * a hang or a memory blow-up, and a run gives onnxruntime's outputs where
 * onnxruntime runs the same bytes: a few hundred seeded cases of the fuzzer
 * (bench/fuzz.ts runs 60,000 in child processes), and the bugs it found,
 * each as a small graph.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { ModelError } from '../src/errors.js';
import { inferTypes } from '../src/model/infer.js';
import { registry } from '../src/ops/registry.js';
import { gpu, nodeGraph, runNode, tensor, type NodeCase } from './helpers/gpu.js';
import { describeFailure, makeCase, MUTATION_KINDS, planKey, runCase, workspace } from './helpers/mutate.js';

const CASES = 300;
const FIRST_SEED = 0x5e65c0;
/** Shader compilation costs ~1 s a session on lavapipe: the test runs this many distinct plans. */
const GPU_RUNS = 4;

describe('seeded corruptions of the fixture models', () => {
  const dir = mkdtempSync(join(tmpdir(), 'segscope-fuzz-'));
  afterAll(() => rmSync(dir, { recursive: true }));

  it(`${CASES} cases: typed errors or runs equal to onnxruntime's, within the time and memory bounds`, async () => {
    const ws = workspace(await gpu(), dir);
    onTestFinished(() => ws.reference.close());
    const seen = new Set<string>();
    const unjudged: string[] = [];
    const outcomes = new Map<string, number>();
    const failures: string[] = [];
    for (let seed = FIRST_SEED; seed < FIRST_SEED + CASES; seed++) {
      const c = makeCase(seed);
      const r = await runCase(ws, c, (plan) => {
        const key = planKey(plan);
        if (seen.has(key) || seen.size >= GPU_RUNS) return false;
        seen.add(key);
        return true;
      });
      if (r.failure) failures.push(describeFailure(c, r));
      // These seeds' runs are models onnxruntime accepts, with finite outputs: each run here is compared with it.
      if (r.outcome === 'ran' && (r.reference !== 'equal' || !r.finite))
        unjudged.push(`seed ${seed}: onnxruntime ${r.reference} (${r.referenceDetail}), finite ${r.finite}`);
      outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
    }
    // A run that onnxruntime also runs and that differs from it is a failure.
    expect(failures).toEqual([]);
    // The cases reach every stage: refused while loading or planning, and run.
    expect(outcomes.get('typed')).toBeGreaterThan(CASES / 2);
    expect(outcomes.get('ran')).toBeGreaterThan(0);
    expect(unjudged).toEqual([]);
  });

  it('draws every mutation kind', () => {
    const kinds = new Set(Array.from({ length: CASES }, (_, i) => makeCase(FIRST_SEED + i).kind));
    expect([...kinds].sort()).toEqual([...MUTATION_KINDS].sort());
  });

  it('rebuilds the same bytes from a seed, so failures replay', () => {
    const [a, b] = [makeCase(FIRST_SEED + 7), makeCase(FIRST_SEED + 7)];
    expect(a.detail).toBe(b.detail);
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
  });
});

/** What the fuzzer found, as the smallest graphs that showed it. */
describe('regressions found by the fuzzer', () => {
  const typeGraph = (c: NodeCase) => inferTypes(nodeGraph(c), new Map(), (op) => registry.get(op)?.infer);
  const x = tensor([1, 3, 8, 8], new Float32Array(192));
  const w = { constant: tensor([4, 3, 3, 3], new Float32Array(108)) };
  const ints = (values: number[]) => ({ constant: tensor([values.length], values, 'int64') });

  it('a node missing a required input is a ModelError naming it, not a TypeError', () => {
    expect(() => typeGraph({ op: 'Conv', inputs: [x] })).toThrow(ModelError);
    expect(() => typeGraph({ op: 'Conv', inputs: [x] })).toThrow(/node 'test_Conv' \(Conv\): its inputs or attributes are malformed/);
    expect(() => typeGraph({ op: 'Concat', attrs: { axis: 0 }, inputs: [] })).toThrow(ModelError);
  });

  it('a node naming more outputs than its op produces is a ModelError naming them (fuzz seed 49723: a TypeError in planning)', () => {
    const graph = nodeGraph({ op: 'Relu', inputs: [x] });
    const twoOutputs = { ...graph, nodes: [{ ...graph.nodes[0]!, outputs: [...graph.nodes[0]!.outputs, 'junk'] }] };
    expect(() => inferTypes(twoOutputs, new Map(), (op) => registry.get(op)?.infer)).toThrow(
      /node 'test_Relu' \(Relu\): names 2 outputs \('out0', 'junk'\); Relu produces 1/,
    );
  });

  it('a shape of more than 2^31 elements is refused at inference, before anything is sized from it', () => {
    // Once a worker crash: V8 "invalid size" when planning a Conv with pads 2^62.
    const pads = { op: 'Conv', attrs: { pads: [0, 0, 2 ** 30, 0] }, inputs: [x, w] };
    expect(() => typeGraph(pads)).toThrow(/node 'test_Conv' \(Conv\): its output \[1,4,\d+,6\] has more than 2\^31 elements/);
  });

  it('conv attributes beyond 32 bits are a ModelError, not WGSL that fails to compile', () => {
    for (const attrs of [{ strides: [2 ** 53, 1] }, { dilations: [1, 2 ** 31] }, { pads: [0, 0, 2 ** 62, 0] }] as Record<string, number[]>[]) {
      expect(() => typeGraph({ op: 'Conv', attrs, inputs: [x, w] })).toThrow(
        /node 'test_Conv': (strides|dilations|pads) must be \d integers from \d to 2147483647/,
      );
    }
  });

  it('Clip with an empty bound is a ModelError, not WGSL that fails to compile', async () => {
    const empty = { constant: tensor([0], new Float32Array(0)) };
    await expect(runNode({ op: 'Clip', inputs: [x, empty] })).rejects.toThrow(/Clip node 'test_Clip': min must be a scalar, got 0 values/);
  });

  it('Slice with starts and ends of different lengths is a ModelError', () => {
    const data = { constant: tensor([4], [1, 2, 3, 4], 'int64') };
    expect(() => typeGraph({ op: 'Slice', inputs: [data, ints([]), ints([2])] })).toThrow(
      /Slice node 'test_Slice': starts, ends, axes and steps have lengths 0, 1/,
    );
  });

  it('folding refuses to create a huge constant before allocating it', () => {
    // 2^26 elements: without the check, a 512 MiB array per fold.
    expect(() => typeGraph({ op: 'ConstantOfShape', inputs: [ints([8192, 8192])] })).toThrow(/folds at most 2\^24/);
    expect(() => typeGraph({ op: 'Expand', inputs: [ints([1]), ints([8192, 8192])] })).toThrow(/folds at most 2\^24/);
    expect(() => typeGraph({ op: 'Range', inputs: [ints([0]), ints([2 ** 40]), ints([1])] })).toThrow(/folds at most 2\^24/);
  });
});
