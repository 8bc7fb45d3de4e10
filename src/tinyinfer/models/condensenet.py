"""CondenseNet (the converted, inference form).

Paper: Huang, Liu, van der Maaten, Weinberger, "CondenseNet: An Efficient DenseNet using
Learned Group Convolutions", CVPR 2018 (arXiv:1711.09224). Reference implementation:
pytorchcv's ``pytorchcv/models/condensenet.py`` (``get_model("condensenet74_c4_g4")``),
whose module names are the graph's node names, so its state_dict loads key for key.

A DenseNet: each unit appends ``growth`` new channels to everything before it. Training
*learns* which input channels each group of the unit's 1x1 conv keeps (the "learned group
convolution", condensation factor C); the converted network stores the result as a fixed
channel list, so at inference a unit is (pre-activation, as in DenseNet):

    index-select the input channels (channel_select, the checkpoint's ``index`` buffer),
    BN, ReLU, 1x1 conv with G groups to 4 x growth, channel shuffle (G groups),
    BN, ReLU, 3x3 conv with G groups to growth,   then concat [input, new channels].

Each stage but the first starts with a 2x2 average pool (stride 2). Stem: one 3x3 stride-2
conv to 16 channels (no BN, no ReLU: the first unit's pre-activation follows). Head: BN,
ReLU, 7x7 average pool (here a global one, equal wherever pytorchcv's runs), then the
classifier reads only half the features, again by an index list (CondenseLinear).

The BNs here come *before* their convs, so none folds into a conv: they run as standalone
per-channel scale-and-shift nodes (2 FLOPs per element).
"""
from __future__ import annotations

from ..engine.graph import Graph
from ..errors import InputError
from .builder import NetBuilder
from .registry import ModelSpec, register

# CondenseNet-74 (the paper's Table 1 ImageNet network, pytorchcv's get_condensenet(74)):
# units per stage and growth rate per stage; stem width 16.
STAGE_UNITS = (4, 6, 8, 10, 8)
GROWTH_RATES = (8, 16, 32, 64, 128)
STEM_CHANNELS = 16
BOTTLENECK = 4              # the 1x1 conv widens to 4 x growth, as in DenseNet-BC
CLASSIFIER_KEEP = 0.5       # CondenseLinear reads int(0.5 x features) of them


def channel_select(b: NetBuilder, name: str, x: str, count: int) -> str:
    """``count`` channels of x, chosen by the checkpoint's ``{name}.index`` list."""
    b.graph.add_node(name, "channel_select", [x], {}, {"index": (count,)})
    b.channels[name] = count
    return name


def bn_relu(b: NetBuilder, x: str, prefix: str) -> str:
    return b.act(f"{prefix}.activ", b.bn(f"{prefix}.bn", x), "relu")


def condense_unit(b: NetBuilder, x: str, prefix: str, growth: int, groups: int) -> str:
    in_ch = b.channels[x]
    mid = BOTTLENECK * growth
    if in_ch % groups:
        raise InputError(f"CondenseNet unit {prefix}: {in_ch} input channels do not split into "
                         f"{groups} groups")
    y = channel_select(b, f"{prefix}.conv1", x, in_ch)   # the learned group conv's choice
    y = b.conv(f"{prefix}.conv1.conv", bn_relu(b, y, f"{prefix}.conv1"), mid, 1, groups=groups)
    y = b.channel_shuffle(f"{prefix}.conv1.c_shuffle", y, groups)
    y = b.conv(f"{prefix}.conv2.conv", bn_relu(b, y, f"{prefix}.conv2"), growth, 3,
               groups=groups)
    return b.concat(f"{prefix}.cat", [x, y])


def condensenet(groups: int = 4, num_classes: int = 1000) -> Graph:
    """CondenseNet-74 with G = C = ``groups`` (4 and 8 are published and registered)."""
    if groups not in (4, 8):
        raise InputError(f"CondenseNet groups must be 4 or 8 (the published C = G = 4 and "
                         f"C = G = 8 networks), got {groups!r}")
    b = NetBuilder()
    x = b.conv("features.init_block.conv", Graph.INPUT, STEM_CHANNELS, 3, 2)
    for s, (units, growth) in enumerate(zip(STAGE_UNITS, GROWTH_RATES)):
        stage = f"features.stage{s + 1}"
        if s > 0:
            x = b.pool(f"{stage}.trans{s + 1}.pool", x, "avg_pool2d", kernel=2, stride=2)
        for j in range(units):
            x = condense_unit(b, x, f"{stage}.unit{j + 1}", growth, groups)
    x = bn_relu(b, x, "features.post_activ")
    x = b.global_pool("features.final_pool", x)
    x = channel_select(b, "output", x, int(b.channels[x] * CLASSIFIER_KEEP))
    b.linear("output.linear", x, num_classes)
    return b.graph


for _g in (4, 8):
    register(ModelSpec(
        name=f"condensenet74_c{_g}_g{_g}",
        build=condensenet,
        paper="Huang et al. 2018, CondenseNet (arXiv:1711.09224)",
        reference=f"pytorchcv.models.condensenet.condensenet74_c{_g}_g{_g}",
        layouts={"pytorchcv": None},
        defaults={"groups": _g},
    ))
