import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { decodeNpy } from '../io/npy.js';
import type { HostTensor } from '../model/graph.js';
import { PRECISIONS, type Precision } from '../model/precision.js';
import type { Normalization } from '../vis/normalize.js';
import { NORMALIZATION_MODES, type NormalizationMode } from '../workflow/draw.js';

/** Option values shared by the commands: each bad value is an InputError naming the option and what it takes. */

export function parseNormalize(text: string): { method: Normalization; shared: boolean } {
  if (Object.hasOwn(NORMALIZATION_MODES, text)) return NORMALIZATION_MODES[text as NormalizationMode];
  throw new InputError(`--normalize '${text}': use minmax, p1-99 or shared`);
}

export function parseAlpha(text: string, option = '--overlay'): number {
  const a = Number(text);
  if (!/^\s*[\d.]+\s*$/.test(text) || !(a >= 0 && a <= 1)) throw new InputError(`${option} '${text}': expected an opacity between 0 and 1, e.g. 0.5`);
  return a;
}

export function parsePrecision(text: string): Precision {
  const precision = PRECISIONS.find((p) => p === text.trim());
  if (!precision) throw new InputError(`--precision '${text}': expected f32 or f16 (float16 activations, needs the adapter's shader-f16)`);
  return precision;
}

export function parseHW(option: string, text: string, or = ''): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new InputError(`${option} '${text}': expected HEIGHTxWIDTH with positive integers, e.g. 513x513${or ? ` ${or}` : ''}`);
  }
  return [Number(m[1]), Number(m[2])];
}

export function parsePositive(option: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new InputError(`${option} '${text}': expected a positive integer`);
  return Number(text);
}

export function parseTriple(option: string, text: string): [number, number, number] {
  const v = text.split(',').map((s) => Number(s.trim()));
  if (v.length !== 3 || v.some((x, k) => !Number.isFinite(x) || !text.split(',')[k]!.trim())) {
    throw new InputError(`${option} '${text}': expected three numbers R,G,B on the 0..1 scale, e.g. 0.485,0.456,0.406`);
  }
  return v as [number, number, number];
}

export function parseCount(option: string, text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new InputError(`${option} '${text}': expected a whole number, 0 or more`);
  return Number(text);
}

/** The .npy file an option names; a file that cannot be read is an error prefixed with `option`. */
export async function readNpyFile(file: string, option: string): Promise<HostTensor> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new InputError(`${option}: cannot read '${file}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeNpy(bytes, file);
}
