import { execFile, spawn } from 'node:child_process';
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

/** A segscope command that runs until stopped (serve): its first line of stdout once printed, then a signal. */
export interface RunningSegscope {
  /** The first line it printed, or undefined when it exited without one. */
  firstLine: string | undefined;
  /** Sends `signal` (unless it has exited already) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

export async function segscopeRunning(env: Record<string, string>, ...args: string[]): Promise<RunningSegscope> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  const firstLine = await new Promise<string | undefined>((done) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (stdout.includes('\n')) done(stdout.split('\n')[0]);
    });
    void exited.then(() => done(undefined));
  });
  return {
    firstLine,
    stop: async (signal = 'SIGINT') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return { code: await exited, stdout, stderr };
    },
  };
}
