import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { readModelFile } from '../src/io/model-file.js';
import { Attrs, type Graph, type Node } from '../src/model/graph.js';
import { inferTypes } from '../src/model/infer.js';
import { inModule, modulePathOf } from '../src/model/scopes.js';
import { registry } from '../src/ops/registry.js';
import { resolvePattern, resolvePatterns } from '../src/runtime/select.js';

const rules = (op: string) => registry.get(op)?.infer;
const typedFixture = async (file: string, dims = [1, 3, 65, 65]) =>
  inferTypes(await readModelFile(join(import.meta.dirname, 'fixtures', file)), new Map([['input', dims]]), rules);

const ASPP_OUT = '/classifier/aspp/project/project.2/Relu_output_0';

describe('module paths and scopes', () => {
  it('maps TorchScript scopes to PyTorch module paths and back, numeric children joining their parent', () => {
    expect(modulePathOf('/classifier/aspp/project/project.0/Conv')).toBe('classifier.aspp.project.0');
    expect(modulePathOf('/backbone/layer1/layer1.0/conv1/Conv')).toBe('backbone.layer1.0.conv1');
    expect(modulePathOf('/features/conv/conv.0/conv.0.0/Conv')).toBe('features.conv.0.0');
    expect(modulePathOf('relu_31')).toBe('');
    expect(inModule('/head/head.0/conv/Conv', 'head.0.conv')).toBe(true);
    expect(inModule('/head/head.0/conv/Conv', 'head.0')).toBe(true);
    expect(inModule('/head/head.0/conv/Conv', 'head.0.c')).toBe(false);
    // A ModuleList writes no scope of its own: convs.0 appears as /convs.0/.
    expect(inModule('/classifier/aspp/convs.0/convs.0.0/Conv', 'classifier.aspp.convs.0')).toBe(true);
    expect(inModule('/classifier/aspp/convs.0/convs.0.0/Conv', '/classifier/aspp')).toBe(true);
    expect(inModule('/classifier/aspp_x/Conv', '/classifier/aspp')).toBe(false);
  });
});

describe('tensor patterns', () => {
  it('resolves each kind, in order: tensor, node, module path, glob, regular expression', async () => {
    const typed = await typedFixture('deeplabv3plus_os16.onnx');
    expect(resolvePattern(typed, ASPP_OUT)).toEqual([ASPP_OUT]);
    expect(resolvePattern(typed, '/classifier/aspp/project/project.2/Relu')).toEqual([ASPP_OUT]);
    // register_forward_hook on classifier.aspp.project sees the Relu's output (Dropout is gone at export).
    expect(resolvePattern(typed, 'classifier.aspp.project')).toEqual([ASPP_OUT]);
    expect(resolvePattern(typed, '/classifier/aspp/project')).toEqual([ASPP_OUT]);
    expect(resolvePattern(typed, 'classifier.project')).toEqual(['/classifier/project/project.2/Relu_output_0']);
    expect(resolvePattern(typed, 'backbone.layer1.0')).toEqual(['/backbone/layer1/layer1.0/relu_2/Relu_output_0']);
    expect(resolvePattern(typed, 'classifier.aspp.convs.1')).toEqual(['/classifier/aspp/convs.1/convs.1.2/Relu_output_0']);
    const globbed = resolvePattern(typed, '/classifier/aspp/convs.?/*Relu_output_0');
    expect(globbed).toHaveLength(5);
    // Four atrous/1x1 branches and the image-pooling branch's Conv.
    expect(resolvePattern(typed, /aspp\/convs\.\d\/convs\.\d\.\d\/Conv_output/g)).toHaveLength(5);
    expect(resolvePattern(typed, '/layer4.*Relu_output/')).toEqual(resolvePattern(typed, '/backbone/layer4/*Relu_output_0'));
    // Several patterns: union without repeats.
    expect(resolvePatterns(typed, [ASPP_OUT, 'classifier.aspp.project', '/classifier/project/*'])).toHaveLength(3);
  });

  it('refuses a module with several outputs, listing them', async () => {
    const typed = await typedFixture('deeplabv3plus_os16.onnx');
    // The backbone hands layer1 to the decoder and layer4 to ASPP.
    expect(() => resolvePattern(typed, 'backbone')).toThrow(InputError);
    expect(() => resolvePattern(typed, 'backbone')).toThrow(/module 'backbone' has 2 outputs: .*layer1.*layer4/);
  });

  it("takes a module path's unambiguous tail, and lists the candidates of an ambiguous one", async () => {
    const typed = await typedFixture('deeplabv3plus_os16.onnx');
    expect(resolvePattern(typed, 'aspp.project')).toEqual([ASPP_OUT]);
    expect(resolvePattern(typed, 'aspp.convs.1')).toEqual(resolvePattern(typed, 'classifier.aspp.convs.1'));
    expect(() => resolvePattern(typed, 'project')).toThrow(
      /module 'project' is ambiguous: 'classifier.project', 'classifier.aspp.project'. Give the full path/,
    );
    // A tail is whole path segments: 'spp.project' is no module's tail.
    expect(() => resolvePattern(typed, 'spp.project')).toThrow(/no tensor matches 'spp.project'/);
  });

  it('names the closest tensors and modules and how to list them when nothing matches', async () => {
    const typed = await typedFixture('deeplabv3plus_os16.onnx');
    expect(() => resolvePattern(typed, 'classifier.aspp.projekt')).toThrow(
      /no tensor matches 'classifier.aspp.projekt'. Closest names: 'classifier.aspp.project', .*segscope layers/,
    );
    // A mistyped tail suggests the full module path first, not short unrelated names.
    expect(() => resolvePattern(typed, 'aspp.projekt')).toThrow(/Closest names: 'classifier.aspp.project', /);
    expect(() => resolvePattern(typed, /nothing-like-this/)).toThrow(InputError);
    expect(() => resolvePattern(typed, '/bad[regex/')).toThrow(/no tensor matches|Invalid regular expression/);
  });

  it('handles names with /, ., : and non-ASCII characters', () => {
    const node = (name: string, inputs: string[], outputs: string[]): Node => ({
      name,
      opType: 'Relu',
      domain: '',
      inputs,
      outputs,
      attrs: new Attrs(new Map(), name),
    });
    const graph: Graph = {
      nodes: [node('encodeur/étape:1', ['x'], ['caractéristiques:1.0/ü']), node('tête.0', ['caractéristiques:1.0/ü'], ['y'])],
      inputs: [{ name: 'x', type: 'float32', dims: [1, 2, 3, 3] }],
      outputs: [{ name: 'y', type: 'float32' }],
      initializers: new Map(),
      opset: 17,
      metadata: {},
      source: 'unicode',
    };
    const typed = inferTypes(graph, new Map(), rules);
    expect(resolvePattern(typed, 'caractéristiques:1.0/ü')).toEqual(['caractéristiques:1.0/ü']);
    expect(resolvePattern(typed, 'encodeur/étape:1')).toEqual(['caractéristiques:1.0/ü']);
    expect(resolvePattern(typed, 'caract*')).toEqual(['caractéristiques:1.0/ü']);
    expect(resolvePattern(typed, 'tête.0')).toEqual(['y']);
    expect(resolvePattern(typed, /ü$/u)).toEqual(['caractéristiques:1.0/ü']);
  });
});
