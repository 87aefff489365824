#!/usr/bin/env python3
"""Writes test/fixtures/resize/torch_linear_taps.json: the float32 weights
PyTorch 2's F.interpolate (mode='linear' on [N, C, W]) gives each input index
for each output index, read off one-hot inputs (channel c is 1 at position c,
0 elsewhere), which the interpolation leaves exact: output (c, o) is the
weight of input c for output o. segscope's Resize must give the same bits
(test/resize.test.ts), whether it computes its taps in the kernel or on the
CPU (the gradient's adjoint uses the latter).

Cases: DeepLab's upsamplings (33 -> 129, 129 -> 513, 65 -> 257, 65 -> 513),
downsamplings, align_corners, a given scale_factor (torch then uses
1/scale, as the exported Resize's scales), and extreme ratios whose fraction
needs more than 32 bits (2 -> 2049).

  python3 -m venv .venv && .venv/bin/pip install -r tools/requirements-dynamo.txt
  .venv/bin/python tools/resize_fixtures.py      (torch 2.x; the fixture holds 2.13's)

Debian's torch 1.13 computes the weights differently (from the unrounded
source coordinate): segscope follows torch 2.
"""

import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "test", "fixtures", "resize", "torch_linear_taps.json")

# (input, output size or None, align_corners, scale_factor or None)
CASES = [
    (33, 129, False, None),
    (129, 513, False, None),
    (65, 257, False, None),
    (65, 513, False, None),
    (17, 65, False, None),
    (7, 23, False, None),
    (100, 37, False, None),
    (513, 129, False, None),
    (2, 2049, False, None),
    (3, 1000, False, None),
    (33, 129, True, None),
    (7, 23, True, None),
    (100, 37, True, None),
    (33, None, False, 4.0),
    (9, None, False, 2.5),
    (20, None, False, 0.3),
]


def taps(size_in, size_out, align_corners, scale):
    x = torch.eye(size_in, dtype=torch.float32).reshape(1, size_in, size_in)
    if scale is None:
        y = F.interpolate(x, size=size_out, mode="linear", align_corners=align_corners)
    else:
        y = F.interpolate(x, scale_factor=scale, mode="linear", align_corners=align_corners, recompute_scale_factor=False)
    w = y[0].numpy()  # [input, output]
    # Per output, its nonzero (input, weight) pairs; float32 values survive JSON as float64 exactly.
    return [[[int(i), float(w[i, o])] for i in range(size_in) if w[i, o] != 0] for o in range(w.shape[1])]


def main():
    cases = []
    for size_in, size_out, align_corners, scale in CASES:
        cases.append(
            {
                "input": size_in,
                "output": size_out,
                "align_corners": align_corners,
                "scale_factor": scale,
                "taps": taps(size_in, size_out, align_corners, scale),
            }
        )
    os.makedirs(os.path.dirname(TARGET), exist_ok=True)
    with open(TARGET, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{TARGET}: {len(cases)} cases, torch {torch.__version__}")


if __name__ == "__main__":
    main()
