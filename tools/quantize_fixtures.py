#!/usr/bin/env python3
"""Writes test/fixtures/quantized/: the OS16 DeepLabv3+ fixture quantized the
three ways onnxruntime's tools quantize a model for browsers and edge devices.

- deeplabv3plus_os16_dynamic.onnx: `quantize_dynamic` (uint8 weights):
  DynamicQuantizeLinear on each conv input, ConvInteger, then Cast to float
  and Mul by the input's and the weights' scales.
- deeplabv3plus_os16_qdq.onnx: `quantize_static` in QDQ form: per-channel
  int8 weights stored as initializers behind DequantizeLinear, uint8
  activations as QuantizeLinear/DequantizeLinear pairs around float ops.
- deeplabv3plus_os16_qop.onnx: `quantize_static` in QOperator form:
  QLinearConv with per-channel int8 weights, com.microsoft QLinearAdd,
  QLinearConcat and QLinearGlobalAveragePool, MaxPool and Resize on uint8.
- deeplabv3plus_os16_torch.onnx: the same network (same seed) quantized by
  PyTorch itself (FX graph mode, the 'x86' qconfig: per-channel int8
  weights, uint8 activations) and exported by the TorchScript exporter: QDQ
  form with quantized Add and Concat written out, and uint8 Casts.

Calibration feeds four fixed-seed normal inputs of 1x3x65x65. The reference
outputs are computed by onnxruntime in the tests, not stored here.

  python3 -m venv .venv && .venv/bin/pip install -r tools/requirements-dynamo.txt
  .venv/bin/python tools/quantize_fixtures.py
"""

import collections
import os
import sys

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "test", "fixtures", "deeplabv3plus_os16.onnx")
TARGET = os.path.join(ROOT, "test", "fixtures", "quantized")


class Calibration(CalibrationDataReader):
    def __init__(self):
        rs = np.random.RandomState(0)
        self.feeds = iter([{"input": rs.randn(1, 3, 65, 65).astype(np.float32)} for _ in range(4)])

    def get_next(self):
        return next(self.feeds, None)


def quantize_with_pytorch(target):
    """The OS16 network of export_fixtures.py, FX-quantized, exported with the TorchScript exporter."""
    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from export_fixtures import build_deeplabv3plus_os16

    model = build_deeplabv3plus_os16().eval()
    example = torch.zeros(1, 3, 65, 65)
    prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (example,))
    with torch.no_grad():
        for feed in Calibration().feeds:
            prepared(torch.from_numpy(feed["input"]))
    quantized = convert_fx(prepared)
    torch.onnx.export(quantized, (example,), target, opset_version=17, dynamo=False, input_names=["input"], output_names=["output"])


def main():
    os.makedirs(TARGET, exist_ok=True)
    path = lambda kind: os.path.join(TARGET, f"deeplabv3plus_os16_{kind}.onnx")  # noqa: E731
    quantize_dynamic(SOURCE, path("dynamic"), weight_type=QuantType.QUInt8)
    common = dict(per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    quantize_static(SOURCE, path("qdq"), Calibration(), quant_format=QuantFormat.QDQ, **common)
    quantize_static(SOURCE, path("qop"), Calibration(), quant_format=QuantFormat.QOperator, **common)
    quantize_with_pytorch(path("torch"))
    for kind in ("dynamic", "qdq", "qop", "torch"):
        model = onnx.load(path(kind))
        onnx.checker.check_model(model)
        ops = collections.Counter((f"{n.domain}." if n.domain else "") + n.op_type for n in model.graph.node)
        # onnxruntime must run what it wrote: the tests compare against it.
        onnxruntime.InferenceSession(path(kind), providers=["CPUExecutionProvider"])
        print(f"wrote {path(kind)} ({os.path.getsize(path(kind))} bytes): {dict(sorted(ops.items()))}")


if __name__ == "__main__":
    main()
