/**
 * Where a session's GPU time goes: kernel timestamps (Session.profile)
 * summed per ONNX node, with each node's arithmetic work, and the memory the
 * buffer plan holds.
 */
import { originalName } from '../model/passes.js';
import { align4 } from '../gpu/buffers.js';
import { hasTimestamps } from '../gpu/timestamps.js';
import type { HostTensor } from '../model/graph.js';
import { sizeOf } from '../model/graph.js';
import { summarize } from '../model/summary.js';
import type { Plan } from './plan.js';
import type { KernelTime, Session } from './session.js';
import { timeStats } from './timing.js';

/** One ONNX node's share of a profiled run. */
export interface NodeProfile {
  /** The ONNX node name (a fused node is reported under the node it replaces). */
  node: string;
  opType: string;
  /** Labels of the node's kernels, in dispatch order. */
  kernels: string[];
  outputShape: number[];
  /** Median over the profiled runs of the node's summed kernel times. */
  ms: number;
  /** Percent of the summed times of all nodes. */
  share: number;
  /** See flopsByNode. */
  flops: number;
  /** flops / ms, in GFLOP/s. */
  gflops: number;
}

export interface PlanMemory {
  /** Activation buffers: the sum of the plan's slots. */
  activationBytes: number;
  /** The most activation bytes live at once, the least any plan needs: activationBytes / liveBytes is the planner's overhead. */
  liveBytes: number;
  /** Weights and other load-time data uploaded once. */
  weightBytes: number;
  totalBytes: number;
}

/**
 * Profiles `runs` runs of the session on `feeds` and returns every node that
 * dispatches kernels, slowest first. Null when the device cannot time
 * kernels (no 'timestamp-query').
 */
export async function profileNodes(session: Session, feeds: Record<string, HostTensor>, runs: number): Promise<NodeProfile[] | null> {
  if (!hasTimestamps(session.gpu)) return null;
  const samples: KernelTime[][] = [];
  for (let r = 0; r < runs; r++) samples.push((await session.profile(feeds)).kernels);
  return aggregate(session, samples);
}

/**
 * Arithmetic work of each node the GPU runs, by ONNX node name: 2·MACs
 * (summary.ts counts them) for Conv, ConvTranspose, Gemm and MatMul; the
 * output elements for every other op.
 */
export function flopsByNode(session: Session): Map<string, number> {
  const { nodes } = summarize(session.typed, session.typed.graph);
  return new Map(
    nodes.filter((n) => !n.constant).map((n) => [n.name, n.macs ? 2 * n.macs : n.outputs.reduce((a, o) => a + (o.shape ? sizeOf(o.shape) : 0), 0)]),
  );
}

/** Kernel times of several runs -> one row per ONNX node, with the median of its per-run sums. */
function aggregate(session: Session, samples: readonly KernelTime[][]): NodeProfile[] {
  const flopsOf = flopsByNode(session);
  const rows = new Map<string, { opType: string; kernels: string[]; outputShape: number[]; perRun: number[] }>();
  samples.forEach((kernels, run) => {
    for (const { node, label, ms } of kernels) {
      const name = originalName(node);
      let row = rows.get(name);
      if (!row) {
        row = { opType: node.opType, kernels: [], outputShape: [...(session.typeOf(node.outputs[0]!)?.dims ?? [])], perRun: [] };
        rows.set(name, row);
      }
      if (run === 0) row.kernels.push(label);
      row.perRun[run] = (row.perRun[run] ?? 0) + ms;
    }
  });
  const total = [...rows.values()].reduce((a, r) => a + timeStats(r.perRun).median, 0);
  return [...rows]
    .map(([node, r]): NodeProfile => {
      const ms = timeStats(r.perRun).median;
      const flops = flopsOf.get(node) ?? 0;
      return {
        node,
        opType: r.opType,
        kernels: r.kernels,
        outputShape: r.outputShape,
        ms,
        share: total > 0 ? (100 * ms) / total : 0,
        flops,
        gflops: ms > 0 ? flops / ms / 1e6 : 0,
      };
    })
    .sort((a, b) => b.ms - a.ms);
}

/** What the plan keeps on the GPU: activation slots, and every upload once. */
export function planMemory(plan: Plan): PlanMemory {
  const activationBytes = plan.slotBytes.reduce((a, b) => a + align4(b), 0);
  const uploads = new Map<string, number>();
  for (const k of plan.kernels) for (const b of k.buffers) if (b.kind === 'upload') uploads.set(b.key, align4(b.bytes));
  const weightBytes = [...uploads.values()].reduce((a, b) => a + b, 0);
  return { activationBytes, liveBytes: plan.liveBytes, weightBytes, totalBytes: activationBytes + weightBytes };
}
