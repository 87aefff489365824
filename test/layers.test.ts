/**
 * `segscope layers` as a user runs it (a child process, real files), checked
 * against shapes, parameter counts and MACs computed here from the weights'
 * dims and the convolutions' attributes. Needs no GPU.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, segscope } from './helpers/cli.js';
import { readModelFile } from '../src/io/model-file.js';
import type { Graph } from '../src/model/graph.js';
import type { ModuleSummary, NodeSummary, Summary, TensorSummary } from '../src/model/summary.js';
import { encodeModel } from '../src/onnx/decode.js';
import { AttributeType, DataType } from '../src/onnx/schema.js';

const FIXTURES = join(ROOT, 'test/fixtures');
const OS16 = join(FIXTURES, 'deeplabv3plus_os16.onnx');
const FCN = join(FIXTURES, 'tv_fcn.onnx');
const DYNAMO = join(FIXTURES, 'deeplabv3plus_dynamo/model.onnx');

type Json = Pick<Summary, 'inputs' | 'outputs' | 'nodes' | 'modules' | 'totals'> & { model: string };

async function layersJson(...args: string[]): Promise<Json> {
  const { code, stdout, stderr } = await segscope('layers', ...args, '--json');
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return JSON.parse(stdout) as Json;
}

const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
const floatParams = (graph: Graph) => [...graph.initializers.values()].filter((t) => t.type === 'float32').reduce((a, t) => a + size(t.dims), 0);

/**
 * Every Conv of the graph against the summary: the output shape from the
 * input shape and the attributes, the parameters from the weight and bias,
 * the MACs as N·C_out·H_out·W_out·(C_in/groups)·kH·kW. Returns the MACs.
 */
function checkConvs(graph: Graph, json: Json): number {
  const shapes = new Map<string, number[] | null>([...json.inputs, ...json.nodes.flatMap((n) => n.outputs)].map((t) => [t.name, t.shape]));
  const byName = new Map(json.nodes.map((n) => [n.name, n]));
  let macs = 0;
  let convs = 0;
  for (const node of graph.nodes.filter((n) => n.opType === 'Conv')) {
    const [n, cIn, ...spatial] = shapes.get(node.inputs[0]!)!;
    const w = graph.initializers.get(node.inputs[1]!)!.dims;
    const bias = node.inputs[2] ? graph.initializers.get(node.inputs[2])!.dims : [0];
    const strides = node.attrs.ints('strides', [1, 1]);
    const pads = node.attrs.ints('pads', [0, 0, 0, 0]);
    const dilations = node.attrs.ints('dilations', [1, 1]);
    expect(node.attrs.string('auto_pad', 'NOTSET')).toBe('NOTSET');
    expect(w[1]! * node.attrs.int('group', 1), node.name).toBe(cIn);
    const out = [n!, w[0]!, ...spatial.map((d, i) => Math.floor((d + pads[i]! + pads[i + 2]! - dilations[i]! * (w[i + 2]! - 1) - 1) / strides[i]!) + 1)];
    const summary = byName.get(node.name)!;
    expect(summary.outputs[0]!.shape, node.name).toEqual(out);
    expect(summary.params, node.name).toBe(size(w) + size(bias));
    const expected = n! * w[0]! * out[2]! * out[3]! * w[1]! * w[2]! * w[3]!;
    expect(summary.macs, node.name).toBe(expected);
    macs += expected;
    convs++;
  }
  expect(convs).toBeGreaterThan(10);
  return macs;
}

const module = (json: Json, path: string): ModuleSummary => {
  const m = json.modules.find((x) => x.path === path);
  expect(m, path).toBeDefined();
  return m!;
};
const shapesOf = (ts: TensorSummary[]) => ts.map((t) => [t.name, t.shape]);

describe('segscope layers', () => {
  it('deeplabv3plus_os16 at 513x513: shapes, parameters and MACs of every conv, totals, the two seed-recipe modules', async () => {
    const graph = await readModelFile(OS16);
    const json = await layersJson(OS16, '--size', '513x513');
    expect(json.inputs).toEqual([{ name: 'input', type: 'float32', shape: [1, 3, 513, 513] }]);
    expect(json.outputs).toEqual([{ name: 'output', type: 'float32', shape: [1, 21, 513, 513] }]);
    expect(json.nodes.map((n) => n.name)).toEqual(graph.nodes.map((n) => n.name));

    const macs = checkConvs(graph, json);
    // The stem by hand: 8 filters of 3x7x7, stride 2, pad 3: 513 -> 257.
    expect(json.nodes.find((n) => n.name === '/backbone/conv1/Conv')!.macs).toBe(8 * 257 * 257 * 3 * 7 * 7);
    expect(json.totals.macs).toBe(macs);
    expect(json.totals.gmacs).toBeCloseTo(macs / 1e9, 12);
    expect(json.totals.params).toBe(floatParams(graph));
    expect(json.nodes.reduce((a, n) => a + n.params, 0)).toBe(floatParams(graph)); // no weight is shared

    // Shape subgraphs are folded at load time; everything else runs and costs 4 bytes per element.
    const runtime = json.nodes.filter((n) => !n.constant);
    // (in this graph every runtime tensor is 4-D and every shape-subgraph tensor has rank 0 or 1)
    for (const n of json.nodes) expect(n.constant, n.name).toBe(n.outputs[0]!.shape!.length < 4);
    expect(json.nodes.filter((n) => n.opType === 'Shape' || n.opType === 'Constant').every((n) => n.constant)).toBe(true);
    const activations = runtime.flatMap((n) => n.outputs);
    expect(json.totals.activationTensors).toBe(activations.length);
    expect(json.totals.activationBytes).toBe(4 * activations.reduce((a, t) => a + size(t.shape!), 0));
    expect(json.totals.largest).toEqual({ name: 'output', type: 'float32', shape: [1, 21, 513, 513], bytes: 4 * 21 * 513 * 513 });

    // The ASPP projection and the decoder's low-level projection, by module path.
    const aspp = module(json, 'classifier.aspp.project');
    expect(aspp).toMatchObject({ name: 'project', scope: '/classifier/aspp/project/', parent: 'classifier.aspp', depth: 2, nodeCount: 2 });
    expect(shapesOf(aspp.outputs)).toEqual([['/classifier/aspp/project/project.2/Relu_output_0', [1, 32, 33, 33]]]);
    expect(aspp.params).toBe(32 * 160 + 32);
    expect(aspp.macs).toBe(32 * 33 * 33 * 160);
    const lowLevel = module(json, 'classifier.project');
    expect(shapesOf(lowLevel.outputs)).toEqual([['/classifier/project/project.2/Relu_output_0', [1, 48, 129, 129]]]);
    expect(lowLevel.params).toBe(48 * 32 + 48);

    // A module's numbers are its nodes' (every node under its scope); its outputs are the tensors leaving it.
    for (const m of json.modules) {
      const inside = json.nodes.filter((n) => n.name.startsWith(m.scope));
      expect(m.nodeCount, m.path).toBe(inside.length);
      expect(m.params, m.path).toBe(inside.reduce((a, n) => a + n.params, 0));
      expect(m.macs, m.path).toBe(inside.reduce((a, n) => a + n.macs, 0));
    }
    expect(shapesOf(module(json, 'backbone').outputs)).toEqual([
      ['/backbone/layer1/layer1.0/relu_2/Relu_output_0', [1, 32, 129, 129]],
      ['/backbone/layer4/layer4.0/relu_2/Relu_output_0', [1, 128, 33, 33]],
    ]);
    expect(shapesOf(module(json, 'classifier.aspp.convs.4').outputs)).toEqual([['/classifier/aspp/convs.4/Resize_output_0', [1, 32, 33, 33]]]);
    // Tree order: each module right after its parent's earlier children, children after their parent.
    const paths = json.modules.map((m) => m.path);
    expect(paths.slice(0, 4)).toEqual(['backbone', 'backbone.conv1', 'backbone.relu', 'backbone.maxpool']);
    for (const m of json.modules) if (m.parent) expect(paths.indexOf(m.parent), m.path).toBeLessThan(paths.indexOf(m.path));
    expect(paths.indexOf('classifier.aspp.convs.0')).toBe(paths.indexOf('classifier.aspp') + 1);
  });

  it('tv_fcn: symbolic height and width default to 513x513; two outputs; aux head', async () => {
    const graph = await readModelFile(FCN);
    const json = await layersJson(FCN);
    expect(json.inputs[0]!.shape).toEqual([1, 3, 513, 513]);
    expect(json.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['out', [1, 21, 513, 513]],
      ['aux', [1, 21, 513, 513]],
    ]);
    expect(json.totals.macs).toBe(checkConvs(graph, json));
    expect(json.totals.params).toBe(floatParams(graph));
    const aux = module(json, 'aux_classifier');
    expect(aux.outputs.map((o) => o.shape)).toEqual([[1, 21, 65, 65]]); // OS8: 513 -> 65
  });

  it("symbolic height and width come from the model's metadata input_size when it states one", async () => {
    const json = await layersJson(join(ROOT, 'weights/deeplabv3plus_scenes.onnx'));
    expect(json.inputs[0]!.shape).toEqual([1, 3, 257, 257]);
    expect((await layersJson(join(ROOT, 'weights/deeplabv3plus_scenes.onnx'), '--size', '129x129')).inputs[0]!.shape).toEqual([1, 3, 129, 129]);
  });

  it('the dynamo export: a flat list (its scopes live in node metadata), the same totals as the TorchScript export', async () => {
    const graph = await readModelFile(DYNAMO);
    const json = await layersJson(DYNAMO, '--size', '129x97');
    const torchscript = await layersJson(OS16, '--input-shape', 'input=1x3x129x97');
    expect(json.modules).toEqual([]);
    expect(json.nodes.every((n) => n.module === '')).toBe(true);
    expect(json.totals.macs).toBe(checkConvs(graph, json));
    expect(json.totals.params).toBe(floatParams(graph));
    expect(json.totals.params).toBe(torchscript.totals.params);
    expect(json.totals.macs).toBe(torchscript.totals.macs);
    expect(json.outputs[0]!.shape).toEqual([1, 21, 129, 97]);

    const { code, stdout } = await segscope('layers', DYNAMO, '--size', '129x97');
    expect(code).toBe(0);
    const rows = stdout.split('\n').filter((l) => /^\s*node_/.test(l));
    expect(rows).toHaveLength(graph.nodes.length);
    expect(rows.every((l) => l.startsWith('node_'))).toBe(true); // no indentation
  });

  it("quantized files of os16 (onnxruntime's dynamic, QDQ and QOperator forms): runnable, the float model's MACs, its parameters as integer weights", async () => {
    const float = await layersJson(OS16, '--size', '65x65');
    for (const kind of ['dynamic', 'qdq', 'qop']) {
      const file = join(FIXTURES, `quantized/deeplabv3plus_os16_${kind}.onnx`);
      const json = await layersJson(file, '--size', '65x65');
      expect(
        json.nodes.filter((n) => n.unsupported),
        kind,
      ).toEqual([]);
      expect(json.totals.macs, kind).toBe(float.totals.macs);
      expect(json.outputs[0]!.shape, kind).toEqual([1, 21, 65, 65]);
      // The dynamic form keeps each conv's weight scale as a float Mul operand, which reads as one more parameter per conv.
      const convs = json.nodes.filter((n) => n.opType === 'ConvInteger').length;
      expect(json.totals.params, kind).toBe(float.totals.params + (kind === 'dynamic' ? convs : 0));
    }
    const qop = await layersJson(join(FIXTURES, 'quantized/deeplabv3plus_os16_qop.onnx'), '--size', '65x65');
    const aspp = qop.nodes.find((n) => n.name === '/classifier/aspp/project/project.0/Conv_quant')!;
    expect([aspp.opType, aspp.outputs[0]!.type, aspp.outputs[0]!.shape]).toEqual(['QLinearConv', 'uint8', [1, 32, 5, 5]]);
  });

  it('prints the module tree and the totals as text', async () => {
    const { code, stdout, stderr } = await segscope('layers', OS16, '--size', '513x513');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const json = await layersJson(OS16, '--size', '513x513');
    expect(stdout).toMatch(/^Layer \(module \/ node\)\s+Op\s+Output shape\s+Params\s+MACs\s+Output tensor$/m);
    expect(stdout).toMatch(/^backbone\s+\[1,32,129,129\] \[1,128,33,33\]\s+67,536\s/m);
    expect(stdout).toMatch(/^ {2}conv1\s+Conv\s+\[1,8,257,257\]\s+1,184\s+77,673,624\s+\/backbone\/conv1\/Conv_output_0$/m);
    expect(stdout).toMatch(/^ {4}0\s+\[1,32,129,129\]/m); // backbone > layer1 > 0
    expect(stdout).toMatch(/^ {2}project\s+\[1,48,129,129\]\s+1,584\s+25,560,576\s+\/classifier\/project\/project.2\/Relu_output_0$/m);
    expect(stdout).toMatch(/^ {4}project\s+\[1,32,33,33\]\s+5,152\s+5,575,680\s+\/classifier\/aspp\/project\/project.2\/Relu_output_0$/m);
    expect(stdout).toMatch(/^ {6}0\s+Conv\s+\[1,32,33,33\]/m); // aspp > project > 0 (project.0)
    expect(stdout).toMatch(/^\/Shape\s+Shape\*\s+\[4\]/m);
    expect(stdout).toContain(`Total params: ${json.totals.params.toLocaleString('en-US')}`);
    expect(stdout).toContain(`Total MACs: ${json.totals.gmacs.toFixed(2)} G (${json.totals.macs.toLocaleString('en-US')})`);
    expect(stdout).toContain(`Activation memory: ${(json.totals.activationBytes / 2 ** 20).toFixed(2)} MiB in ${json.totals.activationTensors} tensors`);
    expect(stdout).toMatch(/^Largest tensor: output \[1,21,513,513\] 21\.08 MiB$/m);
  });

  it('--filter keeps matching nodes, modules and tensors (with their ancestors in the tree)', async () => {
    const graph = await readModelFile(OS16);
    const layer4 = await layersJson(OS16, '--filter', '/backbone/layer4/*');
    expect(layer4.nodes.map((n) => n.name)).toEqual(graph.nodes.map((n) => n.name).filter((n) => n.startsWith('/backbone/layer4/')));
    // Modules match by path or by scope ('/backbone/layer4/' and below).
    const full = await layersJson(OS16);
    expect(layer4.modules.map((m) => m.path)).toEqual(full.modules.filter((m) => m.scope.startsWith('/backbone/layer4/')).map((m) => m.path));
    expect(layer4.modules[0]!.path).toBe('backbone.layer4');
    expect(layer4.totals.params).toBe(floatParams(graph)); // totals stay the whole model's

    const seeds = await layersJson(OS16, '--filter', 'classifier.aspp.project', '--filter', 'classifier.project');
    expect(seeds.modules.map((m) => m.path)).toEqual(['classifier.project', 'classifier.aspp.project']);
    expect(seeds.nodes).toEqual([]);
    const byScope = await layersJson(OS16, '--filter', '/classifier/aspp/project');
    expect(byScope.modules.map((m) => m.path)).toEqual(['classifier.aspp.project']);

    const byTensor = await layersJson(OS16, '--filter', '*project.2/Relu_output_0');
    expect(byTensor.nodes.map((n: NodeSummary) => n.name)).toEqual(['/classifier/project/project.2/Relu', '/classifier/aspp/project/project.2/Relu']);

    const { code, stdout } = await segscope('layers', OS16, '--filter', 'classifier.aspp.*');
    expect(code).toBe(0);
    const table = stdout.split(/^=+$/m)[2]!.trim().split('\n');
    expect(table[0]).toMatch(/^classifier\s/);
    expect(table[1]).toMatch(/^ {2}aspp\s/);
    expect(table.slice(2).every((l) => l.startsWith('    '))).toBe(true);
    expect(table.some((l) => /^ {4}project\s+\[1,32,33,33\]/.test(l))).toBe(true);
    expect(stdout).not.toMatch(/backbone|^ {2}project/m);
    expect(stdout).toMatch(/^--filter: \d+ of \d+ modules and \d+ of 120 nodes match/m);
  });

  it('an in-memory model with concrete input dims: Gemm and MatMul MACs; Resize scales are no parameters', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'segscope-layers-'));
    const float = (name: string, dims: number[]) => ({
      name,
      dims,
      data_type: DataType.FLOAT,
      float_data: Array.from({ length: size(dims) }, (_, i) => (i % 7) / 7),
    });
    const tensorType = (elem: number, dims: number[]) => ({ tensor_type: { elem_type: elem, shape: { dim: dims.map((d) => ({ dim_value: d })) } } });
    const ints = (name: string, v: number[]) => ({ name, type: AttributeType.INTS, ints: v });
    const int = (name: string, v: number) => ({ name, type: AttributeType.INT, i: v });
    const model = encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'tiny',
        node: [
          {
            name: '/body/conv/Conv',
            op_type: 'Conv',
            input: ['x', 'w', 'b'],
            output: ['c'],
            attribute: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])],
          },
          {
            name: '/body/up/Resize',
            op_type: 'Resize',
            input: ['c', '', 'scales'],
            output: ['u'],
            attribute: [{ name: 'mode', type: AttributeType.STRING, s: new TextEncoder().encode('linear') }],
          },
          { name: '/head/Flatten', op_type: 'Flatten', input: ['u'], output: ['f'], attribute: [int('axis', 1)] },
          { name: '/head/fc/Gemm', op_type: 'Gemm', input: ['f', 'wfc', 'bfc'], output: ['g'], attribute: [int('transB', 1)] },
          { name: '/head/proj/MatMul', op_type: 'MatMul', input: ['g', 'wm'], output: ['y'] },
        ],
        initializer: [float('w', [4, 3, 3, 3]), float('b', [4]), float('scales', [4]), float('wfc', [10, 1024]), float('bfc', [10]), float('wm', [10, 5])].map(
          (t) => (t.name === 'scales' ? { ...t, float_data: [1, 1, 2, 2] } : t),
        ),
        input: [{ name: 'x', type: tensorType(DataType.FLOAT, [1, 3, 8, 8]) }],
        output: [{ name: 'y', type: tensorType(DataType.FLOAT, [1, 5]) }],
      },
    });
    const file = join(dir, 'tiny.onnx');
    writeFileSync(file, model);
    const json = await layersJson(file);
    expect(json.inputs[0]!.shape).toEqual([1, 3, 8, 8]);
    const node = (name: string) => json.nodes.find((n) => n.name === name)!;
    expect(node('/body/conv/Conv')).toMatchObject({ module: 'body.conv', params: 4 * 27 + 4, macs: 4 * 8 * 8 * 3 * 9, constant: false });
    expect(node('/body/up/Resize')).toMatchObject({ params: 0, macs: 0, outputs: [{ name: 'u', type: 'float32', shape: [1, 4, 16, 16] }] });
    expect(node('/head/fc/Gemm')).toMatchObject({ params: 10 * 1024 + 10, macs: 10 * 1024, outputs: [{ name: 'g', shape: [1, 10] }] });
    expect(node('/head/proj/MatMul')).toMatchObject({ params: 50, macs: 5 * 10 });
    expect(json.totals).toMatchObject({ params: 112 + 10250 + 50, macs: 4 * 64 * 27 + 10240 + 50, activationTensors: 5 });
    expect(json.totals.activationBytes).toBe(4 * (256 + 1024 + 1024 + 10 + 5));
    expect(json.totals.largest).toMatchObject({ name: 'u', shape: [1, 4, 16, 16], bytes: 4096 });
    expect(json.modules.map((m) => [m.path, m.depth, m.params, m.outputs.map((o) => o.name)])).toEqual([
      ['body', 0, 112, ['u']],
      ['body.conv', 1, 112, ['c']],
      ['body.up', 1, 0, ['u']],
      ['head', 0, 10300, ['y']],
      ['head.fc', 1, 10250, ['g']],
      ['head.proj', 1, 50, ['y']],
    ]);

    const wrongSize = await segscope('layers', file, '--size', '16x16');
    expect(wrongSize.code).toBe(1);
    expect(wrongSize.stderr.trim()).toMatch(/^segscope: input 'x' of .*tiny\.onnx expects shape \[1,3,8,8\], got \[1,3,16,16\]$/);
  });

  it('--help lists the options with examples', async () => {
    const { code, stdout } = await segscope('layers', '--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: segscope layers MODEL/);
    for (const option of ['--size', '--input-shape', '--filter', '--json', 'Examples:']) expect(stdout).toContain(option);
    const usage = await segscope('--help');
    expect(usage.stdout).toMatch(/^ {2}layers\s+list every layer/m);
  });

  it('lists a model segscope cannot run, marking each node it cannot run and why; shapes after them are unknown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'segscope-layers-unsupported-'));
    const float = (dims: number[]) => ({ tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dim_value: d })) } } });
    const file = join(dir, 'quantized.onnx');
    writeFileSync(
      file,
      encodeModel({
        ir_version: 8,
        opset_import: [
          { domain: '', version: 17 },
          { domain: 'com.microsoft', version: 1 },
        ],
        graph: {
          name: 'g',
          node: [
            { name: '/stem/Conv', op_type: 'Conv', input: ['input', 'w'], output: ['stem'] },
            {
              name: '/shuffle/DepthToSpace',
              op_type: 'DepthToSpace',
              input: ['stem'],
              output: ['shuffled'],
              attribute: [{ name: 'blocksize', type: AttributeType.INT, i: 2 }],
            },
            { name: '/head/QuickGelu', op_type: 'QuickGelu', domain: 'com.microsoft', input: ['shuffled'], output: ['out'] },
          ],
          initializer: [{ name: 'w', dims: [4, 3, 1, 1], data_type: DataType.FLOAT, float_data: Array.from({ length: 12 }, (_, i) => i) }],
          input: [{ name: 'input', type: float([1, 3, 8, 8]) }],
          output: [{ name: 'out', type: float([1, 1, 16, 16]) }],
        },
      }),
    );
    const text = await segscope('layers', file);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Conv {2,}\[1,4,8,8\]/);
    expect(text.stdout).toMatch(/DepthToSpace! +\?/);
    expect(text.stdout).toMatch(/QuickGelu! +\?/);
    expect(text.stdout).toContain('! segscope cannot run 2 nodes (shapes after them are unknown: ?):');
    expect(text.stdout).toContain('  DepthToSpace: /shuffle/DepthToSpace');
    expect(text.stdout).toContain('  com.microsoft.QuickGelu: /head/QuickGelu');
    const json = await layersJson(file);
    expect(json.nodes.map((n) => [n.name, n.unsupported ?? null, n.outputs[0]!.shape])).toEqual([
      ['/stem/Conv', null, [1, 4, 8, 8]],
      ['/shuffle/DepthToSpace', 'DepthToSpace', null],
      ['/head/QuickGelu', 'com.microsoft.QuickGelu', null],
    ]);
  });

  it('gives one clear line and exit 1 for user errors, never a stack trace', async () => {
    const cases: [string[], RegExp][] = [
      [['layers', 'missing.onnx'], /^segscope: cannot read model file 'missing.onnx'/],
      [['layers', OS16, '--size', '513'], /^segscope: --size '513': expected HEIGHTxWIDTH/],
      [['layers', OS16, '--size', '0x513'], /^segscope: --size '0x513': expected HEIGHTxWIDTH/],
      [['layers', OS16, '--input-shape', 'input'], /^segscope: --input-shape 'input': expected NAME=DIMS/],
      [['layers', OS16, '--input-shape', 'image=1x3x65x65'], /^segscope: .* has no input 'image' \(inputs: input\)/],
      [
        ['layers', OS16, '--filter', 'classifier.aspp.projekt'],
        /^segscope: --filter 'classifier.aspp.projekt' matches no node, module or tensor. Closest names: 'classifier.aspp.project'/,
      ],
      [['layers'], /^segscope: layers takes one MODEL argument, got 0/],
      [['layers', OS16, '--bogus'], /^segscope: Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await segscope(...args);
      const lines = stderr.split('\n').filter(Boolean);
      expect(code, args.join(' ')).toBe(1);
      expect(stdout, args.join(' ')).toBe('');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    }
  });
});
