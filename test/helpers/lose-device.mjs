/**
 * Preloaded into a segscope CLI child by the device-loss test (through
 * NODE_OPTIONS=--import, hence plain JavaScript: it loads before tsx does).
 * Destroys the process's GPU device right after its N-th queue submit
 * (LOSE_DEVICE_AT_SUBMIT), as a driver reset or a removed GPU would, with no
 * hook in segscope itself: Dawn's classes are shared by all objects of a kind,
 * so patching the prototypes of a probe adapter and queue reaches the device
 * segscope opens later. Prints the number of submits at exit.
 */
import { createRequire } from 'node:module';

const at = Number(process.env.LOSE_DEVICE_AT_SUBMIT);
const dawn = createRequire(import.meta.url)('webgpu');
const probe = await dawn.create([]).requestAdapter();
if (!probe) throw new Error('lose-device: no adapter');
const probeDevice = await probe.requestDevice();

let device;
const adapterProto = Object.getPrototypeOf(probe);
const requestDevice = adapterProto.requestDevice;
adapterProto.requestDevice = async function (...args) {
  device = await requestDevice.apply(this, args);
  return device;
};

let submits = 0;
const queueProto = Object.getPrototypeOf(probeDevice.queue);
const submit = queueProto.submit;
queueProto.submit = function (...args) {
  submit.apply(this, args);
  if (++submits === at) device?.destroy();
};
probeDevice.destroy();
process.on('exit', () => process.stderr.write(`lose-device: ${submits} submits\n`));
