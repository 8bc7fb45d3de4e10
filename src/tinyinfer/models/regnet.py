"""RegNetX and RegNetY: networks generated from a design space, not tabulated layer by layer.

Paper: Radosavovic et al., "Designing Network Design Spaces", CVPR 2020 (arXiv:2003.13678).
Reference implementations: ``torchvision.models.regnet_x_400mf`` / ``regnet_y_400mf`` /
``regnet_y_800mf`` and timm's ``regnetx_002`` .. ``regnetx_080``, ``regnety_002`` ..
``regnety_080`` (``timm.models.regnet``). The graph uses timm's module names
(s{stage}.b{block}.conv1.conv ...); torchvision's (trunk_output.block{stage}.block{stage}-{i}
.f.a.0 ...) map onto them with the key map below.

How six numbers make a network (the paper's quantized linear widths), in ``stage_plan``:
    u_j = w_0 + w_a * j                  a linear width for each block j < d
    s_j = round(log(u_j / w_0) / log(w_m))
    w_j = w_0 * w_m ** s_j               quantized to a multiple of 8
Blocks of equal width form a stage (4 stages in every model here). Every block is the
paper's X block, a ResNeXt bottleneck with bottleneck ratio b = 1: 1x1 conv, 3x3 group conv
with groups of g channels (stride 2 in a stage's first block), [Y: squeeze-excite with
ratio 1/4 of the block's input width], 1x1 conv, + shortcut (1x1 conv + BN when the shape
changes), ReLU.
"""
from __future__ import annotations

import numpy as np

from ..engine.graph import Graph
from .blocks import make_divisible
from .builder import NetBuilder
from .registry import ModelSpec, register

# The design-space parameters of the paper's RegNetX / RegNetY models (as its pycls model
# zoo, torchvision and timm list them).
#   d = depth (blocks), w_0 = initial width, w_a = slope, w_m = width multiplier,
#   g = group width, se = squeeze-excite ratio (0: RegNetX), rounding: see compatible_widths
#                      d   w_0    w_a   w_m   g    se    rounding
REGNETS = {
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16, 0.0, "torchvision"),
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8, 0.25, "torchvision"),
    "regnet_y_800mf": (14, 56, 38.84, 2.40, 16, 0.25, "torchvision"),
    "regnetx_002":    (13, 24, 36.44, 2.49, 8, 0.0, "timm"),
    "regnety_002":    (13, 24, 36.44, 2.49, 8, 0.25, "timm"),
    "regnety_004":    (16, 48, 27.89, 2.09, 8, 0.25, "timm"),
    "regnety_006":    (15, 48, 32.54, 2.32, 16, 0.25, "timm"),
    "regnety_008":    (14, 56, 38.84, 2.40, 16, 0.25, "timm"),
    "regnety_016":    (27, 48, 20.71, 2.65, 24, 0.25, "timm"),
    # the larger sizes of RegNet's comparison with EfficientNet (its Table 4 and Fig. 16)
    "regnetx_032":    (25, 88, 26.31, 2.25, 48, 0.0, "timm"),
    "regnetx_040":    (23, 96, 38.65, 2.43, 40, 0.0, "timm"),
    "regnetx_064":    (17, 184, 60.83, 2.07, 56, 0.0, "timm"),
    "regnetx_080":    (23, 80, 49.56, 2.88, 120, 0.0, "timm"),
    "regnety_032":    (21, 80, 42.63, 2.66, 24, 0.25, "timm"),
    "regnety_040":    (22, 96, 31.41, 2.24, 64, 0.25, "timm"),
    "regnety_064":    (25, 112, 33.22, 2.27, 72, 0.25, "timm"),
    "regnety_080":    (17, 192, 76.82, 2.19, 56, 0.25, "timm"),
}
STEM_WIDTH = 32
QUANTUM = 8


def block_widths(depth: int, w0: int, wa: float, wm: float, quantum: int = QUANTUM) -> list[int]:
    """The quantized width of every block. (float64 here, float32 in the references: for
    every model in REGNETS no value is within 0.006 of a rounding edge.)"""
    u = w0 + wa * np.arange(depth)
    s = np.round(np.log(u / w0) / np.log(wm))
    return [int(w) for w in np.round(w0 * np.power(wm, s) / quantum) * quantum]


def compatible_widths(width: int, group_width: int, rounding: str) -> tuple[int, int]:
    """A bottleneck width (= the stage width, b = 1) that whole groups of ``group_width``
    channels fill, and the group width (at most the width). The references round
    differently: timm to the nearest multiple (round half to even), torchvision with
    make_divisible (nearest, half up, never 10% below), e.g. 392 with g = 16 -> 384 (timm),
    400 (torchvision): hence timm's separate regnetx_004_tv."""
    g = min(group_width, width)
    if rounding == "torchvision":
        return make_divisible(width, g), g
    return int(round(width / g) * g), g


def stage_plan(depth, w0, wa, wm, group_width, rounding) -> list[tuple[int, int, int]]:
    """[(width, blocks, group width)] per stage."""
    widths, counts = np.unique(block_widths(depth, w0, wa, wm), return_counts=True)
    plan = []
    for w, n in zip(widths, counts):
        w, g = compatible_widths(int(w), group_width, rounding)
        plan.append((w, int(n), g))
    return plan


def x_block(b: NetBuilder, x: str, prefix: str, width: int, group_width: int, stride: int,
            se_ratio: float) -> str:
    in_ch = b.channels[x]
    y = b.conv_bn_act(x, f"{prefix}.conv1.conv", f"{prefix}.conv1.bn", width, 1, act="relu")
    y = b.conv_bn_act(y, f"{prefix}.conv2.conv", f"{prefix}.conv2.bn", width, 3, stride,
                      groups=width // group_width, act="relu")
    if se_ratio:   # Y block: SE on the group conv's output, reduced relative to the INPUT width
        y = b.se(f"{prefix}.se", y, int(round(in_ch * se_ratio)), act="relu", gate="sigmoid",
                 reduce="fc1", expand="fc2")
    y = b.conv_bn_act(y, f"{prefix}.conv3.conv", f"{prefix}.conv3.bn", width, 1)
    shortcut = x
    if stride != 1 or in_ch != width:
        shortcut = b.conv_bn_act(x, f"{prefix}.downsample.conv", f"{prefix}.downsample.bn",
                                 width, 1, stride)
    # ReLU after the add: its own node (the conv epilogue adds the residual after its act)
    return b.act(f"{prefix}.act3", b.add(f"{prefix}.add", y, shortcut), "relu")


def regnet(depth, w0, wa, wm, group_width, se_ratio, rounding, num_classes: int = 1000) -> Graph:
    b = NetBuilder()
    x = b.conv_bn_act(Graph.INPUT, "stem.conv", "stem.bn", STEM_WIDTH, 3, 2, act="relu")
    for s, (width, n, g) in enumerate(stage_plan(depth, w0, wa, wm, group_width, rounding)):
        for i in range(n):
            x = x_block(b, x, f"s{s + 1}.b{i + 1}", width, g, 2 if i == 0 else 1, se_ratio)
    x = b.global_pool("head.global_pool", x)
    b.linear("head.fc", x, num_classes)
    return b.graph


# torchvision's module names for each of timm's, inside one block
_TV_BLOCK = {"conv1.conv": "f.a.0", "conv1.bn": "f.a.1", "conv2.conv": "f.b.0",
             "conv2.bn": "f.b.1", "se.fc1": "f.se.fc1", "se.fc2": "f.se.fc2",
             "conv3.conv": "f.c.0", "conv3.bn": "f.c.1", "downsample.conv": "proj.0",
             "downsample.bn": "proj.1"}


def torchvision_keymap(graph: Graph) -> dict[str, str]:
    """torchvision key -> graph key: stem.0/1 = stem.conv/bn, fc = head.fc, and block
    trunk_output.block{s}.block{s}-{i} = s{s}.b{i+1}, module by module as in _TV_BLOCK."""
    keymap = {}
    for key in graph.expected_params():
        module, param = key.rsplit(".", 1)
        outside_blocks = {"stem.conv": "stem.0", "stem.bn": "stem.1", "head.fc": "fc"}
        if module in outside_blocks:
            tv = outside_blocks[module]
        else:
            stage, block, inner = module.split(".", 2)
            s, i = stage[1:], int(block[1:]) - 1
            tv = f"trunk_output.block{s}.block{s}-{i}.{_TV_BLOCK[inner]}"
        keymap[f"{tv}.{param}"] = key
    return keymap


def _builder(params):
    def build(num_classes: int = 1000) -> Graph:
        return regnet(*params, num_classes=num_classes)
    build.__doc__ = "RegNet with (d, w_0, w_a, w_m, g, se, rounding) = %r" % (params,)
    return build


for _name, _params in REGNETS.items():
    _tv = _params[-1] == "torchvision"
    register(ModelSpec(
        name=_name,
        build=_builder(_params),
        paper="Radosavovic et al. 2020, Designing Network Design Spaces (arXiv:2003.13678)",
        reference=f"torchvision.models.{_name}" if _tv else f"timm.models.{_name}",
        # the reference's own layout first (the order `tinyinfer list` shows)
        layouts={"torchvision": torchvision_keymap, "timm": None} if _tv else
                {"timm": None, "torchvision": torchvision_keymap},
        # timm's pretrained_cfg for these: bicubic, crop_pct 0.875
        interpolation="bilinear" if _tv else "bicubic",
    ))
