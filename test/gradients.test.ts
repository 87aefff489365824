/**
 * Gradients of a segmentation target (pytorch-grad-cam's
 * SemanticSegmentationTarget) with respect to any tensor, against PyTorch
 * autograd on the same modules (test/fixtures/grad, made by
 * tools/grad_references.py): the ASPP output, the low-level projection, a
 * backbone stage and a block of DeepLabv3+ (OS16 and OS8, both
 * align_corners), separable DeepLabv3+, torchvision's DeepLabv3, FCN and
 * LR-ASPP, for the predicted pixels of a class and for every pixel.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, UnsupportedOpError } from '../src/errors.js';
import { decodeNpy } from '../src/io/npy.js';
import { readModelFile } from '../src/io/model-file.js';
import type { HostTensor } from '../src/model/graph.js';
import { encodeModel } from '../src/onnx/decode.js';
import { modelFromBytes } from '../src/model/from-bytes.js';
import { DataType } from '../src/onnx/schema.js';
import { GradientSession } from '../src/runtime/gradients.js';
import { ROOT } from './helpers/cli.js';
import { F16_TOLERANCE, gpu, relL2 } from './helpers/gpu.js';

const FIXTURES = join(ROOT, 'test/fixtures');
const npy = (file: string): HostTensor => decodeNpy(readFileSync(join(FIXTURES, file)), file);

interface ModelEntry {
  key: string;
  modelFile: string;
  sameModuleFiles: string[];
  input: string;
  inputShape: number[];
  output: string;
  category: number;
  maskPred: string;
  layers: { module: string; onnxOutput: { tensor: string }; activation: string }[];
}
interface GradEntry {
  model: string;
  category: number;
  mask: 'pred' | 'all';
  maskPixels: number;
  layer: string;
  activation: string;
  gradient: string;
  scoreFloat64: number;
}
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'grad/manifest.json'), 'utf8')) as { models: ModelEntry[]; grads: GradEntry[] };

/** The saved predicted mask (torch's argmax) as a [1,1,H,W] float mask: near ties stay torch's. */
function savedMask(m: ModelEntry): HostTensor {
  const mask = npy(m.maskPred);
  const [H, W] = mask.dims.slice(-2) as [number, number];
  return { type: 'float32', dims: [1, 1, H, W], data: Float32Array.from(mask.data) };
}

describe('gradients against PyTorch autograd', () => {
  const files = manifest.models.flatMap((m) =>
    [m.modelFile, ...(m.key === 'os16' ? m.sameModuleFiles.filter((f) => !f.includes('static') && !f.includes('dynamo')) : [])].map(
      (file) => [file, m] as const,
    ),
  );
  it.each(files)(
    '%s: every layer, predicted pixels and all pixels (relative L2 <= 1e-4)',
    async (file, m) => {
      const graph = await readModelFile(join(FIXTURES, file));
      const session = await GradientSession.create(await gpu(), graph, {
        inputShapes: { [graph.inputs[0]!.name]: m.inputShape },
        wrt: m.layers.map((l) => l.module),
      });
      try {
        // Each module path resolves to the tensor its hook saw.
        expect(session.wrt).toEqual(m.layers.map((l) => l.onnxOutput.tensor));
        const x = npy(m.input);
        for (const mask of ['pred', 'all'] as const) {
          const result = await session.run(x, { classIndex: m.category, mask: mask === 'pred' ? savedMask(m) : 'all' });
          for (const entry of manifest.grads.filter((g) => g.model === m.key && g.mask === mask)) {
            const layer = m.layers.find((l) => l.module === entry.layer)!;
            const { activation, gradient } = result.tensors.get(layer.onnxOutput.tensor)!;
            const what = `${entry.layer}, mask ${mask}`;
            expect(relL2(await activation.read(), npy(entry.activation).data), `${what}: activation`).toBeLessThanOrEqual(1e-4);
            expect(relL2(await gradient.read(), npy(entry.gradient).data), `${what}: gradient`).toBeLessThanOrEqual(1e-4);
            expect(result.pixels).toBe(entry.maskPixels);
            expect(Math.abs(result.score - entry.scoreFloat64)).toBeLessThanOrEqual(1e-4 * Math.abs(entry.scoreFloat64));
          }
        }
      } finally {
        session.destroy();
      }
    },
    120_000,
  );

  // The rules' own constants (a conv's flipped weights, BatchNorm's scale) are stored as float16 at f16 like the model's.
  it.each([
    ['deeplabv3plus_bn.onnx', 'os16'],
    ['deeplabv3plus_sep.onnx', 'sep'],
  ])(
    '%s at precision f16: float16 weights and rule constants, the activations within 2e-3 and the gradients within 0.15 of PyTorch',
    async (file, key) => {
      const m = manifest.models.find((e) => e.key === key)!;
      const graph = await readModelFile(join(FIXTURES, file));
      const session = await GradientSession.create(await gpu(), graph, {
        inputShapes: { input: m.inputShape },
        wrt: m.layers.map((l) => l.module),
        precision: 'f16',
      });
      try {
        const plan = await session.session.plan();
        const float32Uploads = plan.kernels.filter((k) => k.buffers.some((b) => b.kind === 'upload' && b.data() instanceof Float32Array));
        // Only ResizeGrad's interpolation tables stay float32 (they are no weights); these models' bilinear Resizes compute their taps in the kernel.
        expect(new Set(float32Uploads.map((k) => k.node.opType))).toEqual(new Set(['segscope::ResizeGrad']));
        const result = await session.run(npy(m.input), { classIndex: m.category, mask: 'all' });
        for (const entry of manifest.grads.filter((g) => g.model === key && g.mask === 'all')) {
          const { activation, gradient } = result.tensors.get(m.layers.find((l) => l.module === entry.layer)!.onnxOutput.tensor)!;
          expect(relL2(await activation.read(), npy(entry.activation).data), `${entry.layer}: activation`).toBeLessThanOrEqual(F16_TOLERANCE);
          // float16 weights alone move the backbone's gradients by up to 10% (the float16 model at f32 does too); the head's by about 1%.
          const bound = entry.layer === 'classifier.aspp.project' ? 2e-2 : 0.15;
          expect(relL2(await gradient.read(), npy(entry.gradient).data), `${entry.layer}: gradient`).toBeLessThanOrEqual(bound);
        }
      } finally {
        session.destroy();
      }
    },
    120_000,
  );

  it("takes the predicted pixels from the model's own argmax: the same gradient as the saved mask", async () => {
    const m = manifest.models.find((e) => e.key === 'os16')!;
    const graph = await readModelFile(join(FIXTURES, m.modelFile));
    const session = await GradientSession.create(await gpu(), graph, { inputShapes: { input: m.inputShape }, wrt: ['classifier.aspp.project'] });
    try {
      const x = npy(m.input);
      const own = await session.run(x, { classIndex: m.category });
      const ownGradient = await [...own.tensors.values()][0]!.gradient.read();
      const saved = await session.run(x, { classIndex: m.category, mask: savedMask(m) });
      expect(own.pixels).toBe(saved.pixels);
      expect(ownGradient).toEqual(await [...saved.tensors.values()][0]!.gradient.read());
    } finally {
      session.destroy();
    }
  });
});

describe('gradient errors', () => {
  const m = manifest.models.find((e) => e.key === 'os16')!;
  const create = async (wrt: string[], file = m.modelFile) =>
    GradientSession.create(await gpu(), await readModelFile(join(FIXTURES, file)), { inputShapes: { input: m.inputShape }, wrt });

  it('refuses a class the output does not have, and a class predicted nowhere (an empty mask): one line each', async () => {
    const session = await create(['classifier.aspp.project']);
    try {
      const x = npy(m.input);
      await expect(session.run(x, { classIndex: 21 })).rejects.toThrow(new InputError("class 21: the output 'output' has classes 0..20"));
      await expect(session.run(x, { classIndex: 0 })).rejects.toThrow(
        new InputError("class 0 is predicted on no pixel of this image: its target is empty (use mask 'all', or a class the model predicts here)"),
      );
      const empty: HostTensor = { type: 'float32', dims: [1, 1, 65, 65], data: new Float32Array(65 * 65) };
      await expect(session.run(x, { classIndex: 3, mask: empty })).rejects.toThrow(new InputError('the target mask holds no pixel: its target is empty'));
    } finally {
      session.destroy();
    }
  });

  it('refuses a tensor that does not reach the output', async () => {
    const error = (await create(['aux_classifier'], 'tv_fcn.onnx').catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toMatch(/^tensor '\/aux_classifier\/[^']+' does not reach output 'out': the output does not depend on it, so it has no gradient$/);
  });

  it('names an op without a backward rule between the tensor and the output', async () => {
    const float = (dims: number[]) => ({ tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dim_value: d })) } } });
    const graph = modelFromBytes(
      encodeModel({
        ir_version: 8,
        opset_import: [{ domain: '', version: 17 }],
        graph: {
          name: 'g',
          node: [
            { name: 'conv', op_type: 'Conv', input: ['input', 'w'], output: ['features'] },
            { name: 'probabilities', op_type: 'Softmax', input: ['features'], output: ['out'] },
          ],
          initializer: [{ name: 'w', dims: [4, 3, 1, 1], data_type: DataType.FLOAT, float_data: Array.from({ length: 12 }, (_, i) => i / 12) }],
          input: [{ name: 'input', type: float([1, 3, 5, 5]) }],
          output: [{ name: 'out', type: float([1, 4, 5, 5]) }],
        },
      }),
      'softmax.onnx',
    );
    const error = (await GradientSession.create(await gpu(), graph, { wrt: ['features'] }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(UnsupportedOpError);
    expect(error.message).toBe("Softmax node 'probabilities' has no backward rule: it lies between 'features' and output 'out'");
  });
});
