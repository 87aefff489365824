import { GpuError } from '../errors.js';

/**
 * The one place compute pipelines are made, for the sessions' kernels and
 * the vis stages alike: one cache per device, keyed by WGSL source (shapes
 * are baked into the source, so equal source is an equal pipeline, shared by
 * every session and stage on the device), each compiled inside a validation
 * error scope so that a refused shader becomes a GpuError naming its kernel
 * and the compiler's messages.
 */

interface DevicePipelines {
  byCode: Map<string, GPUComputePipeline>;
  /** Validations not yet awaited by pipelinesValidated. */
  pending: Promise<void>[];
}
const devices = new WeakMap<GPUDevice, DevicePipelines>();

function pipelinesOf(device: GPUDevice): DevicePipelines {
  let p = devices.get(device);
  if (!p) {
    p = { byCode: new Map(), pending: [] };
    devices.set(device, p);
  }
  return p;
}

/**
 * The pipeline of `code` (entry point `main`, layout 'auto'), compiled at
 * its first use; `label` names the kernel in errors and in the driver's
 * tools. Compiled synchronously: dawn.node's createComputePipelineAsync
 * crashes the process on Mesa's lavapipe. Whether the device accepted it is
 * known later: `pipelinesValidated` (which `checked` awaits) throws then.
 */
export function computePipeline(device: GPUDevice, code: string, label: string): GPUComputePipeline {
  const cache = pipelinesOf(device);
  const cached = cache.byCode.get(code);
  if (cached) return cached;
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code: withF16Directive(code), label });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label });
  const validated = device.popErrorScope().then(async (error) => {
    if (!error) return;
    cache.byCode.delete(code);
    const info = await module.getCompilationInfo();
    const messages = info.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ');
    throw new GpuError(`${label}: shader failed to compile: ${messages || error.message}`);
  });
  // Handled here so that a failure nobody awaits is no unhandled rejection; awaiting it still throws.
  validated.catch(() => undefined);
  cache.pending.push(validated);
  cache.byCode.set(code, pipeline);
  return pipeline;
}

/** Waits until the device has validated every pipeline compiled so far; throws the first one it refused. */
export async function pipelinesValidated(device: GPUDevice): Promise<void> {
  await Promise.all(pipelinesOf(device).pending.splice(0));
}

/** The number of pipelines cached for a device (for tests of the cache). */
export const cachedPipelineCount = (device: GPUDevice): number => devices.get(device)?.byCode.size ?? 0;

/**
 * The source with the `enable f16;` directive WGSL requires before any use
 * of f16, when it has one: kernels build their declarations from tensor
 * types and need not track whether any of them is float16.
 */
const withF16Directive = (wgsl: string): string => (/\bf16\b/.test(wgsl) ? `enable f16;\n${wgsl}` : wgsl);
