/**
 * The recipe references made by tools/make_vis_references.py (NumPy/torch:
 * reduce over channels, F.interpolate, min-max, np.uint8(255 * x)): their
 * seeded inputs, the uint8 level maps, and the comparison of a jet picture
 * with them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decodeNpy } from '../../src/io/npy.js';
import { colormap, type Reduction, type ReductionOrder } from '../../src/vis/index.js';
import { random } from './gpu.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/vis');

export interface RecipeInput {
  dims: number[];
  seed: number;
  lo: number;
  hi: number;
  relu: boolean;
  sum: number;
  first: number[];
}
export interface RecipeReference {
  tensor: string;
  reduce: Reduction;
  order: ReductionOrder;
  size: [number, number];
  alignCorners: boolean;
  rowStep: number;
  min: number;
  max: number;
  levels: string;
}
export interface Recipe {
  torch: string;
  numpy: string;
  inputs: Record<string, RecipeInput>;
  references: RecipeReference[];
}

export const recipe = JSON.parse(readFileSync(join(FIXTURES, 'recipe.json'), 'utf8')) as Recipe;

/** A reference input regenerated with the script's seeded generator. */
export function recipeInput(spec: RecipeInput): Float32Array {
  return random(
    spec.dims.reduce((a, b) => a * b),
    spec.seed,
    spec.lo,
    spec.hi,
  ).map((v) => (spec.relu ? Math.max(v, 0) : v));
}

/** The reference levels: gunzip, .npy, then undo the planar predictor (left + up - up-left, mod 256). */
export function referenceLevels(file: string): { rows: number; cols: number; levels: Uint8Array } {
  const residual = decodeNpy(gunzipSync(readFileSync(join(FIXTURES, file))), file);
  const [rows, cols] = residual.dims as [number, number];
  const levels = new Uint8Array(rows * cols);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const left = x > 0 ? levels[y * cols + x - 1]! : 0;
      const up = y > 0 ? levels[(y - 1) * cols + x]! : 0;
      const upLeft = x > 0 && y > 0 ? levels[(y - 1) * cols + x - 1]! : 0;
      levels[y * cols + x] = (residual.data[y * cols + x]! + left + up - upLeft) & 255;
    }
  }
  return { rows, cols, levels };
}

const jet = colormap('jet');

/**
 * How an RGBA jet picture of `ref.size` matches the reference levels (every
 * `ref.rowStep`-th row): pixels that are jet at exactly the reference level,
 * within one level, and whether all are opaque.
 */
export function compareWithRecipe(rgba: Uint8Array, ref: RecipeReference): { n: number; exact: number; within: number; opaque: boolean } {
  const want = referenceLevels(ref.levels);
  if (want.cols !== ref.size[1] || want.rows !== Math.ceil(ref.size[0] / ref.rowStep))
    throw new Error(`${ref.levels}: ${want.rows}x${want.cols} levels for size ${ref.size}`);
  let within = 0;
  let exact = 0;
  let opaque = true;
  for (let r = 0; r < want.rows; r++) {
    for (let x = 0; x < want.cols; x++) {
      const p = (r * ref.rowStep * ref.size[1] + x) * 4;
      const level = want.levels[r * want.cols + x]!;
      const is = (l: number) => l >= 0 && l <= 255 && [0, 1, 2].every((k) => rgba[p + k] === jet[l * 3 + k]);
      if (is(level)) exact++;
      if (is(level) || is(level - 1) || is(level + 1)) within++;
      if (rgba[p + 3] !== 255) opaque = false;
    }
  }
  return { n: want.rows * want.cols, exact, within, opaque };
}
