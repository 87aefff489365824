import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Files that ship with the package, found two levels above this module (src/cli and dist/cli alike). */

/** The embedded default model and its samples. */
export const WEIGHTS = fileURLToPath(new URL('../../weights/', import.meta.url));
export const DEFAULT_MODEL = join(WEIGHTS, 'deeplabv3plus_scenes.onnx');
export const SAMPLES = join(WEIGHTS, 'samples');
export const SAMPLE_LABELS = join(SAMPLES, 'labels');

/** The explorer page as tools/build-explorer.ts builds it (npm run build). */
export const EXPLORER = fileURLToPath(new URL('../../dist/explorer', import.meta.url));

/** weights/… as a path relative to the working directory when it lies below it, so reports and summaries read short. */
export function shortPath(arg: string): string {
  if (!arg.startsWith(WEIGHTS)) return arg;
  const rel = relative(process.cwd(), arg);
  return rel.startsWith('..') || isAbsolute(rel) ? arg : rel;
}
