#!/usr/bin/env python3
"""Gradient and class-activation-map references from PyTorch autograd.

Run from the repository root with Debian's torch (python3-torch 1.13,
python3-torchvision 0.14, numpy 1.24); no OpenCV and no pytorch-grad-cam
needed (both are reimplemented below):

    /usr/bin/python3 tools/grad_references.py

Writes test/fixtures/grad/ (see its README.md and manifest.json). The models
are the fixture modules of tools/export_fixtures.py, rebuilt with the same
seeds (the .onnx files are not touched), in eval mode.

Gradients
---------
For each model, one input at the fixture's export shape: numpy
RandomState(7).standard_normal, float32 (export_fixtures.seeded_input(shape,
7)); for 1x3x65x65 that is the committed test/fixtures/input_1x3x65x65.npy.
Forward hooks on chosen modules call `output.retain_grad()` (what
pytorch-grad-cam's ActivationsAndGradients does with output.register_hook);
the target is pytorch-grad-cam's SemanticSegmentationTarget
(pytorch_grad_cam/utils/model_targets.py):

    score = (logits[0][category, :, :] * mask).sum()        (torch float32)

on the model's final logits (`output`, or `out` of the dict models), for two
masks: `pred` = float32(argmax over classes == category) (torch.argmax, first
index on ties) and `all` = ones. `category` is the second most frequent argmax
class (ties: the lower index), so that `pred` is a sizeable part of the image
but not all of it. One forward and one backward per mask; A (the activation)
is the same for both masks and saved once per layer.

CAMs (pytorch-grad-cam 1.4.x/1.5.x, jacobgil/pytorch-grad-cam, package
grad-cam; numpy float32, the same operations in the same order as that code),
for the `pred` mask; A, G are [1,C,h,w] float32 as the library gets them
(tensor.cpu().data.numpy()). `raw` below is get_cam_image's result, before the
ReLU:

  GradCAM   (grad_cam.py, GradCAM.get_cam_weights):
      w = np.mean(G, axis=(2,3));  cam = (w[:,:,None,None] * A).sum(axis=1)
  GradCAM++ (grad_cam_plusplus.py, GradCAMPlusPlus.get_cam_weights):
      g2 = G**2; g3 = g2 * G; sA = np.sum(A, axis=(2,3))
      aij = g2 / (2*g2 + sA[:,:,None,None]*g3 + 1e-6)
      aij = np.where(G != 0, aij, 0)
      w = np.sum(np.maximum(G, 0) * aij, axis=(2,3));  cam = (w[:,:,None,None] * A).sum(axis=1)
  XGradCAM  (xgrad_cam.py, XGradCAM.get_cam_weights):
      sA = np.sum(A, axis=(2,3)); w = (G * A / (sA[:,:,None,None] + 1e-7)).sum(axis=(2,3))
      cam = (w[:,:,None,None] * A).sum(axis=1)
  HiResCAM  (hirescam.py, HiResCAM.get_cam_image):  cam = (G * A).sum(axis=1)
  LayerCAM  (layer_cam.py, LayerCAM.get_cam_image):  cam = (np.maximum(G, 0) * A).sum(axis=1)
  EigenCAM  (eigen_cam.py -> utils/svd_on_activations.py, get_2d_projection(A)):
      X = A[0].reshape(C, h*w).transpose()          # [h*w, C]
      X = X - X.mean(axis=0)                         # centre each channel
      U, S, VT = np.linalg.svd(X, full_matrices=True)
      cam = float32((X @ VT[0, :]).reshape(h, w))    # no gradient, same for both masks
      The sign of VT[0] is whatever LAPACK (sgesdd via numpy) returns; it is
      not normalised by pytorch-grad-cam, and the ReLU below keeps one side, so
      the manifest records the sign (see `eigen` in each EigenCAM entry: VT[0]
      itself, the sign of its largest-magnitude entry and of its sum, the sign of
      the largest-magnitude projection value, the top singular values). Some later
      revisions of the repository call torch.linalg.svd instead, whose sign may
      differ.

  Post-processing, base_cam.py BaseCAM.forward -> compute_cam_per_layer ->
  aggregate_multi_layers, with one target layer:
      cam = np.maximum(cam, 0)                                   # every method
      s = scale_cam_image(cam, (W, H))       # per image: x - min; x / (1e-7 + max); cv2.resize
      s = np.maximum(s[:, None], 0); s = np.mean(s, axis=1)      # one layer: no-op
      result = scale_cam_image(s)            # min-max normalised a second time, no resize
  utils/image.py scale_cam_image: img = img - np.min(img); img = img / (1e-7 + np.max(img));
      img = cv2.resize(np.float32(img), (W, H))  (default INTER_LINEAR).
      With numpy 1.x (as here) `1e-7 + np.max(img)` is a float64 scalar (rounded
      to float32 for the division); numpy 2 keeps float32: at most an ulp apart.
  cv2.resize INTER_LINEAR for float32 (imgproc/src/resize.cpp, resizeGeneric_ with
      HResizeLinear + VResizeLinear, float coefficients, no fixed point), per axis:
      scale = 1 / (dst/src) (double); f = float32((d + 0.5)*scale - 0.5); s = floor(f);
      f = f - s (float32); weights a0 = 1 - f, a1 = f (float32).
      x: if s < 0: s, f = 0, 0; if s >= src-1: s, f = src-1, 0 (out = S[s] there).
      y: the weights are NOT clamped; only the two row indices are, clip(s) and
         clip(s+1) into [0, src-1], so an edge row is S*(1-f) + S*f (can differ from S
         by an ulp).
      Horizontal pass first, then vertical; each out = float32(float32(S0*a0) +
      float32(S1*a1)) (no FMA). Checked bit-exact against OpenCV 4.6 (Debian
      python3-opencv) on 3000 random sizes; the script repeats that check on its
      own CAMs whenever cv2 is importable (never needed, outputs never use it).
  utils/image.py show_cam_on_image(img, mask, use_rgb=True, colormap=COLORMAP_JET,
      image_weight=0.5):
      heatmap = JET[np.uint8(255 * mask)] (RGB; the committed OpenCV table
          test/fixtures/colormaps/opencv_colormaps.json `opencv.jet`)
      heatmap = np.float32(heatmap) / 255
      cam = (1 - 0.5) * heatmap + 0.5 * img; cam = cam / np.max(cam); np.uint8(255 * cam)
      (releases without image_weight wrote `cam = heatmap + img; cam / max`: the
      same bytes, since halving both terms is exact.)  img = the model input mapped back by the ImageNet
      normalisation, np.clip(x[0].transpose(1, 2, 0) * std + mean, 0, 1), float32,
      std = (0.229, 0.224, 0.225), mean = (0.485, 0.456, 0.406).

Checks (the script fails if one does not hold): every module hooked is called
once and its output not modified in place afterwards; gradients finite and not
all zero; the torch score equals sum(mask * logits[category]) in float64 to
1e-5 relative; the gradient of each score with respect to the logits is
exactly the mask in channel `category` and 0 elsewhere (retain_grad on the
logits). Re-running the
script gives byte-identical files (one torch thread; numpy's .npy and the
JSON are deterministic).
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_fixtures import BY_KEY, FIXTURES_DIR, seeded_input  # noqa: E402

OUT = os.path.join(FIXTURES_DIR, "grad")
INPUT_SEED = 7  # test/fixtures/input_1x3x65x65.npy is seeded_input((1, 3, 65, 65), 7)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
METHODS = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM", "EigenCAM"]
MASKS = ["pred", "all"]

# Per model: the module paths (the ONNX node names carry the same scopes, e.g.
# /classifier/aspp/project/project.2/Relu for classifier.aspp.project), and
# which layers get CAMs: (methods, methods that also get the show_cam_on_image uint8 overlay).
MODELS: List[dict] = [
    dict(key="os16", file="deeplabv3plus_os16.onnx",
         same_module=["deeplabv3plus_bn.onnx", "deeplabv3plus_opset11.onnx", "deeplabv3plus_static.onnx",
                      "deeplabv3plus_dynamo/model.onnx"],
         layers=[("aspp", "classifier.aspp.project"), ("lowlevel", "classifier.project"),
                 ("stage", "backbone.layer2"), ("block", "backbone.layer1.0")],
         skipped={},
         cams={"classifier.aspp.project": (METHODS, ["GradCAM", "EigenCAM"]),
               "classifier.project": (METHODS, ["GradCAM"])}),
    dict(key="os8_ac", file="deeplabv3plus_os8_ac.onnx", same_module=[],
         layers=[("aspp", "aspp"), ("lowlevel", "decoder.relu"), ("stage", "backbone.layer2")],
         skipped={"block": "kept out for size: backbone.layer2 (one block) is also the block backbone.layer2.0; "
                           "os16 has backbone.layer1.0"},
         cams={"aspp": (["GradCAM"], [])}),
    dict(key="sep", file="deeplabv3plus_sep.onnx", same_module=[],
         layers=[("aspp", "classifier.aspp.project"), ("lowlevel", "classifier.project"),
                 ("stage", "backbone.low_level_features"), ("block", "backbone.high_level_features.7")],
         skipped={},
         cams={"classifier.aspp.project": (["GradCAM"], [])}),
    dict(key="tv_deeplabv3", file="tv_deeplabv3.onnx", same_module=[],
         layers=[("aspp", "classifier.0.project"), ("stage", "backbone.layer2")],
         skipped={"lowlevel": "DeepLabV3 (torchvision) has no low-level projection",
                  "block": "kept out for size: backbone.layer2 (one block) is also the block "
                           "backbone.layer2.0; os16 has backbone.layer1.0"},
         cams={"classifier.0.project": (["GradCAM"], [])}),
    dict(key="tv_fcn", file="tv_fcn.onnx", same_module=[],
         layers=[("aspp", "classifier.2"), ("stage", "backbone.layer2")],
         skipped={"lowlevel": "FCN has no low-level projection",
                  "block": "kept out for size: backbone.layer2 (one block) is also the block "
                           "backbone.layer2.0; os16 has backbone.layer1.0"},
         cams={"classifier.2": (["GradCAM"], [])}),
    dict(key="tv_lraspp", file="tv_lraspp.onnx", same_module=[],
         layers=[("aspp", "classifier.cbr"), ("stage", "backbone.16"), ("block", "backbone.6")],
         skipped={"lowlevel": "LR-ASPP's low branch is classifier.low_classifier, a 1x1 conv straight to the "
                              "21 class logits, not a feature projection"},
         cams={"classifier.cbr": (METHODS, ["GradCAM"])}),
]

ROLE_NOTE = {
    "aspp": "the head's main feature (ASPP output; FCN: the head's conv-BN-ReLU; LR-ASPP: the cbr branch)",
    "lowlevel": "the decoder's low-level projection (1x1 conv-BN-ReLU to 48 channels)",
    "stage": "a backbone stage",
    "block": "a backbone block",
}
LAYER_NOTES = {
    ("os16", "backbone.layer2"): "layer2 has one block: also the block backbone.layer2.0",
    ("os8_ac", "backbone.layer2"): "layer2 has one block: also the block backbone.layer2.0",
    ("tv_deeplabv3", "backbone.layer2"): "layer2 has one block: also the block backbone.layer2.0",
    ("tv_fcn", "backbone.layer2"): "layer2 has one block: also the block backbone.layer2.0",
    ("os16", "backbone.layer1.0"): "layer1 has one block, so this is also backbone.layer1 and the low-level "
                                   "feature; it feeds classifier.project and layer2 (two gradient paths)",
    ("os8_ac", "aspp"): "JfASPP's output: relu(bn1(conv1(cat))) then Dropout (identity in eval); ONNX "
                        "/aspp/relu/Relu",
    ("os8_ac", "decoder.relu"): "decoder.relu(decoder.bn1(decoder.conv1(low_level_feat))), the low-level "
                                "projection; ONNX /decoder/relu/Relu",
    ("sep", "backbone.low_level_features"): "features[0:4], output stride 4, feeds classifier.project and "
                                            "high_level_features (two gradient paths)",
    ("sep", "backbone.high_level_features.7"): "an inverted residual (Hardswish, residual Add) at stride 16",
    ("tv_deeplabv3", "classifier.0.project"): "DeepLabHead[0] is the ASPP; its project (conv-BN-ReLU-Dropout)",
    ("tv_fcn", "classifier.2"): "FCNHead's ReLU after conv 3x3 + BN (classifier.3 is Dropout, absent in "
                                "ONNX); ONNX /classifier/classifier.2/Relu",
    ("tv_lraspp", "classifier.cbr"): "LRASPPHead.cbr (conv-BN-ReLU on the high feature), before the "
                                     "multiplication by the sigmoid `scale` branch",
    ("tv_lraspp", "backbone.16"): "the last Conv-BN-Hardswish of MobileNetV3 (C5, the `high` feature): feeds "
                                  "cbr and scale (two gradient paths)",
    ("tv_lraspp", "backbone.6"): "an inverted residual with SE and residual Add, the C2 `low` feature: feeds "
                                 "low_classifier and backbone.7 (two gradient paths)",
}


def onnx_scope(path: str) -> str:
    """The TorchScript exporter's node-name scope of a module path: a numeric component is named
    with the components before it back to the last non-numeric one (backbone.layer1.0 ->
    /backbone/layer1/layer1.0, classifier.0.project -> /classifier/classifier.0/project,
    backbone.16 -> /backbone/backbone.16)."""
    parts = path.split(".")
    names = []
    for i, p in enumerate(parts):
        j = i
        while p.isdigit() and j > 0 and parts[j - 1].isdigit():
            j -= 1
        names.append(".".join(parts[j - 1:i + 1]) if p.isdigit() and j > 0 else p)
    return "/" + "/".join(names)


def onnx_output_of(onnx_path: str, scope: str) -> Dict[str, str]:
    """The last node (graph order) whose name is under `scope`, and its first output: the tensor that
    the module's output became in the exported file."""
    import onnx

    g = onnx.load(onnx_path, load_external_data=False).graph
    nodes = [n for n in g.node if n.name.startswith(scope + "/")]
    assert nodes, f"{onnx_path}: no node under {scope}"
    return {"node": nodes[-1].name, "opType": nodes[-1].op_type, "tensor": nodes[-1].output[0]}


def rel(path: str) -> str:
    return os.path.relpath(path, FIXTURES_DIR).replace(os.sep, "/")


def save_npy(name: str, array: np.ndarray) -> str:
    path = os.path.join(OUT, name)
    np.save(path, np.ascontiguousarray(array))
    return rel(path)


def f32(x) -> float:
    """A float32 value as the JSON number that reads back to it exactly."""
    return float(np.float32(x))


# --------------------------------------------------------------------------
# Forward/backward with hooks
# --------------------------------------------------------------------------


def logits_of(y, name: str) -> torch.Tensor:
    if isinstance(y, dict):
        return y[name]
    if isinstance(y, (tuple, list)):
        return y[0]
    return y


def run_with_hooks(model: torch.nn.Module, x: torch.Tensor, paths: List[str], output_name: str,
                   category: int, mask: np.ndarray) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray],
                                                             np.ndarray, float, np.ndarray]:
    """One forward + backward of SemanticSegmentationTarget(category, mask).
    Returns activations, gradients (per path), the logits, the score and d score / d logits."""
    outs: Dict[str, List[torch.Tensor]] = {p: [] for p in paths}
    handles = []
    for p in paths:
        def hook(_m, _i, o, p=p):
            assert isinstance(o, torch.Tensor), p
            o.retain_grad()
            outs[p].append(o)
        handles.append(model.get_submodule(p).register_forward_hook(hook))
    versions = {}
    try:
        model.zero_grad(set_to_none=True)
        y = model(x)
        for p in paths:
            assert len(outs[p]) == 1, f"{p} called {len(outs[p])} times"
            versions[p] = outs[p][0]._version
        logits = logits_of(y, output_name)
        logits.retain_grad()
        # pytorch_grad_cam.utils.model_targets.SemanticSegmentationTarget, summed as BaseCAM.forward does
        target_mask = torch.from_numpy(mask)
        scores = [(out[category, :, :] * target_mask).sum() for out in logits]
        loss = sum(scores)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    acts, grads = {}, {}
    for p in paths:
        o = outs[p][0]
        assert o._version == versions[p], f"{p}: output modified in place after the hook"
        assert o.grad is not None, f"{p}: no gradient"
        acts[p] = o.detach().numpy().astype(np.float32)
        grads[p] = o.grad.detach().numpy().astype(np.float32)
    return acts, grads, logits.detach().numpy(), float(scores[0].item()), logits.grad.numpy()


def module_aliases(model: torch.nn.Module, x: torch.Tensor, paths: List[str]) -> Dict[str, List[str]]:
    """Other module paths whose output (as it was when the module returned) equals each path's output:
    e.g. classifier.aspp.project = its ReLU (.2) = its Dropout (.3) = classifier.aspp."""
    seen: Dict[str, List[torch.Tensor]] = {}
    handles = []
    for name, m in model.named_modules():
        if not name:
            continue
        def hook(_m, _i, o, name=name):
            if isinstance(o, torch.Tensor):
                seen.setdefault(name, []).append(o.detach().clone())
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for p in paths:
        t = seen[p][0]
        out[p] = sorted((n for n, ts in seen.items() if n != p and len(ts) == 1 and ts[0].shape == t.shape
                         and torch.equal(ts[0], t)), key=lambda n: (n.count("."), n))
    return out


# --------------------------------------------------------------------------
# pytorch-grad-cam 1.4/1.5, in numpy (see the module docstring)
# --------------------------------------------------------------------------


def get_2d_projection(activation_batch: np.ndarray):
    activation_batch = activation_batch.copy()
    activation_batch[np.isnan(activation_batch)] = 0
    projections, info = [], []
    for activations in activation_batch:
        reshaped_activations = (activations).reshape(activations.shape[0], -1).transpose()
        reshaped_activations = reshaped_activations - reshaped_activations.mean(axis=0)
        U, S, VT = np.linalg.svd(reshaped_activations, full_matrices=True)
        projection = reshaped_activations @ VT[0, :]
        projection = projection.reshape(activations.shape[1:])
        projections.append(projection)
        v = VT[0, :]
        k = int(np.argmax(np.abs(v)))
        kp = int(np.argmax(np.abs(projection)))
        info.append({
            "vt0": [f32(t) for t in v],
            "vt0MaxAbsIndex": k,
            "vt0MaxAbsSign": 1 if v[k] > 0 else -1,
            "vt0SumSign": 1 if float(np.sum(v.astype(np.float64))) > 0 else -1,
            "projectionMaxAbsSign": 1 if projection.reshape(-1)[kp] > 0 else -1,
            "singularValues": [f32(t) for t in S[:3]],
        })
    return np.float32(projections), info


def cam_image(method: str, A: np.ndarray, G: np.ndarray):
    """get_cam_image of each method: the map before ReLU, [1,h,w] float32."""
    info = None
    if method in ("GradCAM", "GradCAMPlusPlus", "XGradCAM"):
        if method == "GradCAM":
            weights = np.mean(G, axis=(2, 3))
        elif method == "GradCAMPlusPlus":
            grads_power_2 = G ** 2
            grads_power_3 = grads_power_2 * G
            sum_activations = np.sum(A, axis=(2, 3))
            eps = 0.000001
            aij = grads_power_2 / (2 * grads_power_2 + sum_activations[:, :, None, None] * grads_power_3 + eps)
            aij = np.where(G != 0, aij, 0)
            weights = np.maximum(G, 0) * aij
            weights = np.sum(weights, axis=(2, 3))
        else:
            sum_activations = np.sum(A, axis=(2, 3))
            eps = 1e-7
            weights = G * A / (sum_activations[:, :, None, None] + eps)
            weights = weights.sum(axis=(2, 3))
        weighted_activations = weights[:, :, None, None] * A
        cam = weighted_activations.sum(axis=1)
    elif method == "HiResCAM":
        cam = (G * A).sum(axis=1)
    elif method == "LayerCAM":
        cam = (np.maximum(G, 0) * A).sum(axis=1)
    elif method == "EigenCAM":
        cam, info = get_2d_projection(A)
        info = info[0]
    else:
        raise ValueError(method)
    assert cam.dtype == np.float32, (method, cam.dtype)
    return cam, info


def _linear_coeffs(dst: int, src: int, clamp_weights: bool):
    """cv::resize INTER_LINEAR (float path, resize.cpp resize/resizeGeneric_) indices and weights along
    one axis. Along x, a source position outside [0, src-1] gets the edge pixel with weights (1, 0);
    along y only the row indices are clipped (clip(sy), clip(sy+1)) and the weights stay (1-f, f), so
    an edge row is S*(1-f) + S*f, which can differ from S by an ulp."""
    inv_scale = float(dst) / float(src)
    scale = 1.0 / inv_scale
    i0 = np.empty(dst, np.int64)
    i1 = np.empty(dst, np.int64)
    a0 = np.empty(dst, np.float32)
    a1 = np.empty(dst, np.float32)
    for d in range(dst):
        f = np.float32((d + 0.5) * scale - 0.5)
        s = int(math.floor(f))
        f = np.float32(f - np.float32(s))
        if clamp_weights:
            if s < 0:
                f, s = np.float32(0), 0
            if s >= src - 1:
                f, s = np.float32(0), src - 1
        i0[d], i1[d] = min(max(s, 0), src - 1), min(max(s + 1, 0), src - 1)
        a0[d], a1[d] = np.float32(1) - f, f
    return i0, i1, a0, a1


def cv2_resize_linear(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """cv2.resize(img, (W, H)) of a 2-D float32 image, INTER_LINEAR (see the docstring)."""
    assert img.dtype == np.float32 and img.ndim == 2
    W, H = size
    h, w = img.shape
    xi0, xi1, xa0, xa1 = _linear_coeffs(W, w, clamp_weights=True)
    yi0, yi1, ya0, ya1 = _linear_coeffs(H, h, clamp_weights=False)
    # horizontal pass (HResizeLinear, every source row): float32 products, then their sum
    hor = (img[:, xi0] * xa0[None, :]) + (img[:, xi1] * xa1[None, :])
    clamped_x = (xi0 == w - 1)
    hor[:, clamped_x] = img[:, xi0[clamped_x]]  # the dx >= xmax branch: D = S[sx]
    # vertical pass (VResizeLinear): the same on two buffered rows
    out = (hor[yi0, :] * ya0[:, None]) + (hor[yi1, :] * ya1[:, None])
    assert out.dtype == np.float32
    return out


def scale_cam_image(cam, target_size=None):
    result = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        if target_size is not None:
            img = cv2_resize_linear(np.float32(img), target_size)
        result.append(img)
    result = np.float32(result)
    return result


def base_cam_postprocess(cam: np.ndarray, width: int, height: int) -> np.ndarray:
    """BaseCAM.compute_cam_per_layer + aggregate_multi_layers with one target layer."""
    cam = np.maximum(cam, 0)
    scaled = scale_cam_image(cam, (width, height))
    cam_per_target_layer = [scaled[:, None, :]]
    cam_per_target_layer = np.concatenate(cam_per_target_layer, axis=1)
    cam_per_target_layer = np.maximum(cam_per_target_layer, 0)
    result = np.mean(cam_per_target_layer, axis=1)
    return scale_cam_image(result)


def show_cam_on_image(img: np.ndarray, mask: np.ndarray, jet_rgb: np.ndarray, image_weight: float = 0.5):
    """show_cam_on_image(img, mask, use_rgb=True), cv2.applyColorMap(COLORMAP_JET) as a table lookup."""
    heatmap = jet_rgb[np.uint8(255 * mask)]  # applyColorMap (BGR) + cvtColor BGR2RGB
    heatmap = np.float32(heatmap) / 255
    if np.max(img) > 1:
        raise Exception("The input image should np.float32 in the range [0, 1]")
    cam = (1 - image_weight) * heatmap + image_weight * img
    cam = cam / np.max(cam)
    return np.uint8(255 * cam)


def cv2_cross_check(raw: np.ndarray, scaled: np.ndarray, image: np.ndarray, overlay) -> bool:
    """When OpenCV is importable (e.g. Debian's python3-opencv), redo the post-processing with the real
    cv2.resize / cv2.applyColorMap / cv2.cvtColor, as pytorch-grad-cam's utils/image.py does, and require
    identical bytes. Returns False when cv2 is not there (the outputs never depend on it)."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False

    def scale(cam, target_size=None):
        result = []
        for img in cam:
            img = img - np.min(img)
            img = img / (1e-7 + np.max(img))
            if target_size is not None:
                img = cv2.resize(np.float32(img), target_size)
            result.append(img)
        return np.float32(result)

    H, W = scaled.shape
    ref = scale(np.mean(np.maximum(scale(np.maximum(raw[None], 0), (W, H))[:, None, :], 0), axis=1))
    assert np.array_equal(ref[0], scaled), "scaled CAM differs from cv2's"
    if overlay is not None:
        heatmap = cv2.applyColorMap(np.uint8(255 * scaled), cv2.COLORMAP_JET)
        heatmap = np.float32(cv2.cvtColor(heatmap, cv2.COLOR_BGR2RGB)) / 255
        cam = (1 - 0.5) * heatmap + 0.5 * image
        cam = cam / np.max(cam)
        assert np.array_equal(np.uint8(255 * cam), overlay), "overlay differs from cv2's"
    return True


# --------------------------------------------------------------------------


def model_input(shape) -> Tuple[np.ndarray, str]:
    x = seeded_input(shape, INPUT_SEED).numpy()
    name = "input_" + "x".join(map(str, shape)) + ".npy"
    committed = os.path.join(FIXTURES_DIR, name)
    if os.path.exists(committed):
        assert np.array_equal(np.load(committed), x), f"{committed} is not seeded_input(shape, {INPUT_SEED})"
        return x, rel(committed)
    return x, save_npy(name, x)


def main() -> int:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".npy"):
            os.remove(os.path.join(OUT, f))
    with open(os.path.join(FIXTURES_DIR, "colormaps", "opencv_colormaps.json")) as fh:
        jet_rgb = np.array(json.load(fh)["opencv"]["jet"], dtype=np.uint8)
    assert jet_rgb.shape == (256, 3)

    manifest_models, grad_entries, cam_entries = [], [], []
    cv2_checked = 0
    for spec in MODELS:
        key = spec["key"]
        fx = BY_KEY[key]
        assert fx.path.replace(os.sep, "/") == spec["file"], (fx.path, spec["file"])
        output_name = fx.outputs[0]
        model = fx.build().eval()
        x_np, input_file = model_input(fx.shape)
        x = torch.from_numpy(x_np)
        _, _, H, W = fx.shape
        paths = [p for _, p in spec["layers"]]
        for other in spec["same_module"]:  # the same build function (module and seed) and export shape
            ofx = next(f for f in BY_KEY.values() if f.path.replace(os.sep, "/") == other)
            assert ofx.build is fx.build and ofx.shape == fx.shape and os.path.exists(ofx.abspath), other
        aliases = module_aliases(model, x, paths)

        with torch.no_grad():
            logits = logits_of(model(x), output_name).numpy()
        pred = torch.from_numpy(logits)[0].argmax(0).numpy()
        counts = np.bincount(pred.reshape(-1), minlength=logits.shape[1])
        order = sorted(range(len(counts)), key=lambda c: (-counts[c], c))
        category = order[1]
        top2 = np.sort(logits[0], axis=0)[-2:]
        gap = top2[1] - top2[0]
        near = (gap < 1e-3) & ((pred == category) | (np.argsort(logits[0], axis=0, kind="stable")[-2] == category))
        masks = {"pred": np.float32(pred == category), "all": np.ones((H, W), np.float32)}
        mask_file = save_npy(f"{key}_mask_pred.npy", (pred == category).astype(np.uint8))

        image = np.clip(x_np[0].transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN, 0, 1).astype(np.float32)
        image_file = None

        results = {}
        for mname in MASKS:
            acts, grads, lg, score, dlogits = run_with_hooks(model, x, paths, output_name, category, masks[mname])
            assert np.array_equal(lg, logits), f"{key}: logits differ between runs"
            want = float(np.sum(masks[mname].astype(np.float64) * logits[0, category].astype(np.float64)))
            assert abs(score - want) <= 1e-5 * max(1.0, abs(want)), (key, mname, score, want)
            expect = np.zeros_like(dlogits)
            expect[0, category] = masks[mname]
            assert np.array_equal(dlogits, expect), f"{key}/{mname}: d score / d logits is not the mask"
            results[mname] = (acts, grads, score, want)

        layer_records = []
        for role, path in spec["layers"]:
            A = results["pred"][0][path]
            assert np.array_equal(A, results["all"][0][path])
            tag = f"{key}_{path.replace('.', '-')}"
            a_file = save_npy(f"{tag}_A.npy", A)
            rec = {"role": role, "module": path, "onnxScope": onnx_scope(path),
                   "onnxOutput": onnx_output_of(fx.abspath, onnx_scope(path)),
                   "aliases": aliases[path], "activationShape": list(A.shape), "activation": a_file}
            if (key, path) in LAYER_NOTES:
                rec["note"] = LAYER_NOTES[(key, path)]
            layer_records.append(rec)
            for mname in MASKS:
                G = results[mname][1][path]
                assert G.shape == A.shape
                assert np.isfinite(G).all() and np.isfinite(A).all(), (key, path, mname)
                assert np.any(G != 0), (key, path, mname, "gradient all zero")
                g_file = save_npy(f"{tag}_G_{mname}.npy", G)
                grad_entries.append({
                    "model": key, "modelFile": fx.path.replace(os.sep, "/"), "input": input_file,
                    "output": output_name, "category": category, "mask": mname,
                    "maskFile": mask_file if mname == "pred" else None,
                    "maskPixels": int(masks[mname].sum()), "layer": path, "aliases": aliases[path], "role": role,
                    "activationShape": list(A.shape), "activation": a_file, "gradient": g_file,
                    "score": results[mname][2], "scoreFloat64": results[mname][3],
                    "gradAbsMax": f32(np.abs(G).max()), "gradNonZero": int(np.count_nonzero(G)),
                })

            if path in spec["cams"]:
                methods, overlay_methods = spec["cams"][path]
                G = results["pred"][1][path]
                if overlay_methods and image_file is None:
                    image_file = save_npy(f"{key}_image_rgb.npy", image)
                for method in methods:
                    raw, info = cam_image(method, A, G)
                    scaled = base_cam_postprocess(raw, W, H)
                    assert scaled.shape == (1, H, W) and scaled.dtype == np.float32
                    vis = show_cam_on_image(image, scaled[0], jet_rgb) if method in overlay_methods else None
                    cv2_checked += cv2_cross_check(raw[0], scaled[0], image, vis)
                    mtag = f"{tag}_{method}"
                    entry = {
                        "model": key, "layer": path, "mask": "pred", "category": category, "method": method,
                        "raw": save_npy(f"{mtag}_raw.npy", raw[0]), "rawShape": list(raw[0].shape),
                        "scaled": save_npy(f"{mtag}_scaled.npy", scaled[0]), "scaledShape": [H, W],
                        "overlay": None, "image": None,
                        "rawMin": f32(raw.min()), "rawMax": f32(raw.max()),
                    }
                    if vis is not None:
                        entry["overlay"] = save_npy(f"{mtag}_overlay.npy", vis)
                        entry["image"] = image_file
                    if info is not None:
                        entry["eigen"] = info
                    cam_entries.append(entry)

        manifest_models.append({
            "key": key, "modelFile": fx.path.replace(os.sep, "/"),
            "sameModuleFiles": spec["same_module"],
            "input": input_file, "inputShape": list(fx.shape), "inputSeed": INPUT_SEED,
            "output": output_name, "outputs": fx.outputs, "logitsShape": list(logits.shape),
            "category": category,
            "categoryRule": "second most frequent argmax class (ties: lower index)",
            "argmaxCounts": {str(c): int(counts[c]) for c in range(len(counts)) if counts[c]},
            "maskPred": mask_file, "maskPredPixels": int(masks["pred"].sum()), "pixels": H * W,
            "minTop2Gap": f32(gap.min()),
            "nearTiePixelsWithCategory": int(near.sum()),
            "image": image_file,
            "layers": layer_records,
            "skipped": [{"role": r, "why": why} for r, why in spec["skipped"].items()],
        })
        print(f"[{key}] category {category} ({int(counts[category])}/{H * W} px), "
              f"min top-2 gap {gap.min():.2e}, layers {', '.join(paths)}")

    manifest = {
        "generator": "tools/grad_references.py",
        "torch": torch.__version__, "numpy": np.__version__,
        "paths": "relative to test/fixtures/",
        "target": "pytorch-grad-cam SemanticSegmentationTarget: score = sum over pixels of "
                  "mask * logits[0, category] (the first output), torch float32; mask pred = "
                  "(argmax over classes == category), all = ones",
        "arrays": "A, G: float32 [1,C,h,w] (module output and d score / d output); masks: uint8 [H,W]; "
                  "CAM raw: float32 [h,w] (get_cam_image, before ReLU); scaled: float32 [H,W] (the "
                  "CAM object's result for the image); overlay: uint8 [H,W,3] RGB; image: float32 [H,W,3] RGB",
        "image": "clip(input[0].transpose(1,2,0) * (0.229,0.224,0.225) + (0.485,0.456,0.406), 0, 1), float32",
        "roles": ROLE_NOTE,
        "models": manifest_models,
        "grads": grad_entries,
        "cams": cam_entries,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"cv2 cross-check: {cv2_checked} of {len(cam_entries)} CAMs identical to OpenCV's post-processing"
          if cv2_checked else "cv2 cross-check: skipped (no cv2 in this python)")
    print(f"{len(grad_entries)} gradient entries, {len(cam_entries)} CAMs; test/fixtures/grad: "
          f"{len(os.listdir(OUT))} files, {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
