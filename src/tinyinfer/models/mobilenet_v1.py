"""MobileNet V1.

Paper: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", arXiv 1704.04861 (2017). Reference implementation: timm's ``mobilenetv1_100``
(``timm.models.efficientnet._gen_mobilenet_v1``), whose node names and weight layout this
graph uses. torchvision has no MobileNet V1.
"""
from __future__ import annotations

from .builder import build_mbconv_net
from .registry import ModelSpec, register

# The paper's Table 1, one row per run of identical depthwise separable layers
# ("Conv dw / s" 3x3 + BN + ReLU6, then "Conv 1x1" + BN + ReLU6), after a 3x3 stride-2
# conv to 32 channels; then average pool and a 1024 x 1000 fully connected layer.
#     n = layers, s = stride of the first one, c = output channels of its 1x1 conv
#       n  s     c
MOBILENET_V1 = [
    (1, 1, 64),
    (2, 2, 128),
    (2, 2, 256),
    (6, 2, 512),     # one stride-2 layer, then the paper's "5x" block at 14x14
    (2, 2, 1024),
]


def mobilenet_v1(width_mult: float = 1.0, num_classes: int = 1000):
    """MobileNet V1 with width multiplier alpha = ``width_mult`` (0.25, 0.5, 0.75, 1.0 in the
    paper's Table 6); the resolution multiplier is simply the input size you feed it."""
    arch = [[f"dsa_r{n}_k3_s{s}_c{c}"] for n, s, c in MOBILENET_V1]
    return build_mbconv_net(arch, stem_size=32, num_features=0, width_mult=width_mult,
                            act="relu6", num_classes=num_classes)


register(ModelSpec(
    name="mobilenetv1_100",
    build=mobilenet_v1,
    paper="Howard et al. 2017, MobileNets (arXiv:1704.04861)",
    reference="timm.models.mobilenetv1_100",
    layouts={"timm": None},
    defaults={"width_mult": 1.0},
    # timm's pretrained_cfg for mobilenetv1_100.ra4_e3600_r224_in1k: crop_pct 0.875, bicubic,
    # Inception mean/std
    resize=256, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
))
