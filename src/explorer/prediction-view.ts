import type { Prediction } from '../workflow/prediction.js';
import type { VisRun } from '../workflow/visualizer.js';
import { h, paint } from './dom.js';

/**
 * The prediction: the mask in the model's palette, the class legend, and
 * with a label the ground truth and this image's scores, per class too.
 */
export function renderPrediction(container: HTMLElement, prediction: Prediction | undefined, run: VisRun | undefined): void {
  if (!prediction) {
    container.replaceChildren(
      h('p', { class: 'note' }, "The model's output is neither [N,K,H,W] class logits nor a binary [N,1,H,W] output: no prediction to draw."),
    );
    return;
  }
  const pictures = h('div', { class: 'pictures' });
  const add = (title: string, id: string, picture: { width: number; height: number; rgba: Uint8Array } | undefined) => {
    if (!picture) return;
    const canvas = h('canvas', { id, class: 'map' });
    paint(canvas, picture);
    pictures.append(h('figure', {}, canvas, h('figcaption', {}, title)));
  };
  if (run) {
    add('input', 'input-canvas', run.input);
    add(`prediction (${prediction.tensor})`, 'prediction-canvas', run.prediction);
    add('p (sigmoid)', 'probability-canvas', run.probability);
    add('ground truth', 'label-canvas', run.label);
  }
  const scores = run?.scores;
  const legend = h(
    'table',
    { class: 'legend', id: 'legend' },
    h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'class'), scores && h('th', {}, 'IoU'))),
  );
  const body = h('tbody');
  for (let k = 0; k < prediction.classes; k++) {
    const swatch = h('span', { class: 'swatch' });
    // CSSOM, not a style attribute: the Content-Security-Policy refuses those.
    swatch.style.background = `rgb(${prediction.palette[3 * k]}, ${prediction.palette[3 * k + 1]}, ${prediction.palette[3 * k + 2]})`;
    const iou = scores?.perClassIoU[k];
    body.append(
      h(
        'tr',
        { 'data-class': k },
        h('td', {}, swatch),
        h('td', {}, prediction.names?.[k] ?? `class ${k}`),
        scores && h('td', { class: 'num' }, iou === null || iou === undefined ? '--' : iou.toFixed(4)),
      ),
    );
  }
  legend.append(body);
  const summary = scores
    ? h('p', { id: 'scores' }, `pixel accuracy ${scores.pixelAccuracy.toFixed(4)}, mIoU ${scores.meanIoU.toFixed(4)}`)
    : h('p', { class: 'note' }, 'Open a label image (same name as the image) to score the prediction.');
  container.replaceChildren(pictures, legend, summary);
}
