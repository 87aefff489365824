/**
 * The explorer page's entry (bundled by tools/build-explorer.ts into app.js):
 * the engine on the browser's WebGPU, nothing sent anywhere.
 */
import { requestGpu } from '../gpu/device.js';
import { Explorer } from './app.js';

const gpu = requestGpu();
const explorer = new Explorer(gpu);
// Without WebGPU the module tree still works (it needs no GPU); the error says why nothing runs.
gpu.catch((e: unknown) => explorer.error(e));
explorer.start().catch((e: unknown) => explorer.error(e));
