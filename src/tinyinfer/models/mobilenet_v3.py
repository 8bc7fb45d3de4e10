"""MobileNet V3 (Large, Small, and the "minimalistic" variants).

Paper: Howard et al., "Searching for MobileNetV3", ICCV 2019 (arXiv:1905.02244).
Reference implementations: ``torchvision.models.mobilenet_v3_large`` / ``_small`` (names
mobilenet_v3_large, mobilenet_v3_small) and timm's ``mobilenetv3.py`` (mobilenetv3_large_100,
mobilenetv3_small_100, the 0.75 widths, and the TF ports tf_mobilenetv3_*_minimal_100),
whose module names are this graph's node names.

What the two references do differently, and so what each registered name follows:
* BN epsilon: torchvision 1e-3, timm 1e-5 (its tf_ ports 1e-3): part of the trained
  weights, so each name keeps its reference's.
* the head after pooling: torchvision a fully connected layer (classifier.0), timm a 1x1
  conv with bias on the pooled 1x1 map (conv_head). Same numbers, different weight shapes
  ((1280, 960) vs (1280, 960, 1, 1)), so each name builds its reference's form.
* SE width: torchvision _make_divisible(exp // 4, 8), timm make_divisible(exp * 0.25, 8):
  equal for every width used here.
* width multipliers: timm scales the expansion *ratio* of the scaled input (exp = t * c_in),
  torchvision the expanded width itself; they differ below width 1 (at 0.75 the first Small
  bottleneck expands to 72 in timm, 56 in torchvision). timm's rule is implemented and
  tested (mobilenetv3_large_075, ...); the torchvision names are registered at width 1.0.
"""
from __future__ import annotations

from functools import partial

from ._torchvision_layout import mobilenet_v3_keymap
from .blocks import BlockArgs, paper_block
from .builder import Style, build_mbconv_net
from .registry import ModelSpec, register

# The paper's Tables 1 and 2, one row per bottleneck, after a 3x3 stride-2 conv to 16
# channels (h-swish); the last row is the final 1x1 conv ("conv2d 1x1, NBN" rows of the
# paper come after pooling: the head, see build_mbconv_net(head=...)).
#   k = depthwise kernel, exp = expansion size, out = output channels, se = squeeze-excite,
#   nl = nonlinearity (RE = ReLU, HS = h-swish), s = stride
#      k, exp,  out,  se,   nl,  s
LARGE = [
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
    (1, None, 960, False, "HS", 1),     # conv2d 1x1 + BN
]
SMALL = [
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
    (1, None, 576, False, "HS", 1),     # conv2d 1x1 + BN
]
HEAD = {"large": 1280, "small": 1024}   # the paper's "conv2d 1x1, NBN" after pooling


def mobilenet_v3_arch(table, minimal=False):
    """Paper rows -> block arguments, one stage per run of equal output widths (timm's
    stages). The paper gives expansion *sizes*: the expansion factor is t = exp / c_in, so a
    bottleneck whose expansion size equals its input (t = 1) has no expansion conv
    (blocks.paper_block). The minimalistic variants (in the paper's results) drop SE,
    h-swish and 5x5 kernels: ReLU and 3x3 everywhere."""
    stages, c_in, last_out = [], 16, None
    for k, exp, out, se, nl, s in table:
        # None: the network's default, h-swish (ReLU in the minimalistic variants)
        act = None if minimal else {"RE": "relu", "HS": None}[nl]
        k = 3 if minimal and k == 5 else k
        if exp is None:                  # the last 1x1 conv + BN + act, no bottleneck
            block = BlockArgs("cn", repeats=1, kernel=k, stride=s, out_chs=out, act=act)
        else:
            block = paper_block(exp / c_in, out, 1, s, k, se=se and not minimal, act=act)
        if out != last_out:
            stages.append([])
        stages[-1].append(block)
        c_in, last_out = out, out
    return stages


# timm's MobileNetV3 SE: width make_divisible(exp / 4, 8), ReLU inside, hard-sigmoid gate
TIMM_SE = dict(se_rule="timm_mnv3", se_act="relu", se_gate="hsigmoid")


def mobilenet_v3(size: str, width_mult: float = 1.0, minimal: bool = False,
                 head: str = "pooled_conv", style: Style = Style(**TIMM_SE),
                 num_classes: int = 1000):
    """MobileNetV3-``size`` ("large" or "small") at width ``width_mult``, timm's scaling rules.
    timm keeps the 16-channel stem below width 0.75 (``fix_stem``) and the head width fixed."""
    table = {"large": LARGE, "small": SMALL}[size]
    return build_mbconv_net(
        mobilenet_v3_arch(table, minimal), stem_size=16, num_features=HEAD[size],
        width_mult=width_mult, act="relu" if minimal else "hswish", num_classes=num_classes,
        fix_stem=width_mult < 0.75, head_rule="fixed", head=head, style=style)


def torchvision_mobilenet_v3(size: str, num_classes: int = 1000):
    """torchvision's MobileNetV3: BN epsilon 1e-3, fully connected head, its SE rule."""
    return mobilenet_v3(size, 1.0, head="pooled_fc", num_classes=num_classes,
                        style=Style(se_rule="tv_mnv3", se_act="relu", se_gate="hsigmoid",
                                    bn_eps=1e-3))


# Both key layouts are known to every name, so a checkpoint of the other reference gets a
# precise error (the head's weight shape) instead of a list of every key.
TV_LAYOUTS = {"torchvision": mobilenet_v3_keymap, "timm": None}
TIMM_LAYOUTS = {"timm": None, "torchvision": mobilenet_v3_keymap}
PAPER = "Howard et al. 2019, Searching for MobileNetV3 (arXiv:1905.02244)"

for size in ("large", "small"):
    register(ModelSpec(
        name=f"mobilenet_v3_{size}",
        build=partial(torchvision_mobilenet_v3, size),
        paper=PAPER,
        reference=f"torchvision.models.mobilenet_v3_{size}",
        layouts=TV_LAYOUTS,
    ))
    for width in (1.0, 0.75):
        register(ModelSpec(
            name=f"mobilenetv3_{size}_{round(width * 100):03d}",
            build=partial(mobilenet_v3, size),
            paper=PAPER,
            reference=f"timm.models.mobilenetv3_{size}_{round(width * 100):03d}",
            layouts=TIMM_LAYOUTS,
            defaults={"width_mult": width},
            interpolation="bicubic",       # timm's pretrained_cfg
        ))
    # TF ports of the minimalistic variants: TF "same" padding and BN epsilon 1e-3
    register(ModelSpec(
        name=f"tf_mobilenetv3_{size}_minimal_100",
        build=partial(mobilenet_v3, size, minimal=True,
                      style=Style(**TIMM_SE, padding="same", bn_eps=1e-3)),
        paper=PAPER + " (its minimalistic models)",
        reference=f"timm.models.tf_mobilenetv3_{size}_minimal_100",
        layouts=TIMM_LAYOUTS,
        defaults={"width_mult": 1.0},
        interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    ))
