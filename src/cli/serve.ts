import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../errors.js';
import { type GivenFiles, preloadOf, startExplorerServer } from '../io/explorer-server.js';
import { readModelWithData } from '../io/model-file.js';
import { parseCount } from './args.js';
import { DEFAULT_MODEL, EXPLORER, SAMPLE_LABELS, SAMPLES, shortPath } from './package-files.js';
import { untilSignal } from './signals.js';
import { collectFiles, IMAGE_EXTENSIONS, labelFor, warnUnlabelled } from './vis-files.js';

export const serveHelp = `Usage: segscope serve [MODEL] [IMAGES...] [options]

Serves the layer explorer, a page that runs the model in your browser on
WebGPU and draws the feature maps of any layer for the images, and opens
with MODEL and IMAGES loaded (the page opens other files too). Without
arguments: the embedded default model and its sample images with their
ground-truth masks. A MODEL alone is fine: open images in the page.

IMAGES are image files, folders (their .jpg, .jpeg, .png and .webp files,
sorted) or globs, as for 'segscope vis'. The model is checked before the
server starts; its external data files are served with it.

The server answers only for the files given here and the page's own files,
at fixed addresses, and only to requests addressed to it by its own name
(no other site's page can read them). It runs until Ctrl-C.

Options:
  --labels DIR       ground-truth masks, DIR/<image name>.png, as for
                     'segscope vis --labels'
  --port N           the port (default 8080; 0: any free port)
  --host H           the address to listen on (default 127.0.0.1: this
                     machine only). Another address makes the page and the
                     files reachable from the network
  --open             open the page in the default browser
  -h, --help         this help

Environment:
  SEGSCOPE_EXPLORER  a folder with another build of the page (default: the
                     package's dist/explorer, which 'npm run build' makes)

Examples:
  segscope serve
  segscope serve model.onnx photos/ --labels masks/ --open
  segscope serve model.onnx 'photos/*.jpg' --port 0`;

export async function serveCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      labels: { type: 'string' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      open: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(serveHelp);
  const port = parseCount('--port', values.port);
  if (port > 65535) throw new InputError(`--port '${values.port}': expected a port number up to 65535 (0: any free port)`);
  const appDir = process.env.SEGSCOPE_EXPLORER || EXPLORER;
  try {
    await access(join(appDir, 'index.html'));
  } catch {
    throw new InputError(`the explorer is not built (no index.html in ${appDir}): run npm run build`);
  }

  const [model, ...inputs] = (positionals.length ? positionals : [shortPath(DEFAULT_MODEL), shortPath(SAMPLES)]) as [string, ...string[]];
  const labels = values.labels ?? (positionals.length ? undefined : shortPath(SAMPLE_LABELS));
  if (labels !== undefined && !inputs.length) throw new InputError(`--labels ${labels} pairs images with their masks: give images too`);
  const given = await givenFiles(model, inputs, labels);

  const { preload, files } = preloadOf(given);
  const server = await startExplorerServer({ appDir, preload, files, host: values.host, port }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'EADDRINUSE') throw new InputError(`port ${port} is in use: pick another with --port`);
    if (e.code === 'EACCES') throw new InputError(`port ${port} is not open to this user: pick another with --port`);
    if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') throw new InputError(`--host '${values.host}': cannot listen there (${e.code})`);
    throw e;
  });
  const n = given.images.length;
  console.log(`segscope explorer: ${server.url} (${model}, ${n} image${n === 1 ? '' : 's'})`);
  if (!isLoopback(values.host)) console.error(`segscope: warning: listening on ${values.host}: the page and the files given are reachable from the network`);
  if (values.open) openInBrowser(server.url);
  await untilSignal();
  await server.close();
}

/** The model (checked: it loads, and its external data files stay in its folder) and the images, each paired with its mask. */
async function givenFiles(model: string, inputs: string[], labels: string | undefined): Promise<GivenFiles> {
  const { externalData } = await readModelWithData(model);
  const images = await collectFiles(inputs, IMAGE_EXTENSIONS, 'image');
  const paired = await Promise.all(
    images.map(async (path) => {
      const label = labels === undefined ? undefined : await labelFor(labels, basename(path, extname(path)));
      return { path, ...(label ? { label } : {}) };
    }),
  );
  if (labels !== undefined) {
    warnUnlabelled(
      labels,
      paired.filter((p) => !p.label).map((p) => basename(p.path)),
    );
  }
  return {
    model: { path: model, externalData },
    images: paired,
    ...(labels === undefined ? {} : { labels }),
  };
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

/** The platform's opener, detached: the browser outlives the server's terminal. A missing opener is said, not fatal. */
function openInBrowser(url: string): void {
  const [command, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '""', url]] : ['xdg-open', [url]];
  const child = spawn(command, args, { detached: true, stdio: 'ignore', windowsVerbatimArguments: true });
  child.on('error', (e: NodeJS.ErrnoException) => console.error(`segscope: cannot open a browser (${command}: ${e.code ?? e.message}); open ${url} yourself`));
  child.unref();
}
