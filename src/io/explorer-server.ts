/**
 * The HTTP server behind `segscope serve`: the built explorer page, its
 * manifest (/preload.json) and the files the user gave. It serves a fixed
 * table of URLs built at startup and nothing else: no file path is ever
 * derived from a URL, so no spelling of '..' reaches the disk, and a file
 * that was not given is not there to ask for.
 */
import type { Dirent } from 'node:fs';
import { open, readdir, realpath } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { basename, extname, join } from 'node:path';
import { pipeline } from 'node:stream';
import { InputError } from '../errors.js';
import type { Preload } from '../preload.js';

/** A file for the page: served at /files/<k>/<name>, k its index in the list. */
export interface ServedFile {
  /** Its name in the URL (any characters: the URL holds it percent-encoded). */
  name: string;
  /** Where it is on disk; resolved once at startup, so a symlink swapped in later changes nothing. */
  path: string;
}

export interface ExplorerServerOptions {
  /** The built page (dist/explorer): each regular file in it at its relative path, index.html also at /. */
  appDir: string;
  /** Served as /preload.json. */
  preload: Preload;
  /** The files `preload` names (see preloadOf). */
  files: readonly ServedFile[];
  /** The address to listen on: 127.0.0.1 keeps the page and the files on this machine. */
  host: string;
  /** 0: any free port. */
  port: number;
}

export interface ExplorerServer {
  /** The page's address, e.g. http://127.0.0.1:8080/ */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** What the page opens on arrival: the model (with its external data files) and images (with their masks), paths as the user gave them. */
export interface GivenFiles {
  model?: { path: string; externalData: { location: string; path: string }[] };
  images: { path: string; label?: string }[];
  /** --labels DIR as given. */
  labels?: string;
}

/** The manifest of `given` and the files it names, each at files/<k>/<its base name> relative to the page. */
export function preloadOf(given: GivenFiles): { preload: Preload; files: ServedFile[] } {
  const files: ServedFile[] = [];
  const add = (path: string, name = basename(path)) => {
    files.push({ name, path });
    return { name, url: `files/${files.length - 1}/${encodeURIComponent(name)}` };
  };
  const m = given.model;
  const model = m && {
    ...add(m.path),
    path: m.path,
    ...(m.externalData.length ? { externalData: m.externalData.map((e) => ({ location: e.location, url: add(e.path, basename(e.location)).url })) } : {}),
  };
  const images = given.images.map((image) => ({
    ...add(image.path),
    path: image.path,
    ...(image.label ? { label: { ...add(image.label), path: image.label } } : {}),
  }));
  return { preload: { ...(model ? { model } : {}), images, ...(given.labels === undefined ? {} : { labels: given.labels }) }, files };
}

/**
 * Only the page's own files get types a browser runs or renders as a page;
 * a given file is an image or bytes, whatever its name (nosniff keeps it so).
 */
const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp' };
const APP_TYPES: Record<string, string> = {
  ...IMAGE_TYPES,
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
};
const BYTES = 'application/octet-stream';

/**
 * The page runs its own script and styles only; model and file names it
 * shows never become markup or code. 'unsafe-eval' is for protobufjs, which
 * builds its ONNX decoders with `new Function` from segscope's own schema
 * (src/onnx/schema.ts), never from a model's bytes; inline scripts stay
 * refused.
 */
const CSP =
  "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self' 'unsafe-eval'; connect-src 'self'; object-src 'none'; base-uri 'none'";

type Route = { type: string } & ({ file: string } | { body: Buffer });

export async function startExplorerServer(o: ExplorerServerOptions): Promise<ExplorerServer> {
  const routes = new Map<string, Route>();
  const appDir = await realpath(o.appDir);
  for (const rel of await regularFiles(appDir)) {
    routes.set(`/${rel.map(encodeURIComponent).join('/')}`, { file: join(appDir, ...rel), type: APP_TYPES[extname(rel.at(-1)!).toLowerCase()] ?? BYTES });
  }
  const index = routes.get('/index.html');
  if (index) routes.set('/', index);
  routes.set('/preload.json', { body: Buffer.from(JSON.stringify(o.preload)), type: APP_TYPES['.json']! });
  for (const [k, f] of o.files.entries()) {
    let file: string;
    try {
      file = await realpath(f.path);
    } catch (e) {
      throw new InputError(`cannot serve '${f.path}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    routes.set(`/files/${k}/${encodeURIComponent(f.name)}`, { file, type: IMAGE_TYPES[extname(f.name).toLowerCase()] ?? BYTES });
  }

  let hosts = new Set<string>();
  const server = createServer((req, res) => respond(req, res, routes, hosts));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as { port: number };
  hosts = allowedHosts(o.host, port);
  const wildcard = isWildcard(o.host);
  return {
    url: `http://${wildcard ? '127.0.0.1' : hostInUrl(o.host)}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        // Browsers keep connections open; close() alone would wait for them.
        server.closeAllConnections();
      }),
  };
}

function respond(req: IncomingMessage, res: ServerResponse, routes: ReadonlyMap<string, Route>, hosts: ReadonlySet<string>): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  const text = (status: number, message: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
    res.end(req.method === 'HEAD' ? undefined : `${message}\n`);
  };
  // DNS rebinding: a page from another site whose name now resolves to this machine sends its own name.
  if (!hosts.has(req.headers.host?.toLowerCase() ?? '')) return void text(421, 'this server answers to its own address only');
  if (req.method !== 'GET' && req.method !== 'HEAD') return void text(405, `${req.method} is not allowed: GET or HEAD`, { Allow: 'GET, HEAD' });
  // The path as sent, undecoded: only the exact spellings in the table exist.
  const route = routes.get(req.url!.split('?', 1)[0]!);
  if (!route) return void text(404, 'not found');
  const headers: Record<string, string> = { 'Content-Type': route.type };
  if (route.type.startsWith('text/html')) headers['Content-Security-Policy'] = CSP;
  if ('body' in route) {
    res.writeHead(200, { ...headers, 'Content-Length': String(route.body.length) });
    return void res.end(req.method === 'HEAD' ? undefined : route.body);
  }
  sendFile(req, res, route.file, headers).catch((e: NodeJS.ErrnoException) => {
    // Gone, or replaced by a folder, since startup: the server goes on.
    const why = e.code ?? e.message;
    console.error(`segscope: cannot serve ${route.file} (${why})`);
    if (res.headersSent) res.destroy();
    else text(e.code === 'ENOENT' || e.code === 'EISDIR' ? 404 : 500, `${basename(route.file)} cannot be read now (${why})`);
  });
}

/** The file as it is now: read at each request (so an edited image is seen), from the path resolved at startup. */
async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, headers: Record<string, string>): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
    res.writeHead(200, { ...headers, 'Content-Length': String(info.size) });
  } catch (e) {
    await handle.close();
    throw e;
  }
  if (req.method === 'HEAD') {
    await handle.close();
    return void res.end();
  }
  // pipeline closes the file (the stream owns the handle) and drops the response if either side fails.
  pipeline(handle.createReadStream(), res, () => {});
}

/** The regular files below `dir`, as path components; symlinks are skipped, so the page's folder cannot lead outside itself. */
async function regularFiles(dir: string, prefix: string[] = []): Promise<string[][]> {
  const entries: Dirent[] = await readdir(join(dir, ...prefix), { withFileTypes: true });
  const files: string[][] = [];
  for (const e of entries) {
    if (e.isFile()) files.push([...prefix, e.name]);
    else if (e.isDirectory()) files.push(...(await regularFiles(dir, [...prefix, e.name])));
  }
  return files;
}

const isWildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
const hostInUrl = (host: string) => (host.includes(':') ? `[${host}]` : host);

/**
 * The Host headers this server answers: its loopback names and the address it
 * listens on; listening on every interface, each interface's address and the
 * machine's name.
 */
function allowedHosts(host: string, port: number): Set<string> {
  const names = ['127.0.0.1', 'localhost', host];
  if (isWildcard(host)) {
    names.push(hostname());
    for (const addresses of Object.values(networkInterfaces())) for (const a of addresses ?? []) names.push(a.address);
  }
  const hosts = new Set<string>();
  for (const name of names.filter(Boolean).map((n) => hostInUrl(n.toLowerCase()))) {
    hosts.add(`${name}:${port}`);
    // Browsers leave the default port out.
    if (port === 80) hosts.add(name);
  }
  return hosts;
}
