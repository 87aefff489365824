/**
 * The explorer (src/explorer) in real Chromium with WebGPU on SwiftShader,
 * served by `segscope serve`'s server: its engine's numbers, its pictures
 * against `segscope vis`, the value under the cursor, the module tree
 * against `segscope layers --json`, and errors that leave the page working.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readImage } from '../src/io/image.js';
import { readModelFile } from '../src/io/model-file.js';
import { readLabel } from '../src/io/labels.js';
import { Visualizer } from '../src/workflow/visualizer.js';
import { AttributeType, DataType } from '../src/onnx/schema.js';
import { encodeModel } from '../src/onnx/decode.js';
import type { HostTensor } from '../src/model/graph.js';
import type { ExplorerServer } from '../src/io/explorer-server.js';
import { toInputTensor } from '../src/preprocess/input-tensor.js';
import { Session } from '../src/runtime/session.js';
import { launchBrowser, launchWebGpuBrowser, noBrowser } from './helpers/browser.js';
import { errors, ROOT, segscope } from './helpers/cli.js';
import { canvasPixels, DEFAULT_MODEL, defaultFiles, explorerBuild, openPage, SAMPLES, serveExplorer, waitForLayer, waitForMap } from './helpers/explorer.js';
import { gpu, relL2 } from './helpers/gpu.js';
import { jetLevels } from './helpers/images.js';

const ASPP = 'classifier.aspp.project';
const ASPP_TENSOR = '/classifier/aspp/project/project.2/Relu_output_0';
const tmp = mkdtempSync(join(tmpdir(), 'segscope-explorer-test-'));

describe.skipIf(noBrowser)('the explorer in Chromium', () => {
  let browser: Browser;
  let server: ExplorerServer;
  beforeAll(async () => {
    [browser, server] = await Promise.all([launchWebGpuBrowser(), serveExplorer(defaultFiles())]);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("runs the engine in the page: the default model's logits and its captured ASPP tensor equal the Node engine's (relative L2 <= 1e-4)", async () => {
    const page = await browser.newPage();
    const script = await build({
      entryPoints: [join(ROOT, 'test/helpers/engine-page.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      logLevel: 'silent',
    });
    // Same origin as the server (a secure context on 127.0.0.1), a page of the test's own.
    await page.route('**/engine-test.html', (route) =>
      route.fulfill({ contentType: 'text/html', body: '<!doctype html><script type="module" src="engine-test.js"></script>' }),
    );
    await page.route('**/engine-test.js', (route) => route.fulfill({ contentType: 'text/javascript', body: script.outputFiles[0]!.text }));
    await page.goto(`${server.url}engine-test.html`);
    await page.waitForFunction(() => 'runEngine' in globalThis);

    const { tensor } = toInputTensor(await readImage(join(SAMPLES, 'street.png')), { size: [257, 257] });
    const data = Buffer.from((tensor.data as Float32Array).buffer).toString('base64');
    const inPage = await page.evaluate(
      ([url, input, capture]) => (globalThis as unknown as { runEngine: (...a: unknown[]) => Promise<Record<string, string>> }).runEngine(url, input, capture),
      ['files/0/deeplabv3plus_scenes.onnx', { name: 'input', dims: [...tensor.dims], data }, [ASPP_TENSOR]] as const,
    );
    const floats = (b64: string) => new Float32Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer);

    const session = await Session.create(await gpu(), await readModelFile(DEFAULT_MODEL), { inputShapes: { input: [1, 3, 257, 257] }, capture: [ASPP_TENSOR] });
    try {
      const { outputs, captured } = await session.run(tensor);
      const logits = outputs.get('logits') ?? [...outputs.values()][0]!;
      const name = [...outputs.keys()][0]!;
      expect(floats(inPage[name]!)).toHaveLength(logits.data.length);
      expect(relL2(floats(inPage[name]!), logits.data)).toBeLessThanOrEqual(1e-4);
      const aspp = await captured.get(ASPP_TENSOR)!.read();
      expect(floats(inPage[ASPP_TENSOR]!)).toHaveLength(128 * 17 * 17);
      expect(relL2(floats(inPage[ASPP_TENSOR]!), aspp)).toBeLessThanOrEqual(1e-4);
    } finally {
      session.destroy();
      await page.close();
    }
  }, 180_000);

  describe('the page', () => {
    let page: Page;
    let problems: string[];
    beforeAll(async () => {
      ({ page, problems } = await openPage(browser, server.url));
      await waitForMap(page, 'a');
    }, 180_000);

    it("opens the served model and images: the ASPP output's max map in JET, and the Copy-as-command line writes the same picture (within one level per channel)", async () => {
      expect(await page.locator('#a-layer').textContent()).toBe(ASPP);
      const shown = await canvasPixels(page, '#a-canvas');
      const command = (await page.locator('#a-command').inputValue()).split(' ');
      expect(command.slice(0, 2)).toEqual(['segscope', 'vis']);
      const out = join(tmp, 'vis');
      expect(command.slice(1, command.indexOf('--out'))).toEqual([
        'vis',
        'weights/deeplabv3plus_scenes.onnx',
        'weights/samples/scene_1.png',
        '--layer',
        ASPP,
        '--reduce',
        'max',
        '--labels',
        'weights/samples/labels',
      ]);
      const args = [...command.slice(1, command.indexOf('--out')), '--out', out];
      const { code, stderr } = await segscope(...args);
      expect(errors(stderr)).toEqual([]);
      expect(code).toBe(0);
      const written = await readImage(join(out, 'scene_1_classifier.aspp.project_max.png'));
      expect([shown.width, shown.height]).toEqual([written.width, written.height]);
      // SwiftShader and lavapipe round differently: a normalised value may land one JET level away, never more.
      const inPage = jetLevels(shown.rgba, 4);
      const cli = jetLevels(written.data, 3);
      expect(inPage.every((v) => v !== undefined) && cli.every((v) => v !== undefined), 'every pixel a JET colour').toBe(true);
      expect(Math.max(...inPage.map((v, p) => Math.abs(v! - cli[p]!)))).toBeLessThanOrEqual(1);
      for (let p = 0; p < written.width * written.height; p++) expect(shown.rgba[4 * p + 3]).toBe(255);
      expect(problems).toEqual([]);
    });

    /** The Node engine's ASPP tensor for sample scene_1, the page's first image. */
    async function nodeAspp(): Promise<HostTensor> {
      const { tensor } = toInputTensor(await readImage(join(SAMPLES, 'scene_1.png')), { size: [257, 257] });
      const session = await Session.create(await gpu(), await readModelFile(DEFAULT_MODEL), {
        inputShapes: { input: [1, 3, 257, 257] },
        capture: [ASPP_TENSOR],
      });
      try {
        return await (await session.run(tensor, { outputs: [] })).captured.get(ASPP_TENSOR)!.toHost();
      } finally {
        session.destroy();
      }
    }

    /** Moves the cursor to a fraction of panel A's map and returns what the hover line states. */
    async function hoverAt(fx: number, fy: number): Promise<{ value: number; c: string; y: number; x: number; text: string }> {
      const box = (await page.locator('#a-canvas').boundingBox())!;
      const before = await page.locator('#a-hover').textContent();
      await page.mouse.move(box.x + box.width * fx, box.y + box.height * fy);
      await page.waitForFunction((old) => document.querySelector('#a-hover')!.textContent !== old, before);
      const d = await page.locator('#a-hover').evaluate((el) => ({ ...(el as HTMLElement).dataset, text: el.textContent ?? '' }) as Record<string, string>);
      return { value: Number(d.value), c: d.c!, y: Number(d.y), x: Number(d.x), text: d.text };
    }

    it("states the tensor coordinates and the value under the cursor, the captured tensor's (max over channels, then one channel)", async () => {
      const aspp = await nodeAspp();
      const at = (c: number, y: number, x: number) => aspp.data[(c * 17 + y) * 17 + x] as number;
      const max = await hoverAt(0.3, 0.62);
      // The map is 257 pixels for 17 tensor rows and columns: the cursor's fraction of the map is the row's and column's.
      expect([max.y, max.x]).toEqual([Math.floor(0.62 * 17), Math.floor(0.3 * 17)]);
      const channels = Array.from({ length: 128 }, (_, c) => at(c, max.y, max.x));
      const best = channels.indexOf(Math.max(...channels));
      expect(Number(max.c)).toBe(best);
      expect(Math.abs(max.value - channels[best]!)).toBeLessThanOrEqual(1e-4 * Math.abs(channels[best]!));
      expect(max.text).toContain(`${ASPP_TENSOR}[0, ${best}, ${max.y}, ${max.x}]`);

      await page.selectOption('#a-reduce', 'channel');
      await page.locator('#a-channel').fill('5');
      await page.waitForFunction(() => /channel:5/.test(document.querySelector('#a-info')!.textContent ?? ''));
      const one = await hoverAt(0.8, 0.1);
      expect(one.c).toBe('5');
      expect(Math.abs(one.value - at(5, one.y, one.x))).toBeLessThanOrEqual(1e-4 * Math.abs(at(5, one.y, one.x)) + 1e-6);
      await page.selectOption('#a-reduce', 'max');
      await page.waitForFunction(() => / max /.test(document.querySelector('#a-info')!.textContent ?? ''));
      expect(problems).toEqual([]);
    });

    it('redraws a colormap or normalisation change from the captured tensor without running the network; a layer change runs it', async () => {
      const runs = async () => Number(await page.locator('body').getAttribute('data-runs'));
      const before = await runs();
      const jet = await canvasPixels(page, '#a-canvas');
      await page.selectOption('#a-colormap', 'viridis');
      // Both at once: under load the picture and the command of this redraw are not the first change the test may see.
      await page.waitForFunction((old) => {
        const c = document.querySelector<HTMLCanvasElement>('#a-canvas')!;
        const repainted = c.getContext('2d')!.getImageData(0, 0, 1, 1).data.join() !== old;
        return repainted && document.querySelector<HTMLInputElement>('#a-command')!.value.includes('--colormap viridis');
      }, Array.from(jet.rgba.subarray(0, 4)).join());
      await page.selectOption('#a-normalize', 'p1-99');
      await page.waitForFunction(() => document.querySelector<HTMLInputElement>('#a-command')!.value.includes('--normalize p1-99'));
      // The 4 strongest channels as a grid, and the shown map saved under the name `segscope vis` gives it.
      await page.fill('#a-grid', '4');
      await page.waitForFunction(() => {
        const grid = document.querySelector<HTMLCanvasElement>('#a-grid-canvas')!;
        return !grid.hidden && grid.width > 0;
      });
      expect(await page.locator('#a-command').inputValue()).toContain('--grid 4');
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#a-save')]);
      expect(download.suggestedFilename()).toBe('scene_1_classifier.aspp.project_max.png');
      const saved = await readImage((await download.path())!);
      const shown = await canvasPixels(page, '#a-canvas');
      expect(Buffer.from(saved.data)).toEqual(Buffer.from(shown.rgba.filter((_, i) => i % 4 !== 3)));
      await page.fill('#a-grid', '0');
      expect(await runs()).toBe(before);
      await page.selectOption('#a-colormap', 'jet');
      await page.selectOption('#a-normalize', 'minmax');

      await page.selectOption('#target', '1');
      await page.locator('#tree tr[data-pattern="backbone.layer4"]').click();
      await waitForLayer(page, 'b', '/backbone/layer4/');
      expect(await runs()).toBe(before + 1);
      await page.locator('#tree tr[data-pattern="classifier.project"]').click();
      await waitForLayer(page, 'b', '/classifier/project/');
      await page.selectOption('#target', '0');
      expect(problems).toEqual([]);
    });

    it('lists the module tree exactly as `segscope layers --json` does: every module and node, with op, output shapes, parameters and MACs', async () => {
      const { code, stdout } = await segscope('layers', DEFAULT_MODEL, '--json');
      expect(code).toBe(0);
      const listed = JSON.parse(stdout) as {
        nodes: { name: string; opType: string; constant: boolean; outputs: { shape: number[] | null }[]; params: number; macs: number }[];
        modules: { path: string; outputs: { shape: number[] | null }[]; params: number; macs: number }[];
      };
      await page.fill('#filter', '');
      const rows = await page.$$eval('#tree tr[data-kind]', (trs) =>
        trs.map((tr) => ({
          kind: tr.getAttribute('data-kind')!,
          id: tr.getAttribute('data-id')!,
          cells: [...tr.querySelectorAll('td')].slice(1).map((td) => td.textContent),
        })),
      );
      const shapes = (o: { shape: number[] | null }[]) => o.map((t) => (t.shape ? `[${t.shape.join(',')}]` : '?')).join(' ');
      const num = (n: number) => (n ? n.toLocaleString('en-US') : '--');
      const expected = [
        ...listed.modules.map((m) => ({ kind: 'module', id: m.path, cells: ['', shapes(m.outputs), num(m.params), num(m.macs)] })),
        ...listed.nodes.map((n) => ({
          kind: 'node',
          id: n.name,
          cells: [n.constant ? `${n.opType}*` : n.opType, shapes(n.outputs), num(n.params), num(n.macs)],
        })),
      ];
      const byKey = (r: { kind: string; id: string }) => `${r.kind} ${r.id}`;
      expect(rows.map(byKey).sort()).toEqual(expected.map(byKey).sort());
      const want = new Map(expected.map((r) => [byKey(r), r.cells]));
      for (const row of rows) expect(row.cells, byKey(row)).toEqual(want.get(byKey(row)));

      await page.fill('#filter', 'aspp.project');
      const kept = await page.$$eval('#tree tr[data-kind]', (trs) => trs.map((tr) => tr.getAttribute('data-id')));
      expect(kept).toContain(ASPP);
      expect(kept.length).toBeLessThan(rows.length / 4);
      await page.fill('#filter', '');
    });

    it('shows each error as a message naming its cause, and keeps working: a file that is not ONNX, an unsupported op, a layer with nothing to draw', async () => {
      const alerts = () => page.$$eval('#errors .error span', (els) => els.map((e) => e.textContent ?? ''));
      const dismiss = () =>
        page.$$eval('#errors .error button', (bs) => {
          for (const b of bs) (b as HTMLButtonElement).click();
        });
      await page.setInputFiles('#open-files', {
        name: 'notes.onnx',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from('these are my notes, not a model'),
      });
      await page.waitForFunction(() => document.querySelectorAll('#errors .error').length > 0);
      expect(await alerts(), (await alerts()).join('\n')).toEqual([expect.stringMatching(/^Model error: notes\.onnx: not a valid ONNX model/)]);
      await dismiss();
      // The open model still runs: a layer change draws.
      await page.locator('#tree tr[data-pattern="backbone.layer1"]').click();
      await waitForLayer(page, 'a', '/backbone/layer1/');

      await page.locator('#tree tr[data-pattern="/Shape_output_0"]').click();
      await page.waitForFunction(() => /vis draws \[N,C,H,W\]/.test(document.querySelector('#a-info')!.textContent ?? ''));
      expect(await page.locator('#a-info').textContent()).toMatch(/^Input error: layer '\/Shape_output_0': tensor '\/Shape_output_0' has shape \[4\]/);
      await page.locator('#tree tr[data-pattern="classifier.aspp.project"]').click();
      await waitForLayer(page, 'a', '/classifier/aspp/project/');

      const float = { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [1, 3, 8, 8].map((d) => ({ dim_value: d })) } } };
      const unsupported = encodeModel({
        ir_version: 8,
        opset_import: [{ domain: '', version: 17 }],
        graph: {
          name: 'g',
          node: [
            { name: 'shuffle', op_type: 'DepthToSpace', input: ['input'], output: ['out'], attribute: [{ name: 'blocksize', type: AttributeType.INT, i: 1 }] },
          ],
          input: [{ name: 'input', type: float }],
          output: [{ name: 'out', type: float }],
        },
      });
      await page.setInputFiles('#open-files', { name: 'shuffle.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(unsupported) });
      await page.waitForFunction(() => document.querySelectorAll('#errors .error').length > 0);
      expect(await alerts()).toEqual([expect.stringMatching(/DepthToSpace/)]);
      // The model's tree still shows, its node marked as one segscope cannot run.
      expect(await page.locator('#tree tr[data-kind="node"] td.op').allTextContents()).toEqual(['DepthToSpace!']);
      await dismiss();
      // The default model opens again and draws.
      const runs = Number(await page.locator('body').getAttribute('data-runs'));
      await page.click('#open-default');
      // A run of the reopened model, not the picture still shown from before.
      await page.waitForFunction((n) => Number(document.body.dataset.runs) > n, runs, { timeout: 120_000 });
      await waitForLayer(page, 'a', '/classifier/aspp/project/');
      expect(await page.locator('#a-layer').textContent()).toBe(ASPP);
      expect(problems).toEqual([]);
    });

    it("refuses an input size too large for the adapter's limits, naming the node and the limit, and keeps the model as it was", async () => {
      const runs = Number(await page.locator('body').getAttribute('data-runs'));
      await page.fill('#input-size', '8193x8193');
      await page.locator('#input-size').dispatchEvent('change');
      await page.waitForFunction(() => document.querySelectorAll('#errors .error').length > 0, undefined, { timeout: 60_000 });
      expect(await page.locator('#errors .error span').allTextContents()).toEqual([
        expect.stringMatching(
          /^GPU error: MaxPool node '\/backbone\/maxpool\/MaxPool' input '[^']+' needs a \d+ byte binding; the adapter allows \d+ bytes per binding/,
        ),
      ]);
      await page.click('#errors .error button');
      expect(await page.locator('#input-size').inputValue()).toBe('257x257');
      // Still the 257x257 model: a layer change runs it.
      await page.locator('#tree tr[data-pattern="backbone.layer2"]').click();
      await waitForLayer(page, 'a', '/backbone/layer2/');
      expect(Number(await page.locator('body').getAttribute('data-runs'))).toBe(runs + 1);
      await page.locator('#tree tr[data-pattern="classifier.aspp.project"]').click();
      await waitForLayer(page, 'a', '/classifier/aspp/project/');
      expect(problems).toEqual([]);
    });

    it("shows the prediction's legend with the model's class names, and the image's per-class IoU as the Node engine scores it", async () => {
      const visualizer = await Visualizer.create(await gpu(), await readModelFile(DEFAULT_MODEL), { layers: [] });
      try {
        const prediction = visualizer.prediction!;
        const label = await readLabel(join(SAMPLES, 'labels', 'scene_1.png'), prediction.classes, prediction.palette);
        const { scores } = await visualizer.run(await readImage(join(SAMPLES, 'scene_1.png')), { label });
        const legend = await page.$$eval('#legend tbody tr', (trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].slice(1).map((td) => td.textContent ?? '')),
        );
        expect(legend.map((r) => r[0])).toEqual(prediction.names);
        // SwiftShader and lavapipe may part on a pixel or two at a class boundary: IoU to 3 decimals.
        for (const [k, iou] of scores!.perClassIoU.entries()) {
          if (iou === null) expect(legend[k]![1]).toBe('--');
          else expect(Math.abs(Number(legend[k]![1]) - iou)).toBeLessThan(2e-3);
        }
        expect(await page.locator('#scores').textContent()).toMatch(/^pixel accuracy 0\.\d{4}, mIoU 0\.\d{4}$/);
      } finally {
        visualizer.destroy();
      }
    });
    it("explains a class at panel A's layer: the canvas is `segscope cam`'s overlay for the same image (the copied command)", async () => {
      await page.selectOption('#cam-class', 'road');
      await page.selectOption('#cam-method', 'gradcam');
      await page.click('#cam-run');
      await page.waitForFunction(() => /score/.test(document.querySelector('#cam-info')!.textContent ?? ''), undefined, { timeout: 120_000 });
      const command = (await page.locator('#cam-command').inputValue()).split(' ');
      expect(command.slice(0, command.indexOf('--out'))).toEqual([
        'segscope',
        'cam',
        'weights/deeplabv3plus_scenes.onnx',
        'weights/samples/scene_1.png',
        '--layer',
        ASPP,
        '--class',
        'road',
        '--method',
        'gradcam',
        '--labels',
        'weights/samples/labels',
      ]);
      const out = join(tmp, 'cam');
      const { code, stdout, stderr } = await segscope(...command.slice(1, command.indexOf('--out')), '--out', out, '--json');
      expect(errors(stderr)).toEqual([]);
      expect(code).toBe(0);
      const written = (JSON.parse(stdout) as { images: { files: { file: string; pixels?: number }[] }[] }).images[0]!.files.find((f) => f.pixels)!;
      // The same pixels explained: the page's prediction is the CLI's.
      expect(await page.locator('#cam-info').getAttribute('data-pixels')).toBe(String(written.pixels));
      const shown = await canvasPixels(page, '#cam-canvas');
      const cli = await readImage(join(out, written.file));
      expect([shown.width, shown.height]).toEqual([cli.width, cli.height]);
      // SwiftShader and lavapipe round the gradients apart: a JET level (up to 4 per channel) at half weight, and the rounding.
      let worst = 0;
      for (let p = 0; p < cli.width * cli.height; p++)
        for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(shown.rgba[4 * p + c]! - cli.data[3 * p + c]!));
      expect(worst).toBeLessThanOrEqual(3);
      expect(problems).toEqual([]);
    });
  });

  /** Drops files on the page, as a user drags them from a file manager. */
  async function drop(page: Page, files: { name: string; bytes: Uint8Array }[]): Promise<void> {
    const transfer = await page.evaluateHandle(
      (list) => {
        const t = new DataTransfer();
        for (const f of list) t.items.add(new File([Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0))], f.name));
        return t;
      },
      files.map((f) => ({ name: f.name, data: Buffer.from(f.bytes).toString('base64') })),
    );
    await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
  }

  it('opens a dropped model with its external data file and images', async () => {
    const { page, problems } = await openPage(browser, server.url);
    try {
      await waitForMap(page, 'a');
      const dynamo = join(ROOT, 'test/fixtures/deeplabv3plus_dynamo');
      await drop(page, [
        { name: 'model.onnx', bytes: readFileSync(join(dynamo, 'model.onnx')) },
        { name: 'model.onnx.data', bytes: readFileSync(join(dynamo, 'model.onnx.data')) },
      ]);
      await page.waitForFunction(() => /^model\.onnx /.test(document.querySelector('#model-name')!.textContent ?? ''));
      await waitForMap(page, 'a');
      expect(await page.locator('#errors .error').count()).toBe(0);
      expect(await page.locator('#tree tr[data-kind]').count()).toBeGreaterThan(50);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('shows names from the model file as text, never as markup: node, tensor and class names', async () => {
    const { page, problems } = await openPage(browser, server.url);
    try {
      await waitForMap(page, 'a');
      const float = (dims: number[]) => ({ tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dim_value: d })) } } });
      const node = '/evil/<img src=x onerror="globalThis.pwned=1">/Conv';
      const tensor = '<script>globalThis.pwned=2</script>';
      const classes = ['<b>sky</b>', '<img src=y onerror="globalThis.pwned=3">'];
      const hostile = encodeModel({
        ir_version: 8,
        opset_import: [{ domain: '', version: 17 }],
        metadata_props: [{ key: 'classes', value: JSON.stringify(classes) }],
        graph: {
          name: 'g',
          node: [{ name: node, op_type: 'Conv', input: ['input', 'w'], output: [tensor] }],
          initializer: [{ name: 'w', dims: [2, 3, 1, 1], data_type: DataType.FLOAT, float_data: [1, 0, 0, 0, 1, 0] }],
          input: [{ name: 'input', type: float([1, 3, 8, 8]) }],
          output: [{ name: tensor, type: float([1, 2, 8, 8]) }],
        },
      });
      await drop(page, [
        { name: '<i>evil</i>.onnx', bytes: hostile },
        { name: 'scene_1.png', bytes: readFileSync(join(SAMPLES, 'scene_1.png')) },
      ]);
      await page.waitForFunction(() => (document.querySelector('#model-name')!.textContent ?? '').startsWith('<i>evil</i>.onnx'));
      // Its first layer shown (the module, whose output is the tensor), then the node's tensor picked.
      await waitForLayer(page, 'a', '<script>');
      await page.locator('#tree tr[data-kind="node"]').first().click();
      await page.waitForFunction((t) => document.querySelector<HTMLInputElement>('#a-command')!.value.includes(`--layer '${t}'`), tensor);
      const text = await page.locator('body').textContent();
      for (const name of [node.slice(node.lastIndexOf('/') + 1), tensor, ...classes, '<i>evil</i>.onnx']) expect(text).toContain(name);
      expect(await page.evaluate(() => document.querySelectorAll('img, b, i, body script').length)).toBe(0);
      expect(await page.evaluate(() => (globalThis as { pwned?: number }).pwned)).toBeUndefined();
      expect(await page.locator('#a-command').inputValue()).toContain(`--layer '${tensor}'`);
      expect(await page.locator('#errors .error').count()).toBe(0);
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('works from any static host: the built folder alone, the default model one click away', async () => {
    const app = await explorerBuild();
    const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };
    // A plain static server: files by path, 404 for the rest (no preload.json), no security headers.
    const plain = createServer((req, res) => {
      const path = new URL(req.url!, 'http://x').pathname;
      const file = join(app, path === '/' ? 'index.html' : decodeURIComponent(path));
      if (!file.startsWith(app) || !existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const { page, problems } = await openPage(browser, `http://127.0.0.1:${(plain.address() as AddressInfo).port}/`);
      await page.waitForFunction(() => /Open a model/.test(document.querySelector('#status')!.textContent ?? ''));
      await page.click('#open-default');
      await waitForMap(page, 'a');
      expect(await page.locator('#a-layer').textContent()).toBe(ASPP);
      expect(await page.locator('#images button').count()).toBe(6);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      plain.closeAllConnections();
      plain.close();
    }
  });

  it('says that the browser has no WebGPU, and still lists the module tree', async () => {
    const plain = await launchBrowser();
    try {
      const { page } = await openPage(plain, server.url);
      await page.waitForFunction(() => document.querySelectorAll('#errors .error').length > 0);
      expect(await page.locator('#errors .error span').first().textContent()).toMatch(/^GPU error: WebGPU/);
      await page.waitForFunction(() => document.querySelector('#tree tr[data-pattern="classifier.aspp.project"]') !== null);
    } finally {
      await plain.close();
    }
  });
});
