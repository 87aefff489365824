import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const ROOT = join(import.meta.dirname, '../..');

/** Runs the segscope command from source, as a user would run it: a child process. */
export async function segscope(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return segscopeWithEnv({}, ...args);
}

/** The same, with extra environment variables (SEGSCOPE_BACKEND, …). */
export async function segscopeWithEnv(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      maxBuffer: 64 << 20,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** stderr lines without Dawn's adapter warnings. */
export const errors = (stderr: string) => stderr.split('\n').filter((l) => l && !l.startsWith('Warning:'));
