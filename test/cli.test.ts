/** The `segscope` command as a user runs it: a child process, real files. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { readModelFile } from '../src/io/model-file.js';
import { decodeNpy, encodeNpy } from '../src/io/npy.js';
import { encodeModel } from '../src/onnx/decode.js';
import { AttributeType, DataType } from '../src/onnx/schema.js';
import { Session } from '../src/runtime/session.js';
import { gpu, randomTensor, relL2 } from './helpers/gpu.js';

const MODEL = join(ROOT, 'test/fixtures/deeplabv3plus_os16.onnx');
const INPUT = join(ROOT, 'test/fixtures/input_1x3x65x65.npy');

describe('segscope run', () => {
  it("dumps every tensor with --dump '*': index.json, .npy files in logical shape, equal to the library's outputs", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'segscope-run-'));
    const { code, stdout, stderr } = await segscope('run', MODEL, '--input', INPUT, '--dump', '*', '--dump-dir', dir);
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/output: float32\[1,21,65,65\]/);

    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as Record<string, string>;
    const graph = await readModelFile(MODEL);
    const activations = graph.nodes.filter((n) => n.opType !== 'Constant').flatMap((n) => n.outputs);
    for (const name of activations) expect(index, name).toHaveProperty([name]);
    expect(new Set(Object.values(index)).size).toBe(Object.keys(index).length);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const aspp = '/classifier/aspp/project/project.2/Relu_output_0';
    const projected = decodeNpy(readFileSync(join(dir, index[aspp]!)), aspp);
    expect(projected.dims).toEqual([1, 32, 5, 5]);

    const x = decodeNpy(readFileSync(INPUT), INPUT);
    const session = await Session.create(await gpu(), graph, { inputShapes: { input: [1, 3, 65, 65] } });
    const logits = (await session.run(x)).outputs.get('output')!;
    session.destroy();
    const dumped = decodeNpy(readFileSync(join(dir, index.output!)), 'output');
    expect(dumped.dims).toEqual([1, 21, 65, 65]);
    expect(relL2(dumped.data, logits.data)).toBeLessThan(1e-6);
  });

  it('accepts every pattern kind in --dump and keys index.json by the resolved tensor names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'segscope-patterns-'));
    const args = ['--dump', 'classifier.aspp.project', '--dump', '/backbone/layer1/layer1.0/conv1/Conv', '--dump', '/layer4.*Relu_output/'];
    const { code, stderr } = await segscope('run', MODEL, '--input', INPUT, ...args, '--dump-dir', dir);
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as Record<string, string>;
    const names = Object.keys(index);
    expect(names).toContain('/classifier/aspp/project/project.2/Relu_output_0');
    expect(names).toContain('/backbone/layer1/layer1.0/conv1/Conv_output_0');
    expect(names).toContain('output');
    expect(names.filter((n) => n.startsWith('/backbone/layer4/')).length).toBeGreaterThan(1);
    expect(readdirSync(dir).sort()).toEqual([...Object.values(index), 'index.json'].sort());
  });

  it('writes integer outputs (ArgMax) as int64 .npy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'segscope-argmax-'));
    const float = { tensor_type: { elem_type: DataType.FLOAT } };
    const model = encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'argmax',
        node: [
          {
            name: 'mask',
            op_type: 'ArgMax',
            input: ['logits'],
            output: ['mask'],
            attribute: [
              { name: 'axis', type: AttributeType.INT, i: 1 },
              { name: 'keepdims', type: AttributeType.INT, i: 0 },
            ],
          },
        ],
        input: [{ name: 'logits', type: float }],
        output: [{ name: 'mask', type: { tensor_type: { elem_type: DataType.INT64 } } }],
      },
    });
    writeFileSync(join(dir, 'argmax.onnx'), model);
    const logits = randomTensor([1, 5, 7, 9], 3);
    writeFileSync(join(dir, 'logits.npy'), encodeNpy(logits));
    const { code, stderr } = await segscope('run', join(dir, 'argmax.onnx'), '--input', `logits=${join(dir, 'logits.npy')}`, '--dump-dir', join(dir, 'out'));
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const bytes = readFileSync(join(dir, 'out', 'mask.npy'));
    expect(bytes.toString('latin1', 0, 128)).toContain("'descr': '<i8'");
    const mask = decodeNpy(bytes, 'mask.npy');
    expect(mask.dims).toEqual([1, 7, 9]);
    const expected = Array.from({ length: 63 }, (_, p) => {
      const scores = Array.from({ length: 5 }, (_, c) => logits.data[c * 63 + p]!);
      return scores.indexOf(Math.max(...scores));
    });
    expect(Array.from(mask.data)).toEqual(expected);
  });

  it('gives one clear line and exit 1 for user errors, never a stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['run', 'missing.onnx', '--input', INPUT], /cannot read model file 'missing.onnx'/],
      [['run', MODEL, '--input', 'missing.npy'], /cannot read 'missing.npy'/],
      [['run', MODEL], /missing --input for 'input'/],
      [['run', MODEL, '--input', INPUT, '--dump', '/aspp/projekt*'], /no tensor matches '\/aspp\/projekt\*'. Closest names/],
      [['run', MODEL, '--input', MODEL], /not a readable \.npy file/],
      [['run', MODEL, '--input', INPUT, '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await segscope(...args);
      const lines = errors(stderr);
      expect(code, args.join(' ')).toBe(1);
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    }
  });
});

describe('the installed command', () => {
  // The README's main-job command: npm install builds dist/ (prepare), whose bin must be executable for npx to run it.
  it('runs as the README runs it: npx segscope', async () => {
    const { stdout } = await promisify(execFile)('npx', ['segscope', '--help'], { cwd: ROOT });
    expect(stdout).toMatch(/^Usage: segscope COMMAND/);
  });
});

describe('output through a pipe', () => {
  it('reaches a slow reader whole: segscope layers --json | (sleep 1; cat) is the complete JSON (over 64 KiB)', async () => {
    const command = `"${process.execPath}" --import tsx src/cli/main.ts layers test/fixtures/deeplabv3plus_bn.onnx --json 2>/dev/null | (sleep 1; cat)`;
    const { stdout } = await promisify(execFile)('sh', ['-c', command], { cwd: ROOT, maxBuffer: 64 << 20 });
    expect(stdout.length).toBeGreaterThan(64 << 10);
    expect((JSON.parse(stdout) as { totals: object }).totals).toBeDefined();
  });
});
