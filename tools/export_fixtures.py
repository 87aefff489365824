#!/usr/bin/env python3
"""Export the ONNX test fixtures of segscope from PyTorch.

All models use random weights (no pretrained weights are downloaded): every
Conv/BatchNorm/Linear parameter and every BatchNorm running statistic is
overwritten from numpy's legacy RandomState with a fixed seed, so the weights
are bit-identical across torch versions (the TorchScript fixtures made with
Debian's torch 1.13 and the dynamo fixture made with torch 2.x share the OS16
weights, which `--verify` checks).

How to run (from the repository root):

  1. TorchScript-exporter fixtures (Debian packages python3-torch,
     python3-torchvision, python3-onnx; torch 1.13), writes test/fixtures/*.onnx
     and test/fixtures/README.md:

       /usr/bin/python3 tools/export_fixtures.py

  2. Dynamo-exporter fixture (torch 2.x in a venv; see
     tools/requirements-dynamo.txt), writes
     test/fixtures/deeplabv3plus_dynamo/model.onnx + model.onnx.data:

       python3 -m venv .venv
       .venv/bin/pip install -r tools/requirements-dynamo.txt
       .venv/bin/python tools/export_fixtures.py --only dynamo

  3. onnxruntime check of every fixture (load, run at the export shape and at
     a second batch/height/width, compare with the torch outputs saved in
     big/refs/ by steps 1-2, and compare the dynamo model with the OS16 one):

       .venv/bin/python tools/export_fixtures.py --verify

  4. Full-size benchmark model (git-ignored, ~240 MB, not a test fixture):

       /usr/bin/python3 tools/export_fixtures.py --only big

`--only` takes a comma-separated list of fixture keys (see FIXTURES below,
plus `dynamo` and `big`). `--summary` only prints the summary and rewrites the
README from the files on disk. The README is rewritten after every export run.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
from collections import Counter, OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES_DIR = os.path.join(ROOT, "test", "fixtures")
BIG_DIR = os.path.join(ROOT, "big")
REFS_DIR = os.path.join(BIG_DIR, "refs")

SEED = 20240613
NUM_CLASSES = 21


# --------------------------------------------------------------------------
# Deterministic randomisation of weights and BN statistics
# --------------------------------------------------------------------------


def randomise_(model: nn.Module, seed: int, residual_bn_scale: float = 1.0) -> nn.Module:
    """Overwrite every parameter and BN buffer with seeded random values.

    Conv weights: He-uniform (keeps activations O(1) through the ReLU nets).
    BN: weight U(0.6, 1.4), bias U(-0.2, 0.2), running_mean U(-0.3, 0.3),
    running_var U(0.5, 2.0): all non-trivial so BN folding is really tested.
    Uses numpy's RandomState (stable across numpy and torch versions).
    `residual_bn_scale` scales the weight of the last BN of each Bottleneck
    (`bn3`), so that very deep nets (ResNet-101) keep activations O(1).
    """
    rs = np.random.RandomState(seed)

    def uni(t: torch.Tensor, lo: float, hi: float) -> None:
        v = rs.uniform(lo, hi, size=tuple(t.shape)).astype(np.float32)
        t.copy_(torch.from_numpy(v))

    touched = set()
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
                bound = math.sqrt(6.0 / fan_in)
                uni(m.weight, -bound, bound)
                touched.add(id(m.weight))
                if m.bias is not None:
                    uni(m.bias, -0.1, 0.1)
                    touched.add(id(m.bias))
            elif isinstance(m, nn.BatchNorm2d):
                scale = residual_bn_scale if name.endswith("bn3") else 1.0
                uni(m.weight, 0.6 * scale, 1.4 * scale)
                uni(m.bias, -0.2, 0.2)
                uni(m.running_mean, -0.3, 0.3)
                uni(m.running_var, 0.5, 2.0)
                touched.update({id(m.weight), id(m.bias)})
            elif isinstance(m, nn.Linear):
                bound = math.sqrt(6.0 / m.weight.shape[1])
                uni(m.weight, -bound, bound)
                touched.add(id(m.weight))
                if m.bias is not None:
                    uni(m.bias, -0.1, 0.1)
                    touched.add(id(m.bias))
    missed = [n for n, p in model.named_parameters() if id(p) not in touched]
    if missed:
        raise RuntimeError(f"randomise_ did not cover parameters: {missed[:5]}")
    return model


def state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def seeded_input(shape: Sequence[int], seed: int) -> torch.Tensor:
    rs = np.random.RandomState(seed)
    return torch.from_numpy(rs.standard_normal(size=tuple(shape)).astype(np.float32))


# --------------------------------------------------------------------------
# ResNet backbone with Bottleneck blocks (torchvision's structure and names,
# configurable widths) -- used by the DeepLabv3+ models and the tv_* models.
# --------------------------------------------------------------------------


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision.models.ResNet without avgpool/fc, with configurable widths.

    `replace_stride_with_dilation` works as in torchvision; `multi_grid`
    multiplies the dilation of the blocks of layer4 (jfzhang95's _make_MG_unit).
    """

    def __init__(self, layers: Sequence[int], planes: Sequence[int] = (64, 128, 256, 512),
                 stem: int = 64, replace_stride_with_dilation: Sequence[bool] = (False, False, False),
                 multi_grid: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        self.inplanes = stem
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(planes[0], layers[0])
        self.layer2 = self._make_layer(planes[1], layers[1], stride=2, dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(planes[2], layers[2], stride=2, dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(planes[3], layers[3], stride=2, dilate=replace_stride_with_dilation[2],
                                       multi_grid=multi_grid)
        self.out_channels = planes[3] * Bottleneck.expansion
        self.low_level_channels = planes[0] * Bottleneck.expansion

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilate: bool = False,
                    multi_grid: Optional[Sequence[int]] = None) -> nn.Sequential:
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        grid = list(multi_grid) if multi_grid else [1] * blocks
        assert len(grid) == blocks
        first_dilation = previous_dilation * grid[0] if multi_grid else previous_dilation
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, first_dilation)]
        self.inplanes = planes * Bottleneck.expansion
        for i in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes, dilation=self.dilation * grid[i]))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


class IntermediateLayerGetter(nn.ModuleDict):
    """Same as torchvision.models._utils.IntermediateLayerGetter (kept here so
    the DeepLabv3+ models need no torchvision, e.g. in the dynamo venv)."""

    def __init__(self, model: nn.Module, return_layers: Dict[str, str]) -> None:
        return_layers = dict(return_layers)
        remaining = dict(return_layers)
        layers = OrderedDict()
        for name, module in model.named_children():
            layers[name] = module
            remaining.pop(name, None)
            if not remaining:
                break
        super().__init__(layers)
        self.return_layers = return_layers

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        out = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out


# --------------------------------------------------------------------------
# DeepLabv3+ in the style of VainF/DeepLabV3Plus-Pytorch
#   model.backbone (IntermediateLayerGetter: layer4 -> 'out', layer1 -> 'low_level')
#   model.classifier = DeepLabHeadV3Plus: .project (low level 48), .aspp, .classifier
# --------------------------------------------------------------------------


class AtrousSeparableConvolution(nn.Module):
    """VainF's depthwise (dilated) 3x3 + pointwise 1x1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                      dilation=dilation, bias=bias, groups=in_channels),
            nn.Conv2d(in_channels, out_channels, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _conv3x3(cin: int, cout: int, dilation: int, separable: bool) -> nn.Module:
    if separable:
        return AtrousSeparableConvolution(cin, cout, 3, padding=dilation, dilation=dilation, bias=False)
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False)


class ASPPConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, dilation: int, separable: bool = False) -> None:
        super().__init__(_conv3x3(in_channels, out_channels, dilation, separable),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ASPPPooling(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, align_corners: bool = False) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = super().forward(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.align_corners)


class ASPP(nn.Module):
    def __init__(self, in_channels: int, atrous_rates: Sequence[int], out_channels: int = 256,
                 separable: bool = False, align_corners: bool = False) -> None:
        super().__init__()
        modules: List[nn.Module] = [nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))]
        for rate in atrous_rates:
            modules.append(ASPPConv(in_channels, out_channels, rate, separable))
        modules.append(ASPPPooling(in_channels, out_channels, align_corners))
        self.convs = nn.ModuleList(modules)
        self.project = nn.Sequential(
            nn.Conv2d(len(modules) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = [conv(x) for conv in self.convs]
        return self.project(torch.cat(res, dim=1))


class DeepLabHeadV3Plus(nn.Module):
    def __init__(self, in_channels: int, low_level_channels: int, num_classes: int,
                 aspp_dilate: Sequence[int] = (12, 24, 36), aspp_channels: int = 256,
                 low_level_out: int = 48, decoder_channels: int = 256, separable: bool = False,
                 align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.project = nn.Sequential(
            nn.Conv2d(low_level_channels, low_level_out, 1, bias=False),
            nn.BatchNorm2d(low_level_out), nn.ReLU(inplace=True))
        self.aspp = ASPP(in_channels, aspp_dilate, aspp_channels, separable, align_corners)
        self.classifier = nn.Sequential(
            _conv3x3(low_level_out + aspp_channels, decoder_channels, 1, separable),
            nn.BatchNorm2d(decoder_channels), nn.ReLU(inplace=True),
            _conv3x3(decoder_channels, decoder_channels, 1, separable),
            nn.BatchNorm2d(decoder_channels), nn.ReLU(inplace=True),
            nn.Conv2d(decoder_channels, num_classes, 1))

    def forward(self, feature: Dict[str, torch.Tensor]) -> torch.Tensor:
        low_level_feature = self.project(feature["low_level"])
        output_feature = self.aspp(feature["out"])
        output_feature = F.interpolate(output_feature, size=low_level_feature.shape[2:], mode="bilinear",
                                       align_corners=self.align_corners)
        return self.classifier(torch.cat([low_level_feature, output_feature], dim=1))


class DeepLabV3Plus(nn.Module):
    """VainF's _SimpleSegmentationModel: backbone -> classifier -> upsample to input."""

    def __init__(self, backbone: nn.Module, classifier: nn.Module, align_corners: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = classifier
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        input_shape = x.shape[-2:]
        features = self.backbone(x)
        x = self.classifier(features)
        return F.interpolate(x, size=input_shape, mode="bilinear", align_corners=self.align_corners)


# Widths of the small fixtures: ResNet "50-like" with 1/8 of the channels.
SMALL_STEM = 8
SMALL_PLANES = (8, 16, 32, 32)     # -> layer outputs 32, 64, 128, 128 channels
SMALL_LAYERS = (1, 1, 2, 1)
SMALL_ASPP = 32
SMALL_DECODER = 32


def build_deeplabv3plus_os16(seed: int = SEED) -> nn.Module:
    torch.manual_seed(seed)
    resnet = ResNet(SMALL_LAYERS, SMALL_PLANES, SMALL_STEM, replace_stride_with_dilation=(False, False, True))
    backbone = IntermediateLayerGetter(resnet, {"layer4": "out", "layer1": "low_level"})
    head = DeepLabHeadV3Plus(resnet.out_channels, resnet.low_level_channels, NUM_CLASSES,
                             aspp_dilate=(6, 12, 18), aspp_channels=SMALL_ASPP, low_level_out=48,
                             decoder_channels=SMALL_DECODER)
    return randomise_(DeepLabV3Plus(backbone, head), seed).eval()


# --------------------------------------------------------------------------
# DeepLabv3+ in the style of jfzhang95/pytorch-deeplab-xception
#   model.backbone (ResNet returning x, low_level_feat; multi-grid layer4)
#   model.aspp: aspp1..aspp4, global_avg_pool, conv1, bn1, relu, dropout
#   model.decoder: conv1, bn1, relu (48 low level), last_conv
#   bilinear interpolation with align_corners=True everywhere
# --------------------------------------------------------------------------


class JfResNet(ResNet):
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        low_level_feat = x
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return x, low_level_feat


class _ASPPModule(nn.Module):
    def __init__(self, inplanes: int, planes: int, kernel_size: int, padding: int, dilation: int) -> None:
        super().__init__()
        self.atrous_conv = nn.Conv2d(inplanes, planes, kernel_size=kernel_size, stride=1, padding=padding,
                                     dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.atrous_conv(x)))


class JfASPP(nn.Module):
    def __init__(self, inplanes: int, planes: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.aspp1 = _ASPPModule(inplanes, planes, 1, padding=0, dilation=dilations[0])
        self.aspp2 = _ASPPModule(inplanes, planes, 3, padding=dilations[1], dilation=dilations[1])
        self.aspp3 = _ASPPModule(inplanes, planes, 3, padding=dilations[2], dilation=dilations[2])
        self.aspp4 = _ASPPModule(inplanes, planes, 3, padding=dilations[3], dilation=dilations[3])
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)),
                                             nn.Conv2d(inplanes, planes, 1, stride=1, bias=False),
                                             nn.BatchNorm2d(planes), nn.ReLU())
        self.conv1 = nn.Conv2d(planes * 5, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.aspp1(x)
        x2 = self.aspp2(x)
        x3 = self.aspp3(x)
        x4 = self.aspp4(x)
        x5 = self.global_avg_pool(x)
        x5 = F.interpolate(x5, size=x4.size()[2:], mode="bilinear", align_corners=True)
        x = torch.cat((x1, x2, x3, x4, x5), dim=1)
        x = self.relu(self.bn1(self.conv1(x)))
        return self.dropout(x)


class JfDecoder(nn.Module):
    def __init__(self, num_classes: int, low_level_inplanes: int, aspp_planes: int, planes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(low_level_inplanes, 48, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(48)
        self.relu = nn.ReLU()
        self.last_conv = nn.Sequential(
            nn.Conv2d(48 + aspp_planes, planes, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(planes), nn.ReLU(), nn.Dropout(0.5),
            nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(planes), nn.ReLU(), nn.Dropout(0.1),
            nn.Conv2d(planes, num_classes, kernel_size=1, stride=1))

    def forward(self, x: torch.Tensor, low_level_feat: torch.Tensor) -> torch.Tensor:
        low_level_feat = self.relu(self.bn1(self.conv1(low_level_feat)))
        x = F.interpolate(x, size=low_level_feat.size()[2:], mode="bilinear", align_corners=True)
        x = torch.cat((x, low_level_feat), dim=1)
        return self.last_conv(x)


class JfDeepLab(nn.Module):
    def __init__(self, output_stride: int = 8, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        if output_stride == 16:
            rsd, dilations, mg = (False, False, True), (1, 6, 12, 18), (1, 2)
        elif output_stride == 8:
            rsd, dilations, mg = (False, True, True), (1, 12, 24, 36), (1, 2)
        else:
            raise ValueError(output_stride)
        self.backbone = JfResNet((1, 1, 2, len(mg)), SMALL_PLANES, SMALL_STEM,
                                 replace_stride_with_dilation=rsd, multi_grid=mg)
        self.aspp = JfASPP(self.backbone.out_channels, SMALL_ASPP, dilations)
        self.decoder = JfDecoder(num_classes, self.backbone.low_level_channels, SMALL_ASPP, SMALL_DECODER)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x, low_level_feat = self.backbone(input)
        x = self.aspp(x)
        x = self.decoder(x, low_level_feat)
        return F.interpolate(x, size=input.size()[2:], mode="bilinear", align_corners=True)


def build_deeplabv3plus_os8_ac(seed: int = SEED + 1) -> nn.Module:
    torch.manual_seed(seed)
    return randomise_(JfDeepLab(output_stride=8), seed).eval()


# --------------------------------------------------------------------------
# Separable DeepLabv3+ on a slim MobileNetV2-style backbone (VainF's
# deeplabv3plus_mobilenet with separable_conv): fixed_padding (Pad) before each
# inverted residual, ReLU6 (Clip) in the early blocks and Hardswish in the late
# (dilated, OS16) blocks; ASPP and decoder 3x3 convs are depthwise(dilated)+pointwise.
# --------------------------------------------------------------------------


def fixed_padding(x: torch.Tensor, kernel_size: int, dilation: int) -> torch.Tensor:
    k_eff = kernel_size + (kernel_size - 1) * (dilation - 1)
    pad_total = k_eff - 1
    pad_beg = pad_total // 2
    pad_end = pad_total - pad_beg
    return F.pad(x, (pad_beg, pad_end, pad_beg, pad_end))


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1,
                 groups: int = 1, padding: int = 0, act: Callable[[], nn.Module] = lambda: nn.ReLU6(inplace=True)) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel_size, stride, padding, dilation=dilation, groups=groups,
                                   bias=False), nn.BatchNorm2d(cout), act())


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, dilation: int, expand_ratio: int,
                 act: Callable[[], nn.Module]) -> None:
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        self.dilation = dilation
        layers: List[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(inp, hidden, 1, act=act))
        layers += [ConvBNAct(hidden, hidden, 3, stride, dilation, groups=hidden, act=act),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_pad = fixed_padding(x, 3, self.dilation)
        if self.use_res_connect:
            return x + self.conv(x_pad)
        return self.conv(x_pad)


class SlimMobileNet(nn.Module):
    # (expand t, out c, stride s, activation); OS16: the last stride-2 becomes dilation 2
    CFG = [(1, 8, 1, "relu6"), (6, 12, 2, "relu6"), (6, 12, 1, "relu6"),      # /4 low level
           (6, 16, 2, "relu6"), (6, 16, 1, "relu6"),                           # /8
           (6, 24, 2, "hswish"), (6, 24, 1, "hswish"),                         # /16
           (6, 40, 2, "hswish"), (6, 40, 1, "hswish")]                         # /32 -> dilated

    def __init__(self, output_stride: int = 16) -> None:
        super().__init__()
        acts = {"relu6": lambda: nn.ReLU6(inplace=True), "hswish": lambda: nn.Hardswish(inplace=True)}
        features: List[nn.Module] = [ConvBNAct(3, 8, 3, stride=2, padding=1)]
        cin, current_stride, dilation = 8, 2, 1
        for t, c, s, a in self.CFG:
            if current_stride >= output_stride and s > 1:
                dilation *= s
                s = 1
            current_stride *= s
            features.append(InvertedResidual(cin, c, s, dilation, t, acts[a]))
            cin = c
        self.features = nn.Sequential(*features)
        self.out_channels = cin


class MobileBackbone(nn.Module):
    def __init__(self, net: SlimMobileNet) -> None:
        super().__init__()
        self.low_level_features = net.features[0:4]
        self.high_level_features = net.features[4:]

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        low = self.low_level_features(x)
        return {"low_level": low, "out": self.high_level_features(low)}


def build_deeplabv3plus_sep(seed: int = SEED + 2) -> nn.Module:
    torch.manual_seed(seed)
    net = SlimMobileNet(output_stride=16)
    backbone = MobileBackbone(net)
    head = DeepLabHeadV3Plus(net.out_channels, 12, NUM_CLASSES, aspp_dilate=(6, 12, 18),
                             aspp_channels=SMALL_ASPP, low_level_out=48, decoder_channels=SMALL_DECODER,
                             separable=True)
    return randomise_(DeepLabV3Plus(backbone, head), seed).eval()


# --------------------------------------------------------------------------
# torchvision segmentation models around slim backbones
# --------------------------------------------------------------------------


def build_tv_deeplabv3(seed: int = SEED + 3) -> nn.Module:
    from torchvision.models._utils import IntermediateLayerGetter as TvILG
    from torchvision.models.segmentation.deeplabv3 import ASPP as TvASPP, DeepLabHead, DeepLabV3
    from torchvision.models.segmentation.fcn import FCNHead

    torch.manual_seed(seed)
    # as deeplabv3_resnet50: OS8 (layer3, layer4 dilated), aux head on layer3
    resnet = ResNet(SMALL_LAYERS, SMALL_PLANES, SMALL_STEM, replace_stride_with_dilation=(False, True, True))
    backbone = TvILG(resnet, return_layers={"layer4": "out", "layer3": "aux"})
    head = DeepLabHead.__new__(DeepLabHead)  # DeepLabHead with 32 instead of 256 channels
    nn.Sequential.__init__(head, TvASPP(resnet.out_channels, [12, 24, 36], out_channels=SMALL_ASPP),
                           nn.Conv2d(SMALL_ASPP, SMALL_ASPP, 3, padding=1, bias=False),
                           nn.BatchNorm2d(SMALL_ASPP), nn.ReLU(), nn.Conv2d(SMALL_ASPP, NUM_CLASSES, 1))
    aux = FCNHead(SMALL_PLANES[2] * 4, NUM_CLASSES)
    return randomise_(DeepLabV3(backbone, head, aux), seed).eval()


def build_tv_fcn(seed: int = SEED + 4) -> nn.Module:
    from torchvision.models._utils import IntermediateLayerGetter as TvILG
    from torchvision.models.segmentation.fcn import FCN, FCNHead

    torch.manual_seed(seed)
    resnet = ResNet(SMALL_LAYERS, SMALL_PLANES, SMALL_STEM, replace_stride_with_dilation=(False, True, True))
    backbone = TvILG(resnet, return_layers={"layer4": "out", "layer3": "aux"})
    return randomise_(FCN(backbone, FCNHead(resnet.out_channels, NUM_CLASSES),
                          FCNHead(SMALL_PLANES[2] * 4, NUM_CLASSES)), seed).eval()


def build_tv_lraspp(seed: int = SEED + 5) -> nn.Module:
    from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf
    from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3

    torch.manual_seed(seed)
    # as lraspp_mobilenet_v3_large (dilated=True), width 0.25, reduced tail (as in the LR-ASPP paper)
    setting, last_channel = _mobilenet_v3_conf("mobilenet_v3_large", width_mult=0.25, reduced_tail=True, dilated=True)
    backbone = MobileNetV3(setting, last_channel)
    return randomise_(_lraspp_mobilenetv3(backbone, NUM_CLASSES), seed).eval()


# --------------------------------------------------------------------------
# Binary segmentation (salient object, matting, foreground/background): the
# network ends in one channel, [N,1,H,W], a Sigmoid's probability or a logit.
# --------------------------------------------------------------------------


class BinarySegNet(nn.Module):
    """A binary segmentation net in miniature: a conv-BN encoder at stride 4 (the last conv dilated),
    a 1x1 head to one channel, upsampled to the input. With `sigmoid` it returns the probability, as
    salient-object exports (U2-Net, BASNet) do; with `aux_classes` it returns the logit and an auxiliary
    K-class head, so that the model has two drawable outputs."""

    def __init__(self, sigmoid: bool, aux_classes: int = 0) -> None:
        super().__init__()
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.encoder = nn.Sequential(ConvBNAct(3, 8, 3, stride=2, padding=1, act=relu),
                                     ConvBNAct(8, 16, 3, stride=2, padding=1, act=relu),
                                     # no ReLU: centred features give a logit of either sign
                                     ConvBNAct(16, 16, 3, dilation=2, padding=2, act=nn.Identity))
        self.head = nn.Conv2d(16, 1, 1)
        self.sigmoid = sigmoid
        self.aux = nn.Conv2d(16, aux_classes, 1) if aux_classes else None

    def forward(self, x: torch.Tensor):
        size = x.shape[-2:]
        features = self.encoder(x)
        logit = F.interpolate(self.head(features), size=size, mode="bilinear", align_corners=False)
        if self.aux is None:
            return torch.sigmoid(logit) if self.sigmoid else logit
        return logit, F.interpolate(self.aux(features), size=size, mode="bilinear", align_corners=False)


def build_binary_sigmoid(seed: int = SEED + 6) -> nn.Module:
    torch.manual_seed(seed)
    return randomise_(BinarySegNet(sigmoid=True), seed).eval()


def build_binary_aux(seed: int = SEED + 7) -> nn.Module:
    torch.manual_seed(seed)
    return randomise_(BinarySegNet(sigmoid=False, aux_classes=3), seed).eval()


def build_big(depth: int, seed: int) -> nn.Module:
    """Full-size DeepLabv3+ on torchvision's ResNet-50 or ResNet-101, OS16 (layer4 dilated)."""
    from torchvision.models import resnet50, resnet101
    from torchvision.models._utils import IntermediateLayerGetter as TvILG

    torch.manual_seed(seed)
    resnet = {50: resnet50, 101: resnet101}[depth](weights=None, replace_stride_with_dilation=[False, False, True])
    backbone = TvILG(resnet, return_layers={"layer4": "out", "layer1": "low_level"})
    head = DeepLabHeadV3Plus(2048, 256, NUM_CLASSES, aspp_dilate=(6, 12, 18), aspp_channels=256,
                             low_level_out=48, decoder_channels=256)
    return randomise_(DeepLabV3Plus(backbone, head), seed, residual_bn_scale=0.2).eval()


def build_big_r101(seed: int = SEED + 100) -> nn.Module:
    return build_big(101, seed)


def build_big_r50(seed: int = SEED + 101) -> nn.Module:
    return build_big(50, seed)


# --------------------------------------------------------------------------
# Fixture table
# --------------------------------------------------------------------------


class Fixture:
    def __init__(self, key: str, path: str, build: Callable[[], nn.Module], shape: Tuple[int, ...],
                 opset: int, tests: str, exporter: str = "torchscript", constant_folding: bool = True,
                 training=None, outputs: Sequence[str] = ("output",), in_fixtures: bool = True,
                 dynamic: bool = True) -> None:
        self.key, self.path, self.build, self.shape, self.opset = key, path, build, shape, opset
        self.tests, self.exporter, self.constant_folding = tests, exporter, constant_folding
        self.training, self.outputs, self.in_fixtures = training, list(outputs), in_fixtures
        # False: every axis of the input and outputs fixed at `shape`, as most exports are.
        self.dynamic = dynamic

    @property
    def abspath(self) -> str:
        return os.path.join(FIXTURES_DIR if self.in_fixtures else ROOT, self.path)


def _preserve():
    return torch.onnx.TrainingMode.PRESERVE


FIXTURES: List[Fixture] = [
    Fixture("os16", "deeplabv3plus_os16.onnx", build_deeplabv3plus_os16, (1, 3, 65, 65), 17,
            "DeepLabv3+ (VainF layout), small ResNet Bottleneck backbone, OS16 (layer4 dilated), ASPP 6/12/18 + "
            "image pooling, 48-ch low-level decoder, bilinear align_corners=False; BN folded into Conv"),
    Fixture("os8_ac", "deeplabv3plus_os8_ac.onnx", build_deeplabv3plus_os8_ac, (1, 3, 65, 65), 13,
            "DeepLabv3+ (jfzhang95 layout: aspp.aspp1..4, decoder.last_conv), OS8, multi-grid layer4 "
            "(dilation 4/8), ASPP 12/24/36 (padding larger than the 9x9 map), align_corners=True"),
    Fixture("sep", "deeplabv3plus_sep.onnx", build_deeplabv3plus_sep, (1, 3, 61, 83), 17,
            "Separable DeepLabv3+ on a slim MobileNetV2-style backbone: depthwise dilated 3x3 + pointwise 1x1 "
            "in ASPP and decoder, explicit Pad (fixed_padding), ReLU6 as Clip, HardSwish, non-square input"),
    Fixture("opset11", "deeplabv3plus_opset11.onnx", build_deeplabv3plus_os16, (1, 3, 65, 65), 11,
            "The OS16 model at opset 11: Resize(X, roi, scales, sizes) where roi and scales are empty tensors "
            "from Constant nodes (Resize-11's scales is not optional, so torch 1.13 does not write '' there; "
            "the opset 13/17 files use '' for both)"),
    Fixture("bn", "deeplabv3plus_bn.onnx", build_deeplabv3plus_os16, (1, 3, 65, 65), 17,
            "The OS16 model without constant folding, TrainingMode.PRESERVE: separate BatchNormalization nodes, "
            "Shape->Gather->Unsqueeze->Concat size subgraphs for Resize, unfolded Constant nodes",
            constant_folding=False, training=_preserve),
    Fixture("static", "deeplabv3plus_static.onnx", build_deeplabv3plus_os16, (1, 3, 65, 65), 17,
            "The OS16 model exported without dynamic axes, as most exports are: input 1x3x65x65 and output "
            "1x21x65x65 fixed in the file, Resize sizes constant",
            dynamic=False),
    Fixture("tv_deeplabv3", "tv_deeplabv3.onnx", build_tv_deeplabv3, (1, 3, 65, 81), 17,
            "torchvision DeepLabV3 + DeepLabHead (ASPP 12/24/36, 32 ch) + FCNHead aux over a slim ResNet "
            "(IntermediateLayerGetter, OS8); two outputs out/aux",
            outputs=("out", "aux")),
    Fixture("tv_fcn", "tv_fcn.onnx", build_tv_fcn, (1, 3, 64, 64), 17,
            "torchvision FCN + FCNHead (+ aux FCNHead) over a slim ResNet (OS8); two outputs out/aux",
            outputs=("out", "aux")),
    Fixture("tv_lraspp", "tv_lraspp.onnx", build_tv_lraspp, (1, 3, 97, 65), 17,
            "torchvision LRASPP over MobileNetV3-Large (width 0.25, reduced tail, dilated): SE blocks (HardSigmoid, Mul), "
            "HardSwish, Sigmoid gate, GlobalAveragePool, two Resize + Add",
            outputs=("out",)),
    Fixture("binary_sigmoid", "binary_sigmoid.onnx", build_binary_sigmoid, (1, 3, 33, 33), 17,
            "Binary segmentation (salient object): three conv-BN-ReLU (stride 4, dilation 2), a 1x1 conv to one "
            "channel, bilinear upsampling to the input, Sigmoid: output `mask` [N,1,H,W], a probability",
            outputs=("mask",)),
    Fixture("binary_aux", "binary_aux.onnx", build_binary_aux, (1, 3, 33, 33), 17,
            "The binary net without the Sigmoid, plus an auxiliary head: outputs `logit` [N,1,H,W] (a logit) "
            "and `aux` [N,3,H,W] (3-class logits)",
            outputs=("logit", "aux")),
    Fixture("dynamo", os.path.join("deeplabv3plus_dynamo", "model.onnx"), build_deeplabv3plus_os16,
            (1, 3, 65, 65), 18,
            "The OS16 model (same weights) exported by the torch 2.x dynamo exporter (onnxscript optimizer: BN "
            "folded, ReduceMean for the image pooling, node scopes in metadata_props): weights in the external "
            "data file model.onnx.data, tensors under 1 KiB (biases, shape constants) inline", exporter="dynamo"),
    Fixture("big", os.path.join("big", "deeplabv3plus_r101_os16.onnx"), build_big_r101, (1, 3, 513, 513), 17,
            "Full-size DeepLabv3+ ResNet-101 OS16 (benchmark only, git-ignored)", in_fixtures=False),
    Fixture("big_r50", os.path.join("big", "deeplabv3plus_r50_os16.onnx"), build_big_r50, (1, 3, 513, 513), 17,
            "Full-size DeepLabv3+ ResNet-50 OS16 (benchmark only, git-ignored)", in_fixtures=False),
]
BY_KEY = {f.key: f for f in FIXTURES}
DEFAULT_KEYS = ["os16", "os8_ac", "sep", "opset11", "bn", "static", "tv_deeplabv3", "tv_fcn", "tv_lraspp",
                "binary_sigmoid", "binary_aux"]


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------


def _torch_outputs(model: nn.Module, x: torch.Tensor, names: Sequence[str]) -> Dict[str, np.ndarray]:
    with torch.no_grad():
        y = model(x)
    if isinstance(y, dict):
        return {n: y[n].numpy() for n in names}
    if isinstance(y, tuple):
        return {n: t.numpy() for n, t in zip(names, y)}
    return {names[0]: y.numpy()}


def export_torchscript(fx: Fixture) -> None:
    model = fx.build()
    x = seeded_input(fx.shape, 1234)
    dyn = {"input": {0: "batch", 2: "height", 3: "width"}}
    for name in fx.outputs:
        dyn[name] = {0: "batch", 2: "height", 3: "width"}
    os.makedirs(os.path.dirname(fx.abspath), exist_ok=True)
    kwargs = {}
    if fx.training is not None:
        kwargs["training"] = fx.training()
    if int(torch.__version__.split(".")[0]) >= 2:
        kwargs["dynamo"] = False
    torch.onnx.export(model, (x,), fx.abspath, export_params=True, opset_version=fx.opset,
                      do_constant_folding=fx.constant_folding, input_names=["input"], output_names=fx.outputs,
                      dynamic_axes=dyn if fx.dynamic else None, **kwargs)
    _save_ref(fx, model, x)


def export_dynamo(fx: Fixture) -> None:
    model = fx.build()
    x = seeded_input(fx.shape, 1234)
    out_dir = os.path.dirname(fx.abspath)
    if os.path.isdir(out_dir):
        for f in os.listdir(out_dir):
            os.remove(os.path.join(out_dir, f))
    os.makedirs(out_dir, exist_ok=True)
    Dim = torch.export.Dim
    dynamic_shapes = {"x": {0: Dim("batch", min=1, max=64), 2: Dim("height", min=33, max=4096),
                            3: Dim("width", min=33, max=4096)}}
    prog = torch.onnx.export(model, (x,), input_names=["input"], output_names=["output"],
                             opset_version=fx.opset, dynamo=True, external_data=True,
                             dynamic_shapes=dynamic_shapes, optimize=True)
    # drop the per-node Python stack traces (absolute paths of the exporting machine); the name-scope
    # metadata (pkg.torch.onnx.name_scopes, namespace, class_hierarchy) is kept
    for node in prog.model.graph.all_nodes():
        node.metadata_props.pop("pkg.torch.onnx.stack_trace", None)
    prog.save(fx.abspath, external_data=True)
    _save_ref(fx, model, x)


def _save_ref(fx: Fixture, model: nn.Module, x: torch.Tensor) -> None:
    os.makedirs(REFS_DIR, exist_ok=True)
    outs = _torch_outputs(model, x, fx.outputs)
    np.savez(os.path.join(REFS_DIR, fx.key + ".npz"), input=x.numpy(), **outs)
    stats = ", ".join(f"{k}: mean {v.mean():+.3f} std {v.std():.3f}" for k, v in outs.items())
    print(f"  [{fx.key}] torch {torch.__version__}, weights {state_digest(model)}, {stats}")


# --------------------------------------------------------------------------
# Checks, summary, README
# --------------------------------------------------------------------------


def _load(path: str):
    import onnx
    return onnx.load(path, load_external_data=False)


def op_counts(model) -> Counter:
    c: Counter = Counter()
    for n in model.graph.node:
        c[n.op_type] += 1
        for a in n.attribute:  # dynamo may nest graphs (If/Loop); count them too
            if a.g is not None and len(a.g.node):
                for m in a.g.node:
                    c[m.op_type] += 1
    return c


def _dims(vi) -> str:
    dims = []
    for d in vi.type.tensor_type.shape.dim:
        dims.append(d.dim_param if d.dim_param else str(d.dim_value))
    return "x".join(dims)


def check_file(fx: Fixture) -> None:
    import onnx
    from onnx import external_data_helper

    path = fx.abspath
    onnx.checker.check_model(path, full_check=True)
    model = _load(path)
    ops = op_counts(model)
    if fx.key == "bn":
        assert ops["BatchNormalization"] > 0, "bn fixture has no BatchNormalization nodes"
        assert all(ops[o] > 0 for o in ("Shape", "Gather", "Concat", "Resize")), "no Shape->Gather->Concat"
    elif fx.exporter == "torchscript" and fx.in_fixtures:
        assert ops["BatchNormalization"] == 0, f"{fx.key}: BN not folded"
    resize = [n for n in model.graph.node if n.op_type == "Resize"]
    if fx.exporter == "torchscript" and resize:
        # roi and scales must be absent: '' (opset >= 13) or, at opset 11 where `scales` is not optional,
        # an empty tensor from a Constant node (that is what torch 1.13 writes)
        consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
        for n in resize:
            assert len(n.input) == 4, list(n.input)
            for i in n.input[1:3]:
                assert i == "" or (i in consts and not consts[i].attribute[0].t.dims[0]), list(n.input)
    if fx.exporter == "dynamo":
        inits = list(model.graph.initializer)
        ext = [t for t in inits if external_data_helper.uses_external_data(t)]
        print(f"  [{fx.key}] initializers: {len(inits)}, with data_location EXTERNAL: {len(ext)}")
        assert ext, "dynamo fixture has no external initializers"
        for t in ext:
            assert t.data_location == onnx.TensorProto.EXTERNAL
        # the exporter keeps tiny tensors (biases, shape constants) inline; every weight must be external
        big_inline = [t.name for t in inits if t not in ext and np.prod(t.dims) * 4 > 1024]
        assert not big_inline, big_inline
    try:
        import onnxruntime as ort  # noqa: F401
        run_ort(fx)
    except ImportError:
        print(f"  [{fx.key}] onnx.checker OK (no onnxruntime in this python; run --verify under .venv)")


def run_ort(fx: Fixture, tol: float = 1e-3) -> bool:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(fx.abspath, so, providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    ok = True
    ref_path = os.path.join(REFS_DIR, fx.key + ".npz")
    if os.path.exists(ref_path):
        ref = np.load(ref_path)
        outs = sess.run(None, {iname: ref["input"]})
        for o, got in zip(sess.get_outputs(), outs):
            want = ref[o.name] if o.name in ref else None
            if want is None:
                continue
            diff = float(np.abs(got - want).max())
            scale = float(np.abs(want).max())
            good = diff <= tol * max(1.0, scale)
            ok &= good
            print(f"  [{fx.key}] ORT vs torch '{o.name}' {list(got.shape)}: max|diff| {diff:.2e} "
                  f"(max|ref| {scale:.2f}) {'OK' if good else 'MISMATCH'}")
    else:
        print(f"  [{fx.key}] no torch reference in big/refs (run the export first)")
    # dynamic axes: batch 2 and another height/width
    b, c, h, w = fx.shape
    x2 = seeded_input((2, c, h + 16, w + 8), 99).numpy()
    outs = sess.run(None, {iname: x2})
    shapes = [list(o.shape) for o in outs]
    good = all(s[0] == 2 for s in shapes) and all(np.isfinite(o).all() for o in outs)
    ok &= good
    print(f"  [{fx.key}] ORT dynamic input {list(x2.shape)} -> {shapes} {'OK' if good else 'BAD'}")
    return ok


def verify_all(keys: Sequence[str]) -> bool:
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__}")
    ok = True
    for k in keys:
        fx = BY_KEY[k]
        if not os.path.exists(fx.abspath):
            print(f"  [{k}] missing: {fx.abspath}")
            continue
        ok &= run_ort(fx)
    # the dynamo model must compute the same thing as the TorchScript OS16 one
    a, b = BY_KEY["os16"], BY_KEY["dynamo"]
    if os.path.exists(a.abspath) and os.path.exists(b.abspath):
        x = seeded_input((1, 3, 77, 53), 7).numpy()
        ya = ort.InferenceSession(a.abspath, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        sb = ort.InferenceSession(b.abspath, providers=["CPUExecutionProvider"])
        yb = sb.run(None, {sb.get_inputs()[0].name: x})[0]
        diff = float(np.abs(ya - yb).max())
        good = diff < 1e-3
        ok &= good
        print(f"  [dynamo vs os16] same input {list(x.shape)}: max|diff| {diff:.2e} {'OK' if good else 'MISMATCH'}")
    print("verify:", "all OK" if ok else "FAILURES")
    return ok


def fmt_size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"


def file_size(fx: Fixture) -> int:
    size = os.path.getsize(fx.abspath)
    if fx.exporter == "dynamo":
        data = fx.abspath + ".data"
        if os.path.exists(data):
            size += os.path.getsize(data)
    return size


def summary(keys: Sequence[str]) -> None:
    print("\n=== summary ===")
    for k in keys:
        fx = BY_KEY[k]
        if not os.path.exists(fx.abspath):
            print(f"{fx.path}: missing")
            continue
        m = _load(fx.abspath)
        ops = op_counts(m)
        opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
        ins = ", ".join(f"{i.name} {_dims(i)}" for i in m.graph.input)
        outs = ", ".join(f"{o.name} {_dims(o)}" for o in m.graph.output)
        extra = f" + {fmt_size(os.path.getsize(fx.abspath + '.data'))} data" if fx.exporter == "dynamo" else ""
        print(f"{os.path.relpath(fx.abspath, ROOT)}: {fmt_size(os.path.getsize(fx.abspath))}{extra}, opset {opset}, "
              f"{m.producer_name} {m.producer_version}, {len(m.graph.node)} nodes")
        print(f"  inputs: {ins}; outputs: {outs}")
        print("  ops: " + ", ".join(f"{op} {n}" for op, n in sorted(ops.items())))
    total = 0
    for root, _, files in os.walk(FIXTURES_DIR):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"test/fixtures total: {fmt_size(total)}")


README_HEAD = """# ONNX test fixtures

Generated by `tools/export_fixtures.py` -- do not edit the models by hand.
All weights are random (numpy `RandomState`, fixed seeds), including BatchNorm
weight/bias/running_mean/running_var, so outputs are arbitrary but
deterministic. No pretrained weights are involved.

Dynamic axes: every model but `deeplabv3plus_static.onnx` (all dims fixed,
as most exports have them) has one input `input` of shape `batch x 3 x height x
width` (dim_params `batch`, `height`, `width`); every output is
`batch x 21 x height x width` logits (21 classes). In the TorchScript files
the class dim of the outputs is a dim_param (`Resizeoutput_dim_1` or similar),
not 21, because torch 1.13's shape inference loses it through Resize; the
dynamo file has 21. The tv_deeplabv3 and tv_fcn models have two outputs,
`out` and `aux`, the others one (`output`, or `out` for tv_lraspp). The
binary models end otherwise: `binary_sigmoid.onnx` in one [N,1,H,W]
probability (`mask`), `binary_aux.onnx` in a [N,1,H,W] logit (`logit`) and a
3-class head (`aux`).

Bilinear Resize is `mode=linear` with `coordinate_transformation_mode`
`half_pixel` (align_corners=False) or `align_corners` (os8_ac), sizes from
Shape->Gather/Slice->Concat subgraphs. Node names carry the PyTorch module
scopes (`/backbone/layer1/layer1.0/conv1/Conv`, `/classifier/aspp/project/...`,
`/classifier/project/...` for the low-level projection, `/aspp/aspp2/...` and
`/decoder/last_conv/...` in os8_ac); the dynamo file has them in each node's
`metadata_props` (`pkg.torch.onnx.name_scopes`, `namespace`).

| file | what it tests | input shape (export) | opset | exporter | size | ops |
| --- | --- | --- | --- | --- | --- | --- |
"""

README_TAIL = """
Sizes count the external data file for the dynamo model.
`deeplabv3plus_os16_fp16.onnx` is the os16 model as a float16 model (float16
weights, input, output and activations; its shape subgraph float32), made
from it by `tools/float16_fixture.py` (onnx only).
Not here (git-ignored, for benchmarks only): `big/deeplabv3plus_r101_os16.onnx`
and `big/deeplabv3plus_r50_os16.onnx`, full-size DeepLabv3+ (torchvision
ResNet-101 or ResNet-50, OS16, ASPP 256, low level 48, 21 classes), input
1x3x513x513, opset 17, TorchScript, ~226 and ~154 MiB.

## Regenerate

From the repository root:

```sh
# 1. TorchScript-exporter fixtures (Debian python3-torch 1.13, python3-torchvision, python3-onnx)
/usr/bin/python3 tools/export_fixtures.py
# 2. dynamo-exporter fixture (torch 2.x in a venv)
python3 -m venv .venv && .venv/bin/pip install -r tools/requirements-dynamo.txt
.venv/bin/python tools/export_fixtures.py --only dynamo
# 3. onnxruntime check of all fixtures (vs. torch outputs saved in big/refs/ by 1 and 2)
.venv/bin/python tools/export_fixtures.py --verify
# benchmark models (not fixtures, git-ignored): big/deeplabv3plus_r101_os16.onnx, big/deeplabv3plus_r50_os16.onnx
/usr/bin/python3 tools/export_fixtures.py --only big,big_r50
```

Single fixtures: `--only os16,bn` (keys: %s, dynamo, big, big_r50).
The weights do not depend on the torch version, so re-exporting with another
torch gives the same numbers but possibly a different graph.
"""


def write_readme() -> None:
    rows = []
    for fx in FIXTURES:
        if not fx.in_fixtures or not os.path.exists(fx.abspath):
            continue
        m = _load(fx.abspath)
        opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
        exporter = f"{'dynamo' if fx.exporter == 'dynamo' else 'TorchScript'} (torch {m.producer_version})"
        if fx.key == "bn":
            exporter += ", do_constant_folding=False, training=PRESERVE"
        elif fx.exporter == "torchscript":
            exporter += ", constant folding"
        ops = ", ".join(sorted(op_counts(m)))
        shape = "x".join(map(str, fx.shape))
        name = fx.path.replace(os.sep, "/")
        if fx.exporter == "dynamo":
            name += " (+ model.onnx.data)"
        rows.append(f"| `{name}` | {fx.tests} | {shape} | {opset} | {exporter} | {fmt_size(file_size(fx))} | {ops} |")
    with open(os.path.join(FIXTURES_DIR, "README.md"), "w") as f:
        f.write(README_HEAD + "\n".join(rows) + "\n" + README_TAIL % ", ".join(DEFAULT_KEYS))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated keys: " + ", ".join(BY_KEY))
    ap.add_argument("--verify", action="store_true", help="onnxruntime check of all fixtures (needs onnxruntime)")
    ap.add_argument("--summary", action="store_true", help="only print the summary and rewrite the README")
    args = ap.parse_args()

    all_fixture_keys = [f.key for f in FIXTURES if f.in_fixtures]
    if args.verify:
        keys = args.only.split(",") if args.only else all_fixture_keys
        return 0 if verify_all(keys) else 1
    if args.summary:
        summary(all_fixture_keys)
        write_readme()
        return 0

    keys = args.only.split(",") if args.only else DEFAULT_KEYS
    for k in keys:
        if k not in BY_KEY:
            ap.error(f"unknown fixture key {k!r}")
    print(f"torch {torch.__version__}")
    for k in keys:
        fx = BY_KEY[k]
        print(f"exporting {fx.path} ({fx.exporter}, opset {fx.opset}, input {fx.shape})")
        if fx.exporter == "dynamo":
            export_dynamo(fx)
        else:
            export_torchscript(fx)
        check_file(fx)
        if not fx.in_fixtures:
            print(f"  {fx.path}: {fmt_size(os.path.getsize(fx.abspath))}")
    fixture_keys = [k for k in keys if BY_KEY[k].in_fixtures]
    if fixture_keys:
        summary(all_fixture_keys)
        write_readme()
    return 0


if __name__ == "__main__":
    sys.exit(main())
