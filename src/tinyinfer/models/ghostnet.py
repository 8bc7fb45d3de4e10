"""GhostNet (v1).

Paper: Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020
(arXiv:1911.11907). Reference implementation: timm's ``ghostnet_050`` / ``ghostnet_100`` /
``ghostnet_130`` (``timm.models.ghostnet``, GhostModule "original" = v1; timm's
ghostnetv2/v3 are other networks), whose module names are the graph's node names.

A Ghost module makes half of its output channels with an ordinary 1x1 conv ("primary"),
and the other half from those by a cheap 3x3 depthwise conv ("ghost" feature maps), then
concatenates the two (and drops any channel past the requested count). A 1x1 conv to n
channels costs n*m MACs per pixel; the Ghost module n/2*m + n/2*9: about half for m >> 9.
The Ghost bottleneck is MobileNetV3's inverted residual with its 1x1 convs replaced by
Ghost modules: expand (ReLU), [3x3 depthwise stride 2], [SE], project (linear), + shortcut.
"""
from __future__ import annotations

import math

from ..engine.graph import Graph
from .blocks import make_divisible
from .builder import NetBuilder
from .registry import ModelSpec, register

# The paper's architecture table ("Overall architecture of GhostNet"; timm's cfgs), after
# a 3x3 stride-2 conv to 16 channels. One inner list = one stage of timm's ``blocks``; one
# row = one Ghost bottleneck.
#   k = depthwise kernel (of the stride-2 conv and the shortcut), exp = expansion channels,
#   c = output channels, se = squeeze-excite ratio (of exp), s = stride
#      k  exp    c    se  s
GHOSTNET = [
    [(3,  16,  16, 0,    1)],
    [(3,  48,  24, 0,    2)],
    [(3,  72,  24, 0,    1)],
    [(5,  72,  40, 0.25, 2)],
    [(5, 120,  40, 0.25, 1)],
    [(3, 240,  80, 0,    2)],
    [(3, 200,  80, 0,    1),
     (3, 184,  80, 0,    1),
     (3, 184,  80, 0,    1),
     (3, 480, 112, 0.25, 1),
     (3, 672, 112, 0.25, 1)],
    [(5, 672, 160, 0.25, 2)],
    [(5, 960, 160, 0,    1),
     (5, 960, 160, 0.25, 1),
     (5, 960, 160, 0,    1),
     (5, 960, 160, 0.25, 1)],
]
# then a 1x1 conv to 960 (x width), global pool, a 1x1 conv to 1280 with ReLU, classifier
HEAD_FEATURES = 1280


def ghost_module(b: NetBuilder, x: str, prefix: str, out_ch: int, relu: bool) -> str:
    """primary 1x1 conv to ceil(out/2) channels, cheap 3x3 depthwise conv of those, concat
    (ratio s = 2 and d = 3 as in all of the paper's ImageNet models)."""
    act = "relu" if relu else None
    init = math.ceil(out_ch / 2)
    primary = b.conv_bn_act(x, f"{prefix}.primary_conv.0", f"{prefix}.primary_conv.1", init, 1,
                            act=act)
    cheap = b.conv_bn_act(primary, f"{prefix}.cheap_operation.0", f"{prefix}.cheap_operation.1",
                          init, 3, groups=init, act=act)
    y = b.concat(f"{prefix}.cat", [primary, cheap])
    return y if 2 * init == out_ch else b.slice(f"{prefix}.slice", y, 0, out_ch)


def ghost_bottleneck(b: NetBuilder, x: str, prefix: str, k: int, mid: int, out_ch: int,
                     se: float, stride: int) -> str:
    in_ch = b.channels[x]
    y = ghost_module(b, x, f"{prefix}.ghost1", mid, relu=True)
    if stride > 1:
        y = b.conv_bn_act(y, f"{prefix}.conv_dw", f"{prefix}.bn_dw", mid, k, stride, groups=mid)
    if se:   # timm's SqueezeExcite: channels rounded to a multiple of 4, hard-sigmoid gate
        y = b.se(f"{prefix}.se", y, make_divisible(mid * se, 4), act="relu", gate="hsigmoid")
    y = ghost_module(b, y, f"{prefix}.ghost2", out_ch, relu=False)
    shortcut = x
    if in_ch != out_ch or stride > 1:    # depthwise k x k (stride) + BN, 1x1 + BN
        shortcut = b.conv_bn_act(x, f"{prefix}.shortcut.0", f"{prefix}.shortcut.1", in_ch, k,
                                 stride, groups=in_ch)
        shortcut = b.conv_bn_act(shortcut, f"{prefix}.shortcut.2", f"{prefix}.shortcut.3",
                                 out_ch, 1)
    return b.add(f"{prefix}.add", y, shortcut)


def ghostnet(width: float = 1.0, num_classes: int = 1000) -> Graph:
    """GhostNet at width multiplier ``width`` (channels rounded to multiples of 4)."""
    ch = lambda c: make_divisible(c * width, 4)
    b = NetBuilder()
    x = b.conv_bn_act(Graph.INPUT, "conv_stem", "bn1", ch(16), 3, 2, act="relu")
    for s, stage in enumerate(GHOSTNET):
        for i, (k, exp, c, se, stride) in enumerate(stage):
            x = ghost_bottleneck(b, x, f"blocks.{s}.{i}", k, ch(exp), ch(c), se, stride)
    last = len(GHOSTNET)
    x = b.conv_bn_act(x, f"blocks.{last}.0.conv", f"blocks.{last}.0.bn1", ch(960), 1, act="relu")
    # the head conv runs on the pooled 1x1 map (timm keeps it a 1x1 conv, with bias)
    x = b.adaptive_pool("global_pool", x, (1, 1))
    x = b.act("act2", b.conv("conv_head", x, HEAD_FEATURES, 1, bias=True), "relu")
    x = b.flatten("flatten", x, HEAD_FEATURES)
    b.linear("classifier", x, num_classes)
    return b.graph


for _name, _width in (("ghostnet_050", 0.5), ("ghostnet_100", 1.0), ("ghostnet_130", 1.3)):
    register(ModelSpec(
        name=_name,
        build=ghostnet,
        paper="Han et al. 2020, GhostNet: More Features from Cheap Operations (arXiv:1911.11907)",
        reference=f"timm.models.{_name}",
        layouts={"timm": None},
        defaults={"width": _width},
        interpolation="bicubic",   # timm's pretrained_cfg: bicubic, crop_pct 0.875
    ))
