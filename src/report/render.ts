import { InputError } from '../errors.js';
import type { ModelInput } from '../workflow/input.js';
import type { PredictionSource } from '../workflow/prediction.js';

/**
 * The HTML report of `segscope vis --report`, rendered without touching a
 * file, so that a browser renders it too (io/report.ts writes it, with its
 * thumbnails). One row per image; columns for the input, the ground truth,
 * the prediction and (binary outputs) its probability in grey, then one
 * column per (layer, tensor, reduction), grouped under a header cell per
 * layer and per tensor. Every thumbnail
 * links to its full-size PNG.
 *
 * The page is self-contained and static: inline CSS, no script, no external
 * URL, so it works offline and from file://. Names come from the ONNX file
 * (node and tensor names), the file system and the command line, all
 * untrusted: every interpolated value is HTML-escaped by the `html` template
 * tag, and the page's Content-Security-Policy forbids scripts as a second
 * line of defence.
 */

export interface OutputFile {
  /** Relative to the out folder, e.g. 'street_classifier.aspp.project_max.png'. */
  file: string;
  /** 'probability': a binary prediction's p in grey. */
  kind: 'input' | 'label' | 'prediction' | 'probability' | 'map' | 'grid' | 'cam';
  /** The --layer pattern as the user typed it. */
  layer?: string;
  /** The ONNX tensor name. */
  tensor?: string;
  /** The tensor shape [N,C,H,W]. */
  shape?: number[];
  /** 'max', 'mean', 'channel:3', …; for a class activation map (kind 'cam'), '<class> <method>', e.g. 'road gradcam'. */
  reduce?: string;
  /** The value range the colormap spans. */
  range?: [number, number];
  /** A class activation map's raw map (.npy), its target's score and the target's pixels. */
  map?: string;
  score?: number;
  pixels?: number;
  /** PNG size. */
  width: number;
  height: number;
}

export interface ImageResult {
  image: string;
  files: OutputFile[];
  metrics?: { pixelAccuracy: number; meanIoU: number };
}

export interface ReportData {
  model: string;
  adapter: string;
  /** [height, width] */
  inputSize: [number, number];
  /** Where the input size and the normalisation came from (a model run; absent for saved tensors). */
  input?: Pick<ModelInput, 'sizeFrom' | 'mean' | 'meanFrom' | 'std' | 'stdFrom'>;
  /** The maps' [height, width]. */
  size: [number, number];
  /** The output the prediction is drawn from, and how (a model run with a drawable output). */
  prediction?: PredictionSource;
  /** The command line as run. */
  command: string;
  classes?: { name: string; color: [number, number, number] }[];
  images: ImageResult[];
  failed: string[];
  /** Over all images. */
  metrics?: { pixelAccuracy: number; meanIoU: number; perClassIoU: (number | null)[] };
  seconds: number;
}

/** The long side of a thumbnail, in pixels: the size io/report.ts makes them and the page shows them. */
export const THUMBNAIL_SIZE = 160;

// ---------------------------------------------------------------------------
// Escaping

/** Markup that is already safe: the `html` tag inserts it as is. */
class Html {
  constructor(readonly text: string) {}
}

/**
 * A template tag that escapes every interpolated value (arrays are joined,
 * null/undefined/false render nothing), except Html values, which are
 * markup built by this tag. Attribute values must be written in double quotes.
 */
function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  return new Html(strings.reduce((out, s, i) => out + markup(values[i - 1]) + s));
}

function markup(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(markup).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Safe in HTML text and in quoted attribute values (single or double). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

/**
 * A file inside the out folder as a relative URL: each path segment
 * percent-encoded, so names with '#', '?', '%', ':' or spaces stay one file
 * name. Refuses (InputError) absolute paths and '..' segments.
 */
export function fileUrl(file: string): string {
  return checkRelativeFile(file).split('/').map(encodeURIComponent).join('/');
}

/** The file itself, if it names a file inside the out folder. */
export function checkRelativeFile(file: string): string {
  const segments = file.split(/[\\/]/);
  if (file === '' || segments.includes('..') || /^([\\/]|[A-Za-z]:)/.test(file)) {
    throw new InputError(`report: ${JSON.stringify(file)} is not a relative path inside the out folder`);
  }
  return file;
}

// ---------------------------------------------------------------------------
// Rendering

/** A map column: one (layer, tensor, reduction); 'grid' files are a column of their own. */
interface Column {
  key: string;
  reduce: string;
}

interface TensorGroup {
  tensor: string;
  shape?: number[];
  columns: Column[];
}

interface LayerGroup {
  layer: string;
  tensors: TensorGroup[];
}

/** The columns that show one picture kind, before the maps. */
const FIXED_COLUMNS = [
  { kind: 'input', title: 'Input' },
  { kind: 'label', title: 'Ground truth' },
  { kind: 'prediction', title: 'Prediction' },
  { kind: 'probability', title: 'Probability' },
] as const;

const GRID = 'channel grid';

function columnOf(f: OutputFile): { layer: string; tensor: string; reduce: string; key: string } {
  const layer = f.layer ?? f.tensor ?? '';
  const tensor = f.tensor ?? '';
  const reduce = f.kind === 'grid' ? GRID : (f.reduce ?? '');
  return { layer, tensor, reduce, key: JSON.stringify([layer, tensor, reduce]) };
}

/**
 * Map columns grouped by layer, then tensor. Layers come in the order they
 * first appear across images, and so do the tensors within a layer and the
 * reductions within a tensor (a layer's columns stay together under its
 * header even when another layer's file came between them).
 */
function mapColumns(images: ImageResult[]): LayerGroup[] {
  const layers: LayerGroup[] = [];
  const seen = new Set<string>();
  for (const f of images.flatMap((i) => i.files)) {
    if (f.kind !== 'map' && f.kind !== 'grid' && f.kind !== 'cam') continue;
    const { layer, tensor, reduce, key } = columnOf(f);
    if (seen.has(key)) continue;
    seen.add(key);
    let group = layers.find((g) => g.layer === layer);
    if (!group) {
      group = { layer, tensors: [] };
      layers.push(group);
    }
    let t = group.tensors.find((g) => g.tensor === tensor);
    if (!t) {
      t = { tensor, ...(f.shape ? { shape: f.shape } : {}), columns: [] };
      group.tensors.push(t);
    }
    t.columns.push({ key, reduce });
  }
  return layers;
}

/**
 * The report page. `thumbs` maps a file to its thumbnail (both relative to
 * the out folder); a file without one is shown scaled down by the browser.
 */
export function renderReport(data: ReportData, thumbs: ReadonlyMap<string, string> = new Map()): string {
  const fixed = FIXED_COLUMNS.filter((c) => data.images.some((i) => i.files.some((f) => f.kind === c.kind)));
  const layers = mapColumns(data.images);
  const columns = layers.flatMap((l) => l.tensors.flatMap((t) => t.columns));
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' file:; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>segscope · ${baseName(data.model)}</title>
<style>${new Html(STYLE)}</style>
</head>
<body>
${summary(data)}
<main>
<table>
<thead>
${headerRows(
  fixed.map((c) => c.title),
  layers,
)}
</thead>
<tbody>
${data.images.map((image) => imageRow(image, fixed, columns, thumbs))}
</tbody>
</table>
${data.images.length === 0 ? html`<p class="note">No image was processed.</p>` : ''}
</main>
</body>
</html>
`;
  return page.text;
}

function summary(data: ReportData): Html {
  const ok = data.images.length;
  const facts: [string, unknown][] = [
    ['Model', data.model],
    ['Adapter', data.adapter],
    ['Input size', data.input ? `${size(data.inputSize)} (${data.input.sizeFrom})` : size(data.inputSize)],
    ...(data.input ? [['Normalisation', normalisation(data.input)] as [string, unknown]] : []),
    ...(data.prediction ? [['Prediction', predictionText(data.prediction)] as [string, unknown]] : []),
    ['Map size', size(data.size)],
    ['Images', data.failed.length ? `${ok} processed, ${data.failed.length} failed` : `${ok} processed`],
    ['Time', duration(data.seconds)],
  ];
  if (data.metrics) {
    facts.push(['Mean IoU', percent(data.metrics.meanIoU)], ['Pixel accuracy', percent(data.metrics.pixelAccuracy)]);
  }
  return html`<header>
<h1>segscope <span>feature maps</span></h1>
<dl class="facts">${facts.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>
<div class="command"><span>Command</span><code>${data.command}</code></div>
${data.classes?.length ? legend(data.classes, data.metrics?.perClassIoU) : ''}
${data.failed.length ? failures(data.failed) : ''}
</header>`;
}

/** The input normalisation, (x/255 - mean)/std per RGB channel, with where each came from. */
export function normalisation(input: NonNullable<ReportData['input']>): string {
  const triple = (v: readonly number[]) => `[${v.map((x) => Number(x.toFixed(4))).join(', ')}]`;
  return `(x/255 - mean)/std, mean ${triple(input.mean)} (${input.meanFrom}), std ${triple(input.std)} (${input.stdFrom})`;
}

/** How the prediction is drawn: from which output, K-class argmax or binary, and for binary what the channel holds. */
export function predictionText(p: PredictionSource): string {
  if (p.kind === 'classes') return `'${p.tensor}', argmax of ${p.classes} classes`;
  const values = p.values === 'probability' ? 'a probability (Sigmoid output)' : 'a logit, p = sigmoid(x)';
  return `'${p.tensor}', binary: ${values}, foreground where p >= 0.5`;
}

function legend(classes: NonNullable<ReportData['classes']>, iou: (number | null)[] | undefined): Html {
  const items = classes.map(({ name, color }, k) => {
    const value = iou?.[k];
    return html`<li><span class="swatch" style="background: ${rgb(color)}"></span>${name}${
      iou ? html` <span class="iou">${typeof value === 'number' ? percent(value) : '—'}</span>` : ''
    }</li>`;
  });
  return html`<section class="legend"><h2>Classes${iou ? ' · IoU' : ''}</h2><ul>${items}</ul></section>`;
}

/** Open when short, so a run with many failures does not push the table off the first screen. */
function failures(failed: string[]): Html {
  return html`<details class="failed"${failed.length <= 5 ? html` open` : ''}><summary>${failed.length} image${failed.length > 1 ? 's' : ''} failed</summary><ul>${failed.map(
    (f) => html`<li>${f}</li>`,
  )}</ul></details>`;
}

/** Three header rows: layer groups, tensors (name and shape), reductions; the fixed columns span all three. */
function headerRows(fixed: string[], layers: LayerGroup[]): Html {
  const rowspan = 3;
  const tensors = layers.flatMap((l) => l.tensors);
  return html`<tr><th class="image" rowspan="${rowspan}">Image</th>${fixed.map((t) => html`<th class="kind" rowspan="${rowspan}">${t}</th>`)}${layers.map(
    (l) => html`<th class="layer" colspan="${l.tensors.reduce((n, t) => n + t.columns.length, 0)}">${l.layer}</th>`,
  )}</tr>
<tr>${tensors.map(
    (t) =>
      html`<th class="tensor" colspan="${t.columns.length}"><code>${t.tensor}</code>${t.shape ? html`<span class="shape">${shape(t.shape)}</span>` : ''}</th>`,
  )}</tr>
<tr>${tensors.flatMap((t) => t.columns.map((c) => html`<th class="reduce">${c.reduce}</th>`))}</tr>`;
}

function imageRow(image: ImageResult, fixed: readonly { kind: string; title: string }[], columns: Column[], thumbs: ReadonlyMap<string, string>): Html {
  const byColumn = new Map<string, OutputFile>();
  for (const f of image.files) {
    const { key } = columnOf(f);
    if ((f.kind === 'map' || f.kind === 'grid' || f.kind === 'cam') && !byColumn.has(key)) byColumn.set(key, f);
  }
  const fixedCells = fixed.map((c) => {
    const f = image.files.find((x) => x.kind === c.kind);
    return f ? cell(f, `${image.image} · ${c.title}`, thumbs) : html`<td class="empty"></td>`;
  });
  const mapCells = columns.map((c) => {
    const f = byColumn.get(c.key);
    return f ? cell(f, `${image.image} · ${describe(f)}`, thumbs) : html`<td class="empty"></td>`;
  });
  const m = image.metrics;
  return html`<tr>
<th class="image" scope="row"><span class="name">${image.image}</span>${
    m ? html`<span class="metrics">mIoU ${percent(m.meanIoU)}<br>pixel acc. ${percent(m.pixelAccuracy)}</span>` : ''
  }</th>${fixedCells}${mapCells}
</tr>`;
}

/** A thumbnail linking to the full-size PNG, with the map's value range under it. */
function cell(f: OutputFile, title: string, thumbs: ReadonlyMap<string, string>): Html {
  const [w, h] = displaySize(f.width, f.height);
  const pixelated = f.kind !== 'input';
  return html`<td title="${title}"><figure><a href="${fileUrl(f.file)}"><img src="${fileUrl(thumbs.get(f.file) ?? f.file)}" width="${w}" height="${h}" alt="${title}" loading="lazy"${
    pixelated ? html` class="pixelated"` : ''
  }></a>${f.range ? html`<figcaption>${formatNumber(f.range[0])} … ${formatNumber(f.range[1])}</figcaption>` : ''}</figure></td>`;
}

function describe(f: OutputFile): string {
  const { layer, tensor, reduce } = columnOf(f);
  return [layer, tensor !== layer ? tensor : '', f.shape ? shape(f.shape) : '', reduce, f.range ? `range ${f.range.map(formatNumber).join(' … ')}` : '']
    .filter(Boolean)
    .join(' · ');
}

/** A picture's size on the page: THUMBNAIL_SIZE on the long side, small maps enlarged (pixelated) to match. */
function displaySize(width: number, height: number): [number, number] {
  if (!(width > 0 && height > 0)) return [THUMBNAIL_SIZE, THUMBNAIL_SIZE];
  const s = THUMBNAIL_SIZE / Math.max(width, height);
  return [Math.max(1, Math.round(width * s)), Math.max(1, Math.round(height * s))];
}

// ---------------------------------------------------------------------------
// Formatting

const baseName = (path: string) => path.split(/[\\/]/).pop() || path;
const size = ([h, w]: readonly number[]) => `${h} × ${w} (H × W)`;
const shape = (dims: readonly number[]) => dims.join(' × ');
const percent = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)} %` : '—');
/** A colour from a labels file, as CSS: channels forced to integers 0..255 so that nothing else reaches the style attribute. */
const rgb = (color: readonly number[]) => `rgb(${[0, 1, 2].map((c) => Math.min(255, Math.max(0, Math.round(Number(color[c]) || 0)))).join(' ')})`;

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : String(Number(v.toPrecision(3)));
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - 60 * m)} s`;
}

const STYLE = `
:root { color-scheme: light; --line: #e3e6ea; --muted: #5f6b7a; --head: #f6f7f9; --accent: #2f5fd0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1c2330; background: #fff; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12px; }
header { padding: 20px 24px 12px; border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 12px; font-size: 20px; font-weight: 600; }
h1 span { color: var(--muted); font-weight: 400; }
h2 { margin: 0 0 6px; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 0 0 10px; }
.facts dt { font-size: 12px; color: var(--muted); }
.facts dd { margin: 0; font-weight: 500; overflow-wrap: anywhere; }
.command { display: flex; gap: 10px; align-items: baseline; margin-bottom: 10px; }
.command span { font-size: 12px; color: var(--muted); }
.command code { background: var(--head); border: 1px solid var(--line); border-radius: 4px; padding: 3px 8px; white-space: pre-wrap; overflow-wrap: anywhere; }
.legend ul { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 0 0 10px; padding: 0; list-style: none; }
.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { width: 14px; height: 14px; border-radius: 3px; border: 1px solid rgb(0 0 0 / .2); }
.iou { color: var(--muted); font-variant-numeric: tabular-nums; }
.failed { margin-bottom: 10px; color: #9b1c1c; }
.failed summary { cursor: pointer; font-weight: 600; }
.failed ul { margin: 4px 0 0; padding-left: 20px; overflow-wrap: anywhere; }
main { padding: 0 24px 24px; }
.note { color: var(--muted); }
table { border-collapse: separate; border-spacing: 0; margin-top: 12px; }
thead { position: sticky; top: 0; z-index: 2; }
th, td { border-bottom: 1px solid var(--line); border-right: 1px solid var(--line); padding: 6px 8px; vertical-align: top; }
thead th { background: var(--head); font-weight: 600; text-align: center; vertical-align: bottom; font-size: 13px; }
thead tr:first-child th { border-top: 1px solid var(--line); }
th.layer { font-size: 14px; color: var(--accent); border-bottom-color: #c9d3e6; }
th.tensor { font-weight: 400; }
th.tensor code { display: block; overflow-wrap: anywhere; max-width: 360px; margin: 0 auto; }
.shape { display: block; color: var(--muted); font-size: 11px; font-variant-numeric: tabular-nums; }
th.reduce { font-weight: 500; color: var(--muted); }
th.image { position: sticky; left: 0; z-index: 1; background: #fff; text-align: left; min-width: 140px; max-width: 200px; font-weight: 500; border-left: 1px solid var(--line); }
thead th.image { background: var(--head); z-index: 3; vertical-align: bottom; }
.name { display: block; overflow-wrap: anywhere; }
.metrics { display: block; margin-top: 4px; color: var(--muted); font-size: 12px; font-weight: 400; font-variant-numeric: tabular-nums; }
td { text-align: center; min-width: ${THUMBNAIL_SIZE + 17}px; }
tbody tr:hover td, tbody tr:hover th { background: #fafbfc; }
figure { margin: 0; }
figure a { display: inline-block; line-height: 0; border-radius: 3px; outline: 1px solid var(--line); }
figure a:hover { outline: 2px solid var(--accent); }
img { display: block; background: repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0 / 12px 12px; }
img.pixelated { image-rendering: pixelated; }
figcaption { margin-top: 4px; font-size: 11px; color: var(--muted); font-variant-numeric: tabular-nums; }
td.empty { background: repeating-linear-gradient(45deg, #fff 0 6px, #f7f8fa 6px 12px); }
`;
