#!/usr/bin/env python3
"""The PyTorch side of bench/gpu/run.sh: exports the full-size DeepLabv3+
models of tools/export_fixtures.py (random weights, the same seeds as the
local benchmarks) and times them in PyTorch on the same machine, the hardware
reference segscope's figures are read against.

  python3 bench/gpu/torch_reference.py MODEL_DIR OUT_JSON [--runs N] [--only big,big_r50]

Per model: the median latency of a forward pass at 1x3x513x513, input on the
device and the logits read back to the host (as segscope and onnxruntime are
timed), in plain fp32 (TF32 off: the precision segscope computes in), TF32
(PyTorch's default for cuDNN convolutions) and fp16 autocast (the
counterpart of segscope's --precision f16). Without CUDA (a dry run) only
fp32 on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import export_fixtures as fixtures  # noqa: E402  (the model definitions and exporter)


def export(key: str, model_dir: str) -> str:
    """The fixture's ONNX file in model_dir (exported with the TorchScript exporter, as locally)."""
    fx = fixtures.BY_KEY[key]
    path = os.path.join(model_dir, os.path.basename(fx.path))
    if not os.path.exists(path):
        model = fx.build()
        x = fixtures.seeded_input(fx.shape, 1234)
        kwargs = {"dynamo": False} if int(torch.__version__.split(".")[0]) >= 2 else {}
        dyn = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}}
        try:
            torch.onnx.export(model, (x,), path, export_params=True, opset_version=fx.opset, input_names=["input"],
                              output_names=fx.outputs, dynamic_axes=dyn, **kwargs)
        except Exception as e:  # a torch whose TorchScript exporter is gone: the dynamo one (segscope reads both)
            print(f"TorchScript export failed ({e}); exporting with dynamo", flush=True)
            torch.onnx.export(model, (x,), path, input_names=["input"], output_names=fx.outputs, opset_version=18,
                              dynamo=True, external_data=True)
    return path


def time_forward(model: torch.nn.Module, x: torch.Tensor, runs: int, autocast: bool) -> list[float]:
    """Milliseconds per forward pass with the logits copied to the host, after two warm-up passes."""
    times = []
    mixed = torch.autocast(x.device.type, dtype=torch.float16) if autocast else contextlib.nullcontext()
    with torch.inference_mode(), mixed:
        for i in range(runs + 2):
            t0 = time.perf_counter()
            model(x).float().cpu()
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1e3)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("out_json")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--only", default="big,big_r50")
    args = ap.parse_args()
    os.makedirs(args.model_dir, exist_ok=True)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    result = {
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "input": [1, 3, 513, 513],
        "models": {},
    }
    torch.backends.cudnn.benchmark = True
    for key in args.only.split(","):
        path = export(key, args.model_dir)
        model = fixtures.BY_KEY[key].build().to(device).eval()
        x = fixtures.seeded_input((1, 3, 513, 513), 1234).to(device)
        variants = {"fp32": (False, False)}
        if cuda:
            variants.update({"tf32": (True, False), "fp16_autocast": (True, True)})
        timings = {}
        for name, (tf32, autocast) in variants.items():
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            runs = time_forward(model, x, args.runs, autocast)
            timings[name] = {"median_ms": statistics.median(runs), "min_ms": min(runs), "runs_ms": runs}
            print(f"{os.path.basename(path)} {name}: median {timings[name]['median_ms']:.2f} ms", flush=True)
        result["models"][os.path.basename(path)] = timings
    with open(args.out_json, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
