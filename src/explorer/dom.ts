/**
 * Building the page's elements. Text from model files (names, metadata) is
 * only ever set as text, never parsed as HTML: a model is untrusted input.
 */

type Child = Node | string | number | null | undefined | false;

/** An element with attributes (set as attributes, `class` included) and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === 'number' ? String(c) : c);
}

/** The element with this id; the page's HTML is ours, so a missing one is a bug. */
export function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`explorer: no element #${id}`);
  return el as T;
}

/** A <select> over `values`, showing `labels` where given. */
export function select(id: string, values: readonly string[], value: string, labels: Record<string, string> = {}): HTMLSelectElement {
  return h('select', { id }, ...values.map((v) => h('option', { value: v, selected: v === value }, labels[v] ?? v)));
}

/** Puts RGBA pixels on a canvas, resizing it to them. */
export function paint(canvas: HTMLCanvasElement, picture: { width: number; height: number; rgba: Uint8Array }): void {
  canvas.width = picture.width;
  canvas.height = picture.height;
  const data = new ImageData(
    new Uint8ClampedArray(picture.rgba.buffer, picture.rgba.byteOffset, picture.rgba.byteLength).slice(),
    picture.width,
    picture.height,
  );
  canvas.getContext('2d')!.putImageData(data, 0, 0);
}

/** Offers `blob` as a download named `name`. */
export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const count = (n: number) => n.toLocaleString('en-US');
