"""ShuffleNet V2.

Paper: Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design", ECCV 2018 (arXiv:1807.11164). Reference implementation:
``torchvision.models.shufflenet_v2_x0_5`` .. ``_x2_0``, whose module names (conv1.0,
stage{2,3,4}.{i}.branch1.{j} / branch2.{j}, conv5.0, fc) are the graph's node names.

The unit (the paper's Fig. 3 c, d): at stride 1, split the channels in two halves, leave
the first alone and run the second through 1x1 conv, 3x3 depthwise conv, 1x1 conv; at
stride 2, run the whole input through both a depthwise + 1x1 branch and that branch.
Either way, concatenate the two halves and shuffle the channels (groups = 2), so the
untouched half mixes into the next unit's convolved half. All 1x1 convs are dense
(guideline G2 of the paper: group convolutions cost memory access).
"""
from __future__ import annotations

from ..errors import InputError
from ..engine.graph import Graph
from .builder import NetBuilder
from .registry import ModelSpec, register

# The paper's Table 5. After conv1 (3x3, stride 2) and a 3x3 stride-2 max pool, three
# stages of units, the first of each with stride 2; then conv5 (1x1), global pool, FC.
#   n = units per stage (stage2, stage3, stage4)
STAGE_REPEATS = (4, 8, 4)
#   output channels of   conv1, stage2, stage3, stage4, conv5   per width
WIDTHS = {
    "x0_5": (24, 48, 96, 192, 1024),
    "x1_0": (24, 116, 232, 464, 1024),
    "x1_5": (24, 176, 352, 704, 1024),
    "x2_0": (24, 244, 488, 976, 2048),
}


def shuffle_unit(b: NetBuilder, x: str, prefix: str, out_ch: int, stride: int) -> str:
    half = out_ch // 2
    if stride == 1:                     # channel split: two views, nothing copied
        c = b.channels[x]
        keep = b.slice(f"{prefix}.split0", x, 0, c // 2)
        x2 = b.slice(f"{prefix}.split1", x, c // 2, c)
    else:                               # branch1: 3x3 depthwise (stride 2), 1x1
        in_ch = b.channels[x]
        keep = b.conv_bn_act(x, f"{prefix}.branch1.0", f"{prefix}.branch1.1", in_ch, 3, stride,
                             groups=in_ch)
        keep = b.conv_bn_act(keep, f"{prefix}.branch1.2", f"{prefix}.branch1.3", half, 1,
                             act="relu")
        x2 = x
    # branch2: 1x1, 3x3 depthwise, 1x1 (ReLU after the 1x1s only)
    y = b.conv_bn_act(x2, f"{prefix}.branch2.0", f"{prefix}.branch2.1", half, 1, act="relu")
    y = b.conv_bn_act(y, f"{prefix}.branch2.3", f"{prefix}.branch2.4", half, 3, stride,
                      groups=half)
    y = b.conv_bn_act(y, f"{prefix}.branch2.5", f"{prefix}.branch2.6", half, 1, act="relu")
    return b.channel_shuffle(f"{prefix}.shuffle", b.concat(f"{prefix}.cat", [keep, y]), 2)


def shufflenet_v2(width: str = "x1_0", num_classes: int = 1000) -> Graph:
    """width: one of the paper's four multipliers, "x0_5", "x1_0", "x1_5", "x2_0"."""
    if width not in WIDTHS:
        raise InputError(f"ShuffleNetV2 width must be one of {', '.join(WIDTHS)}, got {width!r}")
    stem, *stages, head = WIDTHS[width]
    b = NetBuilder()
    x = b.conv_bn_act(Graph.INPUT, "conv1.0", "conv1.1", stem, 3, 2, act="relu")
    x = b.pool("maxpool", x, "max_pool2d", kernel=3, stride=2, padding=1)
    for s, (out_ch, n) in enumerate(zip(stages, STAGE_REPEATS)):
        for i in range(n):
            x = shuffle_unit(b, x, f"stage{s + 2}.{i}", out_ch, 2 if i == 0 else 1)
    x = b.conv_bn_act(x, "conv5.0", "conv5.1", head, 1, act="relu")
    x = b.global_pool("globalpool", x)
    b.linear("fc", x, num_classes)
    return b.graph


for _width in WIDTHS:
    register(ModelSpec(
        name=f"shufflenet_v2_{_width}",
        build=shufflenet_v2,
        paper="Ma et al. 2018, ShuffleNet V2 (arXiv:1807.11164)",
        reference=f"torchvision.models.shufflenet_v2_{_width}",
        layouts={"torchvision": None},
        defaults={"width": _width},
    ))
