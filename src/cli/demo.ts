import { DEFAULT_MODEL, SAMPLE_LABELS, SAMPLES, shortPath, WEIGHTS } from './package-files.js';
import { visCommand } from './vis.js';

const DEMO_ARGS = [
  DEFAULT_MODEL,
  SAMPLES,
  '--labels',
  SAMPLE_LABELS,
  '--layer',
  'classifier.aspp.project',
  '--layer',
  'classifier.project',
  '--reduce',
  'max,mean',
  '--report',
];
const DEFAULT_OUT = ['--out', 'segscope-demo'];

export const demoHelp = `Usage: segscope demo [vis options]

The recipe on the embedded default model: a DeepLabv3+ (ResNet, output
stride 16) trained on procedural street and landscape scenes, run on its
sample images. Writes, into segscope-demo/ (or --out DIR), each sample's
input, ground truth and prediction, the max and mean maps of the ASPP output
(classifier.aspp.project, [1,256,17,17] at 257x257) and of the decoder's
low-level projection (classifier.project, [1,48,65,65]), and report.html
putting them side by side, with the prediction's pixel accuracy and mIoU.

It is 'segscope vis' with these arguments:
  segscope vis ${[...DEMO_ARGS, ...DEFAULT_OUT].map((a) => (a.startsWith(WEIGHTS) ? `weights/${a.slice(WEIGHTS.length)}` : a)).join(' ')}
and whatever is given here is added to them: a vis option (a later value
wins; another --layer adds a column) or more images. See 'segscope vis --help'.

Examples:
  segscope demo
  segscope demo --out /tmp/demo --colormap turbo --overlay 0.5
  segscope demo --layer backbone.layer4 --grid 16
  segscope demo my_street.jpg`;

export async function demoCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return void console.log(demoHelp);
  const out = argv.some((a) => a === '--out' || a.startsWith('--out=')) ? [] : DEFAULT_OUT;
  await visCommand([...DEMO_ARGS.map(shortPath), ...out, ...argv]);
}
