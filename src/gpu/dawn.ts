/**
 * The one module that loads Dawn's Node bindings (npm `webgpu`). Everything
 * else takes a `GPU` object, so the engine also runs on `navigator.gpu`.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { GpuError } from '../errors.js';
import { openDevice, type Gpu } from './device.js';

export interface DawnOptions {
  /** Dawn backend: 'vulkan', 'opengles', 'opengl', 'metal', 'd3d12'… Default: $SEGSCOPE_BACKEND, else try the platform default then OpenGL ES. */
  backend?: string;
  /** Adapter name substring, as Dawn lists them. Default: $SEGSCOPE_ADAPTER. */
  adapter?: string;
}

interface Attempt {
  backend: string;
  featureLevel: 'core' | 'compatibility';
}

const HOW_TO_GET_A_DRIVER =
  'Install a GPU driver with Vulkan support. On Linux without a GPU use Mesa >= 24 lavapipe ' +
  '(Debian 12: add bookworm-backports, then `apt-get install -t bookworm-backports mesa-vulkan-drivers`). ' +
  'Choose a backend with --backend or SEGSCOPE_BACKEND (vulkan, opengles, …) and an adapter with --adapter or SEGSCOPE_ADAPTER.';

/**
 * Lavapipe (Mesa's llvmpipe Vulkan driver) threads per CPU when
 * LP_NUM_THREADS is unset; lavapipe's own default is one per CPU. Measured
 * on a 2-CPU machine end to end (bench/results/lp-threads.json, sweep of
 * 2026-12-07): ResNet-50 DeepLabv3+ at 513x513 ran at 21 GFLOP/s with 2
 * threads, 27 with 4, 29-32 with 8 and 32-33 with 16 (16 ahead of 8 in both
 * interleaved pairs), the default model at 14, 17-19, 21-23 and 22-23.
 * Hence 16 there, written per CPU so that a larger machine is not held to
 * 16 (llvmpipe caps the count at its own maximum). The FMA roofline
 * (bench/roofline.ts) agrees: 72, 94, 102 and 114 GFLOP/s at 2, 4, 8 and 16
 * threads.
 * Lavapipe reads the variable when its Vulkan device is created; every
 * other driver ignores it. A user's own LP_NUM_THREADS wins.
 */
export const LAVAPIPE_THREADS_PER_CPU = 8;

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };

let dawn: DawnModule | undefined;
function loadDawn(): DawnModule {
  if (!dawn) {
    try {
      dawn = createRequire(import.meta.url)('webgpu') as DawnModule;
    } catch (e) {
      throw new GpuError(`cannot load Dawn's Node bindings (npm package 'webgpu'): ${(e as Error).message}`);
    }
    // GPUBufferUsage, GPUMapMode… are globals in browsers; the engine uses them as such.
    Object.assign(globalThis, dawn.globals);
  }
  return dawn;
}

export async function openDawn(options: DawnOptions = {}): Promise<Gpu> {
  const env = globalThis.process?.env ?? {};
  const backend = options.backend ?? env.SEGSCOPE_BACKEND;
  const adapterName = options.adapter ?? env.SEGSCOPE_ADAPTER;
  const attempts: Attempt[] = backend
    ? [{ backend, featureLevel: backend.startsWith('opengl') ? 'compatibility' : 'core' }]
    : [
        { backend: '', featureLevel: 'core' },
        { backend: 'opengles', featureLevel: 'compatibility' },
      ];
  if (globalThis.process?.env && env.LP_NUM_THREADS === undefined) env.LP_NUM_THREADS = String(LAVAPIPE_THREADS_PER_CPU * availableParallelism());
  const { create } = loadDawn();
  const failures: string[] = [];
  for (const attempt of attempts) {
    const label = attempt.backend || 'default backend';
    const flags = [attempt.backend && `backend=${attempt.backend}`, adapterName && `adapter=${adapterName}`].filter((f): f is string => !!f);
    try {
      const instance = create(flags);
      const adapter = await instance.requestAdapter({ featureLevel: attempt.featureLevel });
      if (adapter) return await openDevice(instance, adapter, `${label} (${attempt.featureLevel})`);
      failures.push(`${label} (${attempt.featureLevel}): no adapter`);
    } catch (e) {
      failures.push(`${label} (${attempt.featureLevel}): ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new GpuError(`no WebGPU adapter found. Tried: ${failures.join('; ')}. ${HOW_TO_GET_A_DRIVER}`);
}
