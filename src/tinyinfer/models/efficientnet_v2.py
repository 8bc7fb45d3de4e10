"""EfficientNetV2-S, whose early stages use Fused-MBConv.

Paper: Tan & Le, "EfficientNetV2: Smaller Models and Faster Training", ICML 2021
(arXiv:2104.00298). Reference implementation: ``torchvision.models.efficientnet_v2_s``
(name efficientnet_v2_s); timm's efficientnetv2_s checkpoints are the same network under
timm's module names (this graph's) and load into it too.

Fused-MBConv replaces MBConv's 1x1 expansion + depthwise kxk by one regular kxk conv: more
multiply-adds, but dense convs that accelerators (and our im2col GEMM) run far better than
depthwise ones on small early-stage channel counts.
"""
from __future__ import annotations

from ._torchvision_layout import efficientnet_keymap
from .blocks import paper_table
from .builder import Style, build_mbconv_net
from .registry import ModelSpec, register

# The paper's Table 4 (EfficientNetV2-S), after stage 0 (Conv3x3, stride 2, 24 channels);
# then stage 7: Conv1x1 to 1280, pooling, FC. SE ratio 0.25 of the input channels.
#   op = "fused" (Fused-MBConv) or "mb" (MBConv), t = expansion, k = kernel,
#   c = channels, n = layers, s = stride of the first layer, se = squeeze-excite
#        op,    t, k,   c,  n, s,   se
EFFICIENTNET_V2_S = [
    ("fused", 1, 3, 24, 2, 1, False),
    ("fused", 4, 3, 48, 4, 2, False),
    ("fused", 4, 3, 64, 4, 2, False),
    ("mb", 4, 3, 128, 6, 2, True),
    ("mb", 6, 3, 160, 9, 1, True),
    ("mb", 6, 3, 256, 15, 2, True),
]


def efficientnet_v2_s(width_mult: float = 1.0, depth_mult: float = 1.0, num_classes: int = 1000):
    """SiLU (swish) everywhere; torchvision's BN epsilon 1e-3 and SE rule max(1, c_in // 4)."""
    # a Fused-MBConv with t = 1 is a single kxk conv with a shortcut (blocks.paper_block)
    arch = paper_table(EFFICIENTNET_V2_S, "op t k c n s se")
    return build_mbconv_net(arch, stem_size=24, num_features=1280,
                            width_mult=width_mult, depth_mult=depth_mult, act="swish",
                            num_classes=num_classes, head_rule="scaled",
                            style=Style(se_rule="tv_effnet", bn_eps=1e-3))


register(ModelSpec(
    name="efficientnet_v2_s",
    build=efficientnet_v2_s,
    paper="Tan & Le 2021, EfficientNetV2 (arXiv:2104.00298)",
    reference="torchvision.models.efficientnet_v2_s",
    layouts={"torchvision": efficientnet_keymap, "timm": None},
    defaults={"width_mult": 1.0, "depth_mult": 1.0},
    input_size=384, resize=384,      # torchvision's IMAGENET1K_V1 transforms
))
