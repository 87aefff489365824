/**
 * What uploading a model's weights costs by itself: 403 MB (about
 * ResNet-101 DeepLabv3+'s packed f32 weights on a CPU adapter) in 32 MB
 * storage buffers created for it, as a session build does, written by
 * queue.writeBuffer (what runtime/program.ts does) and by mappedAtCreation,
 * each timed from the first createBuffer to onSubmittedWorkDone. The data
 * stays the same JavaScript arrays, touched before timing, so what is
 * measured is Dawn's and the driver's side: staging memory and the buffers'
 * own, fresh each time.
 *
 *   node --import tsx bench/upload.ts [--runs 3]
 *
 * Writes bench/results/upload.json and prints a line per way.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePositive } from '../src/cli/args.js';
import { openDawn } from '../src/gpu/dawn.js';
import { timeStats } from '../src/runtime/timing.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = parsePositive('--runs', values.runs!);

const CHUNK_FLOATS = 8 << 20;
const CHUNKS = 12;

const gpu = await openDawn();
const { device } = gpu;
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const chunks = Array.from({ length: CHUNKS }, (_, k) => new Float32Array(CHUNK_FLOATS).fill(k));

const ways = {
  writeBuffer: (data: Float32Array<ArrayBuffer>) => {
    const buffer = device.createBuffer({ size: data.byteLength, usage });
    device.queue.writeBuffer(buffer, 0, data);
    return buffer;
  },
  mappedAtCreation: (data: Float32Array<ArrayBuffer>) => {
    const buffer = device.createBuffer({ size: data.byteLength, usage, mappedAtCreation: true });
    new Float32Array(buffer.getMappedRange()).set(data);
    buffer.unmap();
    return buffer;
  },
};

const ms: Record<string, number[]> = { writeBuffer: [], mappedAtCreation: [] };
for (let r = 0; r < runs; r++) {
  for (const [name, upload] of Object.entries(ways)) {
    const t0 = performance.now();
    const buffers = chunks.map(upload);
    await device.queue.onSubmittedWorkDone();
    ms[name]!.push(performance.now() - t0);
    for (const b of buffers) b.destroy();
  }
}
const megabytes = (CHUNKS * CHUNK_FLOATS * 4) / 1e6;
const result = {
  date: new Date().toISOString(),
  adapter: gpu.description,
  megabytes,
  buffers: CHUNKS,
  runs,
  ways: Object.fromEntries(
    Object.entries(ms).map(([name, times]) => [name, { ms: times, medianMs: timeStats(times).median, mbPerS: megabytes / (timeStats(times).median / 1000) }]),
  ),
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
const file = join(import.meta.dirname, 'results', 'upload.json');
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
for (const [name, w] of Object.entries(result.ways))
  console.log(`${name}: ${megabytes.toFixed(0)} MB in ${w.medianMs.toFixed(0)} ms (${w.mbPerS.toFixed(0)} MB/s)`);
console.log(`wrote ${file}`);
device.destroy();
