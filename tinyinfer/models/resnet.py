"""ResNet, and ResNet with squeeze-and-excitation (SE-ResNet).

Papers: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
(arXiv:1512.03385); Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018
(arXiv:1709.01507). Reference implementations: ``torchvision.models.resnet18`` /
``resnet50`` and timm's ``seresnet50`` (``timm.models.resnet``), which share module names
(conv1, bn1, layer{1..4}.{i}.conv1 ..., downsample.0/1, fc): those names are the graph's,
so both load as the identity layout.

Both references are "ResNet v1.5": a bottleneck block downsamples in its 3x3 conv, not in
its first 1x1 conv as the paper's Table 1 does (same counts at stride 1, ~0.2 GMACs more
for ResNet-50 than the paper's 3.8 G).
"""
from __future__ import annotations

from ..graph import Graph
from .blocks import make_divisible
from .builder import NetBuilder
from .registry import ModelSpec, register

# The paper's Table 1: after a 7x7 stride-2 conv to 64 channels and a 3x3 stride-2 max
# pool, four stages (conv2_x .. conv5_x) of residual blocks; each stage's first block
# downsamples by 2 (except conv2_x, which follows the pool); then average pool and FC.
#   block = "basic" (3x3, 3x3) or "bottleneck" (1x1, 3x3, 1x1 x4 wide)
#   n = blocks per stage; the stage widths are 64, 128, 256, 512 in every variant
#                block         n per stage
RESNETS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = {"basic": 1, "bottleneck": 4}   # block output channels / stage width


def se_channels(channels: int) -> int:
    """timm's SEModule reduction: channels / 16 to the nearest multiple of 8 (timm passes
    round_limit=0: no 10% rule). Exactly C/16 for every ResNet width."""
    return make_divisible(channels / 16, 8, round_limit=0.0)


def residual_block(b: NetBuilder, x: str, prefix: str, kind: str, width: int, stride: int,
                   se: bool = False) -> str:
    """One block: relu(F(x) + shortcut(x)), F = the block's convs [+ SE on F's output]."""
    out_ch = width * EXPANSION[kind]
    if kind == "basic":
        y = b.conv_bn_act(x, f"{prefix}.conv1", f"{prefix}.bn1", width, 3, stride, act="relu")
        y = b.conv_bn_act(y, f"{prefix}.conv2", f"{prefix}.bn2", out_ch, 3)
    else:
        y = b.conv_bn_act(x, f"{prefix}.conv1", f"{prefix}.bn1", width, 1, act="relu")
        y = b.conv_bn_act(y, f"{prefix}.conv2", f"{prefix}.bn2", width, 3, stride, act="relu")
        y = b.conv_bn_act(y, f"{prefix}.conv3", f"{prefix}.bn3", out_ch, 1)
    if se:
        y = b.se(f"{prefix}.se", y, se_channels(out_ch), act="relu", gate="sigmoid",
                 reduce="fc1", expand="fc2")
    shortcut = x
    if stride != 1 or b.channels[x] != out_ch:   # projection shortcut (the paper's option B)
        shortcut = b.conv_bn_act(x, f"{prefix}.downsample.0", f"{prefix}.downsample.1",
                                 out_ch, 1, stride)
    # The ReLU comes after the add, so it stays its own node: the conv epilogue (see
    # passes.py) adds a residual only after its activation.
    return b.act(f"{prefix}.relu", b.add(f"{prefix}.add", y, shortcut), "relu")


def resnet(kind: str, depths, se: bool = False, num_classes: int = 1000) -> Graph:
    b = NetBuilder()
    x = b.conv_bn_act(Graph.INPUT, "conv1", "bn1", 64, 7, 2, act="relu")
    x = b.pool("maxpool", x, "max_pool2d", kernel=3, stride=2, padding=1)
    for s, (width, n) in enumerate(zip(STAGE_WIDTHS, depths)):
        for i in range(n):
            stride = 2 if i == 0 and s > 0 else 1
            x = residual_block(b, x, f"layer{s + 1}.{i}", kind, width, stride, se)
    x = b.global_pool("avgpool", x)
    b.linear("fc", x, num_classes)
    return b.graph


def _builder(name: str, se: bool = False):
    kind, depths = RESNETS[name]

    def build(num_classes: int = 1000) -> Graph:
        return resnet(kind, depths, se, num_classes)
    build.__doc__ = f"{name}: {kind} blocks, {depths} per stage" + (", with SE" if se else "")
    return build


_RESNET_PAPER = "He et al. 2016, Deep Residual Learning (arXiv:1512.03385)"
for _name in RESNETS:
    register(ModelSpec(
        name=_name,
        build=_builder(_name),
        paper=_RESNET_PAPER,
        reference=f"torchvision.models.{_name}",
        layouts={"torchvision": None},   # timm's resnet18/50 use the same keys
    ))

register(ModelSpec(
    name="seresnet50",
    build=_builder("resnet50", se=True),
    paper="Hu et al. 2018, Squeeze-and-Excitation Networks (arXiv:1709.01507), on " + _RESNET_PAPER,
    reference="timm.models.seresnet50",
    layouts={"timm": None},
    # timm's pretrained_cfg for seresnet50.ra2_in1k: bicubic, crop_pct 0.875 at 224
    interpolation="bicubic",
))
