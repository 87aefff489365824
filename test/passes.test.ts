import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModelFile } from '../src/io/model-file.js';
import { inferTypes } from '../src/model/infer.js';
import { foldBatchNorm } from '../src/model/passes.js';
import { registry } from '../src/ops/registry.js';

const rules = (op: string) => registry.get(op)?.infer;

describe('graph passes', () => {
  it('folds the shape subgraphs of a do_constant_folding=False export into constants', async () => {
    const graph = await readModelFile(join(import.meta.dirname, 'fixtures/deeplabv3plus_bn.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 49, 57]]]), rules);
    const left = new Set(typed.nodes.map((n) => n.opType));
    for (const op of ['Shape', 'Gather', 'Cast', 'Slice', 'Unsqueeze', 'Constant']) expect(left.has(op), op).toBe(false);
    // The Resize sizes computed by those subgraphs are concrete.
    expect(typed.types.get('output')!.dims).toEqual([1, 21, 49, 57]);
  });

  it('folds BatchNormalization into the Conv before it; a kept Conv output is computed besides', async () => {
    const graph = await readModelFile(join(import.meta.dirname, 'fixtures/deeplabv3plus_bn.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 33, 33]]]), rules);
    const bns = typed.nodes.filter((n) => n.opType === 'BatchNormalization');
    expect(bns.length).toBe(28);

    const folded = foldBatchNorm(typed, new Set());
    expect(folded.nodes.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(0);
    expect(folded.nodes.length).toBe(typed.nodes.length - 28);

    const stem = typed.nodes.find((n) => n.opType === 'Conv')!.outputs[0]!;
    const kept = foldBatchNorm(typed, new Set([stem]));
    expect(kept.nodes.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(0);
    expect(kept.nodes.length).toBe(typed.nodes.length - 27);
    expect(kept.nodes.some((n) => n.outputs.includes(stem))).toBe(true);
  });
});
