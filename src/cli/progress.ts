/**
 * One status line on stderr, redrawn in place: the phase (loading the
 * model, compiling shaders, images done of total) with a bar and, once a
 * rate is known, an ETA. Silent when disabled (--quiet, --json, or stderr
 * not a terminal), so logs and pipes get no carriage returns.
 */
export class Progress {
  private phaseStart = performance.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /** A phase without a count ("loading model.onnx"). */
  phase(text: string): void {
    this.phaseStart = performance.now();
    this.draw(`${text}…`, true);
  }

  /** `done` of `total` in the current phase; the first call with done = 0 starts its clock. */
  step(label: string, done: number, total: number, detail = ''): void {
    const now = performance.now();
    if (done === 0) this.phaseStart = now;
    const width = 24;
    const filled = total > 0 ? Math.round((width * done) / total) : width;
    const elapsed = (now - this.phaseStart) / 1000;
    const eta = done > 0 && done < total ? ` ETA ${formatSeconds((elapsed / done) * (total - done))}` : '';
    this.draw(
      `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${eta}${detail ? ` ${detail}` : ''}`,
      done === 0 || done === total,
    );
  }

  /** Ends the line so that later output starts on a fresh one. */
  end(): void {
    if (this.enabled && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  private draw(text: string, force: boolean): void {
    if (!this.enabled) return;
    const now = performance.now();
    // Redraws are cheap but not free on a slow terminal: at most 10 a second, plus the first and last of a phase.
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const columns = this.stream.columns || 100;
    this.stream.write(`\r${text.slice(0, columns - 1)}\x1b[K`);
    this.drawn = true;
  }
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
