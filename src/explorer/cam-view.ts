import type { Gpu } from '../gpu/device.js';
import type { Graph } from '../model/graph.js';
import { CAM_METHODS, type CamMethod } from '../vis/cam.js';
import { commandLine } from '../workflow/command-line.js';
import { Explainer } from '../workflow/explainer.js';
import type { LabelMap } from '../workflow/labels.js';
import type { Prediction } from '../workflow/prediction.js';
import { h, paint, select } from './dom.js';
import { errorMessage } from './errors.js';
import type { Pixels } from './files.js';

/**
 * The class activation map of panel A's layer, on demand: which regions of
 * that layer make the model call pixels the chosen class (`segscope cam` in
 * the page). The model is differentiated for a layer at the first request
 * and kept for the next ones; a new model or input size drops it.
 */
export class CamView {
  readonly element: HTMLElement;
  private explainer?: { layer: string; value: Promise<Explainer> };

  constructor(private readonly host: { error(e: unknown): void; status(text: string): void }) {
    this.element = h('section', { id: 'cam', class: 'panel' });
  }

  /** Shows the controls for a model's classes (none: the model has no class logits to explain). */
  reset(prediction: Prediction | undefined): void {
    void this.explainer?.value.then((e) => e.destroy()).catch(() => undefined);
    this.explainer = undefined;
    if (prediction?.kind !== 'classes') {
      this.element.replaceChildren(
        h('h2', {}, 'Class activation map'),
        h('p', { class: 'note' }, 'The output is not [N,K,H,W] class logits: no class to explain.'),
      );
      return;
    }
    const names = Array.from({ length: prediction.classes }, (_, k) => prediction.names?.[k] ?? `class ${k}`);
    this.element.replaceChildren(
      h('h2', {}, 'Class activation map ', h('span', { class: 'note' }, "of panel A's layer")),
      h(
        'div',
        { class: 'controls' },
        h('label', {}, 'class ', select('cam-class', names.map(String), names[0]!)),
        h('label', {}, 'method ', select('cam-method', CAM_METHODS, 'gradcam')),
        h('label', {}, 'pixels ', select('cam-mask', ['pred', 'all', 'label'], 'pred', { pred: 'predicted as the class', all: 'all', label: "the label's" })),
        h('button', { id: 'cam-run', type: 'button' }, 'Explain'),
      ),
      h('canvas', { id: 'cam-canvas', class: 'map', width: 0, height: 0 }),
      h('div', { id: 'cam-info', class: 'info' }),
      h('input', { id: 'cam-command', class: 'command', readonly: true, title: 'the segscope cam command that writes this picture' }),
    );
  }

  /** Explains the current image for the chosen class and method; `context` names the files for the copied command. */
  async explain(
    gpu: Gpu,
    graph: Graph,
    inputSize: [number, number],
    layer: string | undefined,
    image: { pixels: Pixels; label?: LabelMap } | undefined,
    context: { model: string; image: string; labels?: string; inputSize?: readonly [number, number] },
  ): Promise<void> {
    const get = <T extends HTMLElement>(id: string) => this.element.querySelector<T>(`#${id}`)!;
    const info = get('cam-info');
    if (!layer || !image) {
      info.textContent = 'Choose a layer for panel A and an image first.';
      return;
    }
    const classIndex = get<HTMLSelectElement>('cam-class').selectedIndex;
    const className = get<HTMLSelectElement>('cam-class').value;
    const method = get<HTMLSelectElement>('cam-method').value as CamMethod;
    const mask = get<HTMLSelectElement>('cam-mask').value as 'pred' | 'all' | 'label';
    try {
      if (this.explainer?.layer !== layer) {
        void this.explainer?.value.then((e) => e.destroy()).catch(() => undefined);
        this.host.status(`Differentiating the model for ${layer}…`);
        this.explainer = { layer, value: Explainer.create(gpu, graph, { layers: [layer], inputSize }) };
      }
      const explainer = await this.explainer.value;
      this.host.status(`Explaining ${className} at ${layer}…`);
      const started = performance.now();
      const result = await explainer.explain(image.pixels, { classes: [classIndex], methods: [method], mask, ...(image.label ? { label: image.label } : {}) });
      const cam = result.cams[0]!;
      paint(get<HTMLCanvasElement>('cam-canvas'), cam.picture);
      info.textContent = `${cam.tensor} [${cam.shape.join(',')}]  ${method} of ${className}: score ${cam.score.toPrecision(6)} over ${cam.pixels} pixels`;
      info.dataset.pixels = String(cam.pixels);
      this.host.status(`Explained ${className} in ${(performance.now() - started).toFixed(0)} ms`);
      const words = ['segscope', 'cam', context.model, context.image, '--layer', layer, '--class', className, '--method', method];
      if (mask !== 'pred') words.push('--mask', mask);
      if (context.labels) words.push('--labels', context.labels);
      if (context.inputSize) words.push('--input-size', `${context.inputSize[0]}x${context.inputSize[1]}`);
      get<HTMLInputElement>('cam-command').value = commandLine([...words, '--out', 'segscope-cam']);
    } catch (e) {
      info.textContent = errorMessage(e);
      this.host.error(e);
    }
  }
}
