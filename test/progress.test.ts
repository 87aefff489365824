/** The CLI's status line: phases, bar, ETA, and silence when disabled. */
import { describe, expect, it } from 'vitest';
import { formatSeconds, Progress } from '../src/cli/progress.js';

function fakeStream(columns = 200) {
  const writes: string[] = [];
  return { writes, stream: { columns, write: (s: string) => writes.push(s) > 0 } as unknown as NodeJS.WriteStream };
}

describe('Progress', () => {
  it('draws phases and counts in place, with a bar and an ETA once a rate is known', async () => {
    const { writes, stream } = fakeStream();
    const p = new Progress(true, stream);
    p.phase('loading model.onnx');
    p.step('images', 0, 4);
    await new Promise((r) => setTimeout(r, 150));
    p.step('images', 1, 4, 'a.png');
    p.step('images', 2, 4); // within 100 ms of the last draw: skipped
    p.step('images', 4, 4, 'd.png'); // the last one is always drawn
    p.end();
    expect(writes[0]).toBe('\rloading model.onnx…\x1b[K');
    expect(writes[1]).toBe(`\rimages [${'.'.repeat(24)}] 0/4\x1b[K`);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the line ends with the terminal's erase-line code, ESC [K.
    expect(writes[2]).toMatch(/^\rimages \[#{6}\.{18}\] 1\/4 ETA 0\.[4-9]s a\.png\x1b\[K$/);
    expect(writes[3]).toBe(`\rimages [${'#'.repeat(24)}] 4/4 d.png\x1b[K`);
    expect(writes.slice(4)).toEqual(['\n']);
  });

  it('cuts lines to the terminal width and writes nothing when disabled', () => {
    const narrow = fakeStream(20);
    new Progress(true, narrow.stream).phase('compiling a model with a very long name');
    expect(narrow.writes[0]).toBe('\rcompiling a model w\x1b[K');
    const off = fakeStream();
    const p = new Progress(false, off.stream);
    p.phase('x');
    p.step('images', 1, 2);
    p.end();
    expect(off.writes).toEqual([]);
  });

  it('formats durations as a person reads them', () => {
    expect([0.25, 9.96, 42, 61, 3599, 3600, 7384].map(formatSeconds)).toEqual(['0.3s', '10.0s', '42s', '1m01s', '59m59s', '1h00m', '2h03m']);
  });
});
