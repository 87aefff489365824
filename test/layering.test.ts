/**
 * The engine must run in a browser with `navigator.gpu`: its layers use no
 * Node API, and each layer imports only the layers above it (docs/design.md).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../src');
const ORDER = ['onnx', 'model', 'preprocess', 'gpu', 'kernels', 'ops', 'autograd', 'runtime', 'vis', 'metrics', 'workflow', 'report', 'explorer'];
/** The one module allowed to load Dawn's Node bindings. */
const ADAPTER = 'gpu/dawn.ts';

function imports(file: string): string[] {
  return [...readFileSync(join(SRC, file), 'utf8').matchAll(/^(?:import|export)[^;]*?from '([^']+)'/gms)].map((m) => m[1]!);
}

describe('engine layering', () => {
  for (const layer of ORDER) {
    // Sub-folders too (ops/conv/): their imports of other layers resolve by the top folder after src/.
    for (const file of readdirSync(join(SRC, layer), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
      const path = `${layer}/${file}`;
      if (path === ADAPTER) continue;
      it(`${path} uses no Node API and imports only layers above it`, () => {
        for (const spec of imports(path)) {
          expect(spec, `${path} imports ${spec}`).not.toMatch(/^node:|^(fs|path|os|child_process|webgpu)$/);
          const target = spec.startsWith('.') ? /^([a-z]+)\//.exec(posix.join(posix.dirname(path), spec))?.[1] : undefined;
          if (target && target !== layer) expect(ORDER.indexOf(target), `${path} imports ${spec}`).toBeLessThan(ORDER.indexOf(layer));
        }
      });
    }
  }
});
