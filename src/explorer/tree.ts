import { treeRows, type Summary, type TensorSummary, type TreeRow } from '../model/summary.js';
import { layerFilter } from '../workflow/layer-filter.js';
import { count, h } from './dom.js';

/**
 * The module tree, as `segscope layers` lists it: modules and nodes in
 * execution order, each with its op, output shape at the input size,
 * parameters and MACs. A click picks a layer: a module by its path, a node
 * by its first output tensor, the patterns `segscope vis --layer` takes.
 */

/** The layer pattern a row stands for. */
export function rowPattern(row: TreeRow): string {
  return row.kind === 'module' ? row.module.path : (row.node.outputs[0]?.name ?? row.node.name);
}

const shapeText = (t: TensorSummary) => (t.shape ? `[${t.shape.join(',')}]` : '?');
const num = (n: number) => (n ? count(n) : '--');

/**
 * The filter box's text as layer-filter patterns: words separated by
 * spaces or commas; a word without '*' or '?' matches anywhere in a name.
 */
export function filterPatterns(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((w) => (/[*?]/.test(w) ? w : `*${w}*`));
}

export function renderTree(
  container: HTMLElement,
  summary: Summary,
  filter: string,
  selected: ReadonlyMap<string, string>,
  pick: (pattern: string, event: MouseEvent) => void,
): number {
  const patterns = filterPatterns(filter);
  const rows = treeRows(summary, patterns.length ? layerFilter(patterns) : undefined);
  const table = h(
    'table',
    { class: 'tree' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'Layer (module / node)'), h('th', {}, 'Op'), h('th', {}, 'Output shape'), h('th', {}, 'Params'), h('th', {}, 'MACs')),
    ),
  );
  const body = h('tbody');
  for (const row of rows) {
    const pattern = rowPattern(row);
    const outputs = row.kind === 'module' ? row.module.outputs : row.node.outputs;
    const op = row.kind === 'module' ? '' : row.node.unsupported ? `${row.node.opType}!` : row.node.constant ? `${row.node.opType}*` : row.node.opType;
    const label = row.kind === 'module' ? row.module.name : row.depth > 0 ? row.node.name.slice(row.node.name.lastIndexOf('/') + 1) : row.node.name;
    // Set through CSSOM: the page's Content-Security-Policy refuses style attributes.
    const name = h('td', { class: 'name' }, label);
    name.style.paddingLeft = `${0.3 + row.depth}em`;
    const panels = selected.get(pattern);
    if (panels) name.dataset.panels = panels;
    const drawable = outputs.some((t) => t.shape?.length === 4);
    const tr = h(
      'tr',
      {
        class: `${row.kind}${drawable ? '' : ' flat'}${selected.has(pattern) ? ' selected' : ''}`,
        'data-kind': row.kind,
        'data-id': row.kind === 'module' ? row.module.path : row.node.name,
        'data-pattern': pattern,
        title: `${pattern}${row.kind === 'node' && row.node.unsupported ? ` (segscope cannot run it: ${row.node.unsupported})` : drawable ? '' : ' (not [N,C,H,W]: nothing to draw)'}`,
      },
      name,
      h('td', { class: 'op' }, op),
      h('td', { class: 'shape' }, outputs.map(shapeText).join(' ')),
      h('td', { class: 'num' }, num(row.kind === 'module' ? row.module.params : row.node.params)),
      h('td', { class: 'num' }, num(row.kind === 'module' ? row.module.macs : row.node.macs)),
    );
    tr.addEventListener('click', (e) => pick(pattern, e));
    body.append(tr);
  }
  table.append(body);
  container.replaceChildren(table);
  return rows.length;
}
