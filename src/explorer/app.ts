import { InputError } from '../errors.js';
import { errorMessage } from './errors.js';
import type { Gpu } from '../gpu/device.js';
import { modelFromBytes } from '../model/from-bytes.js';
import type { Graph } from '../model/graph.js';
import { inferTypes } from '../model/infer.js';
import { segmentationMetadata } from '../model/metadata.js';
import { summarize, type Summary, type TensorSummary } from '../model/summary.js';
import { registry } from '../ops/registry.js';
import type { Preload } from '../preload.js';
import { decodeLabel, type LabelMap, type LabelPixels } from '../workflow/labels.js';
import { modelInput, type ModelInput } from '../workflow/input.js';
import type { Prediction } from '../workflow/prediction.js';
import { Visualizer } from '../workflow/visualizer.js';
import type { CommandInput } from './command.js';
import { CamView } from './cam-view.js';
import { byId, h } from './dom.js';
import { decodeImage, fetchBytes, fetchPreload, sortFiles, stem, type Pixels } from './files.js';
import { MapPanel, type PanelHost } from './panel.js';
import { renderPrediction } from './prediction-view.js';
import { renderTree } from './tree.js';

/**
 * The explorer: one model, its module tree, a list of images, two
 * feature-map panels and the prediction. The network runs when the image
 * or a panel's layer changes, capturing both panels' layers; every other
 * setting redraws from the captured tensors.
 */

interface OpenModel {
  graph: Graph;
  name: string;
  /** As given to `segscope serve`, for the copied command. */
  path?: string;
  /** The input size the user asked for, when not the model's own. */
  inputSize?: [number, number];
  input: ModelInput;
  summary: Summary;
  visualizer?: Visualizer;
}

interface OpenImage {
  name: string;
  path?: string;
  pixels: Pixels;
  label?: { name: string; pixels: Pixels };
  /** Whether the label came from the server's --labels folder (the copied command then names it). */
  labelsFolder?: string;
}

/** The layers the seed recipe compares, when a model has them: the ASPP output and the decoder's low-level projection. */
const RECIPE_LAYERS = ['classifier.aspp.project', 'classifier.project'];

export class Explorer implements PanelHost {
  private model?: OpenModel;
  private images: OpenImage[] = [];
  private current = -1;
  private readonly panels: MapPanel[];
  private readonly cam: CamView;
  /** A run is wanted: set while one is in flight, the loop runs once more. */
  private runWanted = false;
  private running?: Promise<void>;
  /** Runs of the network so far, shown as the body's data-runs (a redraw is not a run). */
  private runs = 0;
  /** Model loads and input-size changes, one at a time: each swaps the model only once its compile is done. */
  private modelWork: Promise<unknown> = Promise.resolve();

  constructor(private readonly gpu: Promise<Gpu>) {
    this.panels = [new MapPanel('a', this), new MapPanel('b', this, { reduce: 'mean' })];
    byId('panels').replaceChildren(...this.panels.map((p) => p.element));
    this.cam = new CamView(this);
    byId('panels').after(this.cam.element);
    this.cam.element.addEventListener('click', (event) => {
      if ((event.target as HTMLElement).id === 'cam-run') void this.explain();
    });
  }

  /** Opens what the server was started with (/preload.json), if anything. */
  async start(): Promise<void> {
    this.bindControls();
    const preload = await fetchPreload('preload.json').catch((e: unknown) => this.error(e));
    if (preload) await this.openPreload(preload);
    else this.status('Open a model (.onnx) and images, drop them here, or open the default model.');
  }

  async openPreload(preload: Preload): Promise<void> {
    if (preload.model) {
      const m = preload.model;
      try {
        this.status(`Downloading ${m.name}…`);
        const bytes = await fetchBytes(m.url, m.name);
        const data = new Map<string, Uint8Array>();
        for (const e of m.externalData ?? []) data.set(e.location, await fetchBytes(e.url, e.location));
        await this.openModel(bytes, m.name, data, m.path);
      } catch (e) {
        this.error(e);
      }
    }
    const images: OpenImage[] = [];
    for (const image of preload.images) {
      try {
        const pixels = await decodeImage(new Blob([await fetchBytes(image.url, image.name)]), image.name);
        const label = image.label && {
          name: image.label.name,
          pixels: await decodeImage(new Blob([await fetchBytes(image.label.url, image.label.name)]), image.label.name),
        };
        images.push({ name: image.name, ...(image.path ? { path: image.path } : {}), pixels, ...(label ? { label, labelsFolder: preload.labels } : {}) });
      } catch (e) {
        this.error(e);
      }
    }
    this.addImages(images);
  }

  /** Files picked or dropped: a model (with its external data files) and images; or label images for the open images, by name. */
  async openFiles(files: readonly File[], as: 'any' | 'labels' = 'any'): Promise<void> {
    const { models, images, data } = sortFiles(files);
    if (as === 'labels') return this.openLabels(images);
    const opened: OpenImage[] = [];
    for (const f of images) {
      try {
        opened.push({ name: f.name, pixels: await decodeImage(f, f.name) });
      } catch (e) {
        this.error(e);
      }
    }
    // Listed and selected first, so that a model dropped with them runs on them, not on the image before.
    this.addImages(opened, false);
    if (models.length > 1) this.error(new InputError(`${models.length} models were given (${models.map((f) => f.name).join(', ')}): open one at a time`));
    else if (models[0]) {
      const external = new Map<string, Uint8Array>();
      for (const f of data) external.set(f.name, new Uint8Array(await f.arrayBuffer()));
      try {
        return await this.openModel(new Uint8Array(await models[0].arrayBuffer()), models[0].name, external);
      } catch (e) {
        this.error(e);
      }
    } else if (data.length) this.error(new InputError(`${data.map((f) => f.name).join(', ')}: not a model (.onnx) or an image (.png, .jpg, .jpeg, .webp)`));
    if (opened.length) this.requestRun();
  }

  openModel(bytes: Uint8Array, name: string, externalData: ReadonlyMap<string, Uint8Array>, path?: string): Promise<void> {
    return this.oneAtATime(() => this.openModelNow(bytes, name, externalData, path));
  }

  /** Runs model work after the work queued before it has settled. */
  private oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const result = this.modelWork.then(work);
    this.modelWork = result.catch(() => undefined);
    return result;
  }

  private async openModelNow(bytes: Uint8Array, name: string, externalData: ReadonlyMap<string, Uint8Array>, path?: string): Promise<void> {
    this.status(`Reading ${name}…`);
    // Parsed and typed before the old model goes: a bad file leaves the open one working.
    const graph = modelFromBytes(bytes, name, externalData);
    const model: OpenModel = { graph, name, ...(path ? { path } : {}), ...typedAt(graph) };
    this.model?.visualizer?.destroy();
    this.model = model;
    this.showModel(model);
    for (const p of this.panels) p.clear('compiling…');
    const gpu = await this.gpu.catch(() => undefined);
    if (!gpu) {
      for (const p of this.panels) p.clear('no WebGPU: nothing can run here');
      return this.status(`${name}: the module tree needs no GPU; running the model needs WebGPU`);
    }
    try {
      const visualizer = await this.compile(model, gpu);
      model.visualizer = visualizer;
    } catch (e) {
      for (const p of this.panels) p.clear('the model could not be compiled');
      throw e;
    }
    renderPrediction(byId('prediction'), model.visualizer.prediction, undefined);
    this.cam.reset(model.visualizer.prediction);
    const modulePaths = new Set(model.summary.modules.map((m) => m.path));
    const recipe = RECIPE_LAYERS.filter((l) => modulePaths.has(l));
    this.panels.forEach((p, k) => {
      p.setLayer(recipe[k] ?? (k === 0 ? lastDrawable(model.summary) : undefined));
    });
  }

  /** The open model again at another input size (no file is read again); on failure the model stays as it was. */
  private reopen(model: OpenModel, size: [number, number]): Promise<void> {
    return this.oneAtATime(() => this.reopenNow(model, size));
  }

  private async reopenNow(model: OpenModel, size: [number, number]): Promise<void> {
    // Another model was opened meanwhile: the size was asked of the one it replaced.
    if (model !== this.model) return;
    const typed = typedAt(model.graph, size);
    let visualizer: Visualizer;
    try {
      visualizer = await this.compile({ ...model, ...typed, inputSize: size }, await this.gpu);
    } catch (e) {
      this.showModel(model);
      this.status(`${model.name} stays at ${model.input.size.join('x')}`);
      throw e;
    }
    model.visualizer?.destroy();
    Object.assign(model, { visualizer, inputSize: size, ...typed });
    this.showModel(model);
    this.cam.reset(visualizer.prediction);
    this.requestRun();
  }

  /** Compiles a model at its input size, showing the shaders compiled so far. */
  private async compile(model: Pick<OpenModel, 'graph' | 'name' | 'input' | 'inputSize'>, gpu: Gpu): Promise<Visualizer> {
    const started = performance.now();
    const progress = byId<HTMLProgressElement>('progress');
    const size = model.input.size.join('x');
    this.status(`Compiling ${model.name} for ${size}…`);
    const visualizer = await Visualizer.create(gpu, model.graph, {
      layers: [],
      ...(model.inputSize ? { inputSize: model.inputSize } : {}),
      onProgress: ({ done, total }) => {
        progress.max = total;
        progress.value = done;
        this.status(`Compiling ${model.name} for ${size}: ${done} of ${total} shaders`);
      },
    });
    this.status(`Compiled ${model.name} for ${size} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return visualizer;
  }

  /** The model's name, input and normalisation (with where each came from), the input size field and the module tree. */
  private showModel(model: OpenModel): void {
    const { input } = model;
    byId('model-name').textContent =
      `${model.name}  input '${input.name}' [1,3,${input.size.join(',')}] (${input.sizeFrom})  mean ${input.mean.join(',')} (${input.meanFrom})  std ${input.std.join(',')} (${input.stdFrom})`;
    byId<HTMLInputElement>('input-size').value = `${input.size[0]}x${input.size[1]}`;
    this.renderTree();
  }

  // PanelHost

  layerChanged(): void {
    this.renderTree();
    this.requestRun();
  }

  commandContext(): Omit<CommandInput, 'layer' | 'reduce' | 'options'> | undefined {
    const image = this.images[this.current];
    if (!this.model || !image) return undefined;
    return {
      model: this.model.path ?? this.model.name,
      image: image.path ?? image.name,
      ...(image.labelsFolder ? { labels: image.labelsFolder } : {}),
      ...(this.model.inputSize ? { inputSize: this.model.inputSize } : {}),
    };
  }

  imageStem(): string {
    return stem(this.images[this.current]?.name ?? 'image');
  }

  /** Shows an error until dismissed; the same message twice is shown once. */
  error(e: unknown): undefined {
    const message = errorMessage(e);
    if ([...byId('errors').querySelectorAll('.error span')].some((el) => el.textContent === message)) return undefined;
    const item = h('div', { class: 'error', role: 'alert' }, h('span', {}, message), h('button', { type: 'button', title: 'dismiss' }, '×'));
    item.querySelector('button')!.addEventListener('click', () => item.remove());
    byId('errors').append(item);
    return undefined;
  }

  status(text: string): void {
    byId('status').textContent = text;
  }

  private renderTree(): void {
    const { model } = this;
    if (!model) return;
    const filter = byId<HTMLInputElement>('filter').value;
    // Which panels show each layer: the tree marks its rows with their letters.
    const selected = new Map<string, string>();
    this.panels.forEach((p, k) => {
      if (p.settings.layer) selected.set(p.settings.layer, `${selected.get(p.settings.layer) ?? ''}${'AB'[k]}`);
    });
    const shown = renderTree(byId('tree'), model.summary, filter, selected, (pattern, event) => {
      const target = event.shiftKey ? 1 : Number(byId<HTMLSelectElement>('target').value);
      this.panels[target]!.setLayer(pattern);
    });
    byId('tree-count').textContent = `${shown} rows`;
  }

  /** Adds images to the list and selects the first of them; `run`: run the network on it now. */
  private addImages(images: OpenImage[], run = true): void {
    if (!images.length) return;
    this.current = this.images.length;
    this.images.push(...images);
    this.renderImages();
    if (run) this.requestRun();
  }

  private async openLabels(files: File[]): Promise<void> {
    const byStem = new Map(this.images.map((image) => [stem(image.name), image]));
    for (const f of files) {
      const image = byStem.get(stem(f.name));
      if (!image) {
        this.error(new InputError(`label ${f.name}: no open image is named ${stem(f.name)}.* (a label pairs with the image of the same name)`));
        continue;
      }
      try {
        image.label = { name: f.name, pixels: await decodeImage(f, f.name) };
        delete image.labelsFolder;
      } catch (e) {
        this.error(e);
      }
    }
    this.renderImages();
    this.requestRun();
  }

  private renderImages(): void {
    const list = byId('images');
    list.replaceChildren(
      ...this.images.map((image, k) => {
        const item = h(
          'button',
          { type: 'button', class: k === this.current ? 'image current' : 'image', 'data-index': k, title: image.name },
          image.name,
          image.label ? ' (label)' : '',
        );
        item.addEventListener('click', () => this.selectImage(k));
        return item;
      }),
    );
  }

  private selectImage(k: number): void {
    this.current = k;
    this.renderImages();
    this.requestRun();
  }

  /** Runs the network for the current image and panel layers, once more if anything changed while it ran. */
  private requestRun(): void {
    this.runWanted = true;
    this.running ??= (async () => {
      while (this.runWanted) {
        this.runWanted = false;
        await this.runOnce().catch((e: unknown) => this.error(e));
      }
      this.running = undefined;
    })();
  }

  private async runOnce(): Promise<void> {
    const visualizer = this.model?.visualizer;
    const image = this.images[this.current];
    if (!visualizer || !image) return;
    const prediction = visualizer.prediction;
    const label = this.labelOf(image, prediction);
    const layers: (string | undefined)[] = this.panels.map((p) => p.settings.layer);
    // A layer that selects nothing or no [N,C,H,W] tensor is that panel's error, not the run's.
    const resolved = layers.map((l) => {
      if (!l) return undefined;
      try {
        return visualizer.resolve([l])[0];
      } catch (e) {
        return e as Error;
      }
    });
    this.status(`Running ${this.model!.name} on ${image.name}…`);
    const run = await visualizer.run(image.pixels, {
      ...(label ? { label } : {}),
      layers: resolved.flatMap((r) => (r && !(r instanceof Error) ? [r.pattern] : [])),
    });
    document.body.dataset.runs = String(++this.runs);
    this.status(`Ran ${this.model!.name} on ${image.name} in ${run.ms.toFixed(0)} ms`);
    renderPrediction(byId('prediction'), prediction, run);
    await Promise.all(
      this.panels.map((panel, k) => {
        const r = resolved[k];
        if (r instanceof Error) {
          panel.clear(errorMessage(r));
          return undefined;
        }
        if (!r) {
          panel.clear('no layer: click one in the tree');
          return undefined;
        }
        return panel.show(
          run,
          run.layers.find((l) => l.pattern === r.pattern),
        );
      }),
    );
  }

  /** The image's label as class indices for the model's prediction; a mask for another model's classes is reported, and the image goes unscored. */
  private labelOf(image: OpenImage, prediction: Prediction | undefined): LabelMap | undefined {
    try {
      return (
        image.label && prediction && decodeLabel(labelPixels(image.label), prediction.classes, prediction.palette, { binary: prediction.kind === 'binary' })
      );
    } catch (e) {
      this.error(e);
      return undefined;
    }
  }

  /** The class activation map of panel A's layer for the current image. */
  private async explain(): Promise<void> {
    const model = this.model;
    const image = this.images[this.current];
    const gpu = await this.gpu.catch(() => undefined);
    if (!model?.visualizer || !gpu) return;
    const label = image && this.labelOf(image, model.visualizer.prediction);
    await this.cam.explain(
      gpu,
      model.graph,
      model.input.size,
      this.panels[0]!.settings.layer,
      image && { pixels: image.pixels, ...(label ? { label } : {}) },
      this.commandContext()!,
    );
  }

  private bindControls(): void {
    byId<HTMLInputElement>('filter').addEventListener('input', () => this.renderTree());
    const picker = (id: string, as: 'any' | 'labels') => {
      const input = byId<HTMLInputElement>(id);
      input.addEventListener('change', () => {
        const files = [...(input.files ?? [])];
        input.value = '';
        void this.openFiles(files, as);
      });
    };
    picker('open-files', 'any');
    picker('open-labels', 'labels');
    byId('open-default').addEventListener('click', () => {
      void (async () => {
        const preload = await fetchPreload('default.json');
        if (!preload) throw new InputError('default.json is missing next to the page: rebuild the explorer (npm run build)');
        this.images = [];
        this.current = -1;
        await this.openPreload(preload);
      })().catch((e: unknown) => this.error(e));
    });
    byId<HTMLInputElement>('input-size').addEventListener('change', (event) => {
      const text = (event.target as HTMLInputElement).value;
      const m = /^\s*(\d+)\s*x\s*(\d+)\s*$/.exec(text);
      const model = this.model;
      if (!model) return;
      if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) return void this.error(new InputError(`input size '${text}': expected HEIGHTxWIDTH, e.g. 513x513`));
      const size: [number, number] = [Number(m[1]), Number(m[2])];
      this.reopen(model, size).catch((e: unknown) => this.error(e));
    });
    document.addEventListener('dragover', (e) => e.preventDefault());
    document.addEventListener('drop', (e) => {
      e.preventDefault();
      void this.openFiles([...(e.dataTransfer?.files ?? [])]);
    });
  }
}

/** A model's input and module tree at `inputSize` (default: the model's own), as `segscope layers` lists them: no GPU needed. */
function typedAt(graph: Graph, inputSize?: [number, number]): { input: ModelInput; summary: Summary } {
  const input = modelInput(graph, segmentationMetadata(graph), inputSize ? { inputSize } : {});
  // The tree of a model segscope cannot run still shows, its unrunnable nodes marked (the compile then says why).
  const typed = inferTypes(graph, new Map([[input.name, [1, 3, ...input.size]]]), (op) => registry.get(op)?.infer, { unsupported: 'keep' });
  return { input, summary: summarize(typed, graph) };
}

/** A label image's pixels as decodeLabel reads them (ImageData's fields are getters, which a spread would not copy). */
function labelPixels(label: { name: string; pixels: Pixels }): LabelPixels {
  const { width, height, data } = label.pixels;
  return { width, height, data, channels: 4, path: label.name };
}

/**
 * A first layer to show for a model without the recipe's layers: the last
 * module with an [N,C,H,W] output, or without module scopes (exporters
 * other than TorchScript) the last such tensor before the graph outputs.
 */
function lastDrawable(summary: Summary): string | undefined {
  const drawable = (outputs: TensorSummary[]) => outputs.some((t) => t.shape?.length === 4);
  const module = [...summary.modules].reverse().find((m) => drawable(m.outputs));
  if (module) return module.path;
  const outputs = new Set(summary.outputs.map((o) => o.name));
  const node = [...summary.nodes].reverse().find((n) => !n.constant && drawable(n.outputs) && !n.outputs.some((o) => outputs.has(o.name)));
  return node?.outputs.find((t) => t.shape?.length === 4)?.name;
}
