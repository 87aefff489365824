import { InputError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { sizeOf } from '../model/graph.js';
import { flatMain, grid, storage } from '../kernels/wgsl.js';
import { binding, checkTensor, CommandBatch, record, type TensorLike, type StageOptions } from './tensor.js';

/**
 * RGBA8 images on the GPU: one u32 per pixel (bytes R, G, B, A in memory),
 * `count` images of height x width, row-major.
 */
export interface GpuImages {
  readonly buffer: GPUBuffer;
  readonly count: number;
  readonly height: number;
  readonly width: number;
}

/** An RGBA8 picture on the host: width * height * 4 bytes, row-major. */
export interface RgbaImage {
  width: number;
  height: number;
  rgba: Uint8Array;
}

/** A 256-entry LUT (RGB: 768 bytes, or RGBA: 1024 bytes) packed as one u32 per level. */
export function packLut(lut: Uint8Array): Uint32Array<ArrayBuffer> {
  const channels = lut.length / 256;
  if (channels !== 3 && channels !== 4) {
    throw new InputError(`colour LUT: expected 256 RGB (768 bytes) or RGBA (1024 bytes) entries, got ${lut.length} bytes`);
  }
  const packed = new Uint32Array(256);
  for (let k = 0; k < 256; k++) {
    const [r, g, b] = [lut[k * channels]!, lut[k * channels + 1]!, lut[k * channels + 2]!];
    const a = channels === 4 ? lut[k * 4 + 3]! : 255;
    packed[k] = (r | (g << 8) | (b << 16) | (a << 24)) >>> 0;
  }
  return packed;
}

const THREADS = 256;

/**
 * Colours a [N,1,H,W] map of values in [0, 1] through a 256-entry LUT:
 * level = floor(255·v) clamped to 0..255 (the recipe's `np.uint8(255 * x)`
 * truncates), pixel = lut[level] (as cv2.applyColorMap on that level map;
 * the LUT is RGB, not OpenCV's BGR). NaN is level 0.
 */
export function toRGBA(gpu: Gpu, map01: TensorLike, lut: Uint8Array, options: StageOptions = {}): GpuImages {
  const [N, C, H, W] = map01.dims;
  if (map01.dims.length !== 4 || C !== 1) throw new InputError(`toRGBA: expected an [N,1,H,W] map, got [${map01.dims.join(',')}]`);
  checkTensor(gpu, map01, 'toRGBA');
  const packed = packLut(lut);
  const total = sizeOf(map01.dims);
  const code = `${storage(0, 'X', 'f32', 'read')}
${storage(1, 'Y', 'u32', 'read_write')}
${storage(2, 'LUT', 'u32', 'read')}
${flatMain(
  THREADS,
  `  if (i >= ${total}u) { return; }
  let x = X[i];
  let level = select(0u, u32(clamp(floor(255.0f * x), 0.0f, 255.0f)), x == x);
  Y[i] = LUT[level];`,
)}`;
  return record(gpu, options, (batch) => {
    const out = batch.buffer(total * 4, 'rgba');
    batch.dispatch({ label: `rgba_${total}`, wgsl: code, workgroups: grid(total, THREADS) }, [binding(map01), out, batch.upload(packed, 'colour LUT')]);
    return { buffer: out, count: N!, height: H!, width: W! };
  });
}

/** Reads RGBA images back, one Uint8Array per image (in `batch` if given: it is submitted). */
export async function readRGBA(gpu: Gpu, images: GpuImages, batch: CommandBatch = new CommandBatch(gpu)): Promise<RgbaImage[]> {
  const bytes = images.count * images.height * images.width * 4;
  const [raw] = await batch.readAfterSubmit([{ buffer: images.buffer, bytes }]);
  const all = new Uint8Array(raw!);
  const each = images.height * images.width * 4;
  return Array.from({ length: images.count }, (_, k) => ({ width: images.width, height: images.height, rgba: all.subarray(k * each, (k + 1) * each) }));
}
