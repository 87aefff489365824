import type { ModuleSummary, NodeSummary } from '../model/summary.js';
import { globToRegExp } from '../runtime/select.js';

/**
 * Which rows of the module tree (model/summary.ts) a filter keeps: a row
 * whose node name, module path (or its scope, with or without the trailing
 * '/') or output tensor name is one of the patterns or matches it as a glob.
 * `segscope layers --filter` and the explorer's filter box both use it.
 */
export interface LayerFilter {
  module(m: ModuleSummary): boolean;
  node(n: NodeSummary): boolean;
  /** Per pattern, whether it keeps the module or node. */
  matches(pattern: number, row: ModuleSummary | NodeSummary): boolean;
}

export function layerFilter(patterns: readonly string[]): LayerFilter {
  const tests = patterns.map((p) => {
    const glob = globToRegExp(p);
    return (name: string) => name === p || glob.test(name);
  });
  const names = (row: ModuleSummary | NodeSummary) =>
    'path' in row ? [row.path, row.scope, row.scope.slice(0, -1)] : [row.name, ...(row.module ? [row.module] : []), ...row.outputs.map((o) => o.name)];
  const matches = (k: number, row: ModuleSummary | NodeSummary) => names(row).some(tests[k]!);
  const any = (row: ModuleSummary | NodeSummary) => tests.some((_, k) => matches(k, row));
  return { module: any, node: any, matches };
}
