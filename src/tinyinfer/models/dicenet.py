"""DiCENet.

Paper: Mehta, Hajishirzi, Rastegari, "DiCENet: Dimension-wise Convolutions for Efficient
Networks", TPAMI 2020 (arXiv:1906.03516). Reference implementation: pytorchcv's
``pytorchcv/models/dicenet.py`` (``pytorchcv.model_provider.get_model(name)``), whose module
names are the graph's node names, so its state_dict loads key for key (the "pytorchcv"
layout is the identity; a checkpoint that does not fit is refused with every missing and
unexpected key listed).

The DiCE unit (the paper's Fig. 3), ``dice_block`` below:
- dimension-wise convolution: three 3x3 depthwise convs of the C x H x W map, along the
  channels (an ordinary depthwise conv), along the height and along the width (one kernel
  per row / column: kernels/dimwise.py), concatenated to 3C channels, BN, PReLU;
- dimension-wise fusion: a channel shuffle (3 groups) puts each channel's three results
  side by side, and a grouped 1x1 conv (C groups of 3) fuses them back to C, BN, PReLU;
  then a squeeze-and-excitation-like gate computed from that map (global average pool,
  1x1 conv to C/4, ReLU, 1x1 conv, sigmoid) scales a grouped 3x3 conv of it (BN, PReLU).

Units (ShuffleNet V2's, with the DiCE unit as their conv branch):
- strided (each stage's first): left, a 3x3 stride-2 depthwise conv and a 1x1 conv (each
  with BN, PReLU); right, a 3x3 stride-2 average pool, a DiCE unit, a 1x1 conv; the two
  concatenated (doubling the width) and shuffled with 2 groups;
- shuffled: the channels split in halves; the second goes through a 1x1 conv and a DiCE
  unit; concatenated with the first half and shuffled with 2 groups.

The network (widths per scale s from the authors' ``dicenet_config.py`` in sacmehta/EdgeNets,
which pytorchcv copies): a 3x3 stride-2 conv (BN, PReLU) and a 3x3 stride-2 max pool, three
stages of 1 strided and 3, 7, 3 shuffled units, global average pool, a grouped 1x1 conv (4
groups, to 1024) and a 1x1 conv with bias to the classes.

The height- and width-wise weights are sized for the map the network was built for (224
input: 28, 14 and 7 rows in the three stages); at any other input size each such conv
resizes its map to that size and back, as pytorchcv does (its default ``in_size`` 224).
"""
from __future__ import annotations

from ..engine.graph import Graph
from ..errors import InputError
from .builder import NetBuilder
from .registry import ModelSpec, register

# Output channels of the three stages per width scale s: the authors' sc_ch_dict
# (EdgeNets model/classification/dicenet_config.py; pytorchcv's channels_per_layers_dict).
# Each stage's strided unit first doubles its input width.
STAGE_WIDTHS = {
    0.2: (32, 64, 128),
    0.5: (48, 96, 192),
    0.75: (86, 172, 344),
    1.0: (116, 232, 464),
    1.25: (144, 288, 576),
    1.5: (176, 352, 704),
    1.75: (210, 420, 840),
    2.0: (244, 488, 976),
}
SHUFFLED_UNITS = (3, 7, 3)            # after each stage's strided unit
BUILT_FOR = 224                       # the input size the height/width weights are sized for
CLASSIFIER_CHANNELS = 1024
CLASSIFIER_GROUPS = 4
SE_REDUCTION = 4


def stem_channels(width_scale: float) -> int:
    return 24 if width_scale > 0.2 else 16


# ---- the layers pytorchcv's modules are made of ------------------------------------------
def prelu(b: NetBuilder, name: str, x: str) -> str:
    b.graph.add_node(name, "prelu", [x], {}, {"weight": (b.channels[x],)})
    b.channels[name] = b.channels[x]
    return name


def conv_block(b: NetBuilder, x: str, prefix: str, out_ch: int, kernel: int, stride: int = 1,
               groups: int = 1) -> str:
    """pytorchcv's conv1x1_block / conv3x3_block with a PReLU: {prefix}.conv (no bias),
    {prefix}.bn, {prefix}.activ."""
    y = b.bn(f"{prefix}.bn", b.conv(f"{prefix}.conv", x, out_ch, kernel, stride, groups))
    return prelu(b, f"{prefix}.activ", y)


def dimwise_conv(b: NetBuilder, name: str, x: str, axis: int, size: int) -> str:
    """A 3x3 conv along the height (axis 2) or the width (3), one kernel per position of a
    map ``size`` long along that axis."""
    b.graph.add_node(name, "dimwise_conv", [x], {"axis": axis}, {"weight": (size, 1, 3, 3)})
    b.channels[name] = b.channels[x]
    return name


# ---- the DiCE unit ------------------------------------------------------------------------
def dice_block(b: NetBuilder, x: str, prefix: str, size: int) -> str:
    """DiceBlock (in = out channels, as everywhere in the network); ``size``: the map's
    height and width in the network built for BUILT_FOR."""
    c = b.channels[x]
    # dimension-wise convolution (DiceBaseBlock.convs: channel, height, width)
    p = f"{prefix}.base_block"
    parts = [b.conv(f"{p}.convs.ch_conv", x, c, 3, groups=c),
             dimwise_conv(b, f"{p}.convs.h_conv.conv", x, 2, size),
             dimwise_conv(b, f"{p}.convs.w_conv.conv", x, 3, size)]
    y = b.bn(f"{p}.norm_activ.bn", b.concat(f"{p}.convs", parts))
    y = prelu(b, f"{p}.norm_activ.activ", y)
    # dimension-wise fusion: each channel's 3 results side by side, fused by C groups of 3
    y = b.channel_shuffle(f"{p}.shuffle", y, 3)
    y = conv_block(b, y, f"{p}.squeeze_conv", c, 1, groups=c)
    # the gate (DiceAttBlock) from the fused map, applied to its grouped 3x3 conv
    a = f"{prefix}.att"
    gate = b.adaptive_pool(f"{a}.pool", y, (1, 1))
    gate = b.act(f"{a}.activ", b.conv(f"{a}.conv1", gate, c // SE_REDUCTION, 1), "relu")
    gate = b.act(f"{a}.sigmoid", b.conv(f"{a}.conv2", gate, c, 1), "sigmoid")
    y = conv_block(b, y, f"{prefix}.proj_conv", c, 3, groups=c)   # gcd(in, out): in = out
    return b.mul(f"{prefix}.gated", y, gate)


def strided_unit(b: NetBuilder, x: str, prefix: str, size: int) -> str:
    """StridedDiceBlock: twice the input's channels at half its size (``size``: the input's)."""
    c = b.channels[x]
    left, right = f"{prefix}.branches.left_branch", f"{prefix}.branches.right_branch"
    y1 = conv_block(b, x, f"{left}.conv1", c, 3, stride=2, groups=c)
    y1 = conv_block(b, y1, f"{left}.conv2", c, 1)
    y2 = b.pool(f"{right}.pool", x, "avg_pool2d", kernel=3, stride=2, padding=1)
    y2 = dice_block(b, y2, f"{right}.dice", size // 2)
    y2 = conv_block(b, y2, f"{right}.conv", c, 1)
    y = b.concat(f"{prefix}.branches", [y1, y2])
    return b.channel_shuffle(f"{prefix}.shuffle", y, 2)


def shuffled_unit(b: NetBuilder, x: str, prefix: str, out_ch: int, size: int) -> str:
    """ShuffledDiceBlock: the first half of the channels passes; the second half (torch.chunk's
    split: the first part gets the odd channel) goes through a 1x1 conv and a DiCE unit."""
    c = b.channels[x]
    keep = c - c // 2
    x1 = b.slice(f"{prefix}.x1", x, 0, keep)
    x2 = b.slice(f"{prefix}.x2", x, keep, c)
    r = f"{prefix}.right_branch"
    y = conv_block(b, x2, f"{r}.conv", out_ch - keep, 1)
    y = dice_block(b, y, f"{r}.dice", size)
    y = b.concat(f"{prefix}.cat", [x1, y])
    return b.channel_shuffle(f"{prefix}.shuffle", y, 2)


def dicenet(width_scale: float = 1.0, num_classes: int = 1000) -> Graph:
    """DiCENet at width scale s (the paper's 0.2 ... 2.0; pytorchcv's ``width_scale``)."""
    if width_scale not in STAGE_WIDTHS:
        raise InputError(f"DiCENet width_scale must be one of "
                         f"{', '.join(map(str, STAGE_WIDTHS))} (the published networks), got "
                         f"{width_scale!r}")
    b = NetBuilder()
    x = conv_block(b, Graph.INPUT, "features.init_block.conv", stem_channels(width_scale), 3,
                   stride=2)
    x = b.pool("features.init_block.pool", x, "max_pool2d", kernel=3, stride=2, padding=1)
    size = BUILT_FOR // 4
    for s, (width, units) in enumerate(zip(STAGE_WIDTHS[width_scale], SHUFFLED_UNITS)):
        stage = f"features.stage{s + 1}"
        x = strided_unit(b, x, f"{stage}.unit1", size)
        size //= 2
        for j in range(units):
            x = shuffled_unit(b, x, f"{stage}.unit{j + 2}", width, size)
    x = b.adaptive_pool("features.final_pool", x, (1, 1))
    x = b.conv("output.conv1", x, CLASSIFIER_CHANNELS, 1, groups=CLASSIFIER_GROUPS)
    x = b.conv("output.conv2", x, num_classes, 1, bias=True)
    b.flatten("output.flatten", x, num_classes)
    return b.graph


# pytorchcv's names: wd5 = 0.2, wd2 = 0.5, w3d4 = 0.75, w1 = 1, w5d4 = 1.25, w3d2 = 1.5,
# w7d8 = 1.75 (sic: pytorchcv's name for the 1.75 network), w2 = 2
WIDTH_NAMES = {"wd5": 0.2, "wd2": 0.5, "w3d4": 0.75, "w1": 1.0, "w5d4": 1.25, "w3d2": 1.5,
               "w7d8": 1.75, "w2": 2.0}

for _width, _scale in WIDTH_NAMES.items():
    register(ModelSpec(
        name=f"dicenet_{_width}",
        build=dicenet,
        paper="Mehta et al. 2020, DiCENet (arXiv:1906.03516)",
        reference=f"pytorchcv.models.dicenet.dicenet_{_width}",
        layouts={"pytorchcv": None},
        defaults={"width_scale": _scale},
    ))
