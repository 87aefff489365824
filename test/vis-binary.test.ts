/**
 * Binary outputs below the CLI: the mask stage against a CPU reference
 * (p exactly 0.5, NaN, logits of any size), how a [N,1,H,W] output is read
 * from the graph (probability or logit, palette, names), and the label rule
 * for binary masks.
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { Attrs, type Graph, type Node } from '../src/model/graph.js';
import { binaryMask, binarySegmentation, CommandBatch, readClassMap, readRGBA, uploadTensor, type BinaryValues } from '../src/vis/index.js';
import { decodeLabel } from '../src/workflow/labels.js';
import { predictionOf } from '../src/workflow/prediction.js';
import { freeAfterAll, gpu as sharedGpu, random } from './helpers/gpu.js';

const gpu = await sharedGpu();
const keep = freeAfterAll();
const f32 = Math.fround;

/** The stage's rule written plainly: foreground where p >= 0.5 (a logit: x >= 0), NaN background with p = 0; grey floor(255·p) in float32, clamped. */
function cpuBinary(x: Float32Array, values: BinaryValues): { classes: number[]; grey: number[] } {
  const p = Array.from(x, (v) => (Number.isNaN(v) ? 0 : values === 'logit' ? 1 / (1 + Math.exp(-v)) : v));
  const classes = Array.from(x, (v) => ((values === 'logit' ? v >= 0 : v >= 0.5) ? 1 : 0));
  return { classes, grey: p.map((v) => Math.min(255, Math.max(0, Math.floor(f32(255 * f32(v)))))) };
}

const PALETTE = Uint8Array.of(10, 20, 30, 200, 210, 220);

/** The mask, class map and grey picture of `x` as [N,1,H,W], read back; the stage's buffers are freed. */
async function drawBinary(x: Float32Array, dims: number[], values: BinaryValues) {
  const batch = new CommandBatch(gpu);
  const seg = binaryMask(gpu, keep(uploadTensor(gpu, dims, x)), { palette: PALETTE, values }, { batch });
  try {
    const classes = await readClassMap(gpu, seg.classes, batch);
    const [mask] = await readRGBA(gpu, { ...seg.images, count: 1, height: dims[0]! * dims[2]!, width: dims[3]! });
    const [grey] = await readRGBA(gpu, { ...seg.probability, count: 1, height: dims[0]! * dims[2]!, width: dims[3]! });
    return { classes: Array.from(classes), mask: mask!.rgba, grey: grey!.rgba };
  } finally {
    for (const b of [seg.images.buffer, seg.classes.buffer, seg.probability.buffer]) b.destroy();
  }
}

function expectDrawn(drawn: Awaited<ReturnType<typeof drawBinary>>, want: ReturnType<typeof cpuBinary>, greyTolerance: number): void {
  expect(drawn.classes).toEqual(want.classes);
  for (const [i, k] of want.classes.entries()) {
    expect([...drawn.mask.subarray(4 * i, 4 * i + 4)], `pixel ${i}`).toEqual([...PALETTE.subarray(3 * k, 3 * k + 3), 255]);
    const [r, g, b, a] = drawn.grey.subarray(4 * i, 4 * i + 4);
    expect([g, b, a], `pixel ${i}`).toEqual([r, r, 255]);
    expect(Math.abs(r! - want.grey[i]!), `pixel ${i}: grey ${r}, expected ${want.grey[i]}`).toBeLessThanOrEqual(greyTolerance);
  }
}

describe('binaryMask', () => {
  it('a probability: foreground from exactly 0.5, NaN background, grey floor(255·p) exactly, over a batch of 2', async () => {
    const edges = [0.5, f32(0.5 - 2 ** -25), f32(0.5 + 2 ** -24), 0, 1, Number.NaN, -0.25, 1.5, f32(1 / 255), f32(254.5 / 255)];
    const dims = [2, 1, 6, 7];
    const x = Float32Array.from([...edges, ...random(84 - edges.length, 7, 0, 1)]);
    expect(x[1]).toBeLessThan(0.5);
    const drawn = await drawBinary(x, dims, 'probability');
    expectDrawn(drawn, cpuBinary(x, 'probability'), 0);
    expect(drawn.classes.slice(0, 6)).toEqual([1, 0, 1, 0, 1, 0]);
    expect(drawn.grey[0]).toBe(127); // p = 0.5: floor(127.5)
  });

  it('a logit: foreground from x >= 0 (p >= 0.5) including -0, sigmoid within one grey level, logits of any size', async () => {
    const edges = [0, -0, 1e-30, -1e-30, 1e30, -1e30, 80, -80, Number.NaN, 4, -4];
    const dims = [1, 1, 5, 9];
    const x = Float32Array.from([...edges, ...random(45 - edges.length, 8, -8, 8)]);
    const drawn = await drawBinary(x, dims, 'logit');
    expectDrawn(drawn, cpuBinary(x, 'logit'), 1);
    expect(drawn.classes.slice(0, 9)).toEqual([1, 1, 1, 0, 1, 0, 1, 0, 0]);
    expect([drawn.grey[4 * 4], drawn.grey[4 * 5], drawn.grey[4 * 8]]).toEqual([255, 0, 0]);
  });

  it('binarySegmentation reads the mask, classes and grey picture of each batch index in one call', async () => {
    const x = Float32Array.of(0.1, 0.9, 0.5, 0.49, 0.7, 0.2);
    const images = await binarySegmentation(gpu, keep(uploadTensor(gpu, [2, 1, 1, 3], x)), { palette: 'voc', values: 'probability' });
    expect(images.map((i) => [i.width, i.height, ...i.classes])).toEqual([
      [3, 1, 0, 1, 1],
      [3, 1, 0, 1, 0],
    ]);
    expect([...images[0]!.rgba.subarray(0, 8)]).toEqual([0, 0, 0, 255, 128, 0, 0, 255]); // VOC's first two colours
    expect([...images[1]!.probability.rgba.subarray(0, 4)]).toEqual([124, 124, 124, 255]); // floor(255 * 0.49)
  });

  it.each<[string, number[], object, RegExp]>([
    ['more than one channel', [1, 2, 3, 3], { palette: 'voc', values: 'logit' }, /^binaryMask: expected one channel \[N,1,H,W\], got \[1,2,3,3\]$/],
    ['unknown values', [1, 1, 3, 3], { palette: 'voc', values: 'odds' }, /^binaryMask: values must be 'probability' or 'logit', got "odds"$/],
    ['a one-colour palette', [1, 1, 3, 3], { palette: Uint8Array.of(1, 2, 3), values: 'logit' }, /^binaryMask: a palette of 3 bytes for K=2 classes/],
  ])('refuses %s', (_, dims, options, message) => {
    const t = keep(uploadTensor(gpu, dims, new Float32Array(dims.reduce((a, b) => a * b))));
    expect(() => binaryMask(gpu, t, options as never)).toThrow(InputError);
    expect(() => binaryMask(gpu, t, options as never)).toThrow(message);
  });
});

/** A graph of `nodes` from 'input' [1,3,8,8] to the output 'y'. */
function graphOf(nodes: [op: string, inputs: string[], output: string][], metadata: Record<string, string> = {}): Graph {
  return {
    nodes: nodes.map(
      ([opType, inputs, output]): Node => ({ name: output, opType, domain: '', inputs, outputs: [output], attrs: new Attrs(new Map(), opType) }),
    ),
    inputs: [{ name: 'input', type: 'float32', dims: [1, 3, 8, 8] }],
    outputs: [{ name: 'y', type: 'float32' }],
    initializers: new Map(),
    opset: 17,
    metadata,
    source: 'test.onnx',
  };
}

describe('a [N,1,H,W] output', () => {
  it.each<[string, BinaryValues, [string, string[], string][]]>([
    [
      'a Sigmoid',
      'probability',
      [
        ['Conv', ['input', 'w'], 'c'],
        ['Sigmoid', ['c'], 'y'],
      ],
    ],
    [
      'a Sigmoid through Reshape and Identity',
      'probability',
      [
        ['Sigmoid', ['input'], 's'],
        ['Reshape', ['s', 'shape'], 'r'],
        ['Identity', ['r'], 'y'],
      ],
    ],
    [
      'a Sigmoid through Flatten, Unsqueeze, Squeeze and Dropout',
      'probability',
      [
        ['Sigmoid', ['input'], 's'],
        ['Flatten', ['s'], 'f'],
        ['Unsqueeze', ['f', 'axes'], 'u'],
        ['Squeeze', ['u', 'axes'], 'q'],
        ['Dropout', ['q'], 'y'],
      ],
    ],
    ['a Conv', 'logit', [['Conv', ['input', 'w'], 'y']]],
    [
      'a Sigmoid then a Mul',
      'logit',
      [
        ['Sigmoid', ['input'], 's'],
        ['Mul', ['s', 'k'], 'y'],
      ],
    ],
    ['a HardSigmoid', 'logit', [['HardSigmoid', ['input'], 'y']]],
  ])('made by %s holds a %s', (_, values, nodes) => {
    expect(predictionOf(graphOf(nodes), {}, 'y', [1, 1, 8, 8])).toEqual({
      tensor: 'y',
      kind: 'binary',
      values,
      classes: 2,
      palette: Uint8Array.of(0, 0, 0, 255, 255, 255),
      names: ['background', 'foreground'],
    });
  });

  it("takes the metadata's two colours and names, ignores a palette of another length, refuses other names", () => {
    const graph = graphOf([['Conv', ['input', 'w'], 'y']]);
    const two = { classes: ['sky', 'salient'], palette: Uint8Array.of(1, 2, 3, 4, 5, 6) };
    expect(predictionOf(graph, two, 'y', [1, 1, 8, 8])).toMatchObject({ kind: 'binary', names: ['sky', 'salient'], palette: two.palette });
    expect(predictionOf(graph, { palette: new Uint8Array(63) }, 'y', [1, 1, 8, 8])).toMatchObject({ palette: Uint8Array.of(0, 0, 0, 255, 255, 255) });
    expect(() => predictionOf(graph, { classes: ['a', 'b', 'c'] }, 'y', [1, 1, 8, 8])).toThrow(
      "test.onnx: metadata names 3 classes, the output 'y' is binary (2: background, foreground)",
    );
    // K > 1 is drawn as classes, other shapes not at all.
    expect(predictionOf(graph, {}, 'y', [1, 4, 8, 8])).toMatchObject({ kind: 'classes', classes: 4 });
    expect(predictionOf(graph, {}, 'y', [1, 8])).toBeUndefined();
  });
});

describe('binary labels', () => {
  /** A one-row grey mask, RGB, 8-bit or 16-bit as readLabel decodes them. */
  const grey = (values: number[], type: Uint8ArrayConstructor | Uint16ArrayConstructor = Uint8Array) => ({
    width: values.length,
    height: 1,
    data: type.from(values.flatMap((v) => [v, v, v])),
  });

  it('0/255 and soft grey masks: foreground from half the full scale; nothing ignored', () => {
    expect([...decodeLabel(grey([0, 255, 127, 128, 200]), 2, undefined, { binary: true }).data]).toEqual([0, 1, 0, 1, 1]);
    expect([...decodeLabel(grey([0, 65535, 32767, 32768], Uint16Array), 2, undefined, { binary: true }).data]).toEqual([0, 1, 0, 1]);
    // The same 0/255 mask read as class indices would be background and ignore.
    expect([...decodeLabel(grey([0, 255]), 2).data]).toEqual([0, 255]);
  });

  it('0/1 masks (with 255 as ignore) are class indices', () => {
    expect([...decodeLabel(grey([0, 1, 255, 1]), 2, undefined, { binary: true }).data]).toEqual([0, 1, 255, 1]);
    expect([...decodeLabel(grey([0, 0]), 2, undefined, { binary: true }).data]).toEqual([0, 0]);
  });

  it('colour masks are looked up in the palette', () => {
    const rgb = { width: 2, height: 1, data: Uint8Array.of(1, 2, 3, 4, 5, 6) };
    expect([...decodeLabel(rgb, 2, Uint8Array.of(1, 2, 3, 4, 5, 6), { binary: true }).data]).toEqual([0, 1]);
  });
});
