/**
 * A test page's script (bundled by test/explorer.test.ts): the library's
 * browser entry run on the page's WebGPU, so that a test can compare its
 * numbers with the Node engine's. Tensors cross as base64 float32.
 */
import { modelFromBytes, requestGpu, Session } from '../../src/browser.js';

const toBase64 = (a: Float32Array) => {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
};
const fromBase64 = (text: string) => new Float32Array(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer);

async function runEngine(modelUrl: string, input: { name: string; dims: number[]; data: string }, capture: string[]) {
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const gpu = await requestGpu();
  const session = await Session.create(gpu, modelFromBytes(bytes, modelUrl), { inputShapes: { [input.name]: input.dims }, capture });
  const { outputs, captured } = await session.run({ type: 'float32', dims: input.dims, data: fromBase64(input.data) });
  const result: Record<string, string> = {};
  for (const [name, t] of outputs) result[name] = toBase64(Float32Array.from(t.data as ArrayLike<number>));
  for (const [name, t] of captured) result[name] = toBase64(await t.read());
  session.destroy();
  return result;
}

Object.assign(globalThis, { runEngine });
