/**
 * onnxruntime-node as the peer segscope is compared with. Each provider runs
 * in a child process (ort-child.ts): onnxruntime's WebGPU provider brings its
 * own Dawn, which must not share a process with segscope's, and a child
 * process keeps one provider's threads and memory away from the other's
 * timings. Every process feeds the same pseudo-random input.
 */
import { execFile } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export type OrtProvider = 'cpu' | 'webgpu';

export interface OrtRequest {
  model: string;
  provider: OrtProvider;
  /** Shape of each graph input; every input is float32, filled by pseudoRandom. */
  shapes: Record<string, number[]>;
  runs: number;
  warmup: number;
  /** Where the child writes its first output's values (raw float32), for accuracy checks. */
  outputFile?: string;
}

export interface OrtTiming {
  provider: OrtProvider;
  /** Session creation (parse, optimise, upload). */
  loadMs: number;
  runMs: number[];
}

/** The same input values in every process: a linear congruential sequence in [-0.5, 0.5). */
export function pseudoRandom(length: number): Float32Array<ArrayBuffer> {
  const x = new Float32Array(length);
  let s = 12345;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = s / 2 ** 32 - 0.5;
  }
  return x;
}

/** ort-child.ts next to this module: .ts from source (run through the parent's loader flags, e.g. tsx), .js once built. */
const CHILD = fileURLToPath(new URL(`./ort-child${extname(import.meta.filename)}`, import.meta.url));

/**
 * Times `request` in a child process. Rejects with the child's last error
 * line when onnxruntime-node is missing or the provider cannot run the model.
 */
export async function timeOrt(request: OrtRequest): Promise<OrtTiming> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, CHILD, JSON.stringify(request)], {
      encoding: 'utf8',
      maxBuffer: 16 << 20,
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as OrtTiming;
  } catch (e) {
    const stderr = ((e as { stderr?: string }).stderr ?? '').split('\n').filter((l) => l.trim() && !l.startsWith('Warning:'));
    throw new Error(`onnxruntime-node ${request.provider}: ${stderr.pop() ?? (e as Error).message}`);
  }
}
