import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { HostTensor } from '../../src/model/graph.js';
import { decodeModel, encodeModel } from '../../src/onnx/decode.js';

const FLOAT = 1;

/**
 * Runs a model file on onnxruntime's CPU provider (the numeric reference)
 * with `extra` intermediate tensors added as graph outputs, since onnxruntime
 * can only return graph outputs. External data files are copied beside the
 * edited model so that onnxruntime finds them.
 */
export async function runOrt(file: string, feeds: Record<string, HostTensor>, extra: string[]): Promise<Map<string, HostTensor>> {
  const model = decodeModel(readFileSync(file), file);
  const graph = model.graph!;
  const present = new Set((graph.output ?? []).map((o) => o.name));
  // A graph output needs a type; ONNX allows an elem_type with no shape. Shape
  // subgraph tensors are int64 and folded by segscope, so only floats are compared.
  graph.output = [...(graph.output ?? []), ...extra.filter((n) => !present.has(n)).map((name) => ({ name, type: { tensor_type: { elem_type: FLOAT } } }))];
  const dir = mkdtempSync(join(tmpdir(), 'segscope-ort-'));
  try {
    for (const f of readdirSync(dirname(file))) {
      const source = join(dirname(file), f);
      if (!f.endsWith('.onnx') && statSync(source).isFile()) copyFileSync(source, join(dir, f));
    }
    const edited = join(dir, basename(file));
    writeFileSync(edited, encodeModel(model));
    const session = await ort.InferenceSession.create(edited, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
    const inputs = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor('float32', Float32Array.from(t.data), [...t.dims])]));
    const out = await session.run(inputs);
    await session.release();
    return new Map(
      Object.entries(out).map(([name, t]) => [
        name,
        { type: 'float32', dims: [...t.dims], data: Float32Array.from(t.data as Float32Array) } satisfies HostTensor,
      ]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
