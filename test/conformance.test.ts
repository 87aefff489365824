/**
 * ONNX backend conformance: every node test shipped by Debian's
 * libonnx-testdata whose ops segscope implements runs on the GPU and must
 * match the expected outputs. Cases using ops (or op variants) segscope does
 * not support are skipped with the reason, and listed at the end.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, UnsupportedOpError } from '../src/errors.js';
import { readModelFile } from '../src/io/model-file.js';
import { evaluators } from '../src/model/fold.js';
import type { HostTensor } from '../src/model/graph.js';
import { decodeTensor } from '../src/onnx/decode.js';
import { tensorFromProto } from '../src/model/tensor-proto.js';
import { registry } from '../src/ops/registry.js';
import { Session } from '../src/runtime/session.js';
import { gpu, relL2 } from './helpers/gpu.js';

const ROOT = '/usr/share/libonnx-testdata/data/node';

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

/** Cases whose expected data segscope deliberately does not follow. */
const deviations: Record<string, string> = {
  test_cast_FLOAT_to_BFLOAT16:
    "this data truncates float32 to bfloat16; segscope rounds to nearest even, as the current ONNX spec, onnxruntime and PyTorch do",
};

const skipped: string[] = [];
const passedOps = new Map<string, number>();

/** Op types of a case, read from its model without running anything. */
async function caseOps(dir: string): Promise<string[]> {
  const graph = await readModelFile(join(dir, 'model.onnx'));
  return [...new Set(graph.nodes.map((n) => (n.domain ? `${n.domain}.${n.opType}` : n.opType)))];
}

const supported = (op: string) => registry.has(op) || op in evaluators;

describe('ONNX backend conformance (libonnx-testdata)', () => {
  it('has the conformance data installed (apt-get install libonnx-testdata)', () => {
    expect(existsSync(ROOT)).toBe(true);
  });
  if (!existsSync(ROOT)) return;

  for (const name of readdirSync(ROOT).sort()) {
    const dir = join(ROOT, name);
    it(name, async (ctx) => {
      if (deviations[name]) {
        skipped.push(`${name}: ${deviations[name]}`);
        return ctx.skip();
      }
      let ops: string[];
      try {
        ops = await caseOps(dir);
      } catch (e) {
        skipped.push(`${name}: ${(e as Error).message}`);
        return ctx.skip();
      }
      const missing = ops.filter((op) => !supported(op));
      // Cases made only of load-time ops test the constant folder, which
      // needs no GPU op; cases with at least one GPU op test kernels.
      if (missing.length) {
        skipped.push(`${name}: op ${missing.join(', ')} not supported`);
        return ctx.skip();
      }
      const graph = await readModelFile(join(dir, 'model.onnx'));
      const data = join(dir, 'test_data_set_0');
      const files = readdirSync(data);
      let inputs: Record<string, HostTensor>;
      try {
        inputs = Object.fromEntries(graph.inputs.map((input, i) => [input.name, bfloat16Bits(input.type, readTensor(join(data, `input_${i}.pb`)))] as const));
      } catch (e) {
        skipped.push(`${name}: ${(e as Error).message}`);
        return ctx.skip();
      }
      let session: Session | undefined;
      // Shapes are static: inputs that decide shapes (a Reshape's shape, Clip's
      // bounds) must be known at load time. Freeze the inputs after the first,
      // then all of them, when the engine asks for it. A case with every input
      // frozen tests the CPU constant folder.
      const names = Object.keys(inputs);
      for (const frozen of [[], names.slice(1), names]) {
        try {
          session = await Session.create(await gpu(), graph, {
            inputShapes: Object.fromEntries(names.filter((k) => !frozen.includes(k)).map((k) => [k, [...inputs[k]!.dims]])),
            constants: Object.fromEntries(frozen.map((k) => [k, inputs[k]!])),
          });
          for (const k of frozen) delete inputs[k];
          break;
        } catch (e) {
          // Load-time-only ops (Gather, Range, …) run once all their inputs are frozen.
          const retry = /known at load time|evaluated only at load time/.test((e as Error).message) && frozen.length < names.length;
          if (retry) continue;
          // InputError: a few cases' data disagrees with their own model's declared input shapes.
          if (e instanceof UnsupportedOpError || e instanceof InputError) {
            skipped.push(`${name}: ${(e as Error).message}`);
            return ctx.skip();
          }
          throw e;
        }
      }
      try {
        const out = await session!.run(inputs);
        graph.outputs.forEach((o, i) => {
          const expected = bfloat16Bits(o.type, readTensor(join(data, `output_${i}.pb`)));
          const actual = out.outputs.get(o.name)!;
          expect(actual.dims, `${o.name} shape`).toEqual(expected.dims);
          if (expected.type === 'float32') {
            // NaN/Inf positions must agree; the rest is compared by relative L2.
            const finite = Array.from(expected.data, (v) => Number.isFinite(v));
            expect(Array.from(actual.data, (v, k) => (finite[k] ? 0 : v)), `${o.name} non-finite values`).toEqual(
              Array.from(expected.data, (v) => (Number.isFinite(v) ? 0 : v)),
            );
            const keep = (d: ArrayLike<number>) => Array.from(d).filter((_, k) => finite[k]);
            expect(relL2(keep(actual.data), keep(expected.data)), `${o.name} relative L2`).toBeLessThanOrEqual(1e-4);
          } else {
            expect(Array.from(actual.data), o.name).toEqual(Array.from(expected.data));
          }
        });
        expect(files.filter((f) => f.startsWith('output_')).length).toBe(graph.outputs.length);
      } finally {
        session!.destroy();
      }
      for (const op of ops) passedOps.set(op, (passedOps.get(op) ?? 0) + 1);
    });
  }

  // Runs after every case (vitest runs a file's tests in order): a kernel
  // regression that made its cases skip instead of fail would show here.
  it('every op segscope runs passed conformance cases', () => {
    const mustPass = [
      'Conv', 'Gemm', 'MatMul', 'BatchNormalization', 'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh',
      'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Concat', 'Pad', 'Transpose', 'MaxPool', 'AveragePool',
      'ReduceMean', 'ReduceMax', 'ReduceSum', 'ArgMax', 'Resize', 'Upsample', 'Softmax', 'LogSoftmax',
      'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout', 'Shape', 'Constant',
    ];
    expect(mustPass.filter((op) => !passedOps.has(op))).toEqual([]);
  });

  afterAll(() => {
    const ran = [...passedOps].map(([op, n]) => `${op}×${n}`).join(' ');
    console.log(`conformance: cases passed per op: ${ran}\nconformance: ${skipped.length} cases skipped:\n  ${skipped.join('\n  ')}`);
  });
});
