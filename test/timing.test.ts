/** src/runtime/timing.ts: tinybench times exactly the runs asked for, one at a time. */
import { describe, expect, it } from 'vitest';
import { timeRuns, timeStats } from '../src/runtime/timing.js';

describe('timeRuns', () => {
  it('awaits each run before the next, also for a plain function returning a promise', async () => {
    let inFlight = 0;
    let most = 0;
    let calls = 0;
    const run = () => {
      calls++;
      most = Math.max(most, ++inFlight);
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          inFlight--;
          resolve();
        }, 5),
      );
    };
    const ms = await timeRuns(run, 4, 2);
    expect(calls).toBe(6);
    expect(most).toBe(1);
    expect(ms).toHaveLength(4);
    for (const t of ms) expect(t).toBeGreaterThanOrEqual(4);
  });

  it('timeStats gives the median, minimum and mean', () => {
    expect(timeStats([5, 1, 3])).toEqual({ median: 3, min: 1, mean: 3 });
    expect(timeStats([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, mean: 2.5 });
  });
});
