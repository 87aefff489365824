import { GpuError, InputError, ModelError, UnsupportedOpError } from '../errors.js';

/**
 * An error as the page shows it: its kind, then its message, which names
 * the file, node, tensor or setting at fault. Anything else is a bug or the
 * browser's, and says so.
 */
export function errorMessage(e: unknown): string {
  if (e instanceof UnsupportedOpError) return `Unsupported: ${e.message}`;
  if (e instanceof ModelError) return `Model error: ${e.message}`;
  if (e instanceof GpuError) return `GPU error: ${e.message}`;
  if (e instanceof InputError) return `Input error: ${e.message}`;
  return `Error: ${e instanceof Error ? e.message : String(e)}`;
}
