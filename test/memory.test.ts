/** The buffer planner (src/model/memory.ts) on random lifetimes and on the fixture model, against the definitions. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModelFile } from '../src/io/model-file.js';
import { inferTypes } from '../src/model/infer.js';
import { planBuffers, type Lifetime } from '../src/model/memory.js';
import { registry } from '../src/ops/registry.js';
import { planMemory } from '../src/runtime/profile.js';
import { planProgram } from '../src/runtime/program.js';
import { random } from './helpers/gpu.js';

/** The live set by brute force: at each step, the bytes of every tensor alive then. */
function liveSet(lifetimes: readonly Lifetime[]): number {
  const steps = new Set(lifetimes.flatMap((t) => [t.first, Number.isFinite(t.last) ? t.last : t.first]));
  return Math.max(0, ...[...steps].map((s) => lifetimes.filter((t) => t.first <= s && s <= t.last).reduce((a, t) => a + t.bytes, 0)));
}

describe('planBuffers', () => {
  it('never lets tensors alive at the same step share bytes, aligns offsets, respects the arena size', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = random(3 * 40, seed, 0, 1);
      const lifetimes: Lifetime[] = Array.from({ length: 40 }, (_, i) => {
        const first = Math.floor(r[3 * i]! * 30) - 1;
        const length = Math.floor(r[3 * i + 1]! * 8);
        return { id: `t${i}`, bytes: 4 * (1 + Math.floor(r[3 * i + 2]! ** 3 * 5000)), first, last: i % 13 === 0 ? Infinity : first + length };
      });
      const limits = { alignment: 256, maxArenaBytes: seed % 2 ? Infinity : 40_000 };
      const plan = planBuffers(lifetimes, limits);
      const live = liveSet(lifetimes);
      expect(plan.liveBytes, `seed ${seed}`).toBe(live);
      expect(plan.slotBytes.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(live);
      for (const t of lifetimes) {
        const p = plan.placeOf.get(t.id)!;
        expect(p.offset % 256).toBe(0);
        expect(p.offset + t.bytes).toBeLessThanOrEqual(plan.slotBytes[p.slot]!);
        if (t.bytes <= limits.maxArenaBytes) expect(p.offset + t.bytes).toBeLessThanOrEqual(limits.maxArenaBytes);
      }
      for (const a of lifetimes) {
        for (const b of lifetimes) {
          if (a === b || a.first > b.last || b.first > a.last) continue;
          const [pa, pb] = [plan.placeOf.get(a.id)!, plan.placeOf.get(b.id)!];
          if (pa.slot !== pb.slot) continue;
          expect(pa.offset + a.bytes <= pb.offset || pb.offset + b.bytes <= pa.offset, `seed ${seed}: ${a.id} and ${b.id}`).toBe(true);
        }
      }
    }
  });

  it('plans the fixture DeepLabv3+ within 10% of its largest live set', async () => {
    const graph = await readModelFile(join(import.meta.dirname, 'fixtures/deeplabv3plus_os16.onnx'));
    const typed = inferTypes(graph, new Map([['input', [1, 3, 129, 129]]]), (op) => registry.get(op)?.infer);
    const limits = { maxStorageBufferBindingSize: 2 ** 27, maxBufferSize: 2 ** 30, minStorageBufferOffsetAlignment: 256 };
    const memory = planMemory(planProgram(typed, new Set(), limits));
    expect(memory.activationBytes).toBeLessThanOrEqual(1.1 * memory.liveBytes);
    // Capturing every tensor keeps each to the end: the plan is their sum, give or take the 256-byte alignment of each.
    const all = planMemory(planProgram(typed, new Set(typed.types.keys()), limits));
    expect(all.activationBytes).toBeGreaterThanOrEqual(all.liveBytes);
    expect(all.activationBytes).toBeLessThanOrEqual(all.liveBytes + 256 * typed.types.size);
  });
});
