import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { type ElemType, type HostTensor, isFloatType } from '../../src/model/graph.js';
import { decodeModel, encodeModel } from '../../src/onnx/decode.js';

/** ONNX element type codes of the tensors the tests read back from onnxruntime. */
const TYPE_CODES: Partial<Record<ElemType, number>> = { float32: 1, uint8: 2, int8: 3, int32: 6 };

/**
 * Runs a model file on onnxruntime's CPU provider (the numeric reference)
 * with `extra` intermediate tensors added as graph outputs, since onnxruntime
 * can only return graph outputs: float32 ones by name, others with their
 * type (a quantized model's 8-bit and int32 tensors). External data files
 * are copied beside the edited model so that onnxruntime finds them.
 */
export async function runOrt(
  file: string,
  feeds: Record<string, HostTensor>,
  extra: (string | { name: string; type: ElemType })[],
): Promise<Map<string, HostTensor>> {
  const model = decodeModel(readFileSync(file), file);
  const graph = model.graph!;
  const present = new Set((graph.output ?? []).map((o) => o.name));
  // A graph output needs a type; ONNX allows an elem_type with no shape. Shape
  // subgraph tensors are int64 and folded by segscope, so they are never asked for.
  const typed = extra.map((x) => (typeof x === 'string' ? { name: x, type: 'float32' as const } : x)).filter((x) => !present.has(x.name));
  graph.output = [...(graph.output ?? []), ...typed.map(({ name, type }) => ({ name, type: { tensor_type: { elem_type: TYPE_CODES[type]! } } }))];
  const dir = mkdtempSync(join(tmpdir(), 'segscope-ort-'));
  try {
    for (const f of readdirSync(dirname(file))) {
      const source = join(dirname(file), f);
      if (!f.endsWith('.onnx') && statSync(source).isFile()) copyFileSync(source, join(dir, f));
    }
    const edited = join(dir, basename(file));
    writeFileSync(edited, encodeModel(model));
    const session = await ort.InferenceSession.create(edited, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
    const inputs = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, ortTensor(t)]));
    const out = await session.run(inputs);
    await session.release();
    return new Map(
      Object.entries(out).map(([name, t]) => {
        const type = t.type as ElemType;
        const data = isFloatType(type) ? Float32Array.from(t.data as Float32Array) : Float64Array.from(t.data as Int32Array);
        return [name, { type, dims: [...t.dims], data } satisfies HostTensor];
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A feed as onnxruntime takes it: int64 (shapes, sizes) as int64, anything else as float32. */
const ortTensor = (t: HostTensor): ort.Tensor =>
  t.type === 'int64'
    ? new ort.Tensor(
        'int64',
        BigInt64Array.from(t.data, (v) => BigInt(v)),
        [...t.dims],
      )
    : new ort.Tensor('float32', Float32Array.from(t.data), [...t.dims]);
