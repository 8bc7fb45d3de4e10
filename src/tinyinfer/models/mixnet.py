"""MixNet S / M / L: MBConv blocks whose depthwise convs mix kernel sizes (MixConv).

Paper: Tan & Le, "MixConv: Mixed Depthwise Convolutional Kernels", BMVC 2019
(arXiv:1907.09595). Reference implementation: timm's ``mixnet_s``, ``mixnet_m``,
``mixnet_l`` (``timm.models.efficientnet._gen_mixnet_s`` / ``_m``), from the TF reference
(tensorflow/tpu models/official/mnasnet/mixnet).

A MixConv splits its channels into groups (blocks.split_channels: equal parts, remainder to
the first), gives each group its own kernel size, and concatenates: the graph holds slice,
conv and concat nodes, so each group's conv is counted with its own kernel.
"""
from __future__ import annotations

from functools import partial

from .builder import build_mbconv_net
from .registry import ModelSpec, register

# The paper's MixNet-S and -M architecture figures in the block grammar of blocks.py, one stage per line
# (the stem is a 3x3 stride-2 conv; the head a 1x1 conv to 1536, pooling, FC). k3.5.7 =
# MixConv with kernels 3, 5, 7; a1.1 / p1.1 = the expansion / projection 1x1 convs split in
# two groups; se = squeeze-excite ratio of the input channels; nsw = swish (default ReLU).
MIXNET_S = [
    ["ds_r1_k3_s1_e1_c16"],
    ["ir_r1_k3_a1.1_p1.1_s2_e6_c24", "ir_r1_k3_a1.1_p1.1_s1_e3_c24"],
    ["ir_r1_k3.5.7_s2_e6_c40_se0.5_nsw", "ir_r3_k3.5_a1.1_p1.1_s1_e6_c40_se0.5_nsw"],
    ["ir_r1_k3.5.7_p1.1_s2_e6_c80_se0.25_nsw", "ir_r2_k3.5_p1.1_s1_e6_c80_se0.25_nsw"],
    ["ir_r1_k3.5.7_a1.1_p1.1_s1_e6_c120_se0.5_nsw",
     "ir_r2_k3.5.7.9_a1.1_p1.1_s1_e3_c120_se0.5_nsw"],
    ["ir_r1_k3.5.7.9.11_s2_e6_c200_se0.5_nsw", "ir_r2_k3.5.7.9_p1.1_s1_e6_c200_se0.5_nsw"],
]
MIXNET_M = [
    ["ds_r1_k3_s1_e1_c24"],
    ["ir_r1_k3.5.7_a1.1_p1.1_s2_e6_c32", "ir_r1_k3_a1.1_p1.1_s1_e3_c32"],
    ["ir_r1_k3.5.7.9_s2_e6_c40_se0.5_nsw", "ir_r3_k3.5_a1.1_p1.1_s1_e6_c40_se0.5_nsw"],
    ["ir_r1_k3.5.7_s2_e6_c80_se0.25_nsw", "ir_r3_k3.5.7.9_a1.1_p1.1_s1_e6_c80_se0.25_nsw"],
    ["ir_r1_k3_s1_e6_c120_se0.5_nsw", "ir_r3_k3.5.7.9_a1.1_p1.1_s1_e3_c120_se0.5_nsw"],
    ["ir_r1_k3.5.7.9_s2_e6_c200_se0.5_nsw", "ir_r3_k3.5.7.9_p1.1_s1_e6_c200_se0.5_nsw"],
]


def mixnet(arch, stem_size: int, width_mult: float = 1.0, num_classes: int = 1000):
    """ReLU by default, swish where the table says; SE squeezes to round(ratio * c_in) with
    the block's activation and a sigmoid gate (timm's EfficientNet rule); head fixed at 1536.
    MixNet-L is MixNet-M at width 1.3."""
    return build_mbconv_net(arch, stem_size=stem_size, num_features=1536, width_mult=width_mult,
                            act="relu", num_classes=num_classes, head_rule="fixed",
                            depth_rounding="round")


PAPER = "Tan & Le 2019, MixConv (arXiv:1907.09595)"
for name, arch, stem, width in (("mixnet_s", MIXNET_S, 16, 1.0), ("mixnet_m", MIXNET_M, 24, 1.0),
                                ("mixnet_l", MIXNET_M, 24, 1.3)):
    register(ModelSpec(
        name=name,
        build=partial(mixnet, arch, stem),
        paper=PAPER,
        reference=f"timm.models.{name}",
        layouts={"timm": None},
        defaults={"width_mult": width},
        interpolation="bicubic",
    ))
