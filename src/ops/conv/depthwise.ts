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
 * Depthwise on a CPU adapter: a workgroup is one subgroup of `lanes`, over a
 * run of one output plane, each lane PIXELS pixels of it. Lane l loads taps
 * l, l + lanes, … of the plane's weights once, and every tap's weight reaches
 * all lanes by a broadcast from a constant lane: on lavapipe each load whose
 * address is not a constant is a loop over the lanes (subgroup.ts), and
 * the one-thread-per-output kernel loaded every weight in every lane.
 */
export function subgroupDepthwiseKernel(g: ConvGeometry, io: ConvIO, epilogue: ConvEpilogue, lanes: number): Kernel {
  const { y, x } = g;
  const PIXELS = 4;
  const perGroup = g.cOut / g.groups;
  const outputs = y.out * x.out;
  const span = lanes * PIXELS;
  const blocksPerPlane = Math.ceil(outputs / span);
  const blocks = g.batch * g.cOut * blocksPerPlane;
  const taps = y.count * x.count;
  const loads = Math.ceil(taps / lanes);
  const { declarations, bindings, load, store } = convBindings(io, epilogue, 'f32', { binding: { kind: 'input', index: 1 }, type: 'f32' });
  // Useful tap j is (ky, kx) = (first.y + j / count.x, first.x + j % count.x).
  const weightLoads = range(loads).map((r) => {
    const j = `min(${r * lanes}u + lane, ${taps - 1}u)`;
    return `  let w${r} = ${load('W', `(co * ${y.kernel}u + ${y.first}u + ${j} / ${x.count}u) * ${x.kernel}u + ${x.first}u + ${j} % ${x.count}u`)};`;
  });
  const tapSums = range(taps).map((j) => {
    const [ty, tx] = [Math.floor(j / x.count), j % x.count];
    const dy = (y.first + ty) * y.dilation;
    const dx = (x.first + tx) * x.dilation;
    return `  {
    let w = subgroupBroadcast(w${Math.floor(j / lanes)}, ${j % lanes}u);
${range(PIXELS)
  .map(
    (q) => `    let y${q} = iy${q} + ${dy};
    let x${q} = ix${q} + ${dx};
    acc${q} += w * select(0.0f, ${load('X', `xBase + u32(clamp(y${q}, 0, ${y.size - 1})) * ${x.size}u + u32(clamp(x${q}, 0, ${x.size - 1}))`)}, ok${q} && y${q} >= 0 && y${q} < ${y.size} && x${q} >= 0 && x${q} < ${x.size});`,
  )
  .join('\n')}
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
  let first = block % ${blocksPerPlane}u * ${span}u + lane;
  let co = plane % ${g.cOut}u;
  let b = plane / ${g.cOut}u;
  let xBase = (b * ${g.cIn}u + co / ${perGroup}u) * ${y.size * x.size}u;
${weightLoads.join('\n')}
${range(PIXELS)
  .map(
    (q) => `  let p${q} = first + ${q * lanes}u;
  let ok${q} = p${q} < ${outputs}u;
  let iy${q} = i32(p${q} / ${x.out}u * ${y.stride}u) - ${y.begin};
  let ix${q} = i32(p${q} % ${x.out}u * ${x.stride}u) - ${x.begin};
  var acc${q} = 0.0f;`,
  )
  .join('\n')}
${tapSums.join('\n')}
${range(PIXELS)
  .map(
    (q) => `  if (ok${q}) {
    ${store(`acc${q}`, 'co', `plane * ${outputs}u + p${q}`)}
  }`,
  )
  .join('\n')}
}`,
    workgroups: grid(blocks * lanes, lanes),
    bindings,
  };
}
