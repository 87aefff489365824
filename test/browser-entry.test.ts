/**
 * The browser entry (src/browser.ts, `segscope/browser`) must bundle for a
 * browser with nothing from Node in it: no builtin, no sharp, no Dawn, no
 * src/io or src/cli. layering.test.ts checks the engine's own imports; this
 * checks what a bundler actually pulls in, dependencies included.
 */
import { execFile } from 'node:child_process';
import { builtinModules, createRequire } from 'node:module';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as browserEntry from '../src/browser.js';
import { GpuError } from '../src/errors.js';
import { openDawn } from '../src/gpu/dawn.js';
import { requestGpu } from '../src/gpu/device.js';
import * as nodeEntry from '../src/index.js';
import type { Pixels } from '../src/preprocess/input-tensor.js';
import { ROOT } from './helpers/cli.js';

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const isBuiltin = (spec: string) => BUILTINS.has(spec) || spec.startsWith('node:');

/** Files that must never reach a browser bundle. */
const NODE_ONLY = [/^node:/, /(^|\/)node_modules\/(sharp|webgpu|@img)\//, /^src\/io\//, /^src\/cli\//, /^src\/gpu\/dawn\.ts$/, /^src\/index\.ts$/];

describe('the browser entry', () => {
  it('bundles for the browser with no Node module in it', async () => {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: ['src/browser.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      minify: true,
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    // An unresolved import (a Node builtin included) fails the build and throws above.
    expect(result.errors).toEqual([]);
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs).toContain('src/browser.ts');
    expect(inputs.filter((f) => NODE_ONLY.some((re) => re.test(f)) || isBuiltin(f))).toEqual([]);
    // A dependency may stub a builtin for browsers itself (protobufjs's package.json maps "fs" to false):
    // esbuild includes an empty '(disabled):fs'. Our own code must not be the one importing it.
    for (const [file, input] of Object.entries(result.metafile.inputs)) {
      if (!file.startsWith('src/')) continue;
      expect(
        input.imports.filter((i) => isBuiltin(i.path) || i.path.startsWith('(disabled):')),
        file,
      ).toEqual([]);
    }
    expect(disabledImporters(result.metafile).filter((f) => !f.startsWith('node_modules/'))).toEqual([]);

    const [bundle] = result.outputFiles;
    const text = bundle!.text;
    // Nothing left for a runtime to load: no require/import of a builtin, no import of any package.
    const specifiers = [...text.matchAll(/\b(?:require|import)\s*\(\s*["'`]([^"'`]+)["'`]\s*\)|\bfrom\s*["']([^"']+)["']/g)].map((m) => m[1] ?? m[2]!);
    expect(specifiers.filter(isBuiltin)).toEqual([]);
    expect(specifiers.filter((s) => !s.startsWith('.') && !s.startsWith('/'))).toEqual([]);
    console.log(
      `browser bundle (minified): ${(bundle!.contents.length / 1024).toFixed(0)} KiB, ${(gzipSync(bundle!.contents).length / 1024).toFixed(0)} KiB gzipped, ${inputs.length} input files`,
    );
  });

  it('loads neither sharp nor Dawn when imported in Node (the Node entry does load sharp)', async () => {
    const loaded = async (entry: string): Promise<string[]> => {
      // CommonJS modules loaded so far: sharp's native binding (@img/sharp-*) loads with sharp, Dawn's (webgpu) with Dawn.
      const script = `import { createRequire } from 'node:module'; await import(${JSON.stringify(entry)});
        console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT });
      return (JSON.parse(stdout) as string[]).filter((f) => /node_modules\/(sharp|webgpu|@img\/sharp)/.test(f));
    };
    expect(await loaded('./src/browser.ts')).toEqual([]);
    expect((await loaded('./src/index.ts')).some((f) => f.includes('@img/sharp'))).toBe(true);
  });

  it('exports the engine, vis, metrics, preprocessing, the workflow and the report renderer, and no internals; the Node entry adds files and Dawn', () => {
    for (const name of [
      'Session',
      'CapturedTensor',
      'modelFromBytes',
      'requestGpu',
      'openDevice',
      'toInputTensor',
      'fitGeometry',
      'IMAGENET_MEAN',
      'featureMap',
      'channelGrid',
      'ConfusionMatrix',
      'relativeL2',
      'ModelError',
      'GpuError',
      'Visualizer',
      'decodeLabel',
      'renderReport',
      'escapeHtml',
    ]) {
      expect(browserEntry, name).toHaveProperty(name);
    }
    const internals = [
      'packLut',
      'tileOrigin',
      'DIGIT_GLYPHS',
      'labelSize',
      'drawLayer',
      'checkDrawable',
      'fitLabel',
      'resizeLabel',
      'colourLabel',
      'modelInput',
      'fittedPicture',
      'predictionOf',
      'checkRelativeFile',
      'THUMBNAIL_SIZE',
      'visModel',
      'writeReport',
    ];
    for (const name of internals) {
      expect(browserEntry, name).not.toHaveProperty(name);
      expect(nodeEntry, name).not.toHaveProperty(name);
    }
    for (const name of ['openDawn', 'readImage', 'readLabel', 'readModelFile', 'loadModel']) expect(browserEntry, name).not.toHaveProperty(name);
    expect(nodeEntry).toHaveProperty('readLabel');
    for (const name of Object.keys(browserEntry)) expect(nodeEntry, name).toHaveProperty(name);
    // A canvas's pixels go to toInputTensor as they are (checked by tsc -p tsconfig.test.json).
    expectTypeOf<ImageData>().toExtend<Pixels>();
  });
});

describe('requestGpu', () => {
  it("opens a device with the limits and features openDawn's gets, from any GPU object", async () => {
    const dawn = createRequire(import.meta.url)('webgpu') as { create(flags: string[]): GPU };
    const [viaRequest, viaDawn] = [await requestGpu(dawn.create([])), await openDawn()];
    try {
      expect(viaRequest.description).toMatch(/^WebGPU: /);
      expect([...viaRequest.features].sort()).toEqual([...viaDawn.features].sort());
      for (const name of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'] as const) {
        expect(viaRequest.limits[name], name).toBe(viaDawn.limits[name]);
      }
    } finally {
      viaRequest.device.destroy();
      viaDawn.device.destroy();
    }
  });

  it('says so when there is no navigator.gpu', async () => {
    if (globalThis.navigator?.gpu) return;
    await expect(requestGpu()).rejects.toThrow(GpuError);
    await expect(requestGpu()).rejects.toThrow(/navigator\.gpu is undefined/);
  });
});

/** The files that import an empty stand-in esbuild put for a module a package's "browser" field disables. */
function disabledImporters(metafile: Metafile): string[] {
  return Object.entries(metafile.inputs)
    .filter(([, input]) => input.imports.some((i) => i.path.startsWith('(disabled):')))
    .map(([file]) => file);
}
