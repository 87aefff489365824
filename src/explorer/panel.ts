import { COLORMAP_NAMES, type ColormapName } from '../vis/colormap.js';
import { REDUCTIONS } from '../vis/reduce.js';
import type { ReductionOrder } from '../vis/feature-map.js';
import { NORMALIZATION_MODES, type LayerPictures, type NormalizationMode } from '../workflow/draw.js';
import { pictureName, safeFileName } from '../workflow/file-names.js';
import type { VisLayer, VisRun } from '../workflow/visualizer.js';
import { visCommand, type CommandInput } from './command.js';
import { download, h, paint, select } from './dom.js';
import { errorMessage } from './errors.js';
import { tensorPoint, valueAt } from './hover.js';

/**
 * One feature-map view: a layer of the current run, drawn with the
 * panel's settings. Changing a setting redraws from the captured tensor;
 * only a change of layer (or image) runs the network again, which the app
 * does.
 */

export interface PanelSettings {
  /** The layer pattern: a module path or a tensor name, as `segscope vis --layer` takes it. */
  layer?: string;
  /** Which of the tensors the pattern selects is shown. */
  tensor: number;
  /** A reduction name without its channel ('channel' for one channel at a time). */
  reduce: string;
  channel: number;
  order: ReductionOrder;
  colormap: ColormapName;
  normalize: NormalizationMode;
  /** The map's opacity over the input image; undefined: the map alone. */
  overlay?: number;
  /** The K strongest channels as a grid; undefined: none. */
  grid?: number;
}

export interface PanelHost {
  /** The layer changed: the network must run again to capture it. */
  layerChanged(): void;
  /** What the copied command needs besides the panel's settings; undefined before a model and an image are open. */
  commandContext(): Omit<CommandInput, 'layer' | 'reduce' | 'options'> | undefined;
  /** The current image's name without extension, for saved file names. */
  imageStem(): string;
  error(e: unknown): void;
}

const REDUCE_CHOICES = REDUCTIONS.map((r) => (r === 'channel:K' ? 'channel' : r));

export class MapPanel {
  readonly settings: PanelSettings;
  readonly element: HTMLElement;
  private run?: VisRun;
  private layer?: VisLayer;
  private pictures?: LayerPictures;
  /** Redraws in order: a later setting's picture never lands under an earlier one's. */
  private drawing: Promise<unknown> = Promise.resolve();
  private readonly ids: (name: string) => string;

  constructor(
    readonly id: string,
    private readonly host: PanelHost,
    initial: Partial<PanelSettings> = {},
  ) {
    this.settings = { tensor: 0, reduce: 'max', channel: 0, order: 'reduce-first', colormap: 'jet', normalize: 'minmax', ...initial };
    this.ids = (name) => `${id}-${name}`;
    this.element = this.build();
  }

  /** The reduction as vis names it: 'max', …, 'channel:K'. */
  get reduction(): string {
    return this.settings.reduce === 'channel' ? `channel:${this.settings.channel}` : this.settings.reduce;
  }

  setLayer(pattern: string | undefined): void {
    this.settings.layer = pattern;
    this.settings.tensor = 0;
    this.settings.channel = 0;
    this.el('layer').textContent = pattern ?? 'no layer: click one in the tree';
    this.host.layerChanged();
  }

  /** Shows `layer` of a new run (undefined: the panel's layer is not in it). */
  show(run: VisRun | undefined, layer: VisLayer | undefined): Promise<void> {
    this.run = run;
    this.layer = layer;
    return this.redraw();
  }

  /** Redraws from the run's captured tensors with the current settings. */
  redraw(): Promise<void> {
    const done = this.drawing.then(() => this.drawNow());
    this.drawing = done.catch(() => undefined);
    return done;
  }

  /** Clears the picture, with a message saying why. */
  clear(message: string): void {
    this.run = undefined;
    this.layer = undefined;
    this.pictures = undefined;
    const canvas = this.el<HTMLCanvasElement>('canvas');
    canvas.width = 0;
    canvas.height = 0;
    this.el('grid-canvas').hidden = true;
    this.el('info').textContent = message;
  }

  private async drawNow(): Promise<void> {
    const { run, layer } = this;
    // An overwritten run's panel is redrawn by the next run's show().
    if (!run || !layer || run.overwritten) return;
    const s = this.settings;
    const tensor = layer.tensors[Math.min(s.tensor, layer.tensors.length - 1)]!;
    const channels = tensor.shape[1]!;
    const slider = this.el<HTMLInputElement>('channel');
    slider.max = String(channels - 1);
    slider.hidden = s.reduce !== 'channel';
    this.el('channel-value').textContent = s.reduce === 'channel' ? `${s.channel} of ${channels}` : '';
    const mode = NORMALIZATION_MODES[s.normalize];
    let pictures: LayerPictures;
    try {
      pictures = await run.draw(layer, {
        reductions: [this.reduction],
        order: s.order,
        colormap: s.colormap,
        normalize: mode.method,
        shareRange: mode.shared,
        ...(s.grid === undefined ? {} : { grid: Math.min(s.grid, channels) }),
        ...(s.overlay === undefined ? {} : { overlay: s.overlay }),
      });
    } catch (e) {
      if (run.overwritten) return;
      this.clear(errorMessage(e));
      return;
    }
    this.pictures = pictures;
    const k = layer.tensors.indexOf(tensor);
    const map = pictures.maps.filter((m) => m.batchIndex === 0)[k]!;
    paint(this.el<HTMLCanvasElement>('canvas'), map);
    const grid = pictures.grids.filter((g) => g.batchIndex === 0)[k];
    const gridCanvas = this.el<HTMLCanvasElement>('grid-canvas');
    gridCanvas.hidden = !grid;
    if (grid) paint(gridCanvas, grid);
    const tensors = this.el<HTMLSelectElement>('tensor');
    tensors.replaceChildren(...layer.tensors.map((t, i) => h('option', { value: i, selected: i === k }, `${t.name} [${t.shape.join(',')}]`)));
    tensors.hidden = layer.tensors.length < 2;
    const info = this.el('info');
    info.textContent = `${tensor.name} [${tensor.shape.join(',')}]  ${this.reduction}  range [${map.range[0].toPrecision(5)}, ${map.range[1].toPrecision(5)}]`;
    info.dataset.tensor = tensor.name;
    this.updateCommand();
  }

  private updateCommand(): void {
    const context = this.host.commandContext();
    const field = this.el<HTMLInputElement>('command');
    const s = this.settings;
    field.value =
      context && s.layer
        ? visCommand({
            ...context,
            layer: s.layer,
            reduce: this.reduction,
            options: {
              order: s.order,
              colormap: s.colormap,
              normalize: s.normalize,
              ...(s.grid === undefined ? {} : { grid: s.grid }),
              ...(s.overlay === undefined ? {} : { overlay: s.overlay }),
            },
          })
        : '';
  }

  /** The value under the cursor, read from the captured tensor on the host. */
  private async hover(event: MouseEvent): Promise<void> {
    const { run, layer, pictures } = this;
    const out = this.el('hover');
    if (!run || !layer || !pictures || run.overwritten) return;
    const canvas = event.currentTarget as HTMLCanvasElement;
    const rect = canvas.getBoundingClientRect();
    const px = Math.floor(((event.clientX - rect.left) * canvas.width) / rect.width);
    const py = Math.floor(((event.clientY - rect.top) * canvas.height) / rect.height);
    if (px < 0 || py < 0 || px >= canvas.width || py >= canvas.height) return;
    const tensor = layer.tensors[Math.min(this.settings.tensor, layer.tensors.length - 1)]!;
    const { y, x } = tensorPoint(px, py, [canvas.height, canvas.width], tensor.shape);
    const reduction = this.reduction;
    const host = await run.read(tensor.name).catch(() => undefined);
    // A later run overwrote the tensor before it was read: its own map is on the way.
    if (!host || this.run !== run) return;
    const { value, point } = valueAt(host, reduction, 0, y, x);
    const at = `[0, ${point.c ?? ':'}, ${y}, ${x}]`;
    const channel = point.c !== undefined && this.settings.reduce !== 'channel' ? ` (channel ${point.c})` : '';
    out.textContent = `${tensor.name}${at}  ${this.settings.reduce === 'channel' ? 'value' : reduction} = ${value.toPrecision(6)}${channel}`;
    Object.assign(out.dataset, { value: String(value), n: '0', c: point.c === undefined ? '' : String(point.c), y: String(y), x: String(x) });
  }

  private save(which: 'canvas' | 'grid-canvas'): void {
    const { pictures } = this;
    if (!pictures) return;
    const k = Math.min(this.settings.tensor, pictures.tensors.length - 1);
    const picture = which === 'canvas' ? pictures.maps.filter((m) => m.batchIndex === 0)[k] : pictures.grids.filter((g) => g.batchIndex === 0)[k];
    if (!picture) return;
    const name = safeFileName(pictureName(this.host.imageStem(), pictures, picture), '.png', new Set());
    this.el<HTMLCanvasElement>(which).toBlob((blob) => blob && download(blob, name), 'image/png');
  }

  /** The panel's element `#<panel id>-<name>`. */
  private el<T extends HTMLElement = HTMLElement>(name: string): T {
    return this.element.querySelector<T>(`#${this.ids(name)}`)!;
  }

  private build(): HTMLElement {
    const id = this.ids;
    const s = this.settings;
    const overlay = s.overlay !== undefined;
    const element = h(
      'section',
      { class: 'panel', id: id('panel') },
      h(
        'h2',
        {},
        h('span', { class: 'panel-name' }, this.id.toUpperCase()),
        ' ',
        h('span', { id: id('layer'), class: 'layer-name' }, s.layer ?? 'no layer: click one in the tree'),
      ),
      h(
        'div',
        { class: 'controls' },
        h('select', { id: id('tensor'), hidden: true, title: 'tensor' }),
        h('label', {}, 'reduce ', select(id('reduce'), REDUCE_CHOICES, s.reduce)),
        h('input', { id: id('channel'), type: 'range', min: 0, max: 0, step: 1, value: s.channel, hidden: s.reduce !== 'channel', title: 'channel' }),
        h('span', { id: id('channel-value') }),
        h('label', {}, 'order ', select(id('order'), ['reduce-first', 'upsample-first'], s.order)),
        h('label', {}, 'colormap ', select(id('colormap'), COLORMAP_NAMES, s.colormap)),
        h('label', {}, 'normalise ', select(id('normalize'), Object.keys(NORMALIZATION_MODES), s.normalize)),
        h('label', {}, h('input', { id: id('overlay-on'), type: 'checkbox', checked: overlay }), ' overlay '),
        h('input', { id: id('overlay'), type: 'range', min: 0, max: 1, step: 0.05, value: s.overlay ?? 0.5, disabled: !overlay, title: 'overlay opacity' }),
        h(
          'label',
          {},
          'grid ',
          h('input', { id: id('grid'), type: 'number', min: 0, max: 256, step: 1, value: s.grid ?? 0, title: 'K strongest channels (0: none)' }),
        ),
      ),
      h('canvas', { id: id('canvas'), class: 'map', width: 0, height: 0 }),
      h('div', { id: id('hover'), class: 'hover' }, ' '),
      h('div', { id: id('info'), class: 'info' }),
      h('canvas', { id: id('grid-canvas'), class: 'grid', hidden: true }),
      h(
        'div',
        { class: 'actions' },
        h('button', { id: id('copy'), type: 'button' }, 'Copy as command'),
        h('button', { id: id('save'), type: 'button' }, 'Save PNG'),
        h('button', { id: id('save-grid'), type: 'button' }, 'Save grid PNG'),
        h('input', { id: id('command'), class: 'command', readonly: true, title: 'the segscope vis command that writes this picture' }),
      ),
    );
    const change = (name: string, apply: (el: HTMLInputElement & HTMLSelectElement) => void) => {
      const el = element.querySelector<HTMLInputElement & HTMLSelectElement>(`#${id(name)}`)!;
      el.addEventListener('input', () => {
        apply(el);
        this.redraw().catch((e: unknown) => this.host.error(e));
      });
    };
    change('reduce', (el) => {
      s.reduce = el.value;
    });
    change('channel', (el) => {
      s.channel = Number(el.value);
    });
    change('order', (el) => {
      s.order = el.value as ReductionOrder;
    });
    change('colormap', (el) => {
      s.colormap = el.value as ColormapName;
    });
    change('normalize', (el) => {
      s.normalize = el.value as NormalizationMode;
    });
    change('tensor', (el) => {
      s.tensor = Number(el.value);
    });
    change('overlay-on', (el) => {
      const slider = element.querySelector<HTMLInputElement>(`#${id('overlay')}`)!;
      slider.disabled = !el.checked;
      s.overlay = el.checked ? Number(slider.value) : undefined;
    });
    change('overlay', (el) => {
      s.overlay = Number(el.value);
    });
    change('grid', (el) => {
      const k = Math.floor(Number(el.value));
      s.grid = k >= 1 ? k : undefined;
    });
    const canvas = element.querySelector<HTMLCanvasElement>(`#${id('canvas')}`)!;
    canvas.addEventListener('mousemove', (e) => void this.hover(e).catch((err: unknown) => this.host.error(err)));
    element.querySelector(`#${id('copy')}`)!.addEventListener('click', () => {
      const text = element.querySelector<HTMLInputElement>(`#${id('command')}`)!.value;
      if (text) navigator.clipboard?.writeText(text).catch(() => undefined);
    });
    element.querySelector(`#${id('save')}`)!.addEventListener('click', () => this.save('canvas'));
    element.querySelector(`#${id('save-grid')}`)!.addEventListener('click', () => this.save('grid-canvas'));
    return element;
  }
}
