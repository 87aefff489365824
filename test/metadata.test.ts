import { describe, expect, it } from 'vitest';
import { ModelError } from '../src/errors.js';
import type { Graph } from '../src/model/graph.js';
import { segmentationMetadata } from '../src/model/metadata.js';

const SOURCE = '/models/deeplab-voc.onnx';

function graph(metadata: Record<string, string>, source = SOURCE): Graph {
  return { nodes: [], inputs: [], outputs: [], initializers: new Map(), opset: 17, metadata, source };
}

const read = (metadata: Record<string, string>) => segmentationMetadata(graph(metadata));

/** Asserts that reading `metadata` throws a ModelError naming the file and `key`; returns the message. */
function refused(metadata: Record<string, string>, key: string): string {
  let error: unknown;
  try {
    read(metadata);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ModelError);
  const message = (error as ModelError).message;
  expect(message).toContain(SOURCE);
  expect(message).toContain(`'${key}'`);
  return message;
}

const VALID = {
  classes: '["background", "cat", "dog"]',
  palette: '[[0, 0, 0], [128, 0, 0], [255, 255, 255]]',
  mean: '[0.485, 0.456, 0.406]',
  std: '[0.229, 0.224, 0.225]',
  input_size: '513x257',
};

describe('segmentationMetadata', () => {
  it('parses every key when all are valid, the palette as RGB bytes', () => {
    const m = read(VALID);
    expect(m).toEqual({
      classes: ['background', 'cat', 'dog'],
      palette: new Uint8Array([0, 0, 0, 128, 0, 0, 255, 255, 255]),
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      inputSize: [513, 257],
    });
    expect(m.palette).toBeInstanceOf(Uint8Array);
  });

  it('ignores unrelated metadata and returns nothing for a model without these keys', () => {
    expect(read({})).toEqual({});
    expect(read({ producer: 'pytorch', classes_extra: 'not json' })).toEqual({});
  });

  it.each(['classes', 'palette', 'mean', 'std', 'input_size'] as const)('leaves out what %s gives when that key is absent', (key) => {
    const metadata: Record<string, string> = { ...VALID };
    delete metadata[key];
    const m = read(metadata);
    const field = key === 'input_size' ? 'inputSize' : key;
    expect(m).not.toHaveProperty(field);
    expect(Object.keys(m)).toHaveLength(4);
  });

  it('reads a palette without classes, whatever its length', () => {
    expect(read({ palette: '[[1, 2, 3], [4, 5, 6]]' }).palette).toEqual(new Uint8Array([1, 2, 3, 4, 5, 6]));
  });

  it.each(['classes', 'palette', 'mean', 'std'] as const)('refuses malformed JSON in %s, quoting the text', (key) => {
    const message = refused({ ...VALID, [key]: '[1, 2,' }, key);
    expect(message).toMatch(/not valid JSON/);
    expect(message).toContain('[1, 2,');
  });

  it('quotes at most 80 characters of a long malformed value', () => {
    const message = refused({ classes: `[${'x'.repeat(10_000)}` }, 'classes');
    expect(message.length).toBeLessThan(300);
  });

  it('names the model when the graph has no source file', () => {
    expect(() => segmentationMetadata(graph({ std: 'nope' }, ''))).toThrow(/^model: metadata_props 'std'/);
  });

  it.each([
    ['a number instead of an array', '3'],
    ['an object', '{"0": "background"}'],
    ['an empty array', '[]'],
    ['numbers', '[0, 1, 2]'],
    ['a null name', '["background", null]'],
    ['a nested array', '[["background"]]'],
    ['too many classes', JSON.stringify(Array.from({ length: 4097 }, (_, i) => `c${i}`))],
  ])('refuses classes given as %s', (_, value) => {
    refused({ classes: value }, 'classes');
  });

  it('refuses class names longer than 200 characters and accepts 200', () => {
    refused({ classes: JSON.stringify(['ok', 'x'.repeat(201)]) }, 'classes');
    refused({ classes: JSON.stringify(['x'.repeat(1_000_000)]) }, 'classes');
    expect(read({ classes: JSON.stringify(['x'.repeat(200)]) }).classes).toEqual(['x'.repeat(200)]);
  });

  it('accepts 4096 classes', () => {
    expect(read({ classes: JSON.stringify(Array.from({ length: 4096 }, (_, i) => `c${i}`)) }).classes).toHaveLength(4096);
  });

  it.each([
    ['a flat list of bytes', '[0, 0, 0, 128, 0, 0]'],
    ['an empty array', '[]'],
    ['a 4-element colour', '[[0, 0, 0], [128, 0, 0, 255]]'],
    ['a 2-element colour', '[[0, 0]]'],
    ['the value 256', '[[0, 0, 256]]'],
    ['the value -1', '[[0, -1, 0]]'],
    ['the value 1.5', '[[1.5, 0, 0]]'],
    ['a string value', '[["0", 0, 0]]'],
    ['a boolean value', '[[true, 0, 0]]'],
    ['a hex string colour', '["#ff0000"]'],
    ['an object', '{"r": 0, "g": 0, "b": 0}'],
  ])('refuses a palette given as %s', (_, value) => {
    refused({ palette: value }, 'palette');
  });

  it('accepts the palette bounds 0 and 255, and 255.0 as an integer', () => {
    expect(read({ palette: '[[0, 255, 255.0]]' }).palette).toEqual(new Uint8Array([0, 255, 255]));
  });

  it('refuses a palette whose length differs from the class count, giving both counts', () => {
    const fewer = refused({ ...VALID, palette: '[[0, 0, 0], [1, 1, 1]]' }, 'palette');
    expect(fewer).toMatch(/\b2 colours for 3 classes/);
    const more = refused({ ...VALID, palette: '[[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]]' }, 'palette');
    expect(more).toMatch(/\b4 colours for 3 classes/);
  });

  it.each(['mean', 'std'] as const)('refuses a %s that is not three finite numbers', (key) => {
    for (const value of ['0.5', '[0.5, 0.5]', '[0.5, 0.5, 0.5, 0.5]', '[0.5, "0.5", 0.5]', '[0.5, null, 0.5]', '[1e999, 0.5, 0.5]', '{"r": 0.5}']) {
      refused({ [key]: value }, key);
    }
  });

  it('refuses a std containing 0 (also -0) but accepts a mean containing 0', () => {
    refused({ std: '[0.2, 0, 0.2]' }, 'std');
    refused({ std: '[0.2, -0, 0.2]' }, 'std');
    refused({ std: '[0.2, 0.0, 0.2]' }, 'std');
    expect(read({ mean: '[0, 0, 0]' }).mean).toEqual([0, 0, 0]);
  });

  it.each(['abc', '0x5', '5x0', '513', '513x', 'x513', '513X513', '513*513', '513x513x3', '-5x5', '5.5x5', '123456x5', ''])(
    'refuses input_size %j',
    (value) => {
      expect(refused({ input_size: value }, 'input_size')).toMatch(/HEIGHTxWIDTH/);
    },
  );

  it('reads input_size as [height, width], ignoring surrounding whitespace', () => {
    expect(read({ input_size: ' 257x129 ' }).inputSize).toEqual([257, 129]);
    expect(read({ input_size: '1x8192' }).inputSize).toEqual([1, 8192]);
    refused({ input_size: '1x8193' }, 'input_size');
    expect(read({ input_size: '007x08' }).inputSize).toEqual([7, 8]);
  });

  it('refuses a malformed key even when the other keys are valid', () => {
    refused({ ...VALID, mean: '[0.5, 0.5]' }, 'mean');
    refused({ ...VALID, input_size: '0x5' }, 'input_size');
  });
});
