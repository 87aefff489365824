import { unzipSync, zipSync, type Zippable } from 'fflate';
import { InputError } from '../errors.js';
import type { HostTensor } from '../model/graph.js';
import { decodeNpy, encodeNpy } from './npy.js';

/**
 * NumPy .npz: a ZIP archive with one `<name>.npy` entry per array, as
 * `numpy.savez` (stored) and `numpy.savez_compressed` (deflate) write it;
 * `np.load(f)[name]` gives each array back. Through fflate; the arrays
 * themselves go through encodeNpy/decodeNpy (float32 as '<f4', integer types
 * as '<i8').
 */

export interface EncodeNpzOptions {
  /** Deflate the entries, like numpy.savez_compressed (default true); false stores them, like numpy.savez. */
  compress?: boolean;
}

/** Entries get numpy's fixed timestamp (1980-01-01), so the same tensors always give the same bytes. */
const MTIME = new Date(1980, 0, 1, 0, 0, 0);

export function encodeNpz(tensors: Readonly<Record<string, HostTensor>> | ReadonlyMap<string, HostTensor>, options: EncodeNpzOptions = {}): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, HostTensor>);
  const files: Zippable = Object.create(null) as Zippable;
  const level = options.compress === false ? 0 : 6;
  for (const [name, tensor] of entries) {
    if (name === '' || name.includes('\0')) throw new InputError(`.npz array names must be non-empty and free of NUL characters, got ${JSON.stringify(name)}`);
    files[`${name}.npy`] = [encodeNpy(tensor), { level, mtime: MTIME }];
  }
  return zipSync(files, { level, mtime: MTIME });
}

export interface DecodeNpzOptions {
  /** Refuse archives whose arrays add up to more than this many bytes uncompressed (default 2 GiB). */
  maxBytes?: number;
}

/**
 * Reads an .npz archive into name -> tensor, in archive order (the `.npy`
 * suffix removed, as np.load's keys). Entries that are not `.npy` files are
 * skipped. Errors are InputErrors naming `source` and the entry.
 */
export function decodeNpz(bytes: Uint8Array, source: string, options: DecodeNpzOptions = {}): Map<string, HostTensor> {
  const maxBytes = options.maxBytes ?? 2 * 2 ** 30;
  const fail = (why: string) => new InputError(`${source}: not a readable .npz file: ${why}`);
  if (bytes.length === 0) throw fail('the file is empty');
  if (bytes.length < 22 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) throw fail('not a ZIP archive (np.savez writes one)');
  let total = 0;
  let unzipped: Record<string, Uint8Array>;
  try {
    unzipped = unzipSync(bytes, {
      filter: (f) => {
        if (!f.name.endsWith('.npy')) return false;
        total += f.originalSize;
        if (total > maxBytes) throw fail(`its arrays need more than ${maxBytes} bytes uncompressed (maxBytes)`);
        if (f.compression !== 0 && f.compression !== 8)
          throw fail(`entry '${f.name}' uses compression method ${f.compression}; only stored and deflate are supported`);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw fail((e as Error).message);
  }
  const out = new Map<string, HostTensor>();
  for (const [entry, data] of Object.entries(unzipped)) {
    if (!entry.endsWith('.npy')) continue;
    out.set(entry.slice(0, -4), decodeNpy(data, `${source}[${entry}]`));
  }
  return out;
}
