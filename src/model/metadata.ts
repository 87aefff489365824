import { ModelError } from '../errors.js';
import type { Graph } from './graph.js';

/**
 * What a segmentation model says about itself in its metadata_props, the way
 * mmsegmentation keeps `classes` and `palette` in its checkpoint meta:
 *
 *   classes     JSON array of K class names
 *   palette     JSON array of K [r, g, b] colours (0..255)
 *   mean, std   JSON arrays of 3 numbers: input normalisation on the 0..1 scale
 *   input_size  "HxW": the size the model was trained and evaluated at
 *
 * Every key is optional. The strings come from an untrusted file: a key that
 * is present but malformed is a ModelError naming the file and the key, never
 * a value used half-parsed.
 */
export interface SegmentationMetadata {
  classes?: string[];
  /** RGB bytes, 3 per class. */
  palette?: Uint8Array;
  mean?: [number, number, number];
  std?: [number, number, number];
  inputSize?: [number, number];
}

/** Class names longer than this are refused: they are labels for a legend, not payloads. */
const MAX_NAME = 200;
const MAX_CLASSES = 4096;
/** A stated input size is a default for every run: larger than 8K video is not a plausible one. */
const MAX_SIDE = 8192;

export function segmentationMetadata(graph: Graph): SegmentationMetadata {
  const meta = graph.metadata;
  const where = (key: string) => `${graph.source || 'model'}: metadata_props '${key}'`;
  const json = (key: string): unknown => {
    try {
      return JSON.parse(meta[key]!);
    } catch {
      throw new ModelError(`${where(key)} is not valid JSON: ${JSON.stringify(meta[key]!.slice(0, 80))}`);
    }
  };
  const out: SegmentationMetadata = {};
  if (meta.classes !== undefined) {
    const classes = json('classes');
    if (!Array.isArray(classes) || !classes.length || classes.length > MAX_CLASSES || !classes.every((c) => typeof c === 'string' && c.length <= MAX_NAME)) {
      throw new ModelError(`${where('classes')}: expected a JSON array of 1 to ${MAX_CLASSES} class names (strings of at most ${MAX_NAME} characters)`);
    }
    out.classes = classes as string[];
  }
  if (meta.palette !== undefined) {
    const palette = json('palette');
    const isColour = (c: unknown) => Array.isArray(c) && c.length === 3 && c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255);
    if (!Array.isArray(palette) || !palette.length || palette.length > MAX_CLASSES || !palette.every(isColour)) {
      throw new ModelError(`${where('palette')}: expected a JSON array of [r, g, b] colours with integers 0..255`);
    }
    if (out.classes && palette.length !== out.classes.length) {
      throw new ModelError(`${where('palette')} has ${palette.length} colours for ${out.classes.length} classes`);
    }
    out.palette = Uint8Array.from((palette as number[][]).flat());
  }
  for (const key of ['mean', 'std'] as const) {
    if (meta[key] === undefined) continue;
    const v = json(key);
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || (key === 'std' && v.includes(0))) {
      throw new ModelError(`${where(key)}: expected a JSON array of three ${key === 'std' ? 'non-zero ' : ''}numbers (R, G, B on the 0..1 scale)`);
    }
    out[key] = v as [number, number, number];
  }
  if (meta.input_size !== undefined) {
    const m = /^(\d{1,5})x(\d{1,5})$/.exec(meta.input_size.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || Number(m[1]) > MAX_SIDE || Number(m[2]) > MAX_SIDE) {
      throw new ModelError(`${where('input_size')}: expected HEIGHTxWIDTH with sides 1..${MAX_SIDE}, e.g. 513x513`);
    }
    out.inputSize = [Number(m[1]), Number(m[2])];
  }
  return out;
}
