#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { SegscopeError } from '../errors.js';
import { benchCommand, benchHelp } from './bench.js';
import { camCommand, camHelp } from './cam.js';
import { demoCommand, demoHelp } from './demo.js';
import { layersCommand, layersHelp } from './layers.js';
import { runCommand, runHelp } from './run.js';
import { serveCommand, serveHelp } from './serve.js';
import { handleSignals } from './signals.js';
import { visCommand, visHelp } from './vis.js';

const commands: Record<string, { run: (argv: string[]) => Promise<void>; help: string; summary: string }> = {
  layers: { run: layersCommand, help: layersHelp, summary: 'list every layer: module tree, shapes, parameters, MACs, memory' },
  run: { run: runCommand, help: runHelp, summary: 'run a model on an input; dump any tensor as .npy' },
  vis: { run: visCommand, help: visHelp, summary: 'draw feature maps of any layer for images, folders or globs' },
  cam: { run: camCommand, help: camHelp, summary: 'class activation maps (Grad-CAM and family): which regions of a layer make a class' },
  bench: { run: benchCommand, help: benchHelp, summary: 'time a model: latency, GPU time per node (timestamp queries), memory; --vs ort' },
  demo: { run: demoCommand, help: demoHelp, summary: 'the recipe on the embedded default model and samples: maps and report.html' },
  serve: { run: serveCommand, help: serveHelp, summary: 'the layer explorer in the browser: any layer of a model on your images, live' },
};

const usage = () => `Usage: segscope COMMAND [options]

Look inside DeepLabv3+ segmentation networks on the GPU.

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`)
  .join('\n')}

Run 'segscope COMMAND --help' for a command's options. --version prints the version.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`segscope: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  await command.run(rest);
  return 0;
}

handleSignals();

// Dawn prints warnings to stderr when XDG_RUNTIME_DIR is unset (headless Linux).
process.env.XDG_RUNTIME_DIR ??= '/tmp';

/**
 * Exits once stdout and stderr have been handed to the OS. Writes to a pipe
 * are asynchronous, and process.exit drops what is still queued: `segscope
 * layers --json | jq` lost all but the first 64 KiB when jq read slowly.
 * (Exit explicitly at all: Dawn's device keeps the event loop alive.)
 */
function exitWhenFlushed(code: number): void {
  let pending = 2;
  const done = () => --pending === 0 && process.exit(code);
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main(process.argv.slice(2)).then(exitWhenFlushed, (e: unknown) => {
  // Typed errors are the user's to fix: one line, no stack. Anything else is a bug.
  if (e instanceof SegscopeError) console.error(`segscope: ${e.message}`);
  else if (e instanceof TypeError && (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) console.error(`segscope: ${e.message}`);
  else console.error(e);
  exitWhenFlushed(e instanceof SegscopeError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') ? 1 : 70);
});
