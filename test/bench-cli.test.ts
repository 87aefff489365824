/**
 * `segscope bench` as a user runs it. Speeds are never asserted beyond being
 * positive and finite: the machine is shared and the adapter is software.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errors, ROOT, segscope } from './helpers/cli.js';

const MODEL = join(ROOT, 'test/fixtures/deeplabv3plus_os16.onnx');

interface Row {
  node: string;
  op: string;
  output_shape: number[];
  ms: number;
  share_pct: number;
  flops: number;
  gflops_per_s: number;
}

const positive = (v: number) => Number.isFinite(v) && v > 0;

describe('segscope bench', () => {
  it('--json gives the median latency, the slowest nodes, totals and the memory plan', async () => {
    const { code, stdout, stderr } = await segscope('bench', MODEL, '--size', '65x65', '--runs', '2', '--json');
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    const r = JSON.parse(stdout) as Record<string, unknown> & { top: Row[]; rest: { nodes: number; share_pct: number } | null };
    expect(r.inputs).toEqual({ input: [1, 3, 65, 65] });
    for (const key of ['median_ms', 'min_ms', 'mean_ms', 'build_ms', 'flops', 'gflops_per_s']) expect(positive(r[key] as number), key).toBe(true);
    expect(positive((r.memory as { peak_bytes: number }).peak_bytes)).toBe(true);
    if (r.timing === 'wall-clock') return void expect(r.top).toEqual([]);
    expect(r.top.length).toBe(10);
    expect(r.top.length + r.rest!.nodes).toBe(r.nodes);
    for (const row of r.top) {
      expect(row.ms).toBeGreaterThanOrEqual(0);
      expect(row.output_shape.length).toBeGreaterThan(0);
      expect(row.flops).toBeGreaterThan(0);
      expect(Number.isFinite(row.gflops_per_s)).toBe(true);
    }
    expect(r.top.reduce((a, row) => a + row.share_pct, r.rest!.share_pct)).toBeCloseTo(100, 6);
    // The per-kernel sum is stated against the run it profiles.
    expect(r.gpu_vs_run).toBeCloseTo((r.gpu_ms as number) / (r.median_ms as number), 10);
  });

  it('prints a compact table, and onnxruntime-node ratios with --vs ort', async () => {
    const { code, stdout, stderr } = await segscope('bench', MODEL, '--size', '33x33', '--runs', '1', '--warmup', '0', '--top', '3', '--vs', 'ort');
    expect(errors(stderr)).toEqual([]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/median [\d.]+ ms/);
    expect(stdout).toMatch(/planned GPU memory: .* MiB/);
    expect(stdout).toMatch(/\d+ other nodes/);
    expect(stdout).toMatch(/ms in \d+ nodes, [\d.]+x the median run \(one pass per kernel loses the overlap of a run's single pass\); shares are of this sum/);
    expect(stdout).toMatch(/onnxruntime-node CPU median [\d.]+ ms \(segscope\/ORT [\d.]+x: (faster|slower)\); WebGPU (median|failed)/);
  });

  it('names the option and what it takes for every bad value, in one line', async () => {
    const cases: [string[], RegExp][] = [
      [['--size', '65'], /--size '65': expected HEIGHTxWIDTH/],
      [['--runs', '0'], /--runs '0': expected a positive integer/],
      [['--warmup=-1'], /--warmup '-1': expected a whole number/],
      [['--top', 'ten'], /--top 'ten': expected a positive integer/],
      [['--vs', 'tfjs'], /--vs 'tfjs': the only peer is ort/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await segscope('bench', MODEL, ...args);
      expect(code, args.join(' ')).toBe(1);
      expect(errors(stderr), args.join(' ')).toEqual([expect.stringMatching(message)]);
    }
    const none = await segscope('bench');
    expect(errors(none.stderr)).toEqual([expect.stringMatching(/bench takes one MODEL argument/)]);
    const missing = await segscope('bench', 'nope.onnx');
    expect(errors(missing.stderr)).toEqual([expect.stringMatching(/cannot read model file 'nope.onnx'/)]);
  });

  it('--help shows examples', async () => {
    const { code, stdout } = await segscope('bench', '--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/Examples:\n {2}segscope bench model.onnx/);
  });
});
