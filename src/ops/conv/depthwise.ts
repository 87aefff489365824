/**
 * Depthwise convs (one input channel per group, any channel multiplier),
 * where a GEMM would have K = taps only: a direct kernel of one thread per
 * output on GPUs, and one of one subgroup per workgroup sharing the weights
 * by broadcasts on CPU adapters.
 */
import type { Kernel } from '../../kernels/types.js';
import { grid, range } from '../../kernels/wgsl.js';
import { type ConvGeometry, depthwiseLabel } from './geometry.js';
import { convBindings, type ConvEpilogue, type ConvIO } from './io.js';

/**
 * Outputs a lane of the CPU-adapter kernel computes, consecutive in a row:
 * MobileNetV3's depthwise convs in LR-ASPP at 513x513 took 57-74 ms of
 * kernel time with one pixel a lane (four a lane, strided), 42-45 with
 * runs of 4, 38-40 with runs of 8 (`segscope bench`, twice each).
 */
const RUN = 8;

/**
 * Depthwise (one input channel per group, any channel multiplier): one thread
 * per output; a workgroup covers part of one output plane, so the plane's
 * weights are workgroup-uniform loads. (Several outputs per thread unroll into
 * many more input loads, which multiplies compile time on CPU adapters for no
 * measurable gain.)
 */
export function depthwiseKernel(g: ConvGeometry, io: ConvIO, epilogue: ConvEpilogue): Kernel {
  const { y, x } = g;
  const WORKGROUP = 64;
  const perGroup = g.cOut / g.groups;
  const outputs = y.out * x.out;
  const blocksPerPlane = Math.ceil(outputs / WORKGROUP);
  const blocks = g.batch * g.cOut * blocksPerPlane;
  const { declarations, bindings, load, store } = convBindings(io, epilogue, 'f32', { binding: { kind: 'input', index: 1 }, type: 'f32' });
  return {
    label: depthwiseLabel(g),
    wgsl: `${declarations}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let block = wg.x + wg.y * nwg.x;
  let p = block % ${blocksPerPlane}u * ${WORKGROUP}u + t;
  if (block >= ${blocks}u || p >= ${outputs}u) { return; }
  let plane = block / ${blocksPerPlane}u;
  let co = plane % ${g.cOut}u;
  let b = plane / ${g.cOut}u;
  let xBase = (b * ${g.cIn}u + co / ${perGroup}u) * ${y.size * x.size}u;
  let iy0 = i32(p / ${x.out}u * ${y.stride}u) - ${y.begin};
  let ix0 = i32(p % ${x.out}u * ${x.stride}u) - ${x.begin};
  var acc = 0.0f;
  for (var ky = ${y.first}u; ky < ${y.first + y.count}u; ky++) {
    let iy = iy0 + i32(ky * ${y.dilation}u);
    if (iy < 0 || iy >= ${y.size}) { continue; }
    for (var kx = ${x.first}u; kx < ${x.first + x.count}u; kx++) {
      let ix = ix0 + i32(kx * ${x.dilation}u);
      if (ix >= 0 && ix < ${x.size}) { acc += ${load('W', `(co * ${y.kernel}u + ky) * ${x.kernel}u + kx`)} * ${load('X', `xBase + u32(iy) * ${x.size}u + u32(ix)`)}; }
    }
  }
  ${store('acc', 'co', `plane * ${outputs}u + p`)}
}`,
    workgroups: grid(blocks * WORKGROUP, WORKGROUP),
    bindings,
  };
}

/**
 * Depthwise on a CPU adapter: a workgroup is one subgroup of `lanes`, each
 * lane a run of RUN consecutive outputs of one row of one output plane.
 * Lane l loads taps l, l + lanes, … of the plane's weights once, and every
 * tap's weight reaches all lanes by a broadcast from a constant lane: on
 * lavapipe each load whose address is not a constant is a loop over the
 * lanes (subgroup.ts), and the one-thread-per-output kernel loaded every
 * weight in every lane. The run's outputs share input columns: per row of
 * taps a lane loads each column the run reads once (a 3x3 stride-1 run of
 * 4 reads 6 columns, not 12), where lanes of single pixels loaded every tap
 * of every pixel.
 */
export function subgroupDepthwiseKernel(g: ConvGeometry, io: ConvIO, epilogue: ConvEpilogue, lanes: number): Kernel {
  const { y, x } = g;
  const perGroup = g.cOut / g.groups;
  const outputs = y.out * x.out;
  const runsPerRow = Math.ceil(x.out / RUN);
  const runsPerPlane = y.out * runsPerRow;
  const blocksPerPlane = Math.ceil(runsPerPlane / lanes);
  const blocks = g.batch * g.cOut * blocksPerPlane;
  const taps = y.count * x.count;
  const loads = Math.ceil(taps / lanes);
  const { declarations, bindings, load, store } = convBindings(io, epilogue, 'f32', { binding: { kind: 'input', index: 1 }, type: 'f32' });
  // Useful tap j is (ky, kx) = (first.y + j / count.x, first.x + j % count.x).
  const weightLoads = range(loads).map((r) => {
    const j = `min(${r * lanes}u + lane, ${taps - 1}u)`;
    return `  let w${r} = ${load('W', `(co * ${y.kernel}u + ${y.first}u + ${j} / ${x.count}u) * ${x.kernel}u + ${x.first}u + ${j} % ${x.count}u`)};`;
  });
  // Input column of output r of the run at useful tap tx, from the run's first output's origin.
  const column = (r: number, tx: number) => r * x.stride + (x.first + tx) * x.dilation;
  const columns = [...new Set(range(RUN).flatMap((r) => range(x.count).map((tx) => column(r, tx))))].sort((a, b) => a - b);
  const tapRows = range(y.count).map((ty) => {
    const dy = (y.first + ty) * y.dilation;
    const columnLoads = columns.map(
      (c) => `    let x${c} = ix0 + ${c};
    let v${c} = select(0.0f, ${load('X', `row + u32(clamp(x${c}, 0, ${x.size - 1}))`)}, inRow && x${c} >= 0 && x${c} < ${x.size});`,
    );
    const sums = range(x.count).map((tx) => {
      const j = ty * x.count + tx;
      return `    {
      let w = subgroupBroadcast(w${Math.floor(j / lanes)}, ${j % lanes}u);
${range(RUN)
  .map((r) => `      acc${r} += w * v${column(r, tx)};`)
  .join('\n')}
    }`;
    });
    return `  {
    let iy = iy0 + ${dy};
    let inRow = ok && iy >= 0 && iy < ${y.size};
    let row = xBase + u32(clamp(iy, 0, ${y.size - 1})) * ${x.size}u;
${columnLoads.join('\n')}
${sums.join('\n')}
  }`;
  });
  return {
    label: depthwiseLabel(g),
    wgsl: `enable subgroups;
${declarations}

@compute @workgroup_size(${lanes})
fn main(@builtin(subgroup_invocation_id) lane: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let block = wg.x + wg.y * nwg.x;
  if (block >= ${blocks}u) { return; }
  let plane = block / ${blocksPerPlane}u;
  let run = block % ${blocksPerPlane}u * ${lanes}u + lane;
  // Lanes past the plane's last run compute on clamped reads and store nothing.
  let ok = run < ${runsPerPlane}u;
  let oy = run / ${runsPerRow}u;
  let ox = run % ${runsPerRow}u * ${RUN}u;
  let co = plane % ${g.cOut}u;
  let b = plane / ${g.cOut}u;
  let xBase = (b * ${g.cIn}u + co / ${perGroup}u) * ${y.size * x.size}u;
${weightLoads.join('\n')}
  let iy0 = i32(oy * ${y.stride}u) - ${y.begin};
  let ix0 = i32(ox * ${x.stride}u) - ${x.begin};
${range(RUN)
  .map((r) => `  var acc${r} = 0.0f;`)
  .join('\n')}
${tapRows.join('\n')}
${range(RUN)
  .map(
    (r) => `  if (ok && ox + ${r}u < ${x.out}u) {
    ${store(`acc${r}`, 'co', `plane * ${outputs}u + oy * ${x.out}u + ox + ${r}u`)}
  }`,
  )
  .join('\n')}
}`,
    workgroups: grid(blocks * lanes, lanes),
    bindings,
  };
}
