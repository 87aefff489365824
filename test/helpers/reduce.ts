/** CPU reference for the channel reductions of src/vis, in float64: one pixel's channel values -> one value. */
export function reduceValues(v: readonly number[], reduction: string): number {
  const k = /^channel:(\d+)$/.exec(reduction);
  if (k) return v[Number(k[1])]!;
  const sum = v.reduce((a, b) => a + b, 0);
  const mean = sum / v.length;
  const f: Record<string, () => number> = {
    max: () => Math.max(...v),
    min: () => Math.min(...v),
    sum: () => sum,
    mean: () => mean,
    std: () => Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length),
    l2: () => Math.sqrt(v.reduce((a, b) => a + b * b, 0)),
    absmax: () => Math.max(...v.map(Math.abs)),
  };
  return f[reduction]!();
}
