"""TinyNet A-E: EfficientNet-B0 shrunk by the "Tiny Formula".

Paper: Han et al., "Model Rubik's Cube: Twisting Resolution, Depth and Width for TinyNets",
NeurIPS 2020 (arXiv:2010.14819). Reference implementation: timm's ``tinynet_a`` ...
``tinynet_e`` (``timm.models.efficientnet._gen_tinynet``).

The rule (tinyinfer/analysis/scaling.py has it as a function): for a FLOPs budget c < 1, pick the
resolution r from a curve fitted over good small models, then depth d, then the width
w = sqrt(c / (r^2 d)) that spends the rest. The paper (and timm) give the results:
"""
from __future__ import annotations

from .builder import build_mbconv_net
from .blocks import paper_table
from .efficientnet import B0_COLUMNS, EFFICIENTNET_B0
from .registry import ModelSpec, register

#  name: resolution multiplier r (input int(224 r)), width w, depth d
#           r,    w,     d,   input
TINYNET = {
    "a": (0.86, 1.0, 1.2, 192),
    "b": (0.84, 0.75, 1.1, 188),
    "c": (0.825, 0.54, 0.85, 184),
    "d": (0.68, 0.54, 0.695, 152),
    "e": (0.475, 0.51, 0.6, 106),
}


def tinynet(width_mult: float = 1.0, depth_mult: float = 1.0, num_classes: int = 1000):
    """EfficientNet-B0's table at width w and depth d, with timm's TinyNet rules: stage depths
    round(n * d) (not ceil: small multipliers must be able to shrink a stage), the stem kept
    at 32, the head max(1280, round(1280 w)). SE and swish as in B0."""
    arch = paper_table(EFFICIENTNET_B0, B0_COLUMNS, se=True)
    return build_mbconv_net(arch, stem_size=32, num_features=1280,
                            width_mult=width_mult, depth_mult=depth_mult, act="swish",
                            num_classes=num_classes, fix_stem=True, head_rule="max",
                            depth_rounding="round")


for variant, (r, w, d, size) in TINYNET.items():
    register(ModelSpec(
        name=f"tinynet_{variant}",
        build=tinynet,
        paper="Han et al. 2020, Model Rubik's Cube / TinyNets (arXiv:2010.14819)",
        reference=f"timm.models.tinynet_{variant}",
        layouts={"timm": None},
        defaults={"width_mult": w, "depth_mult": d},
        input_size=size, resize=int(size / 0.875), interpolation="bicubic",
    ))
