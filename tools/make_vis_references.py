#!/usr/bin/env python3
"""Reference outputs for segscope's visualisation stages (test/vis-*.test.ts).

Run from the repository root with Debian's torch and numpy:

    /usr/bin/python3 tools/make_vis_references.py

Writes test/fixtures/vis/:

  interp_*.npy, interp.json
      torch.nn.functional.interpolate on small float32 inputs: bilinear with
      align_corners False and True, and nearest, up and down.

  recipe_*.res.npy.gz, recipe.json
      The feature-map recipe reimplemented with NumPy and torch on seeded
      random feature maps ([1,256,33,33] as ASPP's output and [1,48,129,129]
      as the low-level projection at 513x513): reduce over channels (max or
      mean), bilinear upsample to 513x513 (F.interpolate, align_corners
      False), min-max normalise, np.uint8(255 * x) (truncation). Saved as the
      uint8 level maps before the colormap (as planar-predictor residuals,
      gzip'd, to stay small): reduce-first for max and mean on both tensors,
      and the exact upsample-first max of ASPP (every 4th row).

The recipe's inputs are not stored: they are regenerated from seeds by the
same generator as test/helpers/gpu.ts `random` (mulberry32), and recipe.json
records a checksum of each so the test can tell a generator mismatch from a
pipeline bug.
"""
import gzip
import io
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'vis')
M32 = np.uint64(0xFFFFFFFF)


def mulberry32(n, seed, lo=-1.0, hi=1.0):
    """test/helpers/gpu.ts `random`: seeded uniform float32 in [lo, hi)."""
    i = np.arange(1, n + 1, dtype=np.uint64)
    s = (np.uint64(seed) + i * np.uint64(0x6D2B79F5)) & M32
    t = s
    t = ((t ^ (t >> np.uint64(15))) * (t | np.uint64(1))) & M32
    t = t ^ ((t + (((t ^ (t >> np.uint64(7))) * (t | np.uint64(61))) & M32)) & M32)
    u = ((t ^ (t >> np.uint64(14))) & M32).astype(np.float64) / 4294967296.0
    return (lo + (hi - lo) * u).astype(np.float32)


def save_npy(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array))


def interpolation_fixtures():
    cases = []
    inputs = {
        'a': mulberry32(1 * 3 * 5 * 7, 11).reshape(1, 3, 5, 7),
        'b': mulberry32(1 * 2 * 33 * 33, 12).reshape(1, 2, 33, 33),
    }
    for key, x in inputs.items():
        save_npy(f'interp_{key}_in.npy', x)
    plan = [
        ('a', (13, 17), 'bilinear', False),
        ('a', (13, 17), 'bilinear', True),
        ('a', (13, 17), 'nearest', None),
        ('a', (3, 4), 'bilinear', False),
        ('a', (3, 4), 'bilinear', True),
        ('a', (3, 4), 'nearest', None),
        ('b', (65, 65), 'bilinear', False),
        ('b', (65, 65), 'bilinear', True),
        ('b', (50, 70), 'nearest', None),
        ('b', (16, 20), 'bilinear', False),
        ('b', (16, 20), 'bilinear', True),
        ('b', (1, 1), 'bilinear', True),
    ]
    for key, size, mode, ac in plan:
        x = torch.from_numpy(inputs[key])
        kwargs = {} if ac is None else {'align_corners': ac}
        y = F.interpolate(x, size=size, mode=mode, **kwargs).numpy()
        name = f'interp_{key}_{mode}_{size[0]}x{size[1]}' + ('' if ac is None else f'_ac{int(ac)}') + '.npy'
        save_npy(name, y)
        cases.append({'input': f'interp_{key}_in.npy', 'size': list(size), 'mode': mode,
                      'alignCorners': bool(ac), 'output': name})
    with open(os.path.join(OUT, 'interp.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'cases': cases}, f, indent=1)


def levels(m):
    """The recipe's min-max normalisation and uint8 conversion of a float32 [H, W] map."""
    m = m.astype(np.float32)
    x = (m - m.min()) / (m.max() - m.min())
    return np.uint8(255 * x)


def planar_residual(lv):
    """Level map -> residual of the planar predictor (left + up - up-left, mod 256), which gzip packs 2-3x
    tighter than the levels of an upsampled map; the test inverts it."""
    p = np.zeros((lv.shape[0] + 1, lv.shape[1] + 1), np.int32)
    p[1:, 1:] = lv
    return ((p[1:, 1:] - p[1:, :-1] - p[:-1, 1:] + p[:-1, :-1]) % 256).astype(np.uint8)


def recipe_fixtures():
    size = (513, 513)
    tensors = {
        'aspp': ([1, 256, 33, 33], 2024),
        'lowlevel': ([1, 48, 129, 129], 2025),
    }
    # (tensor, reduction, order, keep every k-th row): the four reduce-first maps in full, and the
    # exact upsample-first max of ASPP on every 4th row (it is the costliest to store).
    plan = [
        ('aspp', 'max', 'reduce-first', 1),
        ('aspp', 'mean', 'reduce-first', 1),
        ('lowlevel', 'max', 'reduce-first', 1),
        ('lowlevel', 'mean', 'reduce-first', 1),
        ('aspp', 'max', 'upsample-first', 4),
    ]
    inputs = {}
    for name, (dims, seed) in tensors.items():
        # Post-ReLU activations: a quarter zeros.
        inputs[name] = np.maximum(mulberry32(int(np.prod(dims)), seed, -0.5, 1.5), 0).reshape(dims)
    refs = []
    for name, reduction, order, every in plan:
        x = inputs[name]
        dims, seed = tensors[name]

        def reduce(a):
            return a.max(axis=1) if reduction == 'max' else a.mean(axis=1)

        if order == 'reduce-first':
            r = np.ascontiguousarray(reduce(x)[:, None])  # [1,1,h,w] float32
            m = F.interpolate(torch.from_numpy(r), size=size, mode='bilinear', align_corners=False).numpy()[0, 0]
        else:
            m = reduce(F.interpolate(torch.from_numpy(x), size=size, mode='bilinear', align_corners=False).numpy())[0]
        lv = levels(m)[::every]
        file = f'recipe_{name}_{reduction}_{order}.res.npy.gz'
        buf = io.BytesIO()
        np.save(buf, planar_residual(lv))
        with gzip.GzipFile(os.path.join(OUT, file), 'wb', compresslevel=9, mtime=0) as f:
            f.write(buf.getvalue())
        refs.append({'tensor': name, 'reduce': reduction, 'order': order, 'size': list(size), 'alignCorners': False,
                     'rowStep': every, 'min': float(m.min()), 'max': float(m.max()), 'levels': file})
    checks = {name: {'dims': d, 'seed': s, 'lo': -0.5, 'hi': 1.5, 'relu': True,
                     'sum': float(inputs[name].astype(np.float64).sum()),
                     'first': [float(v) for v in inputs[name].reshape(-1)[:4]]}
              for name, (d, s) in tensors.items()}
    with open(os.path.join(OUT, 'recipe.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'numpy': np.__version__, 'inputs': checks, 'references': refs}, f, indent=1)


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    interpolation_fixtures()
    recipe_fixtures()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}')
