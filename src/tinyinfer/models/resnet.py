"""ResNet, and ResNet with squeeze-and-excitation (SE-ResNet).

Papers: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
(arXiv:1512.03385); Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018
(arXiv:1709.01507). Reference implementations: ``torchvision.models.resnet18`` /
``resnet50`` and timm's ``seresnet50`` (``timm.models.resnet``), which share module names
(conv1, bn1, layer{1..4}.{i}.conv1 ..., downsample.0/1, fc): those names are the graph's,
so both load as the identity layout. timm's ``legacy_seresnet18`` / ``legacy_seresnet34``
(``timm.models.senet``: Cadene's port of the SENet authors' Caffe models, plus a basic block
for depths 18 and 34) name and build a few things differently (``LEGACY_SENET`` below); the
graph then takes their names.

Both references are "ResNet v1.5": a bottleneck block downsamples in its 3x3 conv, not in
its first 1x1 conv as the paper's Table 1 does (same counts at stride 1, ~0.2 GMACs more
for ResNet-50 than the paper's 3.8 G).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..engine.graph import Graph
from .blocks import make_divisible
from .builder import NetBuilder
from .registry import ModelSpec, register

# The paper's Table 1: after a 7x7 stride-2 conv to 64 channels and a 3x3 stride-2 max
# pool, four stages (conv2_x .. conv5_x) of residual blocks; each stage's first block
# downsamples by 2 (except conv2_x, which follows the pool); then average pool and FC.
#   block = "basic" (3x3, 3x3) or "bottleneck" (1x1, 3x3, 1x1 x4 wide)
#   n = blocks per stage; the stage widths are 64, 128, 256, 512 in every variant
#                block         n per stage
RESNETS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = {"basic": 1, "bottleneck": 4}   # block output channels / stage width


def se_channels(channels: int) -> int:
    """timm's SEModule reduction: channels / 16 to the nearest multiple of 8 (timm passes
    round_limit=0: no 10% rule). Exactly C/16 for every ResNet width."""
    return make_divisible(channels / 16, 8, round_limit=0.0)


def legacy_se_channels(channels: int) -> int:
    """The SENet authors' reduction: channels // 16, no rounding (4 for a 64-channel block,
    where timm's SEModule rounds up to 8)."""
    return channels // 16


@dataclass(frozen=True)
class Flavour:
    """The module names of one reference codebase, and the few places its network differs."""
    stem_conv: str
    stem_bn: str
    pool: str
    pool_padding: int
    pool_ceil_mode: bool
    se_module: str
    se_channels: Callable[[int], int]
    basic_relu_before_se: bool     # a basic block's second conv ends in ReLU, before SE
    classifier: str


TORCHVISION = Flavour(stem_conv="conv1", stem_bn="bn1", pool="maxpool", pool_padding=1,
                      pool_ceil_mode=False, se_module="se", se_channels=se_channels,
                      basic_relu_before_se=False, classifier="fc")
# Caffe's max pool rounds up instead of padding (same 56x56 at 224, windows shifted by one
# pixel), and timm.models.senet's basic block puts a ReLU between its last BN and the SE.
LEGACY_SENET = Flavour(stem_conv="layer0.conv1", stem_bn="layer0.bn1", pool="pool0",
                       pool_padding=0, pool_ceil_mode=True, se_module="se_module",
                       se_channels=legacy_se_channels, basic_relu_before_se=True,
                       classifier="last_linear")


def residual_block(b: NetBuilder, x: str, prefix: str, kind: str, width: int, stride: int,
                   se: bool = False, flavour: Flavour = TORCHVISION) -> str:
    """One block: relu(F(x) + shortcut(x)), F = the block's convs [+ SE on F's output]."""
    out_ch = width * EXPANSION[kind]
    if kind == "basic":
        y = b.conv_bn_act(x, f"{prefix}.conv1", f"{prefix}.bn1", width, 3, stride, act="relu")
        relu = se and flavour.basic_relu_before_se
        y = b.conv_bn_act(y, f"{prefix}.conv2", f"{prefix}.bn2", out_ch, 3,
                          act="relu" if relu else None)
    else:
        y = b.conv_bn_act(x, f"{prefix}.conv1", f"{prefix}.bn1", width, 1, act="relu")
        y = b.conv_bn_act(y, f"{prefix}.conv2", f"{prefix}.bn2", width, 3, stride, act="relu")
        y = b.conv_bn_act(y, f"{prefix}.conv3", f"{prefix}.bn3", out_ch, 1)
    if se:
        y = b.se(f"{prefix}.{flavour.se_module}", y, flavour.se_channels(out_ch), act="relu",
                 gate="sigmoid", reduce="fc1", expand="fc2")
    shortcut = x
    if stride != 1 or b.channels[x] != out_ch:   # projection shortcut (the paper's option B)
        shortcut = b.conv_bn_act(x, f"{prefix}.downsample.0", f"{prefix}.downsample.1",
                                 out_ch, 1, stride)
    # The ReLU comes after the add, so it stays its own node: the conv epilogue (see
    # passes.py) adds a residual only after its activation.
    return b.act(f"{prefix}.relu", b.add(f"{prefix}.add", y, shortcut), "relu")


def resnet(kind: str, depths, se: bool = False, num_classes: int = 1000,
           flavour: Flavour = TORCHVISION) -> Graph:
    b = NetBuilder()
    f = flavour
    x = b.conv_bn_act(Graph.INPUT, f.stem_conv, f.stem_bn, 64, 7, 2, act="relu")
    x = b.pool(f.pool, x, "max_pool2d", kernel=3, stride=2, padding=f.pool_padding,
               ceil_mode=f.pool_ceil_mode)
    for s, (width, n) in enumerate(zip(STAGE_WIDTHS, depths)):
        for i in range(n):
            stride = 2 if i == 0 and s > 0 else 1
            x = residual_block(b, x, f"layer{s + 1}.{i}", kind, width, stride, se, f)
    x = b.global_pool("avgpool", x)
    b.linear(f.classifier, x, num_classes)
    return b.graph


def _builder(name: str, se: bool = False, flavour: Flavour = TORCHVISION):
    kind, depths = RESNETS[name]

    def build(num_classes: int = 1000) -> Graph:
        return resnet(kind, depths, se, num_classes, flavour)
    build.__doc__ = f"{name}: {kind} blocks, {depths} per stage" + (", with SE" if se else "")
    return build


_RESNET_PAPER = "He et al. 2016, Deep Residual Learning (arXiv:1512.03385)"
_SENET_PAPER = "Hu et al. 2018, Squeeze-and-Excitation Networks (arXiv:1709.01507)"
for _name in ("resnet18", "resnet50"):
    register(ModelSpec(
        name=_name,
        build=_builder(_name),
        paper=_RESNET_PAPER,
        reference=f"torchvision.models.{_name}",
        layouts={"torchvision": None},   # timm's resnet18/50 use the same keys
    ))

register(ModelSpec(
    name="seresnet50",
    build=_builder("resnet50", se=True),
    paper=f"{_SENET_PAPER}, on {_RESNET_PAPER}",
    reference="timm.models.seresnet50",
    layouts={"timm": None},
    # timm's pretrained_cfg for seresnet50.ra2_in1k: bicubic, crop_pct 0.875 at 224
    interpolation="bicubic",
))

# timm's pretrained_cfg of each (crop_pct 0.875 at 224, i.e. resize 256): interpolation
for _depth, _interpolation in ((18, "bicubic"), (34, "bilinear")):
    register(ModelSpec(
        name=f"legacy_seresnet{_depth}",
        build=_builder(f"resnet{_depth}", se=True, flavour=LEGACY_SENET),
        paper=f"{_SENET_PAPER}, on {_RESNET_PAPER}",
        reference=f"timm.models.legacy_seresnet{_depth}",
        layouts={"timm": None},
        interpolation=_interpolation,
    ))
