import { GpuError } from '../errors.js';
import { pipelinesValidated } from './pipelines.js';

/**
 * A WebGPU device with what the engine needs to know about it. Built from
 * any `GPU` object: Dawn's in Node (src/gpu/dawn.ts) or `navigator.gpu` in a
 * browser, so nothing here depends on Node.
 */
export interface Gpu {
  device: GPUDevice;
  limits: GPUSupportedLimits;
  features: ReadonlySet<string>;
  /** e.g. 'vulkan: llvmpipe (LLVM 15.0.6, 256 bits)'. */
  description: string;
  /**
   * The subgroup size of a CPU adapter (Mesa's lavapipe: 8) whose device has
   * the 'subgroups' feature and one fixed subgroup size; undefined on GPUs.
   * Kernels written for SIMD CPUs use it (ops/conv/subgroup.ts).
   */
  cpuSubgroupSize?: number;
  /** Set once the device is lost; every later use fails with this error. */
  lost?: GpuError;
  /**
   * The GPU instance the adapter came from. Held for the device's lifetime:
   * Dawn destroys the instance when it is garbage collected, and a device
   * whose instance is gone crashes the process at its next submit.
   */
  instance: GPU;
}

/**
 * Limits set to the adapter's best: its maxima, which large activations
 * need, and its storage offset alignment, which the buffer plan packs
 * tensors to and which decides whether a Concat's inputs can be computed in
 * place (runtime/in-place.ts). WebGPU's default is 256 bytes; lavapipe
 * allows 16, at which DeepLabv3+'s decoder concat (48 low-level channels of
 * 129x129 first) takes its inputs in place.
 */
const ADAPTER_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'minStorageBufferOffsetAlignment',
] as const;

const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

/**
 * Opens a device on `gpu`'s adapter: a browser's `navigator.gpu` by default.
 * Node gets its GPU from openDawn (gpu/dawn.ts), which also ends in openDevice.
 */
export async function requestGpu(gpu: GPU | undefined = globalThis.navigator?.gpu, options: GPURequestAdapterOptions = {}): Promise<Gpu> {
  if (!gpu) throw new GpuError('WebGPU is not available here (navigator.gpu is undefined): use a browser with WebGPU, or openDawn in Node');
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter(options);
  } catch (e) {
    throw new GpuError(`WebGPU: requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) throw new GpuError('WebGPU: no adapter found (the browser may block WebGPU on this GPU or driver)');
  return openDevice(gpu, adapter, 'WebGPU');
}

export async function openDevice(instance: GPU, adapter: GPUAdapter, label: string): Promise<Gpu> {
  const requiredLimits: Record<string, number> = {};
  for (const name of ADAPTER_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'segscope' });
  } catch (e) {
    throw new GpuError(`${label}: requestDevice failed: ${(e as Error).message}`);
  }
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean; subgroupMinSize?: number; subgroupMaxSize?: number };
  const features = new Set([...device.features] as string[]);
  const cpu = info.isFallbackAdapter === true && features.has('subgroups') && !!info.subgroupMinSize && info.subgroupMinSize === info.subgroupMaxSize;
  const gpu: Gpu = {
    instance,
    device,
    limits: device.limits,
    features,
    ...(cpu ? { cpuSubgroupSize: info.subgroupMinSize } : {}),
    description: `${label}: ${[info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter'}`,
  };
  void device.lost.then((info) => {
    gpu.lost = new GpuError(`GPU device lost (${info.reason}): ${info.message || 'no reason given'}`);
  });
  return gpu;
}

/**
 * Runs `body` inside validation and out-of-memory error scopes, so that a
 * WebGPU error becomes a GpuError naming `what` instead of a console warning
 * followed by wrong numbers; a pipeline the device refused (pipelines.ts)
 * becomes one naming its kernel.
 */
export async function checked<T>(gpu: Gpu, what: string, body: () => T | Promise<T>): Promise<T> {
  if (gpu.lost) throw gpu.lost;
  const { device } = gpu;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T | undefined;
  let failure: unknown;
  try {
    result = await body();
    await pipelinesValidated(device);
  } catch (e) {
    failure = e;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  // A GpuError from the body (a refused shader, a limit) names the cause; the scopes then hold only its consequences.
  if (failure instanceof GpuError) throw failure;
  const error = oom ?? validation;
  if (error) throw new GpuError(`${what}: ${oom ? 'out of GPU memory' : 'WebGPU validation error'}: ${error.message}`);
  if (failure !== undefined) throw failure;
  if (gpu.lost) throw gpu.lost;
  return result as T;
}
