import { differentiate, SEED_INPUTS } from '../autograd/differentiate.js';
import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { Graph, HostTensor } from '../model/graph.js';
import { inferTypes, type TypedGraph } from '../model/infer.js';
import type { Precision } from '../model/precision.js';
import { registry } from '../ops/registry.js';
import type { CapturedTensor } from './captured.js';
import { resolvePatterns, type TensorPattern } from './select.js';
import { Session } from './session.js';

/**
 * Gradients of a segmentation target with respect to any tensor, on the
 * GPU: the model differentiated once (autograd/differentiate.ts) and
 * compiled as one program that runs the forward pass, seeds the target and
 * runs the backward pass in one submit. A class-activation map needs an
 * activation and its gradient; both come back on the GPU for the vis stages.
 */

export interface GradientOptions {
  /** Concrete shape of each model input, as for Session. */
  inputShapes?: Record<string, number[]>;
  /** The tensors to explain: names, node names, module paths, globs, /regex/ (as capture takes them). */
  wrt: readonly TensorPattern[];
  /** The output the target reads (default the first): [N,K,H,W] logits. */
  output?: string;
  precision?: Precision;
  onCompile?: (done: number, total: number) => void;
}

/**
 * pytorch-grad-cam's SemanticSegmentationTarget: the sum of class
 * `classIndex`'s logit over a mask of pixels: the pixels predicted as that
 * class (default), every pixel, or a given mask (a label's pixels of the
 * class), [N,1,H,W] of 0 and 1 at the output's size.
 */
export interface SegmentationTarget {
  classIndex: number;
  mask?: 'pred' | 'all' | HostTensor;
}

export interface GradientResult {
  /** Per explained tensor: its activation and the target's gradient with respect to it, on the GPU until the next run. */
  tensors: Map<string, { activation: CapturedTensor; gradient: CapturedTensor }>;
  /** The target's value: the class's logits summed over the mask. */
  score: number;
  /** Pixels in the mask. */
  pixels: number;
  /** The output the target read, on the host. */
  output: HostTensor;
}

export class GradientSession {
  private constructor(
    /** The differentiated model as compiled (for its plan, or Session.profile with `feeds`). */
    readonly session: Session,
    /** The explained tensors, resolved. */
    readonly wrt: readonly string[],
    private readonly gradients: ReadonlyMap<string, string>,
    /** The output the target reads. */
    readonly output: string,
    private readonly inputs: readonly string[],
    /** The model's own typed graph: what patterns resolve against (not the gradient nodes). */
    private readonly forward: TypedGraph,
  ) {}

  /**
   * Differentiates and compiles `graph`. InputError when a pattern selects
   * nothing or a tensor that does not reach the output, or the output is not
   * [N,K,H,W]; UnsupportedOpError naming the op and node when a node between
   * them has no backward rule.
   */
  static async create(gpu: Gpu, graph: Graph, options: GradientOptions): Promise<GradientSession> {
    const inputDims = new Map(Object.entries(options.inputShapes ?? {}));
    const typed = inferTypes(graph, inputDims, (op) => registry.get(op)?.infer);
    const output = options.output ?? graph.outputs[0]?.name;
    if (!output) throw new InputError(`${graph.source || 'model'} has no output`);
    const wrt = resolvePatterns(typed, options.wrt);
    const { graph: differentiated, gradients } = differentiate(typed, output, wrt);
    const shapes = Object.fromEntries(graph.inputs.map((i) => [i.name, [...typed.types.get(i.name)!.dims]]));
    const session = await Session.create(gpu, differentiated, {
      inputShapes: shapes,
      capture: [...wrt, ...gradients.values(), output],
      precision: options.precision,
      onCompile: options.onCompile,
    });
    return new GradientSession(
      session,
      wrt,
      gradients,
      output,
      graph.inputs.map((i) => i.name),
      typed,
    );
  }

  /** The model's tensors that patterns select (as capture resolves them). */
  resolve(patterns: readonly TensorPattern[]): string[] {
    return resolvePatterns(this.forward, patterns);
  }

  /** The shape of a tensor of the model at this session's input shapes. */
  typeOf(name: string) {
    return this.session.typeOf(name);
  }

  /**
   * Runs the model on `inputs` (a tensor for the only input) and the
   * backward pass for `target`. InputError when the class is not one of the
   * output's, the mask does not fit it, or the mask is empty (the class is
   * predicted nowhere, say): a target of no pixels has no gradient to show.
   */
  async run(inputs: Record<string, HostTensor> | HostTensor, target: SegmentationTarget): Promise<GradientResult> {
    const feeds = this.feeds(inputs, target);
    const k = target.classIndex;
    const mask = target.mask ?? 'pred';
    const { captured } = await this.session.run(feeds, { outputs: [] });
    const output = await captured.get(this.output)!.toHost();
    const { score, pixels } = targetScore(output, k, mask);
    if (pixels === 0) {
      throw new InputError(
        mask === 'pred'
          ? `class ${k} is predicted on no pixel of this image: its target is empty (use mask 'all', or a class the model predicts here)`
          : `the target mask holds no pixel: its target is empty`,
      );
    }
    const tensors = new Map(this.wrt.map((name) => [name, { activation: captured.get(name)!, gradient: captured.get(this.gradients.get(name)!)! }]));
    return { tensors, score, pixels, output };
  }

  /**
   * The differentiated model's feeds for `inputs` (a tensor for the only
   * input) and `target`: the model's inputs plus the target's class, mask and
   * mode. InputError when the class is not one of the output's or the mask
   * does not fit it.
   */
  feeds(inputs: Record<string, HostTensor> | HostTensor, target: SegmentationTarget): Record<string, HostTensor> {
    const dims = this.session.typeOf(this.output)!.dims;
    const [N, K, H, W] = dims as [number, number, number, number];
    const k = target.classIndex;
    if (!Number.isInteger(k) || k < 0 || k >= K) throw new InputError(`class ${k}: the output '${this.output}' has classes 0..${K - 1}`);
    const mask = target.mask ?? 'pred';
    if (typeof mask !== 'string' && (mask.dims.length !== 4 || mask.dims.join() !== [N, 1, H, W].join())) {
      throw new InputError(`target mask has shape [${mask.dims.join(',')}]; the output '${this.output}' needs [${N},1,${H},${W}]`);
    }
    if (typeof mask === 'string' && mask !== 'pred' && mask !== 'all') throw new InputError(`target mask '${mask}': expected 'pred', 'all' or a mask tensor`);
    const feeds: Record<string, HostTensor> = 'dims' in inputs ? { [this.inputs[0]!]: inputs as HostTensor } : { ...(inputs as Record<string, HostTensor>) };
    const ones = () => ({ type: 'float32' as const, dims: [N, 1, H, W], data: new Float32Array(N * H * W).fill(1) });
    feeds[SEED_INPUTS.classIndex] = { type: 'float32', dims: [1], data: Float32Array.of(k) };
    feeds[SEED_INPUTS.mask] = typeof mask === 'string' ? ones() : mask;
    feeds[SEED_INPUTS.usePrediction] = { type: 'float32', dims: [1], data: Float32Array.of(mask === 'pred' ? 1 : 0) };
    return feeds;
  }

  destroy(): void {
    this.session.destroy();
  }
}

/** The target's value and its mask's size, from the output on the host (argmax on ties: the first class, as torch's). */
function targetScore(output: HostTensor, k: number, mask: 'pred' | 'all' | HostTensor): { score: number; pixels: number } {
  const [N, K, H, W] = output.dims as [number, number, number, number];
  const plane = H * W;
  let score = 0;
  let pixels = 0;
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < plane; p++) {
      const at = (c: number) => output.data[(n * K + c) * plane + p]!;
      let m: number;
      if (mask === 'all') m = 1;
      else if (mask === 'pred') {
        let best = 0;
        for (let c = 1; c < K; c++) if (at(c) > at(best)) best = c;
        m = best === k ? 1 : 0;
      } else m = mask.data[n * plane + p]!;
      score += m * at(k);
      pixels += m !== 0 ? 1 : 0;
    }
  }
  return { score, pixels };
}
