/**
 * A capture changes nothing else, bit for bit, at every storage precision:
 * with any set of tensors captured, the outputs are those of a run without
 * captures, and each captured tensor is the one captured alone. Fused
 * kernels write the intermediates a capture keeps instead of being split
 * (model/passes.ts fuseEpilogues), BatchNorm folding keeps the original conv
 * for its output, and at f16 readers keep reading the float16 values
 * (model/precision.ts).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModelFile } from '../src/io/model-file.js';
import type { HostTensor } from '../src/model/graph.js';
import type { Precision } from '../src/model/precision.js';
import { Session } from '../src/runtime/session.js';
import { errors, segscope } from './helpers/cli.js';
import { gpu, randomTensor } from './helpers/gpu.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');

const bytesOf = ({ data }: HostTensor) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** The names among `a` whose bytes differ from `b`'s. */
const differing = (a: Map<string, Buffer>, b: ReadonlyMap<string, Buffer>) =>
  [...a].filter(([name, bytes]) => !bytes.equals(b.get(name)!)).map(([name]) => name);

async function outputBytes(outputs: Map<string, HostTensor>): Promise<Map<string, Buffer>> {
  return new Map([...outputs].map(([name, t]) => [name, bytesOf(t)]));
}

/** Groups of captures: runs of neighbours in graph order (a fused chain's tensors together), every third tensor, and everything. */
function groupsOf(names: readonly string[]): (readonly string[])[] {
  const runs = Array.from({ length: Math.ceil(names.length / 4) }, (_, k) => names.slice(4 * k, 4 * k + 4));
  return [...runs, names.filter((_, k) => k % 3 === 0), names];
}

/** [fixture, input dims]: the residual, BatchNorm, depthwise and hard-swish graphs, and a float16 export (split convs: split.test.ts). */
const CASES: [file: string, dims: number[]][] = [
  ['deeplabv3plus_os16.onnx', [1, 3, 33, 33]],
  ['deeplabv3plus_bn.onnx', [1, 3, 33, 33]],
  ['deeplabv3plus_sep.onnx', [1, 3, 33, 33]],
  ['tv_lraspp.onnx', [1, 3, 33, 33]],
  ['deeplabv3plus_os16_fp16.onnx', [1, 3, 33, 33]],
];

describe('capturing changes no other value', () => {
  for (const [file, dims] of CASES) {
    for (const precision of ['f32', 'f16'] as Precision[]) {
      it(`${file} at ${dims.join('x')}, ${precision}: every tensor alone, in groups and all at once`, async () => {
        const graph = await readModelFile(join(FIXTURES, file));
        const input = graph.inputs[0]!.name;
        const session = await Session.create(await gpu(), graph, { inputShapes: { [input]: dims }, precision });
        try {
          const x = { [input]: randomTensor(dims, dims[2]! * 7 + file.length, -2, 2) };
          const lean = await outputBytes((await session.run(x)).outputs);
          const tensors = [...session.typed.types.keys()].filter((t) => !session.typed.values.has(t) && t !== input);
          expect(tensors.length).toBeGreaterThan(40);

          const alone = new Map<string, Buffer>();
          for (const t of tensors) {
            const { outputs, captured } = await session.run(x, { capture: [t] });
            expect(differing(await outputBytes(outputs), lean), `outputs when capturing ${t}`).toEqual([]);
            alone.set(t, bytesOf(await captured.get(t)!.toHost()));
          }
          for (const group of groupsOf(tensors)) {
            const { outputs, captured } = await session.run(x, { capture: group });
            expect(differing(await outputBytes(outputs), lean), `outputs when capturing ${group.join(', ')}`).toEqual([]);
            const values = new Map(await Promise.all(group.map(async (t) => [t, bytesOf(await captured.get(t)!.toHost())] as const)));
            expect(differing(values, alone), `captured with ${group.length - 1} others`).toEqual([]);
          }
        } finally {
          session.destroy();
        }
      });
    }
  }
});

describe('on the command line, dumps and pictures do not depend on what else is captured', () => {
  const MODEL = join(FIXTURES, 'deeplabv3plus_os16.onnx');
  const INPUT = join(FIXTURES, 'input_1x3x65x65.npy');
  const IMAGE = join(FIXTURES, 'images/rgb.png');
  const ONE = '/backbone/layer1/layer1.0/conv3/Conv_output_0';

  for (const precision of ['f32', 'f16']) {
    it(`segscope run --dump at ${precision}: the logits and a tensor dumped alone equal those of --dump '*'`, async () => {
      const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'segscope-invariance-')));
      const runs = await Promise.all(
        [[], ['--dump', ONE], ['--dump', '*']].map((dump, k) =>
          segscope('run', MODEL, '--input', INPUT, '--precision', precision, '--dump-dir', dirs[k]!, ...dump),
        ),
      );
      for (const r of runs) expect([errors(r.stderr), r.code]).toEqual([[], 0]);
      const file = (k: number, tensor: string) => {
        const index = JSON.parse(readFileSync(join(dirs[k]!, 'index.json'), 'utf8')) as Record<string, string>;
        return readFileSync(join(dirs[k]!, index[tensor]!));
      };
      expect(Object.keys(JSON.parse(readFileSync(join(dirs[2]!, 'index.json'), 'utf8'))).length).toBeGreaterThan(60);
      for (const k of [1, 2]) expect(file(k, 'output').equals(file(0, 'output')), `logits with dump ${k}`).toBe(true);
      expect(file(1, ONE).equals(file(2, ONE))).toBe(true);
    });

    it(`segscope vis at ${precision}: a layer's pictures and the prediction are the same bytes drawn alone or beside others`, async () => {
      const outs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'segscope-invariance-')));
      const layers = [
        ['--layer', 'classifier.aspp.project'],
        ['--layer', 'classifier.aspp.project', '--layer', 'classifier.project', '--layer', ONE, '--layer', '/layer4.*Relu/'],
      ];
      const runs = await Promise.all(
        layers.map((l, k) => segscope('vis', MODEL, IMAGE, ...l, '--input-size', '65x65', '--precision', precision, '--out', outs[k]!)),
      );
      for (const r of runs) expect([errors(r.stderr), r.code]).toEqual([[], 0]);
      const alone = readdirSync(outs[0]!).sort();
      expect(alone).toEqual(['rgb_classifier.aspp.project_max.png', 'rgb_classifier.aspp.project_mean.png', 'rgb_prediction.png']);
      expect(readdirSync(outs[1]!).length).toBeGreaterThan(alone.length + 4);
      for (const f of alone) expect(readFileSync(join(outs[1]!, f)).equals(readFileSync(join(outs[0]!, f))), f).toBe(true);
    });
  }
});
