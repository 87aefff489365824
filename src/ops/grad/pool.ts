import { sizeOf, type Node, type TensorType } from '../../model/graph.js';
import type { Kernel, KernelBinding } from '../../kernels/types.js';
import { axisCoordinates, flatMain, fromStorage, grid, storage, strides, toStorage, wgslType } from '../../kernels/wgsl.js';
import { averagePooling, checkSpatial, maxPooling, type Window, windowLoops, windows } from '../pool.js';
import type { OpImpl, OpInput } from '../types.js';
import { expectDims, floatInputs, knownAttrs } from './common.js';

/**
 * segscope::MaxPoolGrad and segscope::AveragePoolGrad: inputs (dy, x) and
 * the forward pool's attributes; dx has x's shape. Gather form: one thread
 * per x element loops over the windows that contain it (at most the kernel's
 * size per axis) and adds what each sends it, so no atomics are needed. The
 * windows are the forward's own (ops/pool.ts `windows`, `windowLoops`).
 */

const THREADS = 256;

const POOL_ATTRS = ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'strides'];

type Kind = 'MaxPool' | 'AveragePool';

/** The forward's windows over x, after checking dy has the forward output's shape. */
function geometry(node: Node, kind: Kind, inputs: OpInput[]): { dy: OpInput; x: OpInput; wins: Window[]; includePad: boolean } {
  const [dy, x] = floatInputs(node, inputs, ['dy', 'x']);
  knownAttrs(node, [...POOL_ATTRS, kind === 'MaxPool' ? 'storage_order' : 'count_include_pad']);
  checkSpatial(node, x!);
  const includePad = (kind === 'MaxPool' ? maxPooling : averagePooling)(node).includePad;
  const wins = windows(node, x!.dims);
  expectDims(node, 'dy', dy!, [...x!.dims.slice(0, 2), ...wins.map((w) => w.output)], `the forward ${kind}'s output for x of shape [${x!.dims}]`);
  return { dy: dy!, x: x!, wins, includePad };
}

/**
 * WGSL: loops binding w0, w1… (u32) to the output coordinates of every
 * window that holds the thread's x position c0, c1…: w·stride + k·dilation
 * - padBegin = c for a tap k of the kernel. A position inside the input is
 * in every window it is a tap of, before any position that ends the
 * window's loop (they only grow with k).
 */
function windowsHolding(wins: Window[], body: string): string {
  return wins.reduceRight(
    (inner, w, a) => `for (var k${a} = 0u; k${a} < ${w.kernel}u; k${a}++) {
  let q${a} = i32(c${a}) + ${w.padBegin} - i32(k${a} * ${w.dilation}u);
  if (q${a} < 0) { break; }
${w.stride === 1 ? '' : `  if (q${a} % ${w.stride} != 0) { continue; }\n`}  let w${a} = u32(q${a}) / ${w.stride}u;
  if (w${a} >= ${w.output}u) { continue; }
${inner.replace(/^/gm, '  ')}
}`,
    body,
  );
}

/** The kernel: `perWindow` adds window w's share of dy (`g`, f32) to `acc`; `reads` tells whether it reads X. */
function gradKernel(label: string, dy: TensorType, x: TensorType, out: TensorType, wins: Window[], perWindow: string, readsX: boolean): Kernel {
  const n = sizeOf(x.dims);
  const xPlane = sizeOf(x.dims.slice(2));
  const yPlane = sizeOf(dy.dims.slice(2));
  const yStrides = strides(dy.dims).slice(2);
  const coordinates = axisCoordinates(x.dims)
    .slice(2)
    .map((c, a) => `  let c${a} = ${c};`)
    .join('\n');
  const dyAt = `DY[plane * ${yPlane}u + ${wins.map((_, a) => `w${a} * ${yStrides[a]}u`).join(' + ')}]`;
  const body = `let g = ${fromStorage(dy.type, dyAt)};\n${perWindow}`;
  const declarations = [storage(0, 'DY', wgslType(dy.type))];
  const bindings: KernelBinding[] = [{ kind: 'input', index: 0 }];
  if (readsX) {
    declarations.push(storage(1, 'X', wgslType(x.type)));
    bindings.push({ kind: 'input', index: 1 });
  }
  declarations.push(storage(bindings.length, 'DX', wgslType(out.type)));
  bindings.push({ kind: 'output', index: 0 });
  return {
    label,
    wgsl: `${declarations.join('\n')}
${flatMain(
  THREADS,
  `  if (i >= ${n}u) { return; }
${coordinates}
  let plane = i / ${xPlane}u;
  let here = i % ${xPlane}u;
  var acc = 0.0f;
${windowsHolding(wins, body).replace(/^/gm, '  ')}
  DX[i] = ${toStorage(out.type, 'acc')};`,
)}`,
    workgroups: grid(n, THREADS),
    bindings,
  };
}

const label = (op: string, wins: Window[]) => `${op}${wins.map((w) => w.kernel).join('x')}_s${wins.map((w) => w.stride).join('x')}_grad`;

/**
 * Each window's dy goes to the first maximum of the window, in the forward's
 * row-major scan over its positions inside the input (a NaN counts as the
 * maximum, the last one winning, as PyTorch's max_pool2d backward).
 */
function maxPoolKernel(dy: TensorType, x: TensorType, out: TensorType, wins: Window[]): Kernel {
  const xStrides = strides(x.dims).slice(2);
  const offset = wins.map((_, a) => `u32(r${a}) * ${xStrides[a]}u`).join(' + ');
  const update = `let v = ${fromStorage(x.type, `X[plane * ${sizeOf(x.dims.slice(2))}u + ${offset}]`)};
if (!found || v > best || v != v) {
  found = true;
  best = v;
  arg = ${offset};
}`;
  const perWindow = `var found = false;
var best = 0.0f;
var arg = 0u;
${windowLoops(wins, false, update, { o: 'w', k: 'j', p: 'r' })}
if (found && arg == here) { acc += g; }`;
  return gradKernel(label('maxpool', wins), dy, x, out, wins, perWindow, true);
}

/** Each window's dy, divided by the forward's count of the window, goes to each of its positions. */
function averagePoolKernel(dy: TensorType, x: TensorType, out: TensorType, wins: Window[], includePad: boolean): Kernel {
  const perWindow = `var count = 0.0f;
${windowLoops(wins, includePad, 'count += 1.0f;', { o: 'w', k: 'j', p: 'r' })}
acc += g / count;`;
  return gradKernel(label('averagepool', wins), dy, x, out, wins, perWindow, false);
}

function poolGrad(kind: Kind): OpImpl {
  return {
    infer(node, inputs) {
      const { x } = geometry(node, kind, inputs);
      return [{ type: x.type, dims: [...x.dims] }];
    },
    kernels(node, inputs, [out]) {
      const { dy, x, wins, includePad } = geometry(node, kind, inputs);
      if (sizeOf(x.dims) === 0) return [];
      return [kind === 'MaxPool' ? maxPoolKernel(dy, x, out!, wins) : averagePoolKernel(dy, x, out!, wins, includePad)];
    },
  };
}

export const poolGradOps: Record<string, OpImpl> = { MaxPoolGrad: poolGrad('MaxPool'), AveragePoolGrad: poolGrad('AveragePool') };
