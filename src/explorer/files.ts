import { InputError } from '../errors.js';
import { parsePreload, type Preload } from '../preload.js';

/**
 * Files in the page: fetched from the server (or the static folder), or
 * picked and dropped by the user. Images are decoded by the browser, with
 * no colour management or premultiplication, so that the pixels are the
 * file's, as the CLI's decoder reads them.
 */

/** An image's RGBA pixels, as a canvas holds them. */
export type Pixels = ImageData;

export async function decodeImage(blob: Blob, name: string): Promise<Pixels> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new InputError(`${name}: not an image this browser can decode (${(e as Error).message || 'unknown format'})`);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d', { colorSpace: 'srgb' })!;
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return context.getImageData(0, 0, canvas.width, canvas.height, { colorSpace: 'srgb' });
}

/** The bytes at `url`; InputError naming the file when the server has none. */
export async function fetchBytes(url: string, name: string): Promise<Uint8Array<ArrayBuffer>> {
  const response = await fetch(url);
  if (!response.ok) throw new InputError(`${name}: the server answered ${response.status} ${response.statusText} for ${url}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The manifest at `url`, or undefined when there is none (a static host without preloaded files). */
export async function fetchPreload(url: string): Promise<Preload | undefined> {
  const response = await fetch(url);
  if (response.status === 404) return undefined;
  if (!response.ok) throw new InputError(`${url}: the server answered ${response.status} ${response.statusText}`);
  return parsePreload(await response.json(), url);
}

/** Picked or dropped files sorted by what they are: the model (.onnx), its possible external data (any other non-image file), images. */
export function sortFiles(files: readonly File[]): { models: File[]; images: File[]; data: File[] } {
  const models: File[] = [];
  const images: File[] = [];
  const data: File[] = [];
  for (const file of files) {
    if (/\.onnx$/i.test(file.name)) models.push(file);
    else if (/\.(png|jpe?g|webp)$/i.test(file.name)) images.push(file);
    else data.push(file);
  }
  return { models, images, data };
}

/** The file name without its extension: how images and their labels are paired, as `segscope vis --labels` pairs them. */
export const stem = (name: string) => name.replace(/\.[^.]*$/, '');
