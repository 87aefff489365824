/** The planned GPU memory as `segscope bench` and `segscope run` report it. */
import type { PlanMemory } from '../runtime/profile.js';

/** The --json form. */
export function memoryReport(m: PlanMemory) {
  return { activation_bytes: m.activationBytes, live_set_bytes: m.liveBytes, weight_bytes: m.weightBytes, peak_bytes: m.totalBytes };
}
export type MemoryReport = ReturnType<typeof memoryReport>;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** One line of text. */
export function memoryText(m: MemoryReport): string {
  return `planned GPU memory: ${mib(m.activation_bytes)} activations (largest live set ${mib(m.live_set_bytes)}, +${(100 * (m.activation_bytes / m.live_set_bytes - 1)).toFixed(1)}%) + ${mib(m.weight_bytes)} weights and constants = ${mib(m.peak_bytes)}`;
}
