/**
 * ONNX backend conformance: every node test shipped by Debian's
 * libonnx-testdata runs on the GPU and must match the expected outputs.
 * The cases segscope cannot run, or deliberately disagrees with, are listed
 * by name with their reason in conformance-skips.ts; any other case that
 * fails, at load time or in its comparison, fails this suite. Listed cases
 * run too, and fail once they no longer fail as listed, so the list stays
 * true.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readModelFile } from '../src/io/model-file.js';
import type { HostTensor } from '../src/model/graph.js';
import { decodeTensor } from '../src/onnx/decode.js';
import { tensorFromProto } from '../src/model/tensor-proto.js';
import { Session } from '../src/runtime/session.js';
import { deviations, unsupported } from './conformance-skips.js';
import { gpu, relL2 } from './helpers/gpu.js';

const ROOT = '/usr/share/libonnx-testdata/data/node';
const SKIPS = 'test/conformance-skips.ts';

const readTensor = (file: string): HostTensor => tensorFromProto(decodeTensor(readFileSync(file), file), { source: file });

/**
 * NumPy has no bfloat16, so the test data stores bfloat16 inputs and
 * outputs as their uint16 bit patterns: the high half of a float32.
 */
function bfloat16Bits(declared: string, t: HostTensor): HostTensor {
  if (declared !== 'bfloat16' || t.type !== 'uint16') return t;
  const bits = Uint32Array.from(t.data, (v) => v * 65536);
  return { type: 'float32', dims: t.dims, data: new Float32Array(bits.buffer) };
}

/**
 * Runs the case in `dir` and compares its outputs with the expected ones;
 * throws whatever stops it. Returns the op types the case covered.
 */
async function runCase(dir: string): Promise<string[]> {
  const graph = await readModelFile(join(dir, 'model.onnx'));
  const data = join(dir, 'test_data_set_0');
  const inputs = Object.fromEntries(graph.inputs.map((input, i) => [input.name, bfloat16Bits(input.type, readTensor(join(data, `input_${i}.pb`)))] as const));
  // As a user runs a model: every input fed at run time, the session reading
  // those that decide shapes or other load-time values on the host. A case
  // whose inputs are all such parameters tests the CPU constant folder.
  const session = await Session.create(await gpu(), graph, {
    inputShapes: Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, [...t.dims]])),
  });
  try {
    const out = await session.run(inputs);
    graph.outputs.forEach((o, i) => {
      const expected = bfloat16Bits(o.type, readTensor(join(data, `output_${i}.pb`)));
      const actual = out.outputs.get(o.name)!;
      expect(actual.dims, `${o.name} shape`).toEqual(expected.dims);
      if (expected.type === 'float32') {
        // NaN/Inf positions must agree; the rest is compared by relative L2.
        const finite = Array.from(expected.data, (v) => Number.isFinite(v));
        expect(
          Array.from(actual.data, (v, k) => (finite[k] ? 0 : v)),
          `${o.name} non-finite values`,
        ).toEqual(Array.from(expected.data, (v) => (Number.isFinite(v) ? 0 : v)));
        const keep = (d: ArrayLike<number>) => Array.from(d).filter((_, k) => finite[k]);
        expect(relL2(keep(actual.data), keep(expected.data)), `${o.name} relative L2`).toBeLessThanOrEqual(1e-4);
      } else {
        expect(Array.from(actual.data), o.name).toEqual(Array.from(expected.data));
      }
    });
    expect(readdirSync(data).filter((f) => f.startsWith('output_')).length).toBe(graph.outputs.length);
  } finally {
    session.destroy();
  }
  return [...new Set(graph.nodes.map((n) => (n.domain ? `${n.domain}.${n.opType}` : n.opType)))];
}

const passedOps = new Map<string, number>();

describe('ONNX backend conformance (libonnx-testdata)', () => {
  it('has the conformance data installed (apt-get install libonnx-testdata)', () => {
    expect(existsSync(ROOT)).toBe(true);
  });
  if (!existsSync(ROOT)) return;
  const cases = readdirSync(ROOT).sort();

  it(`${SKIPS} lists only cases of the data, each once`, () => {
    const listed = [...Object.keys(unsupported), ...Object.keys(deviations)];
    expect(
      listed.filter((name) => !cases.includes(name)),
      'listed cases the data lacks',
    ).toEqual([]);
    expect(
      listed.filter((name, i) => listed.indexOf(name) !== i),
      'cases listed twice',
    ).toEqual([]);
  });

  for (const name of cases) {
    const dir = join(ROOT, name);
    const reason = unsupported[name] ?? deviations[name];
    if (!reason) {
      it(name, async () => {
        for (const op of await runCase(dir)) passedOps.set(op, (passedOps.get(op) ?? 0) + 1);
      });
      continue;
    }
    it(name, async (ctx) => {
      const failure = await runCase(dir).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(failure, `${name} passes now: remove it from ${SKIPS}`).toBeDefined();
      if (name in unsupported) {
        // Paths differ between machines; the list names the model file alone.
        const message = failure!.message.replaceAll(`${dir}/`, '');
        expect(message, `${name} no longer fails as ${SKIPS} says`).toBe(reason);
      } else {
        expect(failure!.name, `${name} should fail its comparison, as ${SKIPS} says, but fails with: ${failure!.message}`).toBe('AssertionError');
      }
      ctx.skip(reason);
    });
  }

  afterAll(() => {
    const ran = [...passedOps].map(([op, n]) => `${op}×${n}`).join(' ');
    console.log(`conformance: cases passed per op: ${ran}`);
  });
});
