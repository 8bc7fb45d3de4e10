"""MicroNet M0-M3.

Paper: Li et al., "MicroNet: Improving Image Recognition with Extremely Low FLOPs", ICCV 2021
(arXiv:2108.05894). Reference implementation: the authors' code, github.com/liyunsheng13/
micronet (MIT): backbone/micronet.py builds the network from a table in backbone/
microconfig.py and the arguments of scripts/eval_micronet_m*.sh. Its module names (features.
{i}.layers.{j}..., classifier.{0,2}.linear.{0,1}) are the graph's node names, so its
state_dict loads key for key (tests/micronet_ref.py is that code, trimmed to inference).

Two operators make the network (the paper's Sec. 3 and 4):

- micro-factorized convolutions. Pointwise: a group 1x1 conv, a channel shuffle, a second
  group 1x1 conv (here spread over two blocks: a block ends with a group 1x1 and a shuffle,
  the next one starts with a group 1x1). Depthwise: a k x 1 depthwise conv then a 1 x k one
  (each with BN). The stem factorizes its 3x3 conv the same way: a 3 x 1 conv to g1 channels,
  then a 1 x 3 depthwise conv multiplying each by g2.
- dynamic Shift-Max: a squeeze branch (global pool, FC + ReLU, FC + h-sigmoid) computes per
  image J coefficients per channel, and the output mixes each channel with a "shifted"
  partner channel: max(a1 x + b1 x', a2 x + b2 x') (J = 4), or a1 x + b1 x' (J = 2). The
  branch is made of existing kinds; the mix is the ``dyshiftmax`` kind (kernels/shiftmax.py).

The head as the authors write it: ReLU6, global pool, h-swish, then twice Linear +
BatchNorm1d + h-swish (the logits too go through BN and h-swish). Each BatchNorm1d folds into
the Linear before it at load time (engine/passes.py), as a BatchNorm2d into its conv.

Where the configs (MODEL.* arguments of the eval scripts) choose, this file follows them:
stem "spatialsepsf", DEPTHSEP (k x 1 + 1 x k depthwise), POINTWISE "group", SHUFFLE,
ACTIVATION DYShiftMax with ACT_MAX 2.0 and REDUCTION 8. The stem's output would be
max-group-pooled if g1 * g2 were twice STEM_CH; in all four networks g1 * g2 == STEM_CH, so
the stem ends with a ReLU6 and MaxGroupPooling never runs.
"""
from __future__ import annotations

from typing import NamedTuple

from ..engine.graph import Graph
from ..errors import InputError
from .blocks import make_divisible
from .builder import NetBuilder
from .registry import ModelSpec, register


class Row(NamedTuple):
    """One row of microconfig.py (the authors' column names): a stage of n blocks.
    s stride; n blocks; c output channels; ks kernel of the k x 1 / 1 x k depthwise pair;
    c1, c2 the expansion, split over the two factors (c1 in the first, c2 in the second);
    g1, g2 the first pointwise conv's groups and the shift groups of its Shift-Max (g1 = 0:
    the block starts with the depthwise pair instead); c3 (unused), g3, g4 the same for the
    last pointwise conv (g4 = 0: a stage that ends after its first pointwise conv);
    y1, y2, y3 the activation after each of the three convs: 2 Shift-Max with J = 4, 1
    with J = 2, 0 ReLU6 (after the last conv: none); r multiplies REDUCTION."""
    s: int
    n: int
    c: int
    ks: int
    c1: int
    c2: int
    g1: int
    g2: int
    c3: int
    g3: int
    g4: int
    y1: int
    y2: int
    y3: int
    r: int


# backbone/microconfig.py
#      s, n,   c, ks, c1, c2, g1, g2,  c3, g3, g4, y1, y2, y3, r
M0 = [(2, 1,   8, 3, 2, 2,  0,  4,   8,  2,  2, 2, 0, 1, 1),     # msnx_dy6_exp4_4M_221
      (2, 1,  12, 3, 2, 2,  0,  8,  12,  4,  4, 2, 2, 1, 1),
      (2, 1,  16, 5, 2, 2,  0, 12,  16,  4,  4, 2, 2, 1, 1),
      (1, 1,  32, 5, 1, 4,  4,  4,  32,  4,  4, 2, 2, 1, 1),
      (2, 1,  64, 5, 1, 4,  8,  8,  64,  8,  8, 2, 2, 1, 1),
      (1, 1,  96, 3, 1, 4,  8,  8,  96,  8,  8, 2, 2, 1, 2),
      (1, 1, 384, 3, 1, 4, 12, 12,   0,  0,  0, 2, 2, 1, 2)]
M1 = [(2, 1,   8, 3, 2, 2,  0,  6,   8,  2,  2, 2, 0, 1, 1),     # msnx_dy6_exp6_6M_221
      (2, 1,  16, 3, 2, 2,  0,  8,  16,  4,  4, 2, 2, 1, 1),
      (2, 1,  16, 5, 2, 2,  0, 16,  16,  4,  4, 2, 2, 1, 1),
      (1, 1,  32, 5, 1, 6,  4,  4,  32,  4,  4, 2, 2, 1, 1),
      (2, 1,  64, 5, 1, 6,  8,  8,  64,  8,  8, 2, 2, 1, 1),
      (1, 1,  96, 3, 1, 6,  8,  8,  96,  8,  8, 2, 2, 1, 2),
      (1, 1, 576, 3, 1, 6, 12, 12,   0,  0,  0, 2, 2, 1, 2)]
M2 = [(2, 1,  12, 3, 2, 2,  0,  8,  12,  4,  4, 2, 0, 1, 1),     # msnx_dy9_exp6_12M_221
      (2, 1,  16, 3, 2, 2,  0, 12,  16,  4,  4, 2, 2, 1, 1),
      (1, 1,  24, 3, 2, 2,  0, 16,  24,  4,  4, 2, 2, 1, 1),
      (2, 1,  32, 5, 1, 6,  6,  6,  32,  4,  4, 2, 2, 1, 1),
      (1, 1,  32, 5, 1, 6,  8,  8,  32,  4,  4, 2, 2, 1, 2),
      (1, 1,  64, 5, 1, 6,  8,  8,  64,  8,  8, 2, 2, 1, 2),
      (2, 1,  96, 5, 1, 6,  8,  8,  96,  8,  8, 2, 2, 1, 2),
      (1, 1, 128, 3, 1, 6, 12, 12, 128,  8,  8, 2, 2, 1, 2),
      (1, 1, 768, 3, 1, 6, 16, 16,   0,  0,  0, 2, 2, 1, 2)]
M3 = [(2, 1,  16, 3, 2, 2,  0, 12,  16,  4,  4, 0, 2, 0, 1),     # msnx_dy12_exp6_20M_020
      (2, 1,  24, 3, 2, 2,  0, 16,  24,  4,  4, 0, 2, 0, 1),
      (1, 1,  24, 3, 2, 2,  0, 24,  24,  4,  4, 0, 2, 0, 1),
      (2, 1,  32, 5, 1, 6,  6,  6,  32,  4,  4, 0, 2, 0, 1),
      (1, 1,  32, 5, 1, 6,  8,  8,  32,  4,  4, 0, 2, 0, 2),
      (1, 1,  64, 5, 1, 6,  8,  8,  48,  8,  8, 0, 2, 0, 2),
      (1, 1,  80, 5, 1, 6,  8,  8,  80,  8,  8, 0, 2, 0, 2),
      (1, 1,  80, 5, 1, 6, 10, 10,  80,  8,  8, 0, 2, 0, 2),
      (2, 1, 120, 5, 1, 6, 10, 10, 120, 10, 10, 0, 2, 0, 2),
      (1, 1, 120, 5, 1, 6, 12, 12, 120, 10, 10, 0, 2, 0, 2),
      (1, 1, 144, 3, 1, 6, 12, 12, 144, 12, 12, 0, 2, 0, 2),
      (1, 1, 864, 3, 1, 6, 12, 12,   0,  0,  0, 0, 2, 0, 2)]


class Variant(NamedTuple):
    """The arguments of scripts/eval_micronet_m*.sh that differ between the four."""
    table: list
    stem_ch: int          # STEM_CH
    stem_groups: tuple    # STEM_GROUPS (g1, g2): 3 x 1 conv to g1, 1 x 3 depthwise x g2
    out_ch: int           # OUT_CH: the hidden Linear of the head
    init_a: tuple         # INIT_A: offsets of Shift-Max's a1, a2 (after the first two convs)
    init_b: tuple         # INIT_B: offsets of b1, b2


VARIANTS = {
    "m0": Variant(M0, 4, (2, 2), 640, (1.0, 1.0), (0.0, 0.0)),
    "m1": Variant(M1, 6, (3, 2), 960, (1.0, 1.0), (0.0, 0.0)),
    "m2": Variant(M2, 8, (4, 2), 1024, (1.0, 1.0), (0.0, 0.0)),
    "m3": Variant(M3, 12, (4, 3), 1024, (1.0, 0.5), (0.0, 0.5)),
}
# the same in every eval script
ACT_MAX = 2.0       # Shift-Max coefficients span (h-sigmoid - 0.5) * 2 * ACT_MAX
REDUCTION = 8       # squeeze branch width: channels / (REDUCTION * r), rounded to 4
# INIT_A_BLOCK3 1.0,0.0: the (a1, b1) offsets of a Shift-Max after a block's last conv
# (J = 2, so a2 and b2 do not exist; the authors pad with 0.0)
LAST_INIT_A, LAST_INIT_B = (1.0, 0.0), (0.0, 0.0)


def shift_max(b: NetBuilder, x: str, name: str, mixes: int, reduction: int, groups: int,
              init_a, init_b) -> str:
    """The authors' DYShiftMax(C, C, reduction, ACT_MAX, act_relu=mixes == 2, ...) on x:
    squeeze branch (their avg_pool, fc.0, fc.1 ReLU, fc.2, fc.3 h-sigmoid), then the mix
    with partners one of ``groups`` groups over (kernels/shiftmax.shift_index)."""
    c = b.channels[x]
    squeeze = max(make_divisible(c // reduction, 4), 4)
    y = b.global_pool(f"{name}.avg_pool", x)
    y = b.act(f"{name}.fc.1", b.linear(f"{name}.fc.0", y, squeeze), "relu")
    y = b.act(f"{name}.fc.3", b.linear(f"{name}.fc.2", y, c * 2 * mixes), "hsigmoid")
    return b.dyshiftmax(name, x, y, groups, 2 * ACT_MAX, init_a, init_b)


def conv_bn(b: NetBuilder, x: str, name: str, index: int, out_ch: int, kernel, stride=1,
            groups=1) -> str:
    """{name}.conv.{index} and the BatchNorm after it, {name}.conv.{index + 1}."""
    y = b.conv(f"{name}.conv.{index}", x, out_ch, kernel, stride, groups=groups)
    return b.bn(f"{name}.conv.{index + 1}", y)


def depth_sep(b: NetBuilder, x: str, name: str, e1: int, e2: int, k: int, stride: int) -> str:
    """The micro-factorized depthwise conv (DepthSpatialSepConv): k x 1 depthwise with
    channel multiplier e1, then 1 x k depthwise with multiplier e2, each with BN."""
    c = b.channels[x]
    y = conv_bn(b, x, name, 0, c * e1, (k, 1), (stride, 1), groups=c)
    return conv_bn(b, y, name, 2, c * e1 * e2, (1, k), (1, stride), groups=c * e1)


def group_conv(b: NetBuilder, x: str, name: str, out_ch: int, groups: int) -> str:
    """A group 1x1 conv and BN: half of a micro-factorized pointwise conv (GroupConv)."""
    return conv_bn(b, x, name, 0, out_ch, 1, groups=groups)


def shuffle(b: NetBuilder, x: str, name: str, groups: int) -> str:
    return b.channel_shuffle(name, x, groups) if groups > 1 else x   # 1 group: identity


def micro_block(b: NetBuilder, x: str, name: str, row: Row, stride: int, init_a: tuple,
                init_b: tuple) -> str:
    """DYMicroBlock, one of three forms: the paper's Micro-Block-A (g1 = 0: depthwise pair,
    then a pointwise conv); Micro-Block-B and -C (pointwise, depthwise pair, pointwise: the
    code makes no difference between them); the last row's single pointwise conv (g4 = 0).
    Node names follow the authors' nn.Sequential indices, layers.0 ... layers.10; the
    authors' empty slots (nn.Sequential()) get no node."""
    inp = b.channels[x]
    hidden = inp * row.c1 * row.c2
    reduction = REDUCTION * row.r
    layer = lambda i: f"{name}.layers.{i}"

    def activation(y, i, code, groups):     # y1 / y2: Shift-Max (J = 2 * code) or ReLU6
        if code == 0:
            return b.act(layer(i), y, "relu6")
        return shift_max(b, y, layer(i), code, reduction, groups, init_a, init_b)

    def last_activation(y, i, groups, reduction):  # y3: Shift-Max with J = 2, or none
        if row.y3 == 0:
            return y
        return shift_max(b, y, layer(i), 1, reduction, groups, LAST_INIT_A, LAST_INIT_B)

    if row.g1 == 0:                                   # Micro-Block-A: depthwise first
        y = depth_sep(b, x, layer(0), row.c1, row.c2, row.ks, stride)
        y = activation(y, 1, row.y2, row.g2)
        y = shuffle(b, y, layer(2), row.g2)
        if row.y2:
            y = shuffle(b, y, layer(3), hidden // 2)
        y = group_conv(b, y, layer(4), row.c, row.g3)
        y = last_activation(y, 5, row.g4, reduction // 2)
        y = shuffle(b, y, layer(6), row.g4)
        if row.c % 2 == 0 and row.y3:
            y = shuffle(b, y, layer(7), row.c // 2)
    elif row.g4 == 0:                                 # the last row: one pointwise conv
        y = group_conv(b, x, layer(0), hidden, row.g1)
        y = last_activation(y, 1, row.g2, reduction)
    else:                                             # B / C: pointwise, depthwise, pointwise
        y = group_conv(b, x, layer(0), hidden, row.g1)
        y = activation(y, 1, row.y1, row.g2)
        y = shuffle(b, y, layer(2), row.g2)
        y = depth_sep(b, y, layer(3), 1, 1, row.ks, stride)
        # the second Shift-Max shifts across hidden / g2 groups ("expansion" in the code)
        y = activation(y, 5, row.y2, hidden // row.g2 if row.g2 != 1 else 1)
        if row.y1 or row.y2:
            y = shuffle(b, y, layer(6), hidden // (4 if row.y1 and row.y2 else 2))
        y = group_conv(b, y, layer(7), row.c, row.g3)
        y = last_activation(y, 8, row.g4, reduction // 2 if row.c < hidden else reduction)
        y = shuffle(b, y, layer(9), row.g4)
        if row.y3:
            y = shuffle(b, y, layer(10), row.c // 2)
    return b.add(f"{name}.add", y, x) if stride == 1 and inp == row.c else y


def micronet(variant: str = "m0", num_classes: int = 1000) -> Graph:
    """MicroNet-M0 ... M3 (variant "m0" ... "m3") as the authors' eval scripts build them."""
    if variant not in VARIANTS:
        raise InputError(f"MicroNet variant must be one of {', '.join(map(repr, VARIANTS))}, "
                         f"got {variant!r}")
    v = VARIANTS[variant]
    g1, g2 = v.stem_groups
    assert g1 * g2 == v.stem_ch, "a stem of 2 * STEM_CH would need MaxGroupPooling (docstring)"
    b = NetBuilder()
    # the stem (StemLayer "spatialsepsf"): 3 x 1 conv stride (2, 1), 1 x 3 depthwise stride
    # (1, 2) multiplying each channel by g2, a shuffle of g1 groups, ReLU6
    stem = "features.0.stem.0"
    x = conv_bn(b, Graph.INPUT, stem, 0, g1, (3, 1), (2, 1))
    x = conv_bn(b, x, stem, 2, g1 * g2, (1, 3), (1, 2), groups=g1)
    x = shuffle(b, x, f"{stem}.conv.4", g1)
    x = b.act("features.0.stem.1", x, "relu6")
    i = 1
    for row in map(Row._make, v.table):
        for j in range(row.n):
            x = micro_block(b, x, f"features.{i}", row, row.s if j == 0 else 1, v.init_a,
                            v.init_b)
            i += 1
    # the head: ReLU6, pool, h-swish, then (Linear + BN1d + h-swish) twice; classifier.1 is
    # the Dropout
    x = b.act("avgpool.0", x, "relu6")
    x = b.act("avgpool.2", b.global_pool("avgpool.1", x), "hswish")
    for k, width in ((0, v.out_ch), (2, num_classes)):
        x = b.linear(f"classifier.{k}.linear.0", x, width)
        x = b.act(f"classifier.{k}.linear.2", b.bn(f"classifier.{k}.linear.1", x), "hswish")
    return b.graph


for _variant in VARIANTS:
    register(ModelSpec(
        name=f"micronet_{_variant}",
        build=micronet,
        paper="Li et al. 2021, MicroNet (ICCV 2021, arXiv:2108.05894)",
        reference="liyunsheng13/micronet backbone/micronet.py (the authors' code)",
        layouts={"micronet": None},
        defaults={"variant": _variant},
    ))
