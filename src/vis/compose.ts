import { GpuError, InputError } from '../errors.js';
import { checked, type Gpu } from '../gpu/device.js';
import { flatMain, grid, storage } from '../kernels/wgsl.js';
import { readRGBA, type GpuImages, type RgbaImage } from './rgba.js';
import { align4 } from '../gpu/buffers.js';
import { CommandBatch, record, type StageOptions } from './tensor.js';

/**
 * Composition of RGBA pictures on the GPU (issue 4, section 6): an overlay of
 * a map on the input image with an alpha, and a side-by-side panel
 * (input | prediction | ground truth | maps…). Images are GpuImages (rgba.ts:
 * one u32 per pixel, bytes R, G, B, A); host pictures go up with uploadImage.
 */

const THREADS = 256;

const isSize = (n: number): boolean => Number.isSafeInteger(n) && n > 0;
const describe = (im: GpuImages): string => `${im.count > 1 ? `${im.count}x ` : ''}${im.width}x${im.height}`;

function checkImages(gpu: Gpu, im: GpuImages, what: string): number {
  if (!isSize(im.count) || !isSize(im.width) || !isSize(im.height)) {
    throw new InputError(`${what}: expected positive integer count, width and height, got ${im.count} images of ${im.width}x${im.height}`);
  }
  const bytes = im.count * im.height * im.width * 4;
  if (im.buffer.size < bytes) throw new InputError(`${what}: buffer of ${im.buffer.size} bytes is too small for ${describe(im)} RGBA (${bytes} bytes)`);
  const limit = gpu.limits.maxStorageBufferBindingSize;
  if (bytes > limit)
    throw new GpuError(`${what}: ${describe(im)} RGBA (${bytes} bytes) exceeds the device's storage binding limit (maxStorageBufferBindingSize ${limit})`);
  return bytes;
}

/**
 * Uploads one host picture, `width` x `height`, row-major, RGB (3 bytes a
 * pixel, alpha 255) or RGBA (4 bytes), e.g. readImage's `data` or a
 * FeatureMapImage's `rgba`. The caller owns (destroys) `buffer`.
 */
export function uploadImage(gpu: Gpu, pixels: Uint8Array, width: number, height: number): GpuImages {
  if (!isSize(width) || !isSize(height)) throw new InputError(`uploadImage: size must be positive integers, got ${width}x${height}`);
  const n = width * height;
  const channels = pixels.length === n * 3 ? 3 : pixels.length === n * 4 ? 4 : 0;
  if (!channels) {
    throw new InputError(`uploadImage: a ${width}x${height} image needs ${n * 3} (RGB) or ${n * 4} (RGBA) bytes, got ${pixels.length}`);
  }
  const limit = gpu.limits.maxStorageBufferBindingSize;
  if (n * 4 > limit)
    throw new GpuError(
      `uploadImage: ${width}x${height} RGBA (${n * 4} bytes) exceeds the device's storage binding limit (maxStorageBufferBindingSize ${limit})`,
    );
  const packed = new Uint32Array(n);
  if (channels === 4) {
    packed.set(new Uint32Array(new Uint8Array(pixels).buffer)); // a copy starting at offset 0, little-endian R,G,B,A
  } else {
    for (let i = 0; i < n; i++) packed[i] = (pixels[3 * i]! | (pixels[3 * i + 1]! << 8) | (pixels[3 * i + 2]! << 16) | (255 << 24)) >>> 0;
  }
  if (gpu.lost) throw gpu.lost;
  const buffer = gpu.device.createBuffer({
    size: align4(n * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    label: `image ${width}x${height}`,
  });
  gpu.device.queue.writeBuffer(buffer, 0, packed);
  return { buffer, count: 1, height, width };
}

/**
 * Blends `top` over `base`, every channel (alpha included):
 * out = round((1 - alpha) * base + alpha * top), computed in f32, halves
 * rounded up (a value within f32 error of a half may round either way).
 * `alpha` is in [0, 1]. The sizes must match; a single `base` image is
 * blended under each of several `top` images (one input, N maps). Returns
 * `top.count` new images the caller owns.
 */
export function overlay(gpu: Gpu, base: GpuImages, top: GpuImages, alpha: number, options: StageOptions = {}): GpuImages {
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) throw new InputError(`overlay: alpha must be a number in [0, 1], got ${String(alpha)}`);
  checkImages(gpu, base, 'overlay base');
  const bytes = checkImages(gpu, top, 'overlay top');
  if (base.width !== top.width || base.height !== top.height || (base.count !== top.count && base.count !== 1)) {
    throw new InputError(`overlay: the base image is ${describe(base)} but the top image is ${describe(top)}: they must be the same size`);
  }
  const pixels = top.height * top.width;
  const total = top.count * pixels;
  const baseIndex = base.count === 1 && top.count > 1 ? `i % ${pixels}u` : 'i';
  const code = `${storage(0, 'B', 'u32', 'read')}
${storage(1, 'T', 'u32', 'read')}
${storage(2, 'Y', 'u32', 'read_write')}
${storage(3, 'A', 'f32', 'read')}
fn channels(p: u32) -> vec4f {
  return vec4f(f32(p & 255u), f32((p >> 8u) & 255u), f32((p >> 16u) & 255u), f32(p >> 24u));
}
${flatMain(
  THREADS,
  `  if (i >= ${total}u) { return; }
  let a = A[0];
  let v = (1.0f - a) * channels(B[${baseIndex}]) + a * channels(T[i]);
  let q = vec4u(clamp(floor(v + 0.5f), vec4f(0.0f), vec4f(255.0f)));
  Y[i] = q.x | (q.y << 8u) | (q.z << 16u) | (q.w << 24u);`,
)}`;
  return record(gpu, options, (batch) => {
    const out = batch.buffer(bytes, 'overlay');
    const params = batch.upload(Float32Array.of(alpha), 'overlay alpha');
    batch.dispatch({ label: `overlay_${total}`, wgsl: code, workgroups: grid(total, THREADS) }, [base.buffer, top.buffer, out, params]);
    return { buffer: out, count: top.count, height: top.height, width: top.width };
  });
}

export interface PanelOptions {
  /** Pixels between neighbouring images (default 4). */
  gap?: number;
  /** The gaps' colour, [R, G, B] or [R, G, B, A] in 0..255 (default opaque white). */
  background?: readonly number[];
  /** Record into this batch (it is submitted, for the one read-back), else a batch of its own. */
  batch?: CommandBatch;
}

/**
 * A side-by-side strip of images of one height, left to right in the order
 * given (input | prediction | ground truth | maps…; an entry holding several
 * images contributes each of them in turn), `gap` pixels of `background`
 * between neighbours. Built on the GPU and read back once, as one picture.
 */
export async function panel(gpu: Gpu, images: readonly GpuImages[], options: PanelOptions = {}): Promise<RgbaImage> {
  const gap = options.gap ?? 4;
  if (!(Number.isSafeInteger(gap) && gap >= 0)) throw new InputError(`panel: gap must be a non-negative integer, got ${String(gap)}`);
  const bg = options.background ?? [255, 255, 255, 255];
  if (!Array.isArray(bg) || (bg.length !== 3 && bg.length !== 4) || bg.some((v) => !(Number.isInteger(v) && v >= 0 && v <= 255))) {
    throw new InputError(`panel: background must be [R, G, B] or [R, G, B, A] integers in 0..255, got ${JSON.stringify(bg)}`);
  }
  if (images.length === 0) throw new InputError('panel: no images given');
  for (const [k, im] of images.entries()) checkImages(gpu, im, `panel image ${k}`);
  const height = images[0]!.height;
  const odd = images.findIndex((im) => im.height !== height);
  if (odd >= 0) {
    throw new InputError(
      `panel: every image must be ${height} pixels high (as image 0, ${describe(images[0]!)}), but image ${odd} is ${describe(images[odd]!)}`,
    );
  }
  const tiles = images.reduce((n, im) => n + im.count, 0);
  const width = images.reduce((w, im) => w + im.count * im.width, 0) + gap * (tiles - 1);
  const background = (bg[0]! | (bg[1]! << 8) | (bg[2]! << 16) | ((bg[3] ?? 255) << 24)) >>> 0;

  return checked(gpu, 'panel', async () => {
    const batch = options.batch ?? new CommandBatch(gpu);
    if (batch.gpu.device !== gpu.device) throw new InputError('the CommandBatch belongs to another device');
    try {
      const out = batch.temporary(height * width * 4, 'panel');
      if (gap > 0) {
        const fill = `${storage(0, 'Y', 'u32', 'read_write')}
${storage(1, 'P', 'u32', 'read')}
${flatMain(
  THREADS,
  `  if (i >= ${height * width}u) { return; }
  Y[i] = P[0];`,
)}`;
        batch.dispatch({ label: `panel_fill_${height * width}`, wgsl: fill, workgroups: grid(height * width, THREADS) }, [
          out,
          batch.upload(Uint32Array.of(background), 'panel background'),
        ]);
      }
      let x0 = 0;
      for (const im of images) {
        const pixels = im.height * im.width;
        const total = im.count * pixels;
        // Image n of this entry, pixel (y, x) lands at column x0 + n * (w + gap) + x of row y.
        const code = `${storage(0, 'X', 'u32', 'read')}
${storage(1, 'Y', 'u32', 'read_write')}
${flatMain(
  THREADS,
  `  if (i >= ${total}u) { return; }
  let n = i / ${pixels}u;
  let r = i % ${pixels}u;
  let y = r / ${im.width}u;
  let x = r % ${im.width}u;
  Y[y * ${width}u + ${x0}u + n * ${im.width + gap}u + x] = X[i];`,
)}`;
        batch.dispatch({ label: `panel_copy_${im.count}x${im.height}x${im.width}`, wgsl: code, workgroups: grid(total, THREADS) }, [
          { buffer: im.buffer, bytes: total * 4 },
          out,
        ]);
        x0 += im.count * (im.width + gap);
      }
      const [picture] = await readRGBA(gpu, { buffer: out, count: 1, height, width }, batch);
      return picture!;
    } catch (e) {
      batch.discard();
      throw e;
    }
  });
}
