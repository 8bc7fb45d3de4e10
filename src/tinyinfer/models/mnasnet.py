"""MnasNet: the B1 network (torchvision's mnasnet*) and A1 with squeeze-excite (timm's
semnasnet_100).

Paper: Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile", CVPR 2019
(arXiv:1807.11626). Reference implementations: ``torchvision.models.mnasnet0_5`` ...
``mnasnet1_3`` (MnasNet-B1 at depth multipliers 0.5 .. 1.3; timm's mnasnet_100 checkpoints
are the same network under timm's module names, this graph's, and load into mnasnet1_0),
and timm's ``semnasnet_100`` (MnasNet-A1, the paper's Figure 7(a), with SE).

The paper calls its width multiplier the "depth multiplier" (its scaling figure: "depth
multiplier = 0.35, 0.5, 0.75, 1.0, 1.4", as in MobileNet's slim code). Channels round with
make_divisible(c * alpha, 8) (torchvision's _round_to_multiple_of is the same rule); the
1280-wide head is not scaled.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial

from ._torchvision_layout import mnasnet_keymap
from .blocks import paper_table
from .builder import Style, build_mbconv_net
from .registry import ModelSpec, register

# After a 3x3 stride-2 conv to 32 channels; then a 1x1 conv to 1280, pooling and FC.
#   t = expansion ("MBConv6"; t = 1 is the paper's "SepConv", depthwise separable),
#   k = depthwise kernel, c = output channels, n = layers, s = stride of the first layer,
#   se = squeeze-excite with ratio 0.25
# MnasNet-B1 (the TF reference's mnasnet_b1; no SE)
#        t, k,   c, n, s,    se
MNASNET_B1 = [
    (1, 3, 16, 1, 1, False),
    (3, 3, 24, 3, 2, False),
    (3, 5, 40, 3, 2, False),
    (6, 5, 80, 3, 2, False),
    (6, 3, 96, 2, 1, False),
    (6, 5, 192, 4, 2, False),
    (6, 3, 320, 1, 1, False),
]
# MnasNet-A1 (paper Figure 7(a))
MNASNET_A1 = [
    (1, 3, 16, 1, 1, False),
    (6, 3, 24, 2, 2, False),
    (3, 5, 40, 3, 2, True),
    (6, 3, 80, 4, 2, False),
    (6, 3, 112, 2, 1, True),
    (6, 5, 160, 3, 2, True),
    (6, 3, 320, 1, 1, False),
]


def mnasnet_arch(table):
    """The table as block arguments. The first (SepConv) and last layers never get a
    shortcut in the TF reference ("noskip"; their shapes never allow one at these widths
    anyway)."""
    arch = paper_table(table, "t k c n s se")
    for i in (0, -1):
        arch[i] = [replace(block, noskip=True) for block in arch[i]]
    return arch


def mnasnet(table, width_mult: float = 1.0, num_classes: int = 1000):
    """MnasNet with ReLU; SE (A1 only) squeezes to round(0.25 * c_in), ReLU, sigmoid gate."""
    return build_mbconv_net(mnasnet_arch(table), stem_size=32, num_features=1280,
                            width_mult=width_mult, act="relu", num_classes=num_classes,
                            head_rule="fixed", style=Style(se_rule="timm_effnet"))


PAPER = "Tan et al. 2019, MnasNet (arXiv:1807.11626)"

for alpha in ("0_5", "0_75", "1_0", "1_3"):
    register(ModelSpec(
        name=f"mnasnet{alpha}",
        build=partial(mnasnet, MNASNET_B1),
        paper=PAPER + ", MnasNet-B1",
        reference=f"torchvision.models.mnasnet{alpha}",
        layouts={"torchvision": mnasnet_keymap, "timm": None},
        defaults={"width_mult": float(alpha.replace("_", "."))},
    ))

register(ModelSpec(
    name="semnasnet_100",
    build=partial(mnasnet, MNASNET_A1),
    paper=PAPER + ", MnasNet-A1 (Figure 7(a))",
    reference="timm.models.semnasnet_100",
    layouts={"timm": None},
    defaults={"width_mult": 1.0},
    interpolation="bicubic",
))
