/**
 * Colormaps and palettes against OpenCV's tables, committed in
 * test/fixtures/colormaps/opencv_colormaps.json by
 * tools/make_colormap_references.py (opencv-python-headless; CI runs no Python).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import {
  COLORMAP_NAMES,
  COLORMAPS,
  IGNORE_INDEX,
  colormap,
  colormapRGBA,
  ignoreColor,
  isColormapName,
  palette,
  paletteClassNames,
} from '../src/vis/colormap.js';

type RGB = [number, number, number];
interface Reference {
  cv2_version: string;
  order: 'RGB';
  opencv: Record<string, RGB[]>;
  voc_palette: RGB[];
  matplotlib: { version: string; jet: RGB[] } | null;
}

const REF = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/colormaps/opencv_colormaps.json'), 'utf8')) as Reference;

function entries(table: Uint8Array, stride = 3): RGB[] {
  const out: RGB[] = [];
  for (let i = 0; i < table.length / stride; i++) out.push([table[stride * i]!, table[stride * i + 1]!, table[stride * i + 2]!]);
  return out;
}

/** Indices where two 256-entry tables differ. */
function differing(a: RGB[], b: RGB[]): number[] {
  expect(a).toHaveLength(256);
  expect(b).toHaveLength(256);
  return a.flatMap((e, i) => (e.some((v, c) => v !== b[i]![c]) ? [i] : []));
}

/** The textbook jet: clip(1.5 - |4x - k|, 0, 1) for k = 3, 2, 1 (red, green, blue), x = i/255. */
function textbookJet(i: number): RGB {
  const x = i / 255;
  const ch = (k: number) => Math.min(1, Math.max(0, 1.5 - Math.abs(4 * x - k)));
  return [ch(3), ch(2), ch(1)];
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  return v - f > 0.5 || (v - f === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

describe('colormaps equal OpenCV', () => {
  it(`reference file is from cv2 ${REF.cv2_version}, RGB order`, () => {
    expect(REF.order).toBe('RGB');
    // OpenCV's ramps written in RGB: jet starts dark blue, ends dark red.
    expect(REF.opencv.jet![0]).toEqual([0, 0, 128]);
    expect(REF.opencv.jet![255]).toEqual([128, 0, 0]);
  });

  for (const name of ['jet', 'turbo', 'viridis', 'inferno', 'magma'] as const) {
    it(`${name} equals COLORMAP_${name.toUpperCase()} in all 256 entries`, () => {
      const ours = entries(colormap(name));
      const ref = REF.opencv[name]!;
      const bad = differing(ours, ref);
      expect(
        bad,
        `entries ${bad
          .slice(0, 8)
          .map((i) => `${i}: ours ${ours[i]} opencv ${ref[i]}`)
          .join('; ')}`,
      ).toEqual([]);
    });
  }

  it('gray is the identity', () => {
    expect(entries(colormap('gray'))).toEqual(Array.from({ length: 256 }, (_, i) => [i, i, i]));
  });

  it('every name has a reversed form, its table in reverse order', () => {
    for (const name of COLORMAPS) {
      const fwd = entries(colormap(name));
      expect(entries(colormap(`${name}_r`)), name).toEqual(fwd.slice().reverse());
    }
    expect(entries(colormap('gray_r'))[0]).toEqual([255, 255, 255]);
    expect(entries(colormap('jet_r'))[0]).toEqual([128, 0, 0]);
  });

  it('RGBA tables are the RGB ones with alpha 255', () => {
    for (const name of COLORMAP_NAMES) {
      const rgba = colormapRGBA(name);
      expect(rgba).toHaveLength(1024);
      expect(entries(rgba, 4), name).toEqual(entries(colormap(name)));
      for (let i = 0; i < 256; i++) expect(rgba[4 * i + 3]).toBe(255);
    }
  });

  it('returns a fresh table each call', () => {
    const t = colormap('viridis');
    expect(t).toHaveLength(768);
    t.fill(7);
    expect(entries(colormap('viridis'))).toEqual(REF.opencv.viridis);
    colormap('viridis_r').fill(7);
    expect(entries(colormap('viridis'))).toEqual(REF.opencv.viridis);
  });
});

describe('jet is OpenCV/Octave jet, not the textbook formula rounded, nor matplotlib', () => {
  const cvJet = () => REF.opencv.jet!;

  it('entry 159 differs from the textbook formula by one level (blue 1, not 2)', () => {
    // The formula as OpenCV's last step would convert it: float32 values,
    // scaled by 255 in float32, rounded half to even. Entry 159 is
    // (253.5, 255, 1.5) exactly; the float32 interpolation pass OpenCV runs
    // first leaves blue just under 1.5.
    const f = Math.fround;
    const formula = Array.from({ length: 256 }, (_, i) => textbookJet(i).map((v) => roundHalfEven(f(f(v) * 255))) as RGB);
    expect(differing(formula, cvJet())).toEqual([159]);
    expect(formula[159]).toEqual([254, 255, 2]);
    expect(cvJet()[159]).toEqual([254, 255, 1]);
    expect(entries(colormap('jet'))[159]).toEqual([254, 255, 1]);
    // Exactly: red 255(4x - 1.5) = 4*159 - 382.5, blue 255(2.5 - 4x) = 637.5 - 4*159.
    expect([4 * 159 - 1.5 * 255, 2.5 * 255 - 4 * 159]).toEqual([253.5, 1.5]);
  });

  it('the formula in double with Math.round misses 148 of the half levels', () => {
    // Most ramp entries are exact half levels (blue 4i + 127.5 for i < 32,
    // ...), so double rounding error and the tie rule decide them.
    const naive = Array.from({ length: 256 }, (_, i) => textbookJet(i).map((v) => Math.round(v * 255)) as RGB);
    const bad = differing(naive, cvJet());
    expect(bad).toHaveLength(148);
    // 159 happens to agree: in double, blue is 1.4999999999999947 there.
    expect(bad).not.toContain(159);
    // Every differing entry is off by one level in one channel or more, never more.
    for (const i of bad) for (let c = 0; c < 3; c++) expect(Math.abs(naive[i]![c]! - cvJet()[i]![c]!)).toBeLessThanOrEqual(1);
  });

  it.runIf(REF.matplotlib !== null)(`differs from matplotlib's jet in 197 of 256 entries`, () => {
    const mpl = REF.matplotlib!.jet;
    expect(differing(mpl, cvJet())).toHaveLength(197);
    expect(differing(mpl, entries(colormap('jet')))).toHaveLength(197);
    expect(mpl[0]).toEqual([0, 0, 127]);
  });
});

describe('colormap names', () => {
  it('lists every map and its reversed form', () => {
    expect([...COLORMAP_NAMES].sort()).toEqual(['gray', 'inferno', 'jet', 'magma', 'turbo', 'viridis'].flatMap((n) => [n, `${n}_r`]).sort());
    expect(isColormapName('magma_r')).toBe(true);
    expect(isColormapName('hot')).toBe(false);
  });

  it('unknown names give InputError naming it and listing the valid names', () => {
    for (const bad of ['hot', 'Jet', 'jet_r_r', '_r', '', 'plasma']) {
      expect(() => colormap(bad)).toThrow(InputError);
      expect(() => colormapRGBA(bad)).toThrow(InputError);
    }
    try {
      colormap('parula');
      expect.unreachable();
    } catch (e) {
      const msg = (e as Error).message;
      expect(msg).toContain("'parula'");
      for (const name of COLORMAP_NAMES) expect(msg).toContain(name);
    }
  });
});

describe('segmentation palettes', () => {
  it('PASCAL VOC: the devkit colours of the 21 classes', () => {
    expect(entries(palette('voc'))).toEqual([
      [0, 0, 0],
      [128, 0, 0],
      [0, 128, 0],
      [128, 128, 0],
      [0, 0, 128],
      [128, 0, 128],
      [0, 128, 128],
      [128, 128, 128],
      [64, 0, 0],
      [192, 0, 0],
      [64, 128, 0],
      [192, 128, 0],
      [64, 0, 128],
      [192, 0, 128],
      [64, 128, 128],
      [192, 128, 128],
      [0, 64, 0],
      [128, 64, 0],
      [0, 192, 0],
      [128, 192, 0],
      [0, 64, 128],
    ]);
    expect(paletteClassNames('voc')).toHaveLength(21);
    expect(paletteClassNames('voc')[15]).toBe('person');
  });

  it('PASCAL VOC: 256 entries equal the devkit map computed in numpy; 255 (void) is (224,224,192)', () => {
    expect(entries(palette('voc', 256))).toEqual(REF.voc_palette);
    expect(entries(palette('voc', 256))[IGNORE_INDEX]).toEqual([224, 224, 192]);
    expect(ignoreColor('voc')).toEqual([224, 224, 192]);
    expect(entries(palette('voc', 3))).toEqual([
      [0, 0, 0],
      [128, 0, 0],
      [0, 128, 0],
    ]);
  });

  it('Cityscapes: the 19 train ids in the official colours', () => {
    expect(entries(palette('cityscapes'))).toEqual([
      [128, 64, 128],
      [244, 35, 232],
      [70, 70, 70],
      [102, 102, 156],
      [190, 153, 153],
      [153, 153, 153],
      [250, 170, 30],
      [220, 220, 0],
      [107, 142, 35],
      [152, 251, 152],
      [70, 130, 180],
      [220, 20, 60],
      [255, 0, 0],
      [0, 0, 142],
      [0, 0, 70],
      [0, 60, 100],
      [0, 80, 100],
      [0, 0, 230],
      [119, 11, 32],
    ]);
    expect(paletteClassNames('cityscapes')).toEqual([
      'road',
      'sidewalk',
      'building',
      'wall',
      'fence',
      'pole',
      'traffic light',
      'traffic sign',
      'vegetation',
      'terrain',
      'sky',
      'person',
      'rider',
      'car',
      'truck',
      'bus',
      'train',
      'motorcycle',
      'bicycle',
    ]);
    expect(ignoreColor('cityscapes')).toEqual([0, 0, 0]);
    expect(palette('cityscapes', 2)).toEqual(new Uint8Array([128, 64, 128, 244, 35, 232]));
  });

  it('unknown palettes and class counts a palette lacks give InputError', () => {
    expect(() => palette('ade20k')).toThrow(/unknown palette 'ade20k'; valid palettes: voc, cityscapes/);
    expect(() => paletteClassNames('coco')).toThrow(InputError);
    expect(() => ignoreColor('coco')).toThrow(InputError);
    for (const [name, n] of [
      ['voc', 0],
      ['voc', 257],
      ['voc', 2.5],
      ['cityscapes', 20],
      ['cityscapes', -1],
    ] as const) {
      expect(() => palette(name, n), `${name} ${n}`).toThrow(InputError);
    }
  });
});

describe('browser-safe', () => {
  it('src/vis/colormap*.ts import no Node API', () => {
    for (const file of ['colormap.ts', 'colormap-data.ts']) {
      const src = readFileSync(join(import.meta.dirname, '../src/vis', file), 'utf8');
      const specs = [...src.matchAll(/^(?:import|export)[^;]*?from '([^']+)'/gms)].map((m) => m[1]!);
      for (const spec of specs) expect(spec, `${file} imports ${spec}`).not.toMatch(/^node:|^(fs|path|os|child_process|webgpu)$/);
      expect(src).not.toMatch(/\bBuffer\b|\bprocess\./);
    }
  });
});
