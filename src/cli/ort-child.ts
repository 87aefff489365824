/**
 * Child process of ort.ts: times one onnxruntime-node provider on one model.
 * argv[2] is an OrtRequest as JSON; prints an OrtTiming as JSON, or one
 * error line on stderr.
 */
import { writeFileSync } from 'node:fs';
import { timeRuns } from '../runtime/timing.js';
import { pseudoRandom, type OrtRequest, type OrtTiming } from './ort.js';

async function time(request: OrtRequest): Promise<OrtTiming> {
  const ort = await import('onnxruntime-node').catch(() => {
    throw new Error('onnxruntime-node is not installed (npm install onnxruntime-node)');
  });
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(request.model, { executionProviders: [request.provider] });
  const loadMs = performance.now() - t0;
  const feeds = Object.fromEntries(
    Object.entries(request.shapes).map(([name, dims]) => [name, new ort.Tensor('float32', pseudoRandom(dims.reduce((a, b) => a * b, 1)), dims)]),
  );
  let first: Float32Array | undefined;
  // The warm-up runs include the WebGPU provider's shader compilation.
  const runMs = await timeRuns(
    async () => {
      const result = await session.run(feeds);
      // Reading the output back is part of a run, as it is for segscope.
      first = (await result[session.outputNames[0]!]!.getData()) as Float32Array;
    },
    request.runs,
    request.warmup,
  );
  if (request.outputFile) writeFileSync(request.outputFile, first!);
  return { provider: request.provider, loadMs, runMs };
}

time(JSON.parse(process.argv[2]!) as OrtRequest).then(
  (timing) => {
    console.log(JSON.stringify(timing));
    // onnxruntime's WebGPU provider can keep the event loop alive.
    process.exit(0);
  },
  (e: unknown) => {
    console.error((e instanceof Error ? e.message : String(e)).split('\n')[0]);
    process.exit(1);
  },
);
