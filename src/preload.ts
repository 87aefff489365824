/**
 * The files the explorer page opens on arrival, as JSON: `segscope serve`'s
 * /preload.json and the static build's default.json (tools/build-explorer.ts)
 * write it, the page reads it. Browser-safe: types and a parser, no Node API.
 */
import { InputError } from './errors.js';

/** Files for the explorer to open: a model and images, each by URL relative to the page. */
export interface PreloadFile {
  name: string;
  url: string;
}

export interface Preload {
  /**
   * The model; `externalData` are its external data files by the `location`
   * the model names them with. `path` is the model path as given on the
   * command line (for "copy as command"), absent when there is none.
   */
  model?: PreloadFile & { path?: string; externalData?: { location: string; url: string }[] };
  /** Images, each with its ground-truth label image when one was given; `path` as given on the command line. */
  images: (PreloadFile & { path?: string; label?: PreloadFile & { path?: string } })[];
  /** The labels folder as given with --labels (for "copy as command"). */
  labels?: string;
}

/**
 * Checks that `json` (JSON.parse's result) is a Preload and returns it
 * without unknown fields. The page fetches it, so it is untrusted: a bad
 * field is an InputError naming `source` and the field, e.g. `images[2].url`.
 */
export function parsePreload(json: unknown, source: string): Preload {
  const fail = (field: string, expected: string): never => {
    throw new InputError(`${source}: ${field || 'the manifest'} must be ${expected}`);
  };
  const object = (v: unknown, field: string) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(field, 'an object');
  const array = (v: unknown, field: string) => (Array.isArray(v) ? (v as unknown[]) : fail(field, 'an array'));
  const string = (v: unknown, field: string) => (typeof v === 'string' && v !== '' ? v : fail(field, 'a non-empty string'));
  const optional = <T>(v: unknown, read: (v: unknown) => T): T | undefined => (v === undefined ? undefined : read(v));
  const file = (v: unknown, field: string) => {
    const o = object(v, field);
    const path = optional(o.path, (p) => string(p, `${field}.path`));
    return { name: string(o.name, `${field}.name`), url: string(o.url, `${field}.url`), ...(path === undefined ? {} : { path }) };
  };

  const top = object(json, '');
  const model = optional(top.model, (m) => {
    const externalData = optional(object(m, 'model').externalData, (list) =>
      array(list, 'model.externalData').map((e, k) => {
        const o = object(e, `model.externalData[${k}]`);
        return { location: string(o.location, `model.externalData[${k}].location`), url: string(o.url, `model.externalData[${k}].url`) };
      }),
    );
    return { ...file(m, 'model'), ...(externalData ? { externalData } : {}) };
  });
  const images = array(top.images, 'images').map((v, k) => {
    const label = optional(object(v, `images[${k}]`).label, (l) => file(l, `images[${k}].label`));
    return { ...file(v, `images[${k}]`), ...(label ? { label } : {}) };
  });
  const labels = optional(top.labels, (l) => string(l, 'labels'));
  return { ...(model ? { model } : {}), images, ...(labels === undefined ? {} : { labels }) };
}
