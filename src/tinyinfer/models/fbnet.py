"""FBNet-C.

Paper: Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural
Architecture Search", CVPR 2019 (arXiv:1812.03443). Reference implementation: timm's
``fbnetc_100`` (``timm.models.efficientnet._gen_fbnetc``), derived from the paper's
architecture figure.
"""
from __future__ import annotations

from .builder import Style, build_mbconv_net
from .registry import ModelSpec, register

# The paper's FBNet-C, after a 3x3 stride-2 conv to 16 channels; then a 1x1 conv
# to 1984, pooling and FC. Every searched block is an MBConv ("k3_e6" = kernel 3, expansion
# 6); the paper's "skip" blocks are gone (absent rows). One stage per output width.
#   t = expansion, k = depthwise kernel, c = output channels, n = layers, s = stride
#      t, k,   c, n, s
FBNET_C = [
    [(1, 3, 16, 1, 1)],
    [(6, 3, 24, 1, 2), (1, 3, 24, 2, 1)],
    [(6, 5, 32, 1, 2), (3, 5, 32, 1, 1), (6, 5, 32, 1, 1), (6, 3, 32, 1, 1)],
    [(6, 5, 64, 1, 2), (3, 5, 64, 1, 1), (6, 5, 64, 2, 1)],
    [(6, 5, 112, 3, 1), (3, 5, 112, 1, 1)],
    [(6, 5, 184, 4, 2)],
    [(6, 3, 352, 1, 1)],
]


def fbnet_c(width_mult: float = 1.0, bn_eps: float = 1e-5, num_classes: int = 1000):
    """ReLU, no SE; even t = 1 rows keep their 1x1 expansion conv (timm's "ir ... e1").

    BN epsilon 1e-5, as ``timm.create_model("fbnetc_100")`` builds it. timm's published
    checkpoint (fbnetc_100-c345b898.pth) was trained with 1e-3, and timm switches to 1e-3
    only when it loads that file itself (``pretrained=True``): load that checkpoint with
    ``tinyinfer.load("fbnetc_100", weights=..., bn_eps=1e-3)``."""
    arch = [[f"ir_r{n}_k{k}_s{s}_e{t}_c{c}" for t, k, c, n, s in stage] for stage in FBNET_C]
    return build_mbconv_net(arch, stem_size=16, num_features=1984, width_mult=width_mult,
                            act="relu", num_classes=num_classes, head_rule="fixed",
                            style=Style(bn_eps=bn_eps))


register(ModelSpec(
    name="fbnetc_100",
    build=fbnet_c,
    paper="Wu et al. 2019, FBNet (arXiv:1812.03443)",
    reference="timm.models.fbnetc_100",
    layouts={"timm": None},
    defaults={"width_mult": 1.0, "bn_eps": 1e-5},
))
