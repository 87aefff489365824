/**
 * Command lines as a POSIX shell reads them: the report states the command
 * that made it, and the explorer's "Copy as command" gives one to paste.
 */

/** A shell word: bare when it is only safe characters, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Words joined into one command line, each quoted as needed. */
export const commandLine = (words: readonly string[]): string => words.map(shellQuote).join(' ');
