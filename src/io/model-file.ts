/**
 * Loading a .onnx file from disk, with its external data files. External
 * data must stay inside the model's folder: a model file is untrusted input
 * and must not make segscope read arbitrary files.
 */
import { closeSync, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { InputError, ModelError } from '../errors.js';
import { externalDataEnd, modelFromBytes } from '../model/from-bytes.js';
import type { Graph } from '../model/graph.js';

export async function readModelFile(file: string): Promise<Graph> {
  return (await readModelWithData(file)).graph;
}

/** A model file's graph, and the external data files it read. */
export interface ModelWithData {
  graph: Graph;
  /** Each external data file once, by the `location` the model names it with, and its real path (symlinks resolved). */
  externalData: { location: string; path: string }[];
}

/** readModelFile, also saying which external data files the model uses (`segscope serve` serves them to the page). */
export async function readModelWithData(file: string): Promise<ModelWithData> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new InputError(`cannot read model file '${file}' (${errorReason(e)})`);
  }
  const external = new ExternalDataFiles(path.dirname(file));
  try {
    // Both the file's bytes and each external read are this function's own.
    const graph = modelFromBytes(bytes, file, (location, offset, length) => external.read(location, offset, length), { adoptBytes: true });
    return { graph, externalData: external.used() };
  } finally {
    external.close();
  }
}

/** "ENOENT: no such file or directory" without the trailing ", open '<path>'" that the caller already names. */
function errorReason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return (e as NodeJS.ErrnoException).code ? message.split(', ')[0] : message;
}

interface OpenFile {
  path: string;
  real: string;
  fd: number;
  size: number;
}

/** Opens each external data file once per load: models usually keep all tensors in one file. */
class ExternalDataFiles {
  private readonly files = new Map<string, OpenFile>();

  constructor(private readonly folder: string) {}

  read(location: string, offset: number, length: number | undefined): Uint8Array {
    const file = this.open(location);
    const end = externalDataEnd(file.path, file.size, offset, length);
    const bytes = new Uint8Array(end - offset);
    for (let done = 0; done < bytes.length; ) {
      const n = readSync(file.fd, bytes, done, bytes.length - done, offset + done);
      if (n === 0) throw new ModelError(`external data file '${file.path}' ended early while reading`);
      done += n;
    }
    return bytes;
  }

  used(): { location: string; path: string }[] {
    return [...this.files].map(([location, file]) => ({ location, path: file.real }));
  }

  close(): void {
    for (const file of this.files.values()) closeSync(file.fd);
    this.files.clear();
  }

  private open(location: string): OpenFile {
    const cached = this.files.get(location);
    if (cached) return cached;
    const { target, real } = this.resolveInside(location);
    let fd: number;
    try {
      fd = openSync(real, 'r');
    } catch (e) {
      throw new ModelError(`cannot open external data file '${target}' (${errorReason(e)})`);
    }
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      closeSync(fd);
      throw new ModelError(`external data location '${target}' is not a file`);
    }
    const file = { path: target, real, fd, size: stat.size };
    this.files.set(location, file);
    return file;
  }

  /** Refuses absolute paths, '..' escapes and symlinks that lead out of the model's folder. */
  private resolveInside(location: string): { target: string; real: string } {
    const refuse = (why: string): never => {
      throw new ModelError(`external data location '${location}' ${why}; it must be a path inside the model's folder '${this.folder}'`);
    };
    if (location.includes('\0')) refuse('contains a NUL byte');
    if (path.posix.isAbsolute(location) || path.win32.isAbsolute(location)) refuse('is absolute');
    const folder = path.resolve(this.folder);
    const target = path.resolve(folder, location);
    if (!isInside(folder, target)) refuse('leaves the folder');
    // Compare real paths so a symlink inside the folder cannot point outside it.
    let real: string;
    try {
      real = realpathSync(target);
    } catch (e) {
      throw new ModelError(`external data file '${target}' cannot be found (${errorReason(e)})`);
    }
    if (!isInside(realpathSync(folder), real)) refuse(`resolves through a symlink to '${real}', outside the folder`);
    return { target, real };
  }
}

function isInside(folder: string, target: string): boolean {
  const rel = path.relative(folder, target);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}
