/**
 * `npm run bench`: the benchmarks the files at hand allow, one after another,
 * each against onnxruntime in the same run:
 * - end to end on the default model (weights/, always there) at 257x257;
 * - the adapter's roofline (FMA throughput and copy bandwidth per lavapipe
 *   thread count), on which the op table places each op;
 * - end to end on the full-size ResNet-101 and ResNet-50 DeepLabv3+ at
 *   513x513 and the op table of the ResNet-101 model, when
 *   `tools/export_fixtures.py --only big,big_r50` has made them (big/);
 * - a gradient run (GradientSession: forward and backward for a class
 *   target) against the forward pass alone, on the default model at 257x257
 *   and on those full-size models at 513x513 when present;
 * - the feature-map pipeline against a model run;
 * - how fast the image guards refuse oversized files;
 * - the weight memory of every model at hand at f32 and f16 (planned bytes);
 * - convs to one to four channels (the heads of mask networks);
 * - session builds on an empty and on a warm Mesa shader cache;
 * - the explorer page in Chromium's WebGPU (SwiftShader): time to the first
 *   picture, a colormap redraw and a layer change, when Chromium is installed.
 * Each writes its bench/results/*.json (and ops.md). A script that fails
 * stops the run with its exit status.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { noBrowser } from '../test/helpers/browser.js';

const root = join(import.meta.dirname, '..');
const R101 = 'big/deeplabv3plus_r101_os16.onnx';
const R50 = 'big/deeplabv3plus_r50_os16.onnx';
const have = (file: string) => existsSync(join(root, file));

const steps: string[][] = [
  ['bench/e2e.ts', 'weights/deeplabv3plus_scenes.onnx', '--size', '257'],
  ['bench/gradients.ts', 'weights/deeplabv3plus_scenes.onnx', '--size', '257'],
  // The roofline first: the op table places each op on it.
  ['bench/roofline.ts'],
  ...(have(R101) ? [['bench/e2e.ts', R101], ['bench/ops.ts'], ['bench/gradients.ts', R101]] : []),
  ...(have(R50)
    ? [
        ['bench/e2e.ts', R50],
        ['bench/gradients.ts', R50],
      ]
    : []),
  ['bench/vis.ts'],
  ['bench/image.ts'],
  ['bench/weights.ts'],
  ['bench/narrow-conv.ts'],
  ['bench/cold-start.ts'],
  ['bench/upload.ts'],
  ...(noBrowser ? [] : [['bench/explorer.ts']]),
];
if (noBrowser) console.error(`the explorer benchmark is skipped: ${noBrowser}`);
if (!have(R101)) console.error(`${R101} is missing: the full-size runs and the op table are skipped (make it with tools/export_fixtures.py --only big)`);
for (const step of steps) {
  console.error(`\n$ node --import tsx ${step.join(' ')}`);
  const { status } = spawnSync(process.execPath, ['--import', 'tsx', ...step], { cwd: root, stdio: 'inherit' });
  if (status !== 0) process.exit(status ?? 1);
}
