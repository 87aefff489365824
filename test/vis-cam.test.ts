/**
 * Class activation maps (src/vis/cam.ts) against pytorch-grad-cam's, as
 * tools/grad_references.py computed them from PyTorch's A and G
 * (test/fixtures/grad, manifest `cams`): the signed map at the layer's
 * resolution, the scaled map at the input's and show_cam_on_image's overlay;
 * then CPU references on random batches of two, OpenCV's INTER_LINEAR
 * resize against the script's re-implementation, and the errors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { decodeNpy } from '../src/io/npy.js';
import type { HostTensor } from '../src/model/graph.js';
import {
  cam,
  CAM_METHODS,
  camPicture,
  parseCamMethod,
  readRGBA,
  readTensor,
  resize,
  topEigenvector,
  uploadImage,
  uploadTensor,
  type CamMethod,
  type GpuTensor,
} from '../src/vis/index.js';
import { freeAfterAll, gpu as sharedGpu, random, relL2 } from './helpers/gpu.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const gpu = await sharedGpu();
const keep = freeAfterAll();

const npy = (path: string): HostTensor => decodeNpy(readFileSync(join(FIXTURES, path)), path);
const upload = (dims: readonly number[], data: ArrayLike<number>): GpuTensor => keep(uploadTensor(gpu, dims, data));
const read = async (t: GpuTensor): Promise<Float32Array> => readTensor(gpu, keep(t));

interface CamEntry {
  model: string;
  layer: string;
  method: string;
  raw: string;
  rawShape: [number, number];
  scaled: string;
  scaledShape: [number, number];
  overlay: string | null;
  image: string | null;
  eigen?: { vt0: number[]; vt0MaxAbsSign: number };
}
interface GradEntry {
  model: string;
  layer: string;
  mask: string;
  activation: string;
  gradient: string;
}
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'grad/manifest.json'), 'utf8')) as { cams: CamEntry[]; grads: GradEntry[] };

/** pytorch-grad-cam's class names -> the methods' names here. */
const METHOD: Record<string, CamMethod> = {
  GradCAM: 'gradcam',
  GradCAMPlusPlus: 'gradcam++',
  XGradCAM: 'xgradcam',
  HiResCAM: 'hirescam',
  LayerCAM: 'layercam',
  EigenCAM: 'eigencam',
};

const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
/** The largest difference of uint8 levels, np.uint8(255 * x), between two maps in [0, 1). */
const levelDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(Math.floor(Math.fround(255 * v)) - Math.floor(Math.fround(255 * b[i]!)))), 0);

/** [H,W,3] -> [1,3,H,W]. */
function planar(image: HostTensor): Float32Array {
  const [H, W] = image.dims as [number, number, number];
  const out = new Float32Array(3 * H * W);
  for (let p = 0; p < H * W; p++) for (let c = 0; c < 3; c++) out[c * H * W + p] = image.data[p * 3 + c]!;
  return out;
}

/** The largest per-channel difference between RGBA pictures and an [H,W,3] uint8 reference; alpha must be 255. */
function overlayDiff(rgba: Uint8Array, reference: HostTensor): number {
  let worst = 0;
  for (let p = 0; p < rgba.length / 4; p++) {
    expect(rgba[p * 4 + 3]).toBe(255);
    for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(rgba[p * 4 + c]! - reference.data[p * 3 + c]!));
  }
  return worst;
}

const summary: string[] = [];
afterAll(() => {
  if (summary.length) console.log(`CAM agreement with pytorch-grad-cam (test/fixtures/grad):\n${summary.join('\n')}`);
});

describe('CAMs against pytorch-grad-cam (tools/grad_references.py)', () => {
  for (const entry of manifest.cams) {
    const method = METHOD[entry.method]!;
    it(`${entry.model} ${entry.layer} ${entry.method}`, async () => {
      const grad = manifest.grads.find((g) => g.model === entry.model && g.layer === entry.layer && g.mask === 'pred')!;
      const A = npy(grad.activation);
      const a = upload(A.dims, A.data);
      const G = npy(grad.gradient);
      const g = method === 'eigencam' ? undefined : upload(G.dims, G.data);
      const [h, w] = entry.rawShape;
      const [H, W] = entry.scaledShape;

      // get_cam_image's map, before the ReLU.
      const raw = npy(entry.raw).data;
      const signedTensor = keep(await cam(gpu, a, g, method, { relu: false }));
      expect(signedTensor.dims).toEqual([1, 1, h, w]);
      const signed = await readTensor(gpu, signedTensor);
      const rawRel = maxDiff(signed, raw) / maxAbs(raw);
      expect(relL2(signed, raw)).toBeLessThan(1e-5);
      expect(rawRel).toBeLessThan(1e-5);

      // With the ReLU (the default): exactly the signed map's positive part.
      const mapTensor = keep(await cam(gpu, a, g, method));
      const map = await readTensor(gpu, mapTensor);
      expect(Array.from(map)).toEqual(Array.from(signed, (v) => Math.max(v, 0)));

      // The CAM object's result at the input's size.
      const plain = camPicture(gpu, mapTensor, { size: [H, W] });
      keep(plain.images);
      expect(plain.scaled.dims).toEqual([1, 1, H, W]);
      const scaled = await read(plain.scaled);
      const reference = npy(entry.scaled).data;
      const scaledDiff = maxDiff(scaled, reference);
      const levels = levelDiff(scaled, reference);
      expect(scaledDiff).toBeLessThanOrEqual(1 / 255);
      expect(levels).toBeLessThanOrEqual(1);
      expect(Math.min(...scaled)).toBe(0);
      expect(Math.max(...scaled)).toBeLessThan(1);
      // Without an image: JET of uint8(255 * scaled), as applyColorMap.
      const [coloured] = await readRGBA(gpu, plain.images);
      expect(coloured!.width).toBe(W);
      expect(coloured!.height).toBe(H);

      let line = `  ${entry.model} ${entry.layer} ${entry.method}: raw max |d|/max|ref| ${rawRel.toExponential(1)}, scaled max |d| ${scaledDiff.toExponential(1)} (uint8 levels ${levels})`;
      if (entry.overlay) {
        const overlay = npy(entry.overlay);
        const image = npy(entry.image!);
        // The script's own image: float32 RGB in [0, 1], given as a float tensor.
        const exact = camPicture(gpu, mapTensor, { size: [H, W], image: upload([1, 3, H, W], planar(image)) });
        keep(exact.scaled);
        const [blended] = await readRGBA(gpu, keep(exact.images));
        const floatDiff = overlayDiff(blended!.rgba, overlay);
        expect(floatDiff).toBeLessThanOrEqual(1);
        // The same image as RGBA8 (np.float32(u8) / 255 inside): one level at most from the float image's overlay.
        const bytes = Uint8Array.from(image.data, (v) => Math.round(v * 255));
        const fitted = keep(uploadImage(gpu, bytes, W, H));
        const viaRgba = camPicture(gpu, mapTensor, { size: [H, W], image: fitted, imageWeight: 0.5 });
        keep(viaRgba.scaled);
        const [fromBytes] = await readRGBA(gpu, keep(viaRgba.images));
        const rgbaDiff = overlayDiff(fromBytes!.rgba, overlay);
        expect(rgbaDiff).toBeLessThanOrEqual(1);
        line += `, overlay levels ${floatDiff} (float image), ${rgbaDiff} (uint8 image)`;
      }
      summary.push(line);
    });
  }
});

// ---------- CPU references ----------

/** pytorch-grad-cam's maps in float64, [N,C,h,w] -> [N,h,w], before the ReLU. */
function cpuCam(method: Exclude<CamMethod, 'eigencam'>, A: Float32Array, G: Float32Array, [N, C, h, w]: number[]): Float64Array {
  const HW = h! * w!;
  const out = new Float64Array(N! * HW);
  for (let n = 0; n < N!; n++) {
    const at = (c: number, p: number) => (n * C! + c) * HW + p;
    const weights = Array.from({ length: C! }, (_, c) => {
      let sG = 0;
      let sA = 0;
      for (let p = 0; p < HW; p++) [sG, sA] = [sG + G[at(c, p)]!, sA + A[at(c, p)]!];
      let w = 0;
      for (let p = 0; p < HW; p++) {
        const g = G[at(c, p)]!;
        if (method === 'gradcam++') w += g === 0 ? 0 : (Math.max(g, 0) * g * g) / (2 * g * g + sA * g ** 3 + 1e-6);
        if (method === 'xgradcam') w += (g * A[at(c, p)]!) / (sA + 1e-7);
      }
      return method === 'gradcam' ? sG / HW : w;
    });
    for (let p = 0; p < HW; p++) {
      let s = 0;
      for (let c = 0; c < C!; c++) {
        const [g, a] = [G[at(c, p)]!, A[at(c, p)]!];
        s += method === 'hirescam' ? g * a : method === 'layercam' ? Math.max(g, 0) * a : weights[c]! * a;
      }
      out[n * HW + p] = s;
    }
  }
  return out;
}

/** NumPy 1.24's float32 sum of a contiguous run (umath pairwise_sum over buffers of 8192), as tools/grad_references.py's NumPy computes it. */
function numpySum(a: Float32Array): number {
  const f = Math.fround;
  const pairwise = (x: Float32Array): number => {
    const n = x.length;
    if (n < 8) return x.reduce((s, v) => f(s + v), 0);
    if (n <= 128) {
      const r = Array.from(x.subarray(0, 8));
      let i = 8;
      for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = f(r[j]! + x[i + j]!);
      let s = f(f(f(r[0]! + r[1]!) + f(r[2]! + r[3]!)) + f(f(r[4]! + r[5]!) + f(r[6]! + r[7]!)));
      for (; i < n; i++) s = f(s + x[i]!);
      return s;
    }
    const half = Math.floor(n / 2) - (Math.floor(n / 2) % 8);
    return f(pairwise(x.subarray(0, half)) + pairwise(x.subarray(half)));
  };
  let s = 0;
  for (let k = 0; k < a.length; k += 8192) s = f(s + pairwise(a.subarray(k, k + 8192)));
  return s;
}

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations (float64): the eigenvector of the largest eigenvalue. */
function jacobiTop(m: Float64Array, C: number): Float64Array {
  const a = Float64Array.from(m);
  const v = new Float64Array(C * C);
  for (let i = 0; i < C; i++) v[i * C + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < C; p++) for (let q = p + 1; q < C; q++) off += a[p * C + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < C; p++) {
      for (let q = p + 1; q < C; q++) {
        const apq = a[p * C + q]!;
        if (apq === 0) continue;
        const theta = (a[q * C + q]! - a[p * C + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < C; k++) {
          const [akp, akq] = [a[k * C + p]!, a[k * C + q]!];
          a[k * C + p] = c * akp - s * akq;
          a[k * C + q] = s * akp + c * akq;
        }
        for (let k = 0; k < C; k++) {
          const [apk, aqk] = [a[p * C + k]!, a[q * C + k]!];
          a[p * C + k] = c * apk - s * aqk;
          a[q * C + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < C; k++) {
          const [vkp, vkq] = [v[k * C + p]!, v[k * C + q]!];
          v[k * C + p] = c * vkp - s * vkq;
          v[k * C + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  let top = 0;
  for (let i = 1; i < C; i++) if (a[i * C + i]! > a[top * C + top]!) top = i;
  return Float64Array.from({ length: C }, (_, k) => v[k * C + top]!);
}

/** EigenCAM in float64: centred X [hw, C] of each image projected on the top eigenvector of XᵀX, its largest entry negative. */
function cpuEigenCam(A: Float32Array, [N, C, h, w]: number[]): Float64Array {
  const HW = h! * w!;
  const out = new Float64Array(N! * HW);
  for (let n = 0; n < N!; n++) {
    const x = new Float64Array(HW * C!);
    for (let c = 0; c < C!; c++) {
      let mean = 0;
      for (let p = 0; p < HW; p++) mean += A[(n * C! + c) * HW + p]! / HW;
      for (let p = 0; p < HW; p++) x[p * C! + c] = A[(n * C! + c) * HW + p]! - mean;
    }
    const m = new Float64Array(C! * C!);
    for (let i = 0; i < C!; i++) for (let j = 0; j < C!; j++) for (let p = 0; p < HW; p++) m[i * C! + j] += x[p * C! + i]! * x[p * C! + j]!;
    const v = jacobiTop(m, C!);
    let big = 0;
    for (let i = 1; i < C!; i++) if (Math.abs(v[i]!) > Math.abs(v[big]!)) big = i;
    const sign = v[big]! > 0 ? -1 : 1;
    for (let p = 0; p < HW; p++) {
      let s = 0;
      for (let c = 0; c < C!; c++) s += x[p * C! + c]! * v[c]! * sign;
      out[n * HW + p] = s;
    }
  }
  return out;
}

describe('CAMs against CPU references (random, a batch of two)', () => {
  const dims = [2, 7, 5, 6];
  const size = dims.reduce((a, b) => a * b, 1);
  // Activations as after a ReLU (>= 0, some exactly 0), gradients of both signs with some exact zeros.
  const A = Float32Array.from(random(size, 11, -0.5, 1), (v) => Math.max(v, 0));
  const G = Float32Array.from(random(size, 12, -1, 1), (v, i) => (i % 9 === 0 ? 0 : v));
  const a = upload(dims, A);
  const g = upload(dims, G);

  for (const method of ['gradcam', 'hirescam', 'gradcam++', 'xgradcam', 'layercam'] as const) {
    it(`${method} per image`, async () => {
      const reference = cpuCam(method, A, G, dims);
      const signed = await read(await cam(gpu, a, g, method, { relu: false }));
      expect(relL2(signed, reference)).toBeLessThan(1e-5);
      const map = await read(await cam(gpu, a, g, method));
      expect(
        relL2(
          map,
          Array.from(reference, (v) => Math.max(v, 0)),
        ),
      ).toBeLessThan(1e-5);
      // Each image alone gives the same bytes as in the batch.
      const half = size / 2;
      const second = await read(await cam(gpu, upload([1, 7, 5, 6], A.subarray(half)), upload([1, 7, 5, 6], G.subarray(half)), method, { relu: false }));
      expect(Array.from(second)).toEqual(Array.from(signed.subarray(30)));
    });
  }

  it('eigencam per image, its sign fixed, without a gradient', async () => {
    const reference = cpuEigenCam(A, dims);
    const signed = await read(await cam(gpu, a, undefined, 'eigencam', { relu: false }));
    expect(relL2(signed, reference)).toBeLessThan(1e-5);
    const map = await read(await cam(gpu, a, g, 'eigencam'));
    expect(Array.from(map)).toEqual(Array.from(signed, (v) => Math.max(v, 0)));
    const second = await read(await cam(gpu, upload([1, 7, 5, 6], A.subarray(size / 2)), undefined, 'eigencam', { relu: false }));
    expect(Array.from(second)).toEqual(Array.from(signed.subarray(30)));
  });

  it("GradCAM's channel mean sums as NumPy 1.24 does: pairwise, in chunks of 8192", async () => {
    // One channel of ones: every pixel of the map is the channel's weight, np.mean(G) = float32(sum) / 9000.
    const [h, w] = [90, 100];
    const G = random(h * w, 21, -1, 1);
    const ones = upload([1, 1, h, w], new Float32Array(h * w).fill(1));
    const map = await read(await cam(gpu, ones, upload([1, 1, h, w], G), 'gradcam', { relu: false }));
    const expected = Math.fround(numpySum(G) / (h * w));
    expect(map.every((v) => v === expected)).toBe(true);
    // Not what a plain running sum gives.
    const running = G.reduce((s, v) => Math.fround(s + v), 0);
    expect(Math.fround(running / (h * w))).not.toBe(expected);
  });

  it('topEigenvector: power iteration, largest-magnitude entry negative', () => {
    // diag(1, 3, 2) rotated: top eigenvector (0.6, 0.8, 0) up to sign.
    const q = [0.6, 0.8, 0, -0.8, 0.6, 0, 0, 0, 1];
    const lambda = [3, 1, 2];
    const m = new Float64Array(9);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) m[i * 3 + j] += q[k * 3 + i]! * lambda[k]! * q[k * 3 + j]!;
    const { vector, converged } = topEigenvector(m, 3);
    expect(converged).toBe(true);
    expect(Math.abs(vector[0]! + 0.6) + Math.abs(vector[1]! + 0.8) + Math.abs(vector[2]!)).toBeLessThan(1e-9);
    // A zero matrix (constant activations): -e0, a map of zeros.
    expect(Array.from(topEigenvector(new Float64Array(4), 2).vector)).toEqual([-1, -0]);
  });

  it('camPicture of a batch: each image scaled on its own, one image under both', async () => {
    const maps = await cam(gpu, a, g, 'gradcam');
    keep(maps);
    const image = keep(uploadImage(gpu, Uint8Array.from(random(9 * 11 * 3, 5, 0, 256), Math.floor), 11, 9));
    const both = camPicture(gpu, maps, { size: [9, 11], image, imageWeight: 0.3 });
    const scaled = await read(both.scaled);
    const pictures = await readRGBA(gpu, keep(both.images));
    expect(pictures).toHaveLength(2);
    const host = await readTensor(gpu, maps);
    for (const n of [0, 1]) {
      const one = camPicture(gpu, upload([1, 1, 5, 6], host.subarray(n * 30, (n + 1) * 30)), { size: [9, 11], image, imageWeight: 0.3 });
      expect(Array.from(await read(one.scaled))).toEqual(Array.from(scaled.subarray(n * 99, (n + 1) * 99)));
      const [picture] = await readRGBA(gpu, keep(one.images));
      expect(Array.from(picture!.rgba)).toEqual(Array.from(pictures[n]!.rgba));
    }
  });
});

/** tools/grad_references.py cv2_resize_linear (OpenCV 4.6's INTER_LINEAR on float32, checked bit-exact there), in float32. */
function cv2ResizeLinear(img: Float32Array, [h, w]: [number, number], [H, W]: [number, number]): Float32Array {
  const f32 = Math.fround;
  const coeffs = (dst: number, src: number, clamp: boolean) =>
    Array.from({ length: dst }, (_, d) => {
      const scale = 1 / (dst / src);
      let f = f32((d + 0.5) * scale - 0.5);
      let s = Math.floor(f);
      f = f32(f - s);
      if (clamp && s < 0) [f, s] = [0, 0];
      if (clamp && s >= src - 1) [f, s] = [0, src - 1];
      return { i0: Math.min(Math.max(s, 0), src - 1), i1: Math.min(Math.max(s + 1, 0), src - 1), a0: f32(1 - f), a1: f };
    });
  const xs = coeffs(W, w, true);
  const ys = coeffs(H, h, false);
  const hor = new Float32Array(h * W);
  for (let r = 0; r < h; r++) {
    xs.forEach(({ i0, i1, a0, a1 }, x) => {
      hor[r * W + x] = f32(f32(img[r * w + i0]! * a0) + f32(img[r * w + i1]! * a1));
    });
  }
  const out = new Float32Array(H * W);
  ys.forEach(({ i0, i1, a0, a1 }, y) => {
    for (let x = 0; x < W; x++) out[y * W + x] = f32(f32(hor[i0 * W + x]! * a0) + f32(hor[i1 * W + x]! * a1));
  });
  return out;
}

describe("resize mode 'opencv-linear' (cv2.resize INTER_LINEAR)", () => {
  const cases: [[number, number], [number, number]][] = [
    [
      [5, 5],
      [65, 65],
    ],
    [
      [7, 5],
      [97, 65],
    ],
    [
      [4, 6],
      [61, 83],
    ],
    [
      [17, 17],
      [9, 30],
    ],
    [
      [1, 3],
      [4, 1],
    ],
    [
      [6, 6],
      [6, 13],
    ],
  ];
  for (const [from, to] of cases) {
    it(`${from.join('x')} -> ${to.join('x')}: the same bits`, async () => {
      const x = random(2 * from[0] * from[1], from[0] * 31 + to[1], -3, 5);
      const y = await read(resize(gpu, upload([2, 1, ...from], x), { size: to, mode: 'opencv-linear' }));
      const n = from[0] * from[1];
      const expected = [...cv2ResizeLinear(x.subarray(0, n), from, to), ...cv2ResizeLinear(x.subarray(n), from, to)];
      expect(Array.from(y)).toEqual(expected);
    });
  }

  it('refuses alignCorners', () => {
    expect(() => resize(gpu, upload([1, 1, 2, 2], [1, 2, 3, 4]), { size: [3, 3], mode: 'opencv-linear', alignCorners: true })).toThrow(/bilinear only/);
  });
});

describe('CAM errors', () => {
  const a = upload([1, 4, 3, 3], random(36, 1));
  const g = upload([1, 4, 3, 3], random(36, 2));

  it('names the methods', async () => {
    expect(CAM_METHODS).toEqual(['gradcam', 'gradcam++', 'xgradcam', 'hirescam', 'layercam', 'eigencam']);
    expect(parseCamMethod('GradCAM++')).toBe('gradcam++');
    await expect(cam(gpu, a, g, 'scorecam')).rejects.toThrow(InputError);
    await expect(cam(gpu, a, g, 'scorecam')).rejects.toThrow(
      /unknown CAM method 'scorecam': use one of gradcam, gradcam\+\+, xgradcam, hirescam, layercam, eigencam/,
    );
  });

  it('needs a gradient of the same shape, except for eigencam', async () => {
    await expect(cam(gpu, a, undefined, 'gradcam')).rejects.toThrow(/needs the gradient/);
    await expect(cam(gpu, a, upload([1, 4, 3, 2], random(24, 3)), 'hirescam')).rejects.toThrow(/gradient is \[1,4,3,2\] but the activation is \[1,4,3,3\]/);
    await expect(cam(gpu, a, upload([2, 4, 3, 3], random(72, 3)), 'layercam')).rejects.toThrow(InputError);
    await expect(cam(gpu, upload([4, 3, 3], random(36, 4)), g, 'gradcam')).rejects.toThrow(/expected an \[N,C,H,W\] tensor/);
    await expect(cam(gpu, a, a, 'gradcam')).rejects.toThrow(/overlap/);
    expect((await read(await cam(gpu, a, undefined, 'eigencam'))).length).toBe(9);
  });

  it('camPicture checks the map, size, weight and image', () => {
    expect(() => camPicture(gpu, a, { size: [6, 6] })).toThrow(/\[N,1,h,w\] map/);
    const map = upload([1, 1, 3, 3], random(9, 5));
    expect(() => camPicture(gpu, map, { size: [0, 6] })).toThrow(/positive integers/);
    expect(() => camPicture(gpu, map, { size: [6, 6], imageWeight: 2 })).toThrow(/imageWeight/);
    const image = keep(uploadImage(gpu, new Uint8Array(5 * 6 * 3), 5, 6));
    expect(() => camPicture(gpu, map, { size: [6, 6], image })).toThrow(/the maps need 1 image of 6x6/);
    expect(() => camPicture(gpu, map, { size: [6, 6], image: upload([1, 1, 6, 6], random(36, 6)) })).toThrow(/RGB in \[0, 1\]/);
  });
});
