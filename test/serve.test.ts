/**
 * `segscope serve` and the explorer's static build, in Node alone (the page
 * itself is not run here): what is served, byte for byte, and what is not,
 * whatever the spelling of the request.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { preloadOf, startExplorerServer, type ExplorerServer, type GivenFiles } from '../src/io/explorer-server.js';
import { readModelWithData } from '../src/io/model-file.js';
import { parsePreload, type Preload } from '../src/preload.js';
import { buildExplorer } from '../tools/build-explorer.js';
import { errors, ROOT, segscope, segscopeRunning, segscopeWithEnv } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'segscope-serve-'));
const APP = join(dir, 'app');
/** A model with its weights in an external data file, model.onnx.data. */
const MODEL = join(ROOT, 'test/fixtures/deeplabv3plus_dynamo/model.onnx');
const SAMPLES = join(ROOT, 'weights/samples');
/** 'unsafe-eval' is protobufjs's, which compiles its decoders from segscope's schema with `new Function`. */
const CSP =
  "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self' 'unsafe-eval'; connect-src 'self'; object-src 'none'; base-uri 'none'";

/** Every regular file below `folder`, '/'-separated, symlinks left out. */
const filesIn = (folder: string): string[] =>
  readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) =>
      join(e.parentPath, e.name)
        .slice(folder.length + 1)
        .replaceAll('\\', '/'),
    )
    .sort();

/** A request sent as written: fetch would resolve '..' and re-encode the path. */
function raw(
  url: string,
  path: string,
  options: { method?: string; host?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method: options.method ?? 'GET', headers: options.host ? { host: options.host } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Contents as a digest: vitest compares 12 MB of bytes element by element in minutes. */
const digest = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const fileDigest = (file: string) => digest(readFileSync(file));
const bodyDigest = async (response: Response) => digest(new Uint8Array(await response.arrayBuffer()));

beforeAll(async () => {
  await buildExplorer(APP);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('buildExplorer', () => {
  it('writes the page, its bundle, and the default model and samples listed in default.json, byte for byte', () => {
    const files = filesIn(APP);
    for (const f of ['index.html', 'style.css']) expect(fileDigest(join(APP, f))).toBe(fileDigest(join(ROOT, 'src/explorer', f)));
    expect(files).toEqual(expect.arrayContaining(['app.js', 'app.js.map', 'default.json']));
    expect(readFileSync(join(APP, 'app.js'), 'utf8')).toMatch(/sourceMappingURL=app\.js\.map\s*$/);

    const manifest = parsePreload(JSON.parse(readFileSync(join(APP, 'default.json'), 'utf8')), 'default.json');
    const samples = readdirSync(SAMPLES).filter((f) => f.endsWith('.png'));
    expect(samples.length).toBe(6);
    expect(manifest.model).toEqual({ name: 'deeplabv3plus_scenes.onnx', url: 'default/deeplabv3plus_scenes.onnx', path: 'weights/deeplabv3plus_scenes.onnx' });
    expect(manifest.labels).toBe('weights/samples/labels');
    expect(manifest.images).toEqual(
      samples.map((name) => ({
        name,
        url: `default/samples/${name}`,
        path: `weights/samples/${name}`,
        label: { name, url: `default/samples/labels/${name}`, path: `weights/samples/labels/${name}` },
      })),
    );
    // Every URL is a file of the build, equal to the checkout's file its path names.
    const listed = [manifest.model!, ...manifest.images.flatMap((i) => [i, i.label!])];
    for (const f of listed) expect(fileDigest(join(APP, decodeURIComponent(f.url))), f.url).toBe(fileDigest(join(ROOT, f.path!)));
    expect(files.filter((f) => f.startsWith('default/')).sort()).toEqual(listed.map((f) => f.url).sort());
  });

  it('replaces an earlier build whole and leaves nothing beside it', async () => {
    const parent = join(dir, 'rebuild');
    const out = join(parent, 'explorer');
    await buildExplorer(out);
    writeFileSync(join(out, 'stale.txt'), 'from an earlier build');
    await buildExplorer(out);
    expect(readdirSync(parent)).toEqual(['explorer']);
    expect(filesIn(out)).toEqual(filesIn(APP));
  });
});

describe('the explorer server', () => {
  let server: ExplorerServer;
  let given: GivenFiles;
  let preload: Preload;
  const files = join(dir, 'given');
  const swapped = join(files, 'swapped.png');
  const gone = join(files, 'gone.png');

  beforeAll(async () => {
    mkdirSync(files);
    // A symlink given as an image is served as its target at startup, whatever it points at later.
    copyFileSync(join(ROOT, 'test/fixtures/images/rgb.png'), join(files, 'target.png'));
    symlinkSync(join(files, 'target.png'), swapped);
    copyFileSync(join(ROOT, 'test/fixtures/images/rgb.png'), gone);
    // Symlinks in the page's folder are not served: it cannot lead outside itself.
    symlinkSync(join(ROOT, 'package.json'), join(APP, 'leak.json'));
    symlinkSync(join(ROOT, 'src'), join(APP, 'leakdir'));
    const { externalData } = await readModelWithData(MODEL);
    given = {
      model: { path: MODEL, externalData },
      images: [
        { path: join(SAMPLES, 'scene_1.png'), label: join(SAMPLES, 'labels/scene_1.png') },
        { path: join(SAMPLES, 'street.png'), label: join(SAMPLES, 'labels/street.png') },
        { path: swapped },
        { path: gone },
      ],
      labels: join(SAMPLES, 'labels'),
    };
    const served = preloadOf(given);
    preload = served.preload;
    server = await startExplorerServer({ appDir: APP, preload, files: served.files, host: '127.0.0.1', port: 0 });
    unlinkSync(swapped);
    symlinkSync(join(ROOT, 'package.json'), swapped);
  });

  afterAll(async () => {
    await server?.close();
    unlinkSync(join(APP, 'leak.json'));
    unlinkSync(join(APP, 'leakdir'));
  });

  it('lists the given files in preload.json, external data included', async () => {
    const response = await fetch(new URL('preload.json', server.url));
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const listed = parsePreload(await response.json(), 'preload.json');
    expect(listed).toEqual(preload);
    expect(listed.model).toEqual({
      name: 'model.onnx',
      url: 'files/0/model.onnx',
      path: MODEL,
      externalData: [{ location: 'model.onnx.data', url: 'files/1/model.onnx.data' }],
    });
    expect(listed.images.map((i) => [i.name, i.label?.name])).toEqual([
      ['scene_1.png', 'scene_1.png'],
      ['street.png', 'street.png'],
      ['swapped.png', undefined],
      ['gone.png', undefined],
    ]);
    expect(listed.labels).toBe(join(SAMPLES, 'labels'));
  });

  it('serves each given file byte for byte, a symlink as its target at startup', async () => {
    const expected: [string, string][] = [
      [preload.model!.url, MODEL],
      [preload.model!.externalData![0]!.url, `${MODEL}.data`],
      ...preload.images.slice(0, 2).flatMap((i, k): [string, string][] => [
        [i.url, given.images[k]!.path],
        [i.label!.url, given.images[k]!.label!],
      ]),
      [preload.images[2]!.url, join(files, 'target.png')],
    ];
    for (const [url, file] of expected) {
      const response = await fetch(new URL(url, server.url));
      expect(response.status, url).toBe(200);
      expect(await bodyDigest(response), url).toBe(fileDigest(file));
    }
    const model = await fetch(new URL(preload.model!.url, server.url));
    expect(model.headers.get('content-type')).toBe('application/octet-stream');
    const image = await fetch(new URL(preload.images[0]!.url, server.url));
    expect(image.headers.get('content-type')).toBe('image/png');
  });

  it('answers for a given file that has gone with a 404, and goes on serving', async () => {
    unlinkSync(gone);
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    const response = await fetch(new URL(preload.images[3]!.url, server.url));
    expect(response.status).toBe(404);
    expect(await response.text()).toBe('gone.png cannot be read now (ENOENT)\n');
    expect(log.mock.calls).toEqual([[`segscope: cannot serve ${gone} (ENOENT)`]]);
    log.mockRestore();
    expect((await fetch(new URL(preload.images[0]!.url, server.url))).status).toBe(200);
  });

  it("serves every file of the page's folder byte for byte, index.html at / with the CSP", async () => {
    for (const file of filesIn(APP)) {
      const response = await fetch(new URL(file, server.url));
      expect(response.status, file).toBe(200);
      expect(response.headers.get('x-content-type-options'), file).toBe('nosniff');
      expect(await bodyDigest(response), file).toBe(fileDigest(join(APP, file)));
    }
    const page = await fetch(server.url);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CSP);
    expect(await page.text()).toBe(readFileSync(join(APP, 'index.html'), 'utf8'));
    const script = await fetch(new URL('app.js', server.url));
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('x-content-type-options')).toBe('nosniff');
    const head = await raw(server.url, '/app.js', { method: 'HEAD' });
    expect([head.status, head.headers['content-length'], head.body]).toEqual([200, String(readFileSync(join(APP, 'app.js')).length), '']);
  });

  it('serves nothing else, however the path is spelt', async () => {
    const { port } = server;
    const refused = [
      '/../package.json',
      '/files/0/../../package.json',
      '/files/0/../1/model.onnx.data',
      '/%2e%2e/package.json',
      '/files/%2e%2e%2fpackage.json',
      '/files/0/%2e%2e%2f%2e%2e%2fpackage.json',
      '/etc/passwd',
      '//etc/passwd',
      '//files/0/model.onnx',
      '/files//0/model.onnx',
      '/files/0/model.onnx/',
      '/files/0/model.onnx%00',
      '/files/0/other.onnx',
      '/files/1/model.onnx',
      '/files/9/model.onnx',
      '/FILES/0/model.onnx',
      `http://127.0.0.1:${port}/../package.json`,
      '/package.json',
      '/src/cli/main.ts',
      '/weights/deeplabv3plus_scenes.onnx',
      '/test/fixtures/deeplabv3plus_dynamo/model.onnx.data',
      '/leak.json',
      '/leakdir/cli/main.ts',
      '/index.html/..',
      '/./index.html',
      '/%69ndex.html',
    ];
    for (const path of refused) {
      const response = await raw(server.url, path);
      expect(response.status, path).toBe(404);
      expect(response.body, path).toBe('not found\n');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
    }
    // The query string is no part of the path.
    expect((await raw(server.url, '/preload.json?x=../../package.json')).status).toBe(200);
  });

  it('takes GET and HEAD only, and requests addressed to it by its own name', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const response = await raw(server.url, '/index.html', { method });
      expect(response.status, method).toBe(405);
      expect(response.headers.allow).toBe('GET, HEAD');
    }
    const { port } = server;
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1:${port + 1}`, `localhost.evil.example:${port}`]) {
      expect((await raw(server.url, '/preload.json', { host })).status, host).toBe(421);
    }
    for (const host of [`localhost:${port}`, `LOCALHOST:${port}`, `127.0.0.1:${port}`]) expect((await raw(server.url, '/', { host })).status, host).toBe(200);
  });
});

describe('segscope serve', () => {
  const env = () => ({ SEGSCOPE_EXPLORER: APP });

  it('with no arguments serves the default model and its six samples with masks, until Ctrl-C (exit 0)', async () => {
    const running = await segscopeRunning(env(), 'serve', '--port', '0');
    try {
      expect(running.firstLine).toMatch(/^segscope explorer: http:\/\/127\.0\.0\.1:\d+\/ \(weights\/deeplabv3plus_scenes\.onnx, 6 images\)$/);
      const url = running.firstLine!.split(' ')[2]!;
      const listed = parsePreload(await (await fetch(new URL('preload.json', url))).json(), 'preload.json');
      expect(listed.model).toMatchObject({ name: 'deeplabv3plus_scenes.onnx', path: 'weights/deeplabv3plus_scenes.onnx' });
      expect(listed.model!.externalData).toBeUndefined();
      expect(listed.labels).toBe('weights/samples/labels');
      expect(listed.images.map((i) => [i.path, i.label?.path])).toEqual(
        readdirSync(SAMPLES)
          .filter((f) => f.endsWith('.png'))
          .map((f) => [`weights/samples/${f}`, `weights/samples/labels/${f}`]),
      );
      const model = await fetch(new URL(listed.model!.url, url));
      expect(await bodyDigest(model)).toBe(fileDigest(join(ROOT, 'weights/deeplabv3plus_scenes.onnx')));
      expect((await fetch(url)).headers.get('content-security-policy')).toBe(CSP);
    } finally {
      const { code, stderr } = await running.stop('SIGINT');
      expect(errors(stderr)).toEqual([]);
      expect(code).toBe(0);
    }
  });

  it('serves a model with its external data and a glob of images; says when it has no browser to --open; SIGTERM stops it too', async () => {
    const noOpener = join(dir, 'empty-path');
    mkdirSync(noOpener);
    const args = ['serve', MODEL, join(SAMPLES, 'scene_*.png'), '--labels', join(SAMPLES, 'labels'), '--port', '0', '--open'];
    const running = await segscopeRunning({ ...env(), PATH: noOpener }, ...args);
    try {
      expect(running.firstLine).toMatch(new RegExp(`^segscope explorer: http://127\\.0\\.0\\.1:\\d+/ \\(${MODEL.replace(/[.]/g, '\\.')}, 5 images\\)$`));
      const url = running.firstLine!.split(' ')[2]!;
      const listed = parsePreload(await (await fetch(new URL('preload.json', url))).json(), 'preload.json');
      expect(listed.model!.externalData).toEqual([{ location: 'model.onnx.data', url: 'files/1/model.onnx.data' }]);
      expect(await bodyDigest(await fetch(new URL('files/1/model.onnx.data', url)))).toBe(fileDigest(`${MODEL}.data`));
      expect(listed.images.every((i) => i.label)).toBe(true);
    } finally {
      const { code, stderr } = await running.stop('SIGTERM');
      expect(errors(stderr)).toHaveLength(1);
      expect(errors(stderr)[0]).toMatch(/^segscope: cannot open a browser \((xdg-open|open|cmd): ENOENT\); open http:\/\/127\.0\.0\.1:\d+\/ yourself$/);
      expect(code).toBe(0);
    }
  });

  it('refuses a model that does not load, in one line naming it, before it listens', async () => {
    const bad = join(dir, 'bad.onnx');
    writeFileSync(bad, 'not a model');
    const { code, stdout, stderr } = await segscopeWithEnv(env(), 'serve', bad, join(SAMPLES, 'street.png'), '--port', '0');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = errors(stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(bad);
  });

  it('refuses a missing image, a taken port and a missing build, each in one line', async () => {
    const missing = await segscopeWithEnv(env(), 'serve', MODEL, join(dir, 'nope.png'), '--port', '0');
    expect(missing.code).toBe(1);
    expect(errors(missing.stderr)).toEqual([`segscope: ${join(dir, 'nope.png')}: no such image, folder or glob (ENOENT)`]);

    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const busy = await segscopeWithEnv(env(), 'serve', MODEL, '--port', String(port));
      expect(busy.code).toBe(1);
      expect(errors(busy.stderr)).toEqual([`segscope: port ${port} is in use: pick another with --port`]);
    } finally {
      taken.close();
    }

    const empty = join(dir, 'unbuilt');
    mkdirSync(empty);
    const unbuilt = await segscopeWithEnv({ SEGSCOPE_EXPLORER: empty }, 'serve', '--port', '0');
    expect(unbuilt.code).toBe(1);
    expect(errors(unbuilt.stderr)).toEqual([`segscope: the explorer is not built (no index.html in ${empty}): run npm run build`]);
  });

  it('has --help, and a line in the main help', async () => {
    const help = await segscope('serve', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: segscope serve \[MODEL\] \[IMAGES\.\.\.\]/);
    expect((await segscope('--help')).stdout).toMatch(/^ {2}serve {4}the layer explorer/m);
  });
});
