import { InputError } from '../errors.js';
import type { TypedGraph } from '../model/infer.js';
import { inModule, modulePathOf, tensorsLeaving } from '../model/scopes.js';

/**
 * Naming tensors to capture. A pattern is resolved in this order, the first
 * kind that matches anything wins:
 *   1. an exact tensor name;
 *   2. an exact node name: that node's outputs;
 *   3. a PyTorch module path (`classifier.aspp.project`, or the scope
 *      `/classifier/aspp/project`): the tensor leaving that module, as
 *      register_forward_hook sees it; a path's unambiguous tail
 *      (`aspp.project`) names the same module;
 *   4. a glob (`*` any run of characters, `?` one character);
 *   5. a regular expression (a RegExp, or a string written `/…/flags`).
 * A pattern that matches nothing is an error naming the closest names; a
 * module with several outputs is an error listing them.
 */
export type TensorPattern = string | RegExp;

/** A glob as an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
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
  const module = modulePattern(typed, pattern);
  if (module) {
    const inside = (n: { name: string }) => inModule(n.name, module);
    const outputs = tensorsLeaving(typed.graph, inside, (t) => typed.values.has(t));
    if (outputs.length === 1) return outputs;
    throw new InputError(
      outputs.length
        ? `module '${module}' has ${outputs.length} outputs: ${outputs.map((n) => `'${n}'`).join(', ')}. Name the tensor you want`
        : `module '${module}' computes nothing at run time (its values are constants)`,
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
  throw noMatch([...names, ...modulePaths(typed)], pattern);
}

/**
 * The module a pattern names: itself when some node ran inside it, else the
 * one module whose path ends with it (`aspp.project` for
 * `classifier.aspp.project`, as people shorten paths); several such modules
 * are an error listing them.
 */
function modulePattern(typed: TypedGraph, pattern: string): string | undefined {
  if (typed.graph.nodes.some((n) => inModule(n.name, pattern))) return pattern;
  if (pattern.startsWith('/') || !/^[\w.]+$/.test(pattern)) return undefined;
  const longer = modulePaths(typed).filter((m) => m.endsWith(`.${pattern}`));
  if (longer.length > 1) throw new InputError(`module '${pattern}' is ambiguous: ${longer.map((m) => `'${m}'`).join(', ')}. Give the full path`);
  return longer[0];
}

/** Every module path of the graph's nodes, with their ancestors. */
function modulePaths(typed: TypedGraph): string[] {
  const paths = new Set<string>();
  for (const node of typed.graph.nodes) {
    const parts = modulePathOf(node.name).split('.');
    for (let k = 1; k <= parts.length; k++) if (parts[0]) paths.add(parts.slice(0, k).join('.'));
  }
  return [...paths];
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

/**
 * The `count` names nearest to `pattern` by edit distance, for "did you mean"
 * messages. People type the end of a long name (`aspp.project` for
 * `classifier.aspp.project`), so a name's tail of the pattern's length
 * competes too, half a step behind an equally close whole name.
 */
export function closestNames(names: Iterable<string>, pattern: string, count = 5): string[] {
  const distance = (name: string) => Math.min(editDistance(pattern, name), editDistance(pattern, name.slice(-pattern.length)) + 0.5);
  return [...new Set(names)]
    .map((name) => ({ name, distance: distance(name) }))
    .sort((a, b) => a.distance - b.distance)
    .slice(0, count)
    .map((c) => c.name);
}

function noMatch(names: string[], pattern: string): InputError {
  const close = closestNames(names, pattern);
  return new InputError(`no tensor matches '${pattern}'. Closest names: ${close.map((n) => `'${n}'`).join(', ')}. List them all with 'segscope layers MODEL'`);
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
