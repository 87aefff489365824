import { Bench } from 'tinybench';

/**
 * Wall-clock times of `runs` calls of `run` after `warmup` untimed ones, in
 * milliseconds, measured by tinybench (a fixed number of iterations: one run
 * of a large model takes seconds, so a time budget would mean one sample).
 * Every figure segscope reports against onnxruntime comes from here, on both
 * sides.
 */
export async function timeRuns(run: () => Promise<unknown>, runs: number, warmup: number): Promise<number[]> {
  const bench = new Bench({ iterations: runs, time: 0, warmup: warmup > 0, warmupIterations: warmup, warmupTime: 0, throws: true });
  // An async function, always: tinybench runs a plain function that returns a
  // promise as synchronous, without awaiting, overlapping the runs.
  bench.add('run', async () => {
    await run();
  });
  await bench.run();
  return [...bench.tasks[0]!.result!.latency.samples];
}

/** Median, minimum and mean of a list of times. */
export function timeStats(ms: readonly number[]): { median: number; min: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return {
    median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2,
    min: s[0]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}
