#!/usr/bin/env python3
"""Sample images and decoded-pixel references for segscope's src/io/image.ts
and src/io/npz.ts tests (test/image.test.ts, test/npz.test.ts).

How to run (from the repository root; CI never runs this, its outputs are
committed):

    python3 -m venv .venv                                       # if not there yet
    .venv/bin/pip install numpy opencv-python-headless pillow   # local wheel mirror
    .venv/bin/python tools/make_image_references.py

Everything is drawn here from a fixed seed (no downloaded photographs) and
kept small (48x32 pixels), so the whole folder is a few tens of KiB. It
writes, into test/fixtures/images/:

  samples (the files segscope decodes)
    rgb.png        8-bit RGB PNG                                  (Pillow)
    gray.png       8-bit grayscale PNG (mode L)                   (Pillow)
    rgba.png       8-bit RGBA PNG, alpha varies across the image  (Pillow)
    gray_alpha.png 8-bit grayscale + alpha PNG (mode LA)          (Pillow)
    palette.png    palette PNG (mode P, 16 colours)               (Pillow)
    rgb16.png      16-bit RGB PNG                                 (OpenCV; Pillow cannot write it)
    gray16.png     16-bit grayscale PNG                           (OpenCV)
    rgb.jpg        baseline JPEG, quality 90, 4:2:0               (Pillow)
    cmyk.jpg       CMYK JPEG with a K channel (Adobe APP14, inverted as Photoshop writes it) (Pillow)
    exif6.jpg      JPEG stored 48x32 with EXIF Orientation 6 (display: rotate 90 degrees
                   clockwise, 32x48)                              (Pillow)
    rgb_lossless.webp  lossless WebP                              (Pillow / libwebp)
    rgb_lossy.webp     lossy WebP, quality 90                     (Pillow / libwebp)
    animated.webp      two-frame lossless animated WebP (the second frame inverted);
                       the reference is the first frame
    one.png, one.jpg   1x1 images                                 (Pillow)

  references (the pixels Python decodes them to), uint8 [H, W, 3] RGB .npy
  unless noted
    <file>.npy          for every sample: Pillow's
                        `ImageOps.exif_transpose(Image.open(f)).convert('RGB')`
                        -- what torchvision and the DeepLab repos feed a model
                        (alpha dropped, CMYK converted with Pillow's formula
                        R = round((255 - C) * (255 - K) / 255) on the ink values),
                        except the 16-bit ones: for rgb16.png and gray16.png it
                        is OpenCV's `cv2.imread(f, cv2.IMREAD_COLOR)` in RGB
                        order (value >> 8), because Pillow's convert('RGB') of
                        a 16-bit grayscale image clips at 255 instead of scaling.
    rgba.png.black.npy  rgba.png composited on black: round(rgb * a / 255).
    rgb16.png.u16.npy, gray16.png.u16.npy
                        the full 16-bit values, read with cv2.IMREAD_UNCHANGED,
                        as int32 [H, W, 3] (gray repeated; int32 because
                        segscope's .npy reader has no uint16).
    rgb.png.resize_WxH.npy  Pillow's `Image.resize((W, H), Image.BILINEAR)` of
                        rgb.png, for a down- and an up-scale: the reference for
                        toInputTensor's 'resize' (the DeepLab repos resize with
                        Pillow's bilinear).

  .npz files written by NumPy (test/npz.test.ts)
    savez.npz             np.savez(a=float32 [2,3,4], b=int64 [5], c=float64 [3,1], s=float32 scalar)
    savez_compressed.npz  np.savez_compressed with the same arrays
    npz_values.json       those arrays' values, for the test to compare with

`--check` compares what this run would write with the files on disk and
exits 1 if any differs (nothing is written).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

OUT = Path(__file__).resolve().parent.parent / 'test' / 'fixtures' / 'images'
W, H = 48, 32


def base_rgb() -> np.ndarray:
    """A 32x48 RGB picture with smooth gradients, hard edges and some noise."""
    rng = np.random.RandomState(20240604)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r = 255 * x / (W - 1)
    g = 255 * y / (H - 1)
    b = 127.5 + 127.5 * np.sin(x / 5.0) * np.cos(y / 4.0)
    img = np.stack([r, g, b], axis=-1)
    # A dark square and a bright disc: hard edges for the codecs and the resampler.
    img[6:16, 6:18] = [20, 30, 200]
    img[((x - 34) ** 2 + (y - 20) ** 2) < 49] = [250, 240, 20]
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format='PNG', **kw)
    return buf.getvalue()


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def pil_rgb(data: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(data))
    im = ImageOps.exif_transpose(im)
    return np.asarray(im.convert('RGB'), dtype=np.uint8)


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a))
    return buf.getvalue()


def cv_png(a: np.ndarray) -> bytes:
    ok, buf = cv2.imencode('.png', a)
    assert ok
    return buf.tobytes()


def build() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    rgb = base_rgb()
    im = Image.fromarray(rgb, 'RGB')

    samples: dict[str, bytes] = {}
    samples['rgb.png'] = png_bytes(im)
    samples['gray.png'] = png_bytes(im.convert('L'))
    yy, xx = np.mgrid[0:H, 0:W]
    alpha = np.clip(np.rint(255 * xx / (W - 1)), 0, 255).astype(np.uint8)
    alpha[:4] = 0          # fully transparent rows: their RGB must still come through when alpha is dropped
    alpha[-4:] = 255
    rgba = np.dstack([rgb, alpha])
    samples['rgba.png'] = png_bytes(Image.fromarray(rgba, 'RGBA'))
    la = np.dstack([np.asarray(im.convert('L')), alpha])
    samples['gray_alpha.png'] = png_bytes(Image.fromarray(la, 'LA'))
    samples['palette.png'] = png_bytes(im.quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    samples['rgb.jpg'] = encode(im, 'JPEG', quality=90, subsampling=2)
    # CMYK with black generation (K = 60% of the common ink), so that both the
    # C/M/Y and the K terms of the conversion matter. Pillow writes CMYK JPEGs
    # with an Adobe APP14 marker and inverted values, as Photoshop does.
    cmy = 255 - rgb.astype(np.int32)
    k = np.rint(0.6 * cmy.min(axis=-1)).astype(np.int32)
    cmyk = np.dstack([cmy - k[:, :, None], k]).astype(np.uint8)
    samples['cmyk.jpg'] = encode(Image.fromarray(cmyk, 'CMYK'), 'JPEG', quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    samples['exif6.jpg'] = encode(im, 'JPEG', quality=90, exif=exif.tobytes())
    samples['rgb_lossless.webp'] = encode(im, 'WEBP', lossless=True)
    samples['rgb_lossy.webp'] = encode(im, 'WEBP', quality=90)
    second = Image.fromarray(255 - rgb, 'RGB')
    samples['animated.webp'] = encode(im, 'WEBP', lossless=True, save_all=True, append_images=[second], duration=100, loop=0)
    samples['one.png'] = png_bytes(Image.fromarray(np.array([[[12, 200, 99]]], np.uint8), 'RGB'))
    samples['one.jpg'] = encode(Image.fromarray(np.array([[[12, 200, 99]]], np.uint8), 'RGB'), 'JPEG', quality=95)

    # 16-bit: OpenCV writes BGR(A) order; the values use the full 16-bit range
    # with low bytes that differ from the high bytes, so that reading only one
    # byte or scaling by 256 instead of 257 shows.
    rng = np.random.RandomState(7)
    rgb16 = (rgb.astype(np.uint32) * 257 + rng.randint(-128, 128, rgb.shape)).clip(0, 65535).astype(np.uint16)
    samples['rgb16.png'] = cv_png(rgb16[:, :, ::-1])
    gray16 = rgb16[:, :, 1].copy()
    samples['gray16.png'] = cv_png(gray16)

    for name, data in samples.items():
        files[name] = data
        if name.endswith('16.png'):
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            files[f'{name}.npy'] = npy_bytes(bgr[:, :, ::-1])
            full = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            assert full.dtype == np.uint16
            full = np.dstack([full] * 3) if full.ndim == 2 else full[:, :, ::-1]
            files[f'{name}.u16.npy'] = npy_bytes(full.astype(np.int32))
        else:
            files[f'{name}.npy'] = npy_bytes(pil_rgb(data))

    a = alpha.astype(np.float64)[:, :, None] / 255
    files['rgba.png.black.npy'] = npy_bytes(np.rint(rgb.astype(np.float64) * a).astype(np.uint8))

    png_rgb = pil_rgb(samples['rgb.png'])
    assert np.array_equal(png_rgb, rgb)
    for (w, h) in [(20, 13), (100, 70)]:
        files[f'rgb.png.resize_{w}x{h}.npy'] = npy_bytes(np.asarray(im.resize((w, h), Image.BILINEAR)))

    # .npz written by NumPy itself.
    arrays = {
        'a': (np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 11.5) / 4,
        'b': np.array([0, -1, 2 ** 40, 7, 123456789], dtype=np.int64),
        'c': np.array([[0.1], [-2.5], [1e-3]], dtype=np.float64),
        's': np.float32(3.25),
    }
    for fn, name in ((np.savez, 'savez.npz'), (np.savez_compressed, 'savez_compressed.npz')):
        buf = io.BytesIO()
        fn(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        files[name] = buf.getvalue()
    files['README.md'] = ('# Image and .npz fixtures\n\nMade by `tools/make_image_references.py`; do not edit by hand.\n\n```\n'
                          + __doc__.strip() + '\n```\n').encode()
    files['npz_values.json'] = (json.dumps({
        k: {'dtype': str(np.asarray(v).dtype), 'shape': list(np.asarray(v).shape), 'values': np.asarray(v).ravel().tolist()}
        for k, v in arrays.items()
    }, indent=1) + '\n').encode()
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--check', action='store_true', help='compare with the files on disk, write nothing')
    args = ap.parse_args()
    files = build()
    if args.check:
        bad = [n for n, d in files.items() if not (OUT / n).exists() or (OUT / n).read_bytes() != d]
        for n in bad:
            print(f'differs: {OUT / n}')
        return 1 if bad else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    total = sum(len(d) for d in files.values())
    print(f'wrote {len(files)} files, {total} bytes, into {OUT}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
