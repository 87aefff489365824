import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes through a temporary file and a rename, so that an interrupted run
 * never leaves a half-written file under the final name.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  pending.add(tmp);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  } finally {
    pending.delete(tmp);
  }
}

/** Temporary files being written now: what an interrupted process must remove. */
const pending = new Set<string>();

/** Removes the temporary files of writes in flight (for a SIGINT handler: synchronous). */
export function removePendingWrites(): void {
  for (const tmp of pending) rmSync(tmp, { force: true });
  pending.clear();
}

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)$/i;

/**
 * A file name every filesystem accepts, from a tensor or layer name such as
 * `/aspp/project/project.0/Conv_output_0`: separators and unusual characters
 * become '_', no leading dot, no reserved Windows name, at most 150 characters.
 * `taken` (lower-cased names already used) gets a numeric suffix on collisions,
 * including case-only ones (macOS and Windows are case-insensitive).
 */
export function safeFileName(name: string, extension: string, taken: Set<string>): string {
  let base =
    name
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^[._]+/, '')
      .slice(0, 150) || 'tensor';
  if (WINDOWS_RESERVED.test(base)) base = `_${base}`;
  let file = `${base}${extension}`;
  for (let k = 2; taken.has(file.toLowerCase()); k++) file = `${base}-${k}${extension}`;
  taken.add(file.toLowerCase());
  return file;
}
