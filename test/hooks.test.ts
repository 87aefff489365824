/** The hook API as the user writes it. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, loadModel, saveNpy } from '../src/index.js';
import { decodeNpy } from '../src/io/npy.js';
import { gpu, randomTensor, relL2 } from './helpers/gpu.js';

const MODEL = join(import.meta.dirname, 'fixtures/deeplabv3plus_os16.onnx');

describe('capturing tensors by name', () => {
  it('reads back only the outputs asked for: none when the captures are all a caller needs', async () => {
    const session = await loadModel(MODEL, { gpu: await gpu() }).then((m) => m.session({ input: [1, 3, 65, 65] }));
    const x = randomTensor([1, 3, 65, 65], 98);
    const full = await session.run(x);
    const logits = full.outputs.get('output')!.data;
    const none = await session.run(x, { capture: ['output'], outputs: [] });
    expect(none.outputs.size).toBe(0);
    expect(await none.captured.get('output')!.read()).toEqual(logits);
    expect((await session.run(x, { outputs: ['output'] })).outputs.get('output')!.data).toEqual(logits);
    await expect(session.run(x, { outputs: ['logits'] })).rejects.toThrow(InputError);
    await expect(session.run(x, { outputs: ['logits'] })).rejects.toThrow("outputs: 'logits' not among the graph outputs (output)");
    session.destroy();
  });

  it('captures a module, a glob and a regex in one run; batch N stays N; tensors stay on the GPU until read', async () => {
    const session = await loadModel(MODEL, { gpu: await gpu() }).then((m) => m.session({ input: [2, 3, 65, 65] }));
    const x = randomTensor([2, 3, 65, 65], 99);
    const { outputs, captured } = await session.run(x, { capture: ['classifier.aspp.project', '/classifier/project/*', /layer4.*Relu/] });
    expect(outputs.get('output')!.dims).toEqual([2, 21, 65, 65]);

    const aspp = captured.get('/classifier/aspp/project/project.2/Relu_output_0')!;
    expect(aspp.dims).toEqual([2, 32, 5, 5]);
    expect(aspp.buffer).toBeDefined();
    const lowLevel = captured.get('/classifier/project/project.2/Relu_output_0')!;
    expect(lowLevel.dims).toEqual([2, 48, 17, 17]);
    expect([...captured.keys()].filter((n) => /layer4.*Relu/.test(n)).length).toBeGreaterThan(1);

    // The same tensor from a session that captures everything (nothing fused) agrees.
    const values = await aspp.read();
    const all = await session.run(x, { capture: ['*'] });
    expect(relL2(await all.captured.get(aspp.name)!.read(), values)).toBe(0);
    // Captures of an earlier run are refused once a later run has overwritten them.
    await expect(aspp.read()).rejects.toThrow(InputError);
    await expect(aspp.read()).rejects.toThrow(/overwritten by a later run/);

    const dir = mkdtempSync(join(tmpdir(), 'segscope-hooks-'));
    const again = await session.run(x, { capture: ['classifier.aspp.project'] });
    await saveNpy(join(dir, 'aspp.npy'), again.captured.get(aspp.name)!);
    const saved = decodeNpy(readFileSync(join(dir, 'aspp.npy')), 'aspp.npy');
    expect(saved.dims).toEqual([2, 32, 5, 5]);
    expect(relL2(saved.data, values)).toBe(0);
    session.destroy();
  });

  it('reports shader compilation as it goes: counts rise to the number of distinct pipelines', async () => {
    const model = await loadModel(MODEL, { gpu: await gpu() });
    const calls: [number, number][] = [];
    const session = await model.session({ inputShapes: { input: [1, 3, 33, 33] }, onCompile: (done, total) => calls.push([done, total]) });
    const total = calls[0]![1];
    const pipelines = new Set((await session.plan()).kernels.map((k) => k.kernel.wgsl)).size;
    expect(total).toBe(pipelines);
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.every(([, t]) => t === total)).toBe(true);
    expect(calls.map(([d]) => d)).toEqual([...calls.map(([d]) => d)].sort((a, b) => a - b));
    expect(calls.at(-1)).toEqual([total, total]);
    session.destroy();
  });

  it('reports an unknown pattern before running anything', async () => {
    const model = await loadModel(MODEL, { gpu: await gpu() });
    await expect(model.session({ inputShapes: { input: [1, 3, 33, 33] }, capture: ['aspp.projection'] })).rejects.toThrow(
      /no tensor matches 'aspp.projection'/,
    );
  });
});
