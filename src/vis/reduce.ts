import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { flatMain, grid, storage } from '../ops/wgsl.js';
import { binding, nchw, record, type GpuTensor, type TensorLike, type StageOptions } from './tensor.js';

/**
 * Channel reductions of an [N,C,H,W] feature map to [N,1,H,W], named as
 * torch.Tensor's reductions over dim=1: `max`, `mean`, `sum`, `min`, `std`
 * (population, `unbiased=False`), `l2` (`torch.linalg.vector_norm`),
 * `absmax` (max of |x|), and `channel:K` (the K-th channel alone).
 */
export type Reduction = 'max' | 'mean' | 'sum' | 'min' | 'std' | 'l2' | 'absmax' | `channel:${number}`;

export const REDUCTIONS = ['max', 'mean', 'sum', 'min', 'std', 'l2', 'absmax', 'channel:K'] as const;

/** A reduction checked against a channel count. */
export type ParsedReduction = { kind: Exclude<Reduction, `channel:${number}`> } | { kind: 'channel'; index: number };

export function parseReduction(reduction: string, channels: number): ParsedReduction {
  const m = /^channel:(.*)$/.exec(reduction);
  if (m) {
    const k = Number(m[1]);
    if (!/^\s*\d+\s*$/.test(m[1]!) || !Number.isSafeInteger(k)) {
      throw new InputError(`reduction '${reduction}': channel:K needs a non-negative integer K`);
    }
    if (k >= channels) {
      throw new InputError(`reduction '${reduction}': channel K=${k} is out of range: the tensor has C=${channels} channels (0..${channels - 1})`);
    }
    return { kind: 'channel', index: k };
  }
  if (!(REDUCTIONS as readonly string[]).includes(reduction) || reduction === 'channel:K') {
    throw new InputError(`unknown reduction '${reduction}': use one of ${REDUCTIONS.join(', ')}`);
  }
  return { kind: reduction as Exclude<Reduction, `channel:${number}`> };
}

/**
 * WGSL statements that declare `r: f32`, the reduction over channels
 * c = 0..C-1 of `at(c)` (a WGSL function of the kernel). Channels are
 * visited in order and accumulated in f32, as NumPy and PyTorch do on CPU;
 * std takes two passes (mean, then squared deviations).
 */
export function reductionCode(r: ParsedReduction, channels: number): string {
  const C = `${channels}u`;
  /** `acc` = `first` (channel 0), then `step` for every later channel `v`. */
  const fold = (step: string, first = 'at(0u)', acc = 'r') =>
    `  var ${acc} = ${first};\n  for (var c = 1u; c < ${C}; c++) {\n    let v = at(c);\n    ${step}\n  }`;
  switch (r.kind) {
    case 'channel':
      return `  let r = at(${r.index}u);`;
    case 'max':
      return fold('r = max(r, v);');
    case 'min':
      return fold('r = min(r, v);');
    case 'absmax':
      return fold('r = max(r, abs(v));', 'abs(at(0u))');
    case 'sum':
      return fold('r += v;');
    case 'mean':
      return `${fold('s += v;', 'at(0u)', 's')}\n  let r = s / ${channels}.0f;`;
    case 'l2':
      return `  let v0 = at(0u);\n${fold('s += v * v;', 'v0 * v0', 's')}\n  let r = sqrt(s);`;
    case 'std':
      return `  var s = at(0u);
  for (var c = 1u; c < ${C}; c++) { s += at(c); }
  let m = s / ${channels}.0f;
  var q = 0.0f;
  for (var c = 0u; c < ${C}; c++) {
    let d = at(c) - m;
    q += d * d;
  }
  let r = sqrt(q / ${channels}.0f);`;
  }
}

const THREADS = 256;

/** Reduces [N,C,H,W] over channels to a new [N,1,H,W] tensor (the caller owns its buffer). */
export function reduceChannels(gpu: Gpu, t: TensorLike, reduction: Reduction | string, options: StageOptions = {}): GpuTensor {
  const [N, C, H, W] = nchw(gpu, t, `reduceChannels(${reduction})`);
  const r = parseReduction(reduction, C);
  const HW = H * W;
  const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'f32', 'read_write')}
var<private> base: u32;
fn at(c: u32) -> f32 { return X[base + c * ${HW}u]; }
${flatMain(THREADS, `  if (i >= ${N * HW}u) { return; }
  base = (i / ${HW}u) * ${C * HW}u + i % ${HW}u;
${reductionCode(r, C)}
  Y[i] = r;`)}`;
  return record(gpu, options, (batch) => {
    const out = batch.buffer(N * HW * 4, `reduce ${reduction}`);
    batch.dispatch(code, `reduce_${r.kind}_${C}x${H}x${W}`, [binding(t), out], grid(N * HW, THREADS));
    return { buffer: out, dims: [N, 1, H, W] };
  });
}
