import { removePendingWrites } from '../io/files.js';

/**
 * Ctrl-C (SIGINT) and SIGTERM. A command that writes files stops at once:
 * files are written through a temporary name and a rename, so none is
 * half-written under its final name, and the temporaries in flight are
 * removed (exit 130, 143). A command that runs until it is stopped (serve)
 * waits for the signal instead, to stop cleanly and exit 0.
 */
let waiting: ((signal: NodeJS.Signals) => void) | undefined;

export function handleSignals(): void {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      const resolve = waiting;
      // A second Ctrl-C, while the first one's stop hangs, exits at once.
      waiting = undefined;
      if (resolve) return resolve(signal);
      removePendingWrites();
      process.exit(code);
    });
  }
}

/** Resolves at the next SIGINT or SIGTERM, which then does not exit the process. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    waiting = resolve;
  });
}
