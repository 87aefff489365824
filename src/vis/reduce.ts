import { GpuError, InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { flatMain, grid, storage } from '../kernels/wgsl.js';
import { bindingLimits, runWindow, splitUnits, type Strided } from '../kernels/split.js';
import { binding, bindings, nchw, record, type BufferRange, type CommandBatch, type GpuTensor, type StageOptions, type TensorLike } from './tensor.js';

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
 * A reduction as folds over channels in order, in f32 as NumPy and PyTorch
 * do on CPU: `init` from the first channel's value, `step` for each later
 * one, `finish` to the result. std folds twice: the sum for the mean `m`,
 * then the squared deviations from it.
 */
interface Fold {
  init: (v: string) => string;
  step: (acc: string, v: string) => string;
  finish: (acc: string) => string;
}

function folds(r: Exclude<ParsedReduction, { kind: 'channel' }>, channels: number): Fold[] {
  const C = `${channels}.0f`;
  const same = (v: string) => v;
  const sum: Fold = { init: same, step: (a, v) => `${a} + ${v}`, finish: same };
  switch (r.kind) {
    case 'max':
      return [{ init: same, step: (a, v) => `max(${a}, ${v})`, finish: same }];
    case 'min':
      return [{ init: same, step: (a, v) => `min(${a}, ${v})`, finish: same }];
    case 'absmax':
      return [{ init: (v) => `abs(${v})`, step: (a, v) => `max(${a}, abs(${v}))`, finish: same }];
    case 'sum':
      return [sum];
    case 'mean':
      return [{ ...sum, finish: (a) => `${a} / ${C}` }];
    case 'l2':
      return [{ init: (v) => `${v} * ${v}`, step: (a, v) => `${a} + ${v} * ${v}`, finish: (a) => `sqrt(${a})` }];
    case 'std':
      return [
        { ...sum, finish: (a) => `${a} / ${C}` },
        { init: (v) => `(${v} - m) * (${v} - m)`, step: (a, v) => `${a} + (${v} - m) * (${v} - m)`, finish: (a) => `sqrt(${a} / ${C})` },
      ];
  }
}

/**
 * WGSL statements that declare `r: f32`, the reduction over channels
 * c = 0..C-1 of `at(c)` (a WGSL function of the kernel).
 */
export function reductionCode(r: ParsedReduction, channels: number): string {
  if (r.kind === 'channel') return `  let r = at(${r.index}u);`;
  const passes = folds(r, channels);
  return passes
    .map(
      (f, k) => `  var a${k} = ${f.init('at(0u)')};
  for (var c = 1u; c < ${channels}u; c++) { a${k} = ${f.step(`a${k}`, 'at(c)')}; }
  let ${k === passes.length - 1 ? 'r' : 'm'} = ${f.finish(`a${k}`)};`,
    )
    .join('\n');
}

const THREADS = 256;

/**
 * Reduces [N,C,H,W] over channels to a new [N,1,H,W] tensor (the caller
 * owns its buffer). A tensor larger than one binding is read in runs of
 * channels (reduceInRuns), with the same result bit for bit.
 */
export function reduceChannels(gpu: Gpu, t: TensorLike, reduction: Reduction | string, options: StageOptions = {}): GpuTensor {
  const [N, C, H, W] = nchw(gpu, t, `reduceChannels(${reduction})`, true);
  const r = parseReduction(reduction, C);
  const HW = H * W;
  const label = `reduce_${r.kind}_${C}x${H}x${W}`;
  const runs = channelRuns(gpu, t);
  if (runs) return record(gpu, options, (batch) => reduceInRuns(batch, t, r, runs, label));
  const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'f32', 'read_write')}
var<private> base: u32;
fn at(c: u32) -> f32 { return X[base + c * ${HW}u]; }
${flatMain(
  THREADS,
  `  if (i >= ${N * HW}u) { return; }
  base = (i / ${HW}u) * ${C * HW}u + i % ${HW}u;
${reductionCode(r, C)}
  Y[i] = r;`,
)}`;
  return record(gpu, options, (batch) => {
    const out = batch.buffer(N * HW * 4, `reduce ${reduction}`);
    batch.dispatch({ label: label, wgsl: code, workgroups: grid(N * HW, THREADS) }, [binding(t), out]);
    return { buffer: out, dims: [N, 1, H, W] };
  });
}

/** Channels [run[0], run[1]) of one image: the window binding them, and the element of the window where they start. */
export interface ChannelRun {
  image: number;
  run: [number, number];
  window: BufferRange;
  shift: number;
}

/** Per image, the runs of channels of a tensor larger than one binding; undefined when it fits. */
export function channelRuns(gpu: Gpu, t: TensorLike): ChannelRun[] | undefined {
  const [N, C, H, W] = t.dims as [number, number, number, number];
  const limits = bindingLimits(gpu.limits);
  if (N * C * H * W * 4 <= limits.maxBytes) return undefined;
  const { buffer, offset } = binding(t);
  return Array.from({ length: N }, (_, image) => {
    const plane: Strided = { unitBytes: H * W * 4, baseBytes: offset + image * C * H * W * 4, elementBytes: 4 };
    const runs = splitUnits(C, [plane], limits);
    if (!runs) throw new GpuError(`a ${H}x${W} channel plane of [${t.dims.join(',')}] alone exceeds the device's binding limit (${limits.maxBytes} bytes)`);
    return runs.map((run) => {
      const { window, shift } = runWindow(plane, run, limits);
      return { image, run, window: { buffer, offset: window.offset, bytes: window.bytes }, shift };
    });
  }).flat();
}

/**
 * reduceChannels over runs of channels: each run folds its channels, in
 * order, into a running [N,H,W] accumulator (the first run starts it, the
 * last finishes it into the output), so the result equals the one-pass
 * kernel's. std folds all runs twice (mean, then deviations).
 */
function reduceInRuns(batch: CommandBatch, t: TensorLike, r: ParsedReduction, runs: readonly ChannelRun[], label: string): GpuTensor {
  const [N, C, H, W] = t.dims as [number, number, number, number];
  const HW = H * W;
  const out = batch.buffer(N * HW * 4, `reduce ${r.kind}`);
  const at = (shift: number) => `var<private> p: u32;
fn at(c: u32) -> f32 { return X[${shift}u + c * ${HW}u + p]; }`;
  if (r.kind === 'channel') {
    for (const { image, run, window, shift } of runs) {
      if (r.index < run[0] || r.index >= run[1]) continue;
      const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'f32', 'read_write')}
${at(shift)}
${flatMain(
  THREADS,
  `  if (i >= ${HW}u) { return; }
  p = i;
  Y[${image * HW}u + p] = at(${r.index - run[0]}u);`,
)}`;
      batch.dispatch({ label: `${label}_run`, wgsl: code, workgroups: grid(HW, THREADS) }, [window, out]);
    }
    return { buffer: out, dims: [N, 1, H, W] };
  }
  const passes = folds(r, C);
  const accumulator = batch.temporary(N * HW * 4, 'reduce accumulator');
  const mean = passes.length > 1 ? batch.temporary(N * HW * 4, 'reduce mean') : undefined;
  passes.forEach((f, k) => {
    const target = k === passes.length - 1 ? out : mean!;
    for (const { image, run, window, shift } of runs) {
      const [first, last] = [run[0] === 0, run[1] === C];
      // Only what this run uses is bound: 'auto' layouts leave out unused bindings.
      const { declarations, buffers } = bindings([
        ['X', 'f32', 'read', window],
        ...(last ? [['Y', 'f32', 'read_write', target] as const] : []),
        ...(first && last ? [] : [['A', 'f32', 'read_write', accumulator] as const]),
        ...(k > 0 ? [['M', 'f32', 'read', mean!] as const] : []),
      ]);
      const code = `${declarations}
${at(shift)}
${flatMain(
  THREADS,
  `  if (i >= ${HW}u) { return; }
  p = i;
  let o = ${image * HW}u + p;
  ${k > 0 ? 'let m = M[o];' : ''}
  var acc = ${first ? f.init('at(0u)') : f.step('A[o]', 'at(0u)')};
  for (var c = 1u; c < ${run[1] - run[0]}u; c++) { acc = ${f.step('acc', 'at(c)')}; }
  ${last ? `Y[o] = ${f.finish('acc')};` : 'A[o] = acc;'}`,
)}`;
      batch.dispatch({ label: `${label}_run${k}`, wgsl: code, workgroups: grid(HW, THREADS) }, buffers);
    }
  });
  return { buffer: out, dims: [N, 1, H, W] };
}
