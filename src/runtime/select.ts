import { InputError } from '../errors.js';

/** A glob (`*` any run of characters, `?` one character) as an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

/**
 * The tensor names a pattern list selects: each pattern is an exact name or a
 * glob. A pattern that selects nothing is an error naming the closest names.
 */
export function selectTensors(names: readonly string[], patterns: readonly string[]): string[] {
  const selected = new Set<string>();
  for (const pattern of patterns) {
    const matches = names.includes(pattern) ? [pattern] : names.filter((n) => globToRegExp(pattern).test(n));
    if (!matches.length) {
      const close = [...names].sort((a, b) => editDistance(pattern, a) - editDistance(pattern, b)).slice(0, 5);
      throw new InputError(`no tensor matches '${pattern}'. Closest names: ${close.map((n) => `'${n}'`).join(', ')}`);
    }
    for (const m of matches) selected.add(m);
  }
  return [...selected];
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}
