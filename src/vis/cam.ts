import { InputError } from '../errors.js';
import { checked, type Gpu } from '../gpu/device.js';
import { flatMain, grid } from '../kernels/wgsl.js';
import { sizeOf } from '../model/graph.js';
import { colormap, type ColormapName } from './colormap.js';
import { valueRange, type GpuRange } from './normalize.js';
import { resize, resizeGeometry } from './resize.js';
import { toRGBA, type GpuImages } from './rgba.js';
import { binding, bindings, CommandBatch, nchw, record, type GpuTensor, type StageOptions, type TensorLike } from './tensor.js';

/**
 * Class activation maps as pytorch-grad-cam (jacobgil/pytorch-grad-cam, the
 * `grad-cam` package, 1.4/1.5) computes them, on the GPU, from an activation
 * A and the gradient G of a target with respect to it (runtime/gradients.ts),
 * both [N,C,h,w]; every image of the batch on its own. Reference:
 * tools/grad_references.py (its docstring has each formula) and the fixtures
 * it wrote, test/fixtures/grad (test/vis-cam.test.ts).
 *
 * cam() is get_cam_image followed by the library's ReLU (BaseCAM
 * compute_cam_per_layer), at the layer's resolution; camPicture() is the rest:
 * scale_cam_image with cv2.resize to the input size, the second
 * scale_cam_image of aggregate_multi_layers, and show_cam_on_image.
 * Everything is f32 in a fixed order, NumPy's where it can be: sums over a
 * channel's pixels in NumPy's pairwise order (numpySumProgram), sums over
 * channels in index order (as NumPy reduces axis 1), every product rounded
 * before its sum (no fma, `exact`) and every division correctly rounded
 * (`div`). On lavapipe the five gradient methods' maps, the scaled maps and
 * the overlays then equal the fixtures' bit for bit; EigenCAM's covariance
 * and projection (an SVD and a BLAS product in NumPy) agree to ~2e-7.
 */

/** The methods, named as pytorch-grad-cam's cam.py `--method` and README spell them. */
export const CAM_METHODS = ['gradcam', 'gradcam++', 'xgradcam', 'hirescam', 'layercam', 'eigencam'] as const;
export type CamMethod = (typeof CAM_METHODS)[number];

/** A method by name (any case: 'GradCAM++' is 'gradcam++'); InputError listing the methods otherwise. */
export function parseCamMethod(name: string): CamMethod {
  const m = typeof name === 'string' ? name.trim().toLowerCase() : '';
  if (!(CAM_METHODS as readonly string[]).includes(m)) throw new InputError(`unknown CAM method '${String(name)}': use one of ${CAM_METHODS.join(', ')}`);
  return m as CamMethod;
}

export interface CamOptions extends StageOptions {
  /**
   * pytorch-grad-cam's ReLU of the map (default true). false gives
   * get_cam_image's signed map (EigenCAM: the signed projection).
   */
  relu?: boolean;
}

const THREADS = 256;

/**
 * WGSL helpers. `exact(v)` is v with its rounding to f32 made observable (its
 * bits OR `zero`, which every kernel using them reads from a buffer at run
 * time), so that `exact(a * b) + exact(c * d)` is never contracted to an fma,
 * as NumPy never does. `div(x, y)` is NumPy's correctly rounded x / y where
 * WGSL's division may be 2.5 ulp off: the quotient corrected by its residual
 * x - q·y, computed exactly with Dekker's product (Veltkamp's split into
 * 12-bit halves, whose products are exact), so that it needs no fused fma
 * (lavapipe's fma is not fused). x / x is 1 exactly.
 */
const HELPERS = `var<private> zero: u32;
fn exact(v: f32) -> f32 { return bitcast<f32>(bitcast<u32>(v) | zero); }
fn halves(a: f32) -> vec2f {
  let s = exact(4097.0f * a);
  let hi = exact(s - exact(s - a));
  return vec2f(hi, a - hi);
}
fn div(x: f32, y: f32) -> f32 {
  let q = x / y;
  if (!(abs(q) > 1e-30f && abs(q) < 1e30f && abs(y) > 1e-30f && abs(y) < 1e30f)) { return q; }
  let p = exact(q * y);
  let a = halves(q);
  let b = halves(y);
  let e = ((exact(a.x * b.x) - p) + exact(a.x * b.y) + exact(a.y * b.x)) + exact(a.y * b.y);
  return q + ((x - p) - e) / y;
}`;

/**
 * NumPy's float32 sum of a contiguous run of n values (`np.sum`, `np.mean`
 * over the last axes of a C-contiguous array, NumPy 1.24): its buffered
 * iteration hands the run over in chunks of 8192 (the default buffer size),
 * acc = 0 then acc += pairwise_sum(chunk), where pairwise_sum
 * (umath/loops_utils.h) is: n < 8: 0 + a0 + a1 + … in order; n <= 128: eight
 * running sums r[j] = a[j] + a[j+8] + … over the largest multiple of 8, then
 * ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the rest in order;
 * larger: the two halves (the first n/2 rounded down to a multiple of 8)
 * summed apart and added. As a program for the kernel: u32 pairs (start,
 * length) push the sum of one such block of 128 or fewer, (0, ADD) adds the
 * top two of the stack.
 */
export function numpySumProgram(n: number): Uint32Array<ArrayBuffer> {
  const program: number[] = [0, 0]; // acc = 0 (a block of no values)
  const pairwise = (start: number, length: number): void => {
    if (length <= 128) {
      program.push(start, length);
      return;
    }
    const half = Math.floor(length / 2) - (Math.floor(length / 2) % 8);
    pairwise(start, half);
    pairwise(start + half, length - half);
    program.push(0, ADD);
  };
  for (let start = 0; start < n; start += 8192) {
    pairwise(start, Math.min(8192, n - start));
    program.push(0, ADD);
  }
  return Uint32Array.from(program);
}
const ADD = 0xffffffff;

/**
 * WGSL of `fn name() -> f32`, the sum of `value(p)` for p = 0..n-1 in
 * NumPy's order (numpySumProgram, bound as `S`).
 */
function numpySum(name: string, value: string): string {
  return `fn ${name}Block(start: u32, length: u32) -> f32 {
  if (length < 8u) {
    var s = 0.0f;
    for (var p = 0u; p < length; p++) { s += ${value}(start + p); }
    return s;
  }
  var r: array<f32, 8>;
  for (var j = 0u; j < 8u; j++) { r[j] = ${value}(start + j); }
  var p = 8u;
  for (; p < length - length % 8u; p += 8u) {
    for (var j = 0u; j < 8u; j++) { r[j] += ${value}(start + p + j); }
  }
  var s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; p < length; p++) { s += ${value}(start + p); }
  return s;
}
fn ${name}() -> f32 {
  var stack: array<f32, 40>;
  var top = 0u;
  for (var k = 0u; k < arrayLength(&S); k += 2u) {
    if (S[k + 1u] == ${ADD}u) {
      top--;
      stack[top - 1u] = stack[top - 1u] + stack[top];
    } else {
      stack[top] = ${name}Block(S[k], S[k + 1u]);
      top++;
    }
  }
  return stack[0];
}`;
}

/**
 * The class activation map of each image, [N,1,h,w] (a new tensor the
 * caller owns), as pytorch-grad-cam defines each method, with A and G [N,C,h,w]
 * of one shape (sums over p run over the h·w pixels, over c the C channels):
 *
 *  - `gradcam`: w_c = (Σ_p G_cp) / (h·w); map_p = Σ_c w_c·A_cp
 *  - `gradcam++`: sA_c = Σ_p A_cp; a_cp = G²/(2·G² + sA_c·G³ + 1e-6), 0 where
 *    G = 0; w_c = Σ_p max(G_cp, 0)·a_cp; map_p = Σ_c w_c·A_cp
 *  - `xgradcam`: w_c = Σ_p (G_cp·A_cp) / (sA_c + 1e-7); map_p = Σ_c w_c·A_cp
 *  - `hirescam`: map_p = Σ_c G_cp·A_cp
 *  - `layercam`: map_p = Σ_c max(G_cp, 0)·A_cp
 *  - `eigencam` (no gradient): the projection of the centred activations
 *    X = A[h·w, C] - mean on their first right-singular vector (eigenCam).
 *
 * then the ReLU (unless `relu: false`), EigenCAM's too. G is required except
 * for eigencam (which ignores one given). Gradient methods record into
 * `options.batch` when given; eigencam reads the C x C covariance back, so it
 * runs that part in a batch of its own, submitted at once: A must be
 * computed by work already submitted (a session's captures are); its
 * projection is recorded into `options.batch`.
 */
export async function cam(
  gpu: Gpu,
  activation: TensorLike,
  gradient: TensorLike | undefined,
  method: CamMethod | string,
  options: CamOptions = {},
): Promise<GpuTensor> {
  const m = parseCamMethod(method);
  const dims = nchw(gpu, activation, `cam(${m}): the activation`);
  const relu = options.relu ?? true;
  if (m === 'eigencam') return eigenCam(gpu, activation, dims, relu, options);
  if (!gradient) {
    throw new InputError(`cam(${m}): needs the gradient of the target with respect to the activation (only eigencam works without one)`);
  }
  const gdims = nchw(gpu, gradient, `cam(${m}): the gradient`);
  if (gdims.join() !== dims.join()) {
    throw new InputError(`cam(${m}): the gradient is [${gdims.join(',')}] but the activation is [${dims.join(',')}]: they must have the same shape`);
  }
  const a = binding(activation);
  const g = binding(gradient);
  if (a.buffer === g.buffer && a.offset < g.offset + g.bytes && g.offset < a.offset + a.bytes) {
    throw new InputError(`cam(${m}): the activation and the gradient overlap in one buffer: give two tensors`);
  }
  return record(gpu, options, (batch) => gradientCam(batch, a, g, dims, m, relu));
}

type Bound = ReturnType<typeof binding>;

function gradientCam(batch: CommandBatch, a: Bound, g: Bound, [N, C, h, w]: readonly number[], method: CamMethod, relu: boolean): GpuTensor {
  const HW = h! * w!;
  const out = batch.buffer(N! * HW * 4, `cam ${method}`);
  const weighted = method === 'gradcam' || method === 'gradcam++' || method === 'xgradcam';
  let weights: GPUBuffer | undefined;
  if (weighted) {
    // One thread per (image, channel): its weight from the channel's pixels, summed as NumPy sums.
    weights = batch.temporary(N! * C! * 4, `cam ${method} weights`);
    const values =
      method === 'gradcam'
        ? ''
        : `fn valueA(p: u32) -> f32 { return A[base + p]; }
${numpySum('sumA', 'valueA')}
fn valueW(p: u32) -> f32 {
${
  method === 'gradcam++'
    ? `  let g = G[base + p];
  let g2 = g * g;
  let g3 = g2 * g;
  let aij = select(0.0f, div(g2, exact(2.0f * g2) + exact(sA * g3) + 1e-6f), g != 0.0f);
  return exact(max(g, 0.0f) * aij);`
    : '  return div(exact(G[base + p] * A[base + p]), sA + 1e-7f);'
}
}
${numpySum('sumW', 'valueW')}`;
    const body =
      method === 'gradcam'
        ? `  W[i] = div(sumG(), ${HW}.0f);`
        : `  sA = sumA();
  W[i] = sumW();`;
    // Only what the kernel reads is bound: 'auto' layouts leave out unused bindings (GradCAM's A).
    const { declarations, buffers } = bindings([
      ...(method === 'gradcam' ? [] : [['A', 'f32', 'read', a] as const]),
      ['G', 'f32', 'read', g],
      ['W', 'f32', 'read_write', weights],
      ['Z', 'u32', 'read', batch.upload(Uint32Array.of(0), 'cam zero')],
      ['S', 'u32', 'read', batch.upload(numpySumProgram(HW), 'cam sum order')],
    ]);
    const code = `${declarations}
${HELPERS}
var<private> base: u32;
var<private> sA: f32;
${method === 'gradcam' ? `fn valueG(p: u32) -> f32 { return G[base + p]; }\n${numpySum('sumG', 'valueG')}` : values}
${flatMain(
  64,
  `  if (i >= ${N! * C!}u) { return; }
  zero = Z[0];
  base = i * ${HW}u;
${body}`,
)}`;
    batch.dispatch({ label: `cam_${method}_weights_${C}x${h}x${w}`, wgsl: code, workgroups: grid(N! * C!, 64) }, buffers);
  }
  // One thread per (image, pixel): the sum over channels, in order.
  const term = {
    gradcam: 'W[n * CH + c] * A[at]',
    'gradcam++': 'W[n * CH + c] * A[at]',
    xgradcam: 'W[n * CH + c] * A[at]',
    hirescam: 'G[at] * A[at]',
    layercam: 'max(G[at], 0.0f) * A[at]',
  }[method as Exclude<CamMethod, 'eigencam'>];
  const { declarations, buffers } = bindings([
    ['A', 'f32', 'read', a],
    ...(weighted ? [['W', 'f32', 'read', weights!] as const] : [['G', 'f32', 'read', g] as const]),
    ['Y', 'f32', 'read_write', out],
    ['Z', 'u32', 'read', batch.upload(Uint32Array.of(0), 'cam zero')],
  ]);
  const code = `${declarations}
${HELPERS}
const CH = ${C}u;
${flatMain(
  THREADS,
  `  if (i >= ${N! * HW}u) { return; }
  zero = Z[0];
  let n = i / ${HW}u;
  let base = n * ${C! * HW}u + i % ${HW}u;
  var s = 0.0f;
  for (var c = 0u; c < CH; c++) {
    let at = base + c * ${HW}u;
    s += exact(${term});
  }
  Y[i] = ${relu ? 'max(s, 0.0f)' : 's'};`,
)}`;
  batch.dispatch({ label: `cam_${method}_${C}x${h}x${w}`, wgsl: code, workgroups: grid(N! * HW, THREADS) }, buffers);
  return { buffer: out, dims: [N!, 1, h!, w!] };
}

/**
 * EigenCAM (pytorch-grad-cam utils/svd_on_activations.py get_2d_projection),
 * per image: X = A[C, h·w]ᵀ with NaN as 0, each channel centred by its mean
 * over the pixels; v = the first right-singular vector of X, i.e. the top
 * eigenvector of the covariance XᵀX; map = X·v.
 *
 * On the GPU: the centred X (kept transposed, [h·w, C]) and XᵀX (C x C,
 * f32, summed over pixels in order); XᵀX is read back (that alone) and its
 * top eigenvector found on the host by power iteration in float64
 * (topEigenvector); v goes back up and the projection X·v runs on the GPU.
 *
 * The sign. A singular vector is defined up to its sign; pytorch-grad-cam
 * takes NumPy's `np.linalg.svd` as LAPACK's sgesdd returns it and fixes
 * nothing, and the ReLU after it keeps one side of the projection, so the
 * sign decides the picture. LAPACK's sign follows no rule of the data: on
 * random activations (NumPy 1.24) the largest-magnitude entry of VT[0], its
 * first entry and its sum each come out negative about half the time. So
 * this fixes one: **v's largest-magnitude entry is negative** (the first
 * such entry on a tie). Every EigenCAM of the fixtures, whose sign is the one
 * pytorch-grad-cam 1.4/1.5 drew there (test/fixtures/grad/manifest.json
 * `eigen.vt0MaxAbsSign` = -1 for all three, with margins of 0.74 vs 0.41,
 * 0.50 vs 0.40 and 0.57 vs 0.25 over the runner-up), satisfies it, so the
 * maps agree with those; on other data pytorch-grad-cam itself may show
 * either side.
 */
async function eigenCam(gpu: Gpu, activation: TensorLike, [N, C, h, w]: readonly number[], relu: boolean, options: StageOptions): Promise<GpuTensor> {
  const HW = h! * w!;
  const a = binding(activation);
  const centred = gpu.device.createBuffer({
    size: N! * HW * C! * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    label: 'eigencam centred',
  });
  try {
    const covariance = await checked(gpu, 'cam(eigencam): covariance', async () => {
      const batch = new CommandBatch(gpu);
      try {
        const gram = batch.temporary(N! * C! * C! * 4, 'eigencam covariance');
        // One thread per (image, channel): the channel's mean over the pixels (NumPy's sum), then X[p, c] = A[c, p] - mean.
        const centre = bindings([
          ['A', 'f32', 'read', a],
          ['X', 'f32', 'read_write', { buffer: centred, bytes: N! * HW * C! * 4 }],
          ['Z', 'u32', 'read', batch.upload(Uint32Array.of(0), 'cam zero')],
          ['S', 'u32', 'read', batch.upload(numpySumProgram(HW), 'cam sum order')],
        ]);
        const centreCode = `${centre.declarations}
${HELPERS}
var<private> base: u32;
fn valueA(p: u32) -> f32 {
  let v = A[base + p];
  return select(v, 0.0f, v != v);
}
${numpySum('sumA', 'valueA')}
${flatMain(
  64,
  `  if (i >= ${N! * C!}u) { return; }
  zero = Z[0];
  let n = i / ${C}u;
  let c = i % ${C}u;
  base = i * ${HW}u;
  let mean = div(sumA(), ${HW}.0f);
  for (var p = 0u; p < ${HW}u; p++) { X[(n * ${HW}u + p) * ${C}u + c] = valueA(p) - mean; }`,
)}`;
        batch.dispatch({ label: `eigencam_centre_${C}x${h}x${w}`, wgsl: centreCode, workgroups: grid(N! * C!, 64) }, centre.buffers);
        // One thread per (image, i, j): Σ_p X[p, i]·X[p, j], in order of p.
        const covarianceCode = `${
          bindings([
            ['X', 'f32', 'read', centred],
            ['M', 'f32', 'read_write', gram],
          ]).declarations
        }
@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y;
  let j = gid.x;
  let n = gid.z;
  if (i >= ${C}u || j >= ${C}u) { return; }
  let base = n * ${HW * C!}u;
  var s = 0.0f;
  for (var p = 0u; p < ${HW}u; p++) {
    let row = base + p * ${C}u;
    s += X[row + i] * X[row + j];
  }
  M[(n * ${C}u + i) * ${C}u + j] = s;
}`;
        const tiles = Math.ceil(C! / 16);
        batch.dispatch({ label: `eigencam_covariance_${C}x${h}x${w}`, wgsl: covarianceCode, workgroups: [tiles, tiles, N!] }, [centred, gram]);
        const [raw] = await batch.readAfterSubmit([{ buffer: gram, bytes: N! * C! * C! * 4 }]);
        return new Float32Array(raw!);
      } catch (e) {
        batch.discard();
        throw e;
      }
    });
    const v = new Float32Array(N! * C!);
    for (let n = 0; n < N!; n++) {
      v.set(topEigenvector(covariance.subarray(n * C! * C!, (n + 1) * C! * C!), C!).vector, n * C!);
    }
    return record(gpu, options, (batch) => {
      batch.adopt(centred);
      const out = batch.buffer(N! * HW * 4, 'cam eigencam');
      const { declarations, buffers } = bindings([
        ['X', 'f32', 'read', centred],
        ['V', 'f32', 'read', batch.upload(v, 'eigencam vector')],
        ['Y', 'f32', 'read_write', out],
      ]);
      const code = `${declarations}
${flatMain(
  THREADS,
  `  if (i >= ${N! * HW}u) { return; }
  let n = i / ${HW}u;
  let row = i * ${C}u;
  var s = 0.0f;
  for (var c = 0u; c < ${C}u; c++) { s += X[row + c] * V[n * ${C}u + c]; }
  Y[i] = ${relu ? 'max(s, 0.0f)' : 's'};`,
)}`;
      batch.dispatch({ label: `eigencam_project_${C}x${h}x${w}`, wgsl: code, workgroups: grid(N! * HW, THREADS) }, buffers);
      return { buffer: out, dims: [N!, 1, h!, w!] };
    });
  } catch (e) {
    centred.destroy();
    throw e;
  }
}

/**
 * The top eigenvector of a symmetric positive semi-definite C x C matrix
 * (row-major), by power iteration in float64: from the column of the largest
 * diagonal entry, v <- M·v / |M·v| until no entry moves by more than 1e-11,
 * or a budget of about 1e9 multiply-adds (at least 100 steps, at most
 * 100,000) is spent (`converged` false: a top eigenvalue so close to the next
 * that the direction is ill-defined, as it is for an SVD). Then the sign:
 * the largest-magnitude entry negative (eigenCam explains why). A zero
 * matrix (constant activations) gives e_0, negated.
 */
export function topEigenvector(m: ArrayLike<number>, C: number): { vector: Float64Array; iterations: number; converged: boolean } {
  let k = 0;
  for (let i = 1; i < C; i++) if (m[i * C + i]! > m[k * C + k]!) k = i;
  let v = new Float64Array(C);
  for (let i = 0; i < C; i++) v[i] = m[i * C + k]!;
  let iterations = 0;
  let converged = false;
  if (!normalise(v)) {
    v.fill(0);
    v[0] = 1;
    converged = true;
  }
  const limit = Math.min(100_000, Math.max(100, Math.floor(1e9 / (C * C))));
  let next = new Float64Array(C);
  while (!converged && iterations < limit) {
    iterations++;
    for (let i = 0; i < C; i++) {
      let s = 0;
      const row = i * C;
      for (let j = 0; j < C; j++) s += m[row + j]! * v[j]!;
      next[i] = s;
    }
    if (!normalise(next)) break;
    let moved = 0;
    for (let i = 0; i < C; i++) moved = Math.max(moved, Math.abs(next[i]! - v[i]!));
    [v, next] = [next, v];
    converged = moved < 1e-11;
  }
  let big = 0;
  for (let i = 1; i < C; i++) if (Math.abs(v[i]!) > Math.abs(v[big]!)) big = i;
  if (v[big]! > 0) for (let i = 0; i < C; i++) v[i] = -v[i]!;
  return { vector: v, iterations, converged };
}

/** Scales `v` to unit length in place; false for a zero or non-finite vector. */
function normalise(v: Float64Array): boolean {
  let s = 0;
  for (const x of v) s += x * x;
  const norm = Math.sqrt(s);
  if (!(norm > 0 && Number.isFinite(norm))) return false;
  for (let i = 0; i < v.length; i++) v[i] = v[i]! / norm;
  return true;
}

export interface CamPictureOptions extends StageOptions {
  /** The input's [height, width]: the map is resized to it (cv2.resize, INTER_LINEAR). */
  size: readonly [number, number];
  /**
   * The picture the map goes over (show_cam_on_image's `img`): RGBA8 images
   * (the fitted input; each channel k read as float32(k) / 255, as
   * `np.float32(rgb) / 255`), or a float tensor [1 or N, 3, H, W] of RGB in
   * [0, 1] taken as it is. One image goes under every map. Without it the
   * pictures are the coloured maps alone.
   */
  image?: GpuImages | TensorLike;
  /** show_cam_on_image's image_weight, in [0, 1] (default 0.5). */
  imageWeight?: number;
  /** Default 'jet' (OpenCV's COLORMAP_JET, show_cam_on_image's default). */
  colormap?: ColormapName;
}

export interface GpuCamPicture {
  /** [N,1,H,W] float32 in [0, 1): what pytorch-grad-cam's CAM object returns (for .npy files). */
  scaled: GpuTensor;
  /** N RGBA pictures H x W: show_cam_on_image's, or the coloured map alone without `image`. */
  images: GpuImages;
}

/**
 * The picture of a class activation map ([N,1,h,w], cam()'s) as
 * pytorch-grad-cam makes it (base_cam.py and utils/image.py), per image:
 *
 *  1. scale_cam_image at the layer's resolution: x - min, then
 *     / (1e-7 + max of that) (in f32; NumPy 1.x adds 1e-7 in float64, at
 *     most an ulp apart);
 *  2. cv2.resize to `size`, INTER_LINEAR (resize mode 'opencv-linear');
 *  3. the ReLU and the mean over the one target layer (identities here: the
 *     values are already >= 0), then scale_cam_image again, without
 *     resizing: `scaled`;
 *  4. show_cam_on_image(img, scaled, use_rgb=True): heatmap =
 *     colormap[uint8(255·scaled)] / 255; cam = (1 - w)·heatmap + w·img (each
 *     product rounded to f32, as NumPy); cam / max(cam) over the image's
 *     pixels and channels; uint8(255·that), alpha 255.
 *
 * Returns both on the GPU (the caller owns them; readRGBA and readTensor
 * read them back).
 */
export function camPicture(gpu: Gpu, map: TensorLike, options: CamPictureOptions): GpuCamPicture {
  const [N, C, h, w] = nchw(gpu, map, 'camPicture: the map');
  if (C !== 1) throw new InputError(`camPicture: expected an [N,1,h,w] map (cam's), got [${map.dims.join(',')}]`);
  const geometry = resizeGeometry([h, w], { size: options.size, mode: 'opencv-linear' });
  const [H, W] = geometry.output;
  const weight = options.imageWeight ?? 0.5;
  if (typeof weight !== 'number' || !(weight >= 0 && weight <= 1))
    throw new InputError(`camPicture: imageWeight must be a number in [0, 1], got ${String(weight)}`);
  const lut = colormap(options.colormap ?? 'jet');
  const image = options.image;
  const pixels = H * W;
  let picture: { kind: 'rgba'; images: GpuImages } | { kind: 'float'; tensor: TensorLike } | undefined;
  if (image && 'dims' in image) {
    const [count, channels, ih, iw] = nchw(gpu, image, 'camPicture: the image');
    if (channels !== 3 || ih !== H || iw !== W || (count !== 1 && count !== N)) {
      throw new InputError(`camPicture: the image is [${image.dims.join(',')}]; the maps need [1,3,${H},${W}] or [${N},3,${H},${W}] (RGB in [0, 1])`);
    }
    picture = { kind: 'float', tensor: image };
  } else if (image) {
    if (image.height !== H || image.width !== W || (image.count !== 1 && image.count !== N)) {
      throw new InputError(
        `camPicture: the image is ${image.count}x ${image.width}x${image.height}; the maps need ${N === 1 ? '1 image' : `1 or ${N} images`} of ${W}x${H}`,
      );
    }
    if (image.buffer.size < image.count * pixels * 4) throw new InputError(`camPicture: the image's buffer of ${image.buffer.size} bytes is too small`);
    picture = { kind: 'rgba', images: image };
  }

  return record(gpu, options, (batch) => {
    const temporary = <T extends { buffer: GPUBuffer }>(t: T): T => {
      batch.adopt(t.buffer);
      return t;
    };
    const first = temporary(valueRange(gpu, map, 'minmax', { batch }));
    const small = temporary(scaleByRange(batch, map, first, 'cam scaled'));
    const resized = temporary(resize(gpu, small, { size: [H, W], mode: 'opencv-linear' }, { batch }));
    const second = temporary(valueRange(gpu, resized, 'minmax', { batch }));
    const scaled = scaleByRange(batch, resized, second, 'cam scaled');
    const heat = toRGBA(gpu, scaled, lut, { batch });
    if (!picture) return { scaled, images: heat };
    temporary(heat);
    return { scaled, images: blend(gpu, batch, heat, picture, weight, N) };
  });
}

/** scale_cam_image's scaling of each image of `t` with its range R (min, max): (x - min) / (1e-7 + (max - min)). */
function scaleByRange(batch: CommandBatch, t: TensorLike, range: GpuRange, label: string): GpuTensor {
  const total = sizeOf(t.dims);
  const size = total / t.dims[0]!;
  const out = batch.buffer(total * 4, label);
  const { declarations, buffers } = bindings([
    ['X', 'f32', 'read', binding(t)],
    ['R', 'f32', 'read', { buffer: range.buffer, bytes: range.count * 8 }],
    ['Y', 'f32', 'read_write', out],
    ['Z', 'u32', 'read', batch.upload(Uint32Array.of(0), 'cam zero')],
  ]);
  const code = `${declarations}
${HELPERS}
${flatMain(
  THREADS,
  `  if (i >= ${total}u) { return; }
  zero = Z[0];
  let n = i / ${size}u;
  let lo = R[n * 2u];
  Y[i] = div(X[i] - lo, (R[n * 2u + 1u] - lo) + 1e-7f);`,
)}`;
  batch.dispatch({ label: `cam_scale_${total}`, wgsl: code, workgroups: grid(total, THREADS) }, buffers);
  return { buffer: out, dims: [...t.dims] };
}

/** show_cam_on_image's blend of the coloured maps `heat` with the image, then its division by the maximum and uint8. */
function blend(
  gpu: Gpu,
  batch: CommandBatch,
  heat: GpuImages,
  picture: { kind: 'rgba'; images: GpuImages } | { kind: 'float'; tensor: TensorLike },
  weight: number,
  N: number,
): GpuImages {
  const { height: H, width: W } = heat;
  const pixels = H * W;
  // float32(k) / 255 for k = 0..255, correctly rounded (NumPy's np.float32(x) / 255).
  const levels = batch.upload(
    Float32Array.from({ length: 256 }, (_, k) => k / 255),
    'cam levels',
  );
  // NumPy 1.x multiplies a float32 array by a Python float as float32: the weights are rounded first.
  const params = new Uint32Array(3);
  new Float32Array(params.buffer, 0, 2).set([1 - weight, weight]);
  const single = picture.kind === 'rgba' ? picture.images.count === 1 : picture.tensor.dims[0] === 1;
  const imageAt = (ch: number) =>
    picture.kind === 'rgba' ? `T[(I[${single ? 'p' : 'i'}] >> ${8 * ch}u) & 255u]` : `I[${single ? '' : `n * ${3 * pixels}u + `}${ch * pixels}u + p]`;
  const blended = batch.temporary(N * pixels * 3 * 4, 'cam blend');
  const { declarations, buffers } = bindings([
    ['H', 'u32', 'read', heat.buffer],
    [
      'I',
      picture.kind === 'rgba' ? 'u32' : 'f32',
      'read',
      picture.kind === 'rgba' ? { buffer: picture.images.buffer, bytes: picture.images.count * pixels * 4 } : binding(picture.tensor),
    ],
    ['T', 'f32', 'read', levels],
    ['P', 'u32', 'read', batch.upload(params, 'cam weights')],
    ['Y', 'f32', 'read_write', blended],
  ]);
  const code = `${declarations}
${HELPERS}
${flatMain(
  THREADS,
  `  if (i >= ${N * pixels}u) { return; }
  zero = P[2];
  let n = i / ${pixels}u;
  let p = i % ${pixels}u;
  let wh = bitcast<f32>(P[0]);
  let wi = bitcast<f32>(P[1]);
  let hp = H[i];
${[0, 1, 2].map((ch) => `  Y[i * 3u + ${ch}u] = exact(wh * T[(hp >> ${8 * ch}u) & 255u]) + exact(wi * ${imageAt(ch)});`).join('\n')}`,
)}`;
  batch.dispatch({ label: `cam_blend_${N}x${pixels}`, wgsl: code, workgroups: grid(N * pixels, THREADS) }, buffers);
  const range = valueRange(gpu, { buffer: blended, dims: [N, pixels * 3] }, 'minmax', { batch });
  batch.adopt(range.buffer);
  const out = batch.buffer(N * pixels * 4, 'cam picture');
  const finish = bindings([
    ['X', 'f32', 'read', blended],
    ['R', 'f32', 'read', { buffer: range.buffer, bytes: N * 8 }],
    ['Y', 'u32', 'read_write', out],
    ['Z', 'u32', 'read', batch.upload(Uint32Array.of(0), 'cam zero')],
  ]);
  const finishCode = `${finish.declarations}
${HELPERS}
${flatMain(
  THREADS,
  `  if (i >= ${N * pixels}u) { return; }
  zero = Z[0];
  let top = R[(i / ${pixels}u) * 2u + 1u];
  var q = vec3u(0u);
  for (var ch = 0u; ch < 3u; ch++) {
    let v = 255.0f * div(X[i * 3u + ch], top);
    q[ch] = u32(clamp(floor(v), 0.0f, 255.0f));
  }
  Y[i] = q.x | (q.y << 8u) | (q.z << 16u) | (255u << 24u);`,
)}`;
  batch.dispatch({ label: `cam_picture_${N}x${pixels}`, wgsl: finishCode, workgroups: grid(N * pixels, THREADS) }, finish.buffers);
  return { buffer: out, count: N, height: H, width: W };
}
