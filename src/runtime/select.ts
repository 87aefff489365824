import { InputError } from '../errors.js';
import type { TypedGraph } from '../model/infer.js';
import { inModule, tensorsLeaving } from '../model/scopes.js';

/**
 * Naming tensors to capture. A pattern is resolved in this order, the first
 * kind that matches anything wins:
 *   1. an exact tensor name;
 *   2. an exact node name: that node's outputs;
 *   3. a PyTorch module path (`aspp.project`, or the scope `/aspp/project`):
 *      the tensor leaving that module, as register_forward_hook sees it;
 *   4. a glob (`*` any run of characters, `?` one character);
 *   5. a regular expression (a RegExp, or a string written `/…/flags`).
 * A pattern that matches nothing is an error naming the closest names; a
 * module with several outputs is an error listing them.
 */
export type TensorPattern = string | RegExp;

/** A glob as an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

/** Every tensor a user can name: graph inputs and node outputs (initializers are weights, not activations). */
export function tensorNames(typed: TypedGraph): string[] {
  return [...typed.graph.inputs.map((i) => i.name), ...typed.graph.nodes.flatMap((n) => n.outputs.filter(Boolean))];
}

export function resolvePattern(typed: TypedGraph, pattern: TensorPattern): string[] {
  const names = tensorNames(typed);
  if (pattern instanceof RegExp) return matching(names, pattern, String(pattern));
  if (names.includes(pattern)) return [pattern];
  const node = typed.graph.nodes.find((n) => n.name === pattern);
  if (node) return node.outputs.filter(Boolean);
  const inside = (n: { name: string }) => inModule(n.name, pattern);
  if (typed.graph.nodes.some(inside)) {
    const outputs = tensorsLeaving(typed.graph, inside, (t) => typed.values.has(t));
    if (outputs.length === 1) return outputs;
    throw new InputError(
      outputs.length
        ? `module '${pattern}' has ${outputs.length} outputs: ${outputs.map((n) => `'${n}'`).join(', ')}. Name the tensor you want`
        : `module '${pattern}' computes nothing at run time (its values are constants)`,
    );
  }
  const globbed = /[*?]/.test(pattern) ? names.filter((n) => globToRegExp(pattern).test(n)) : [];
  if (globbed.length) return globbed;
  const regex = /^\/(.+)\/([a-z]*)$/s.exec(pattern);
  if (regex) {
    let re: RegExp;
    try {
      re = new RegExp(regex[1]!, regex[2]);
    } catch (e) {
      throw new InputError(`pattern '${pattern}': ${(e as Error).message}`);
    }
    const found = names.filter((n) => re.test(n));
    if (found.length) return found;
  }
  throw noMatch(names, pattern);
}

/** Resolves several patterns to distinct tensor names, in first-seen order. */
export function resolvePatterns(typed: TypedGraph, patterns: readonly TensorPattern[]): string[] {
  return [...new Set(patterns.flatMap((p) => resolvePattern(typed, p)))];
}

function matching(names: string[], pattern: RegExp, label: string): string[] {
  // A global or sticky RegExp keeps state between test() calls: match with a fresh one.
  const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  const found = names.filter((n) => re.test(n));
  if (!found.length) throw noMatch(names, label);
  return found;
}

/** The `count` names nearest to `pattern` by edit distance, for "did you mean" messages. */
export function closestNames(names: Iterable<string>, pattern: string, count = 5): string[] {
  return [...names]
    .map((name) => ({ name, distance: editDistance(pattern, name) }))
    .sort((a, b) => a.distance - b.distance)
    .slice(0, count)
    .map((c) => c.name);
}

function noMatch(names: string[], pattern: string): InputError {
  const close = closestNames(names, pattern);
  return new InputError(
    `no tensor matches '${pattern}'. Closest names: ${close.map((n) => `'${n}'`).join(', ')}. List them all with 'segscope layers MODEL'`,
  );
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}
