#!/usr/bin/env python3
"""Writes test/fixtures/deeplabv3plus_os16_fp16.onnx and
deeplabv3plus_bn_fp16.onnx: the OS16 fixture, and the one that keeps its
BatchNormalization nodes, as float16 models, as `model.half()` exports or
onnxconverter-common's float16 conversion make them: float16 weights, input,
output and activations. The shape subgraph (Shape -> Cast -> Mul -> Floor ->
Cast feeding Resize) keeps its float32 arithmetic, as those exporters leave it.

  python3 tools/float16_fixture.py                  (needs the onnx package only)
  python3 tools/float16_fixture.py SOURCE TARGET    (any other model, e.g. big/)
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "test", "fixtures")


def to_float16(source, target):
    model = onnx.load(source)
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name)
            graph.initializer[i].CopyFrom(half)
    # Activations: the tensors the input's values flow into, not through a Shape
    # (whose consumers compute sizes). Nodes are in topological order.
    activations = {i.name for i in graph.input}
    for node in graph.node:
        if node.op_type != "Shape" and any(i in activations for i in node.input):
            activations.update(node.output)
    for info in [*graph.input, *graph.output, *graph.value_info]:
        t = info.type.tensor_type
        if t.elem_type == TensorProto.FLOAT and info.name in activations:
            t.elem_type = TensorProto.FLOAT16
    onnx.checker.check_model(model)
    onnx.save(model, target)
    print(f"wrote {target} ({os.path.getsize(target)} bytes)")


if len(sys.argv) == 3:
    to_float16(sys.argv[1], sys.argv[2])
else:
    for name in ["deeplabv3plus_os16", "deeplabv3plus_bn"]:
        to_float16(os.path.join(FIXTURES, f"{name}.onnx"), os.path.join(FIXTURES, f"{name}_fp16.onnx"))
