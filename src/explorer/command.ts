import { commandLine } from '../workflow/command-line.js';
import type { DrawOptions, NormalizationMode } from '../workflow/draw.js';

/**
 * "Copy as command": the `segscope vis` command line that writes the picture
 * the explorer shows, so a view found by clicking becomes a reproducible
 * file. Paths are the ones the server was started with when it knows them,
 * else the file names as picked in the page.
 */
export interface CommandInput {
  model: string;
  image: string;
  /** The labels folder, when the image's label came from one. */
  labels?: string;
  /** The model input size when it is not the model's default. */
  inputSize?: readonly [number, number];
  layer: string;
  reduce: string;
  options: Pick<DrawOptions, 'order' | 'colormap' | 'grid'> & { normalize?: NormalizationMode; overlay?: number };
  out?: string;
}

export function visCommand(c: CommandInput): string {
  const o = c.options;
  const args = ['segscope', 'vis', c.model, c.image, '--layer', c.layer, '--reduce', c.reduce];
  if (o.order && o.order !== 'reduce-first') args.push('--order', o.order);
  if (o.colormap && o.colormap !== 'jet') args.push('--colormap', o.colormap);
  if (o.normalize && o.normalize !== 'minmax') args.push('--normalize', o.normalize);
  if (o.overlay !== undefined) args.push('--overlay', String(o.overlay));
  if (o.grid !== undefined) args.push('--grid', String(o.grid));
  if (c.inputSize) args.push('--input-size', `${c.inputSize[0]}x${c.inputSize[1]}`);
  if (c.labels) args.push('--labels', c.labels);
  args.push('--out', c.out ?? 'segscope-vis');
  return commandLine(args);
}
