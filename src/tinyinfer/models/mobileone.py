"""MobileOne S0-S4.

Paper: Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone", CVPR 2023
(arXiv:2206.04040). Reference implementation: timm's ``timm/models/byobnet.py``
(``MobileOneBlock``, ``_mobileone_bcfg`` and the ``mobileone_s0`` ... ``s4`` configs), whose
module names are the graph's node names, so its (training-form) state_dict loads key for key:
stem / stages.{s}.{i} . conv_kxk.{j}.conv / .bn, conv_scale.conv / .bn, identity, attn.fc1 /
fc2, then head.fc.

The graph declares the TRAINING form, which is what the checkpoint holds: every block is a
sum of parallel branches over its input, each with BN: ``num_conv_branches`` k x k convs (4
in S0, 1 in S1-S4: the paper's over-parameterization factor), a 1x1 "scale" conv when k > 1,
and BN alone (the identity branch) when the block keeps its input's shape; then SE (S4's
last blocks), then ReLU. At load time tinyinfer/engine/reparam.py folds each sum into one conv with
a bias (the form the paper counts and times); ``training_form`` below keeps it apart.

Each of the paper's stages is pairs of blocks: a depthwise 3x3 block (groups = channels)
at the stage's input width, then a pointwise 1x1 block to the stage's width (the first pair
of a stage has stride 2 in its depthwise block). Stage widths are 64, 128, 256, 512 times the
variant's width factors; the stem is a 3x3 stride-2 block to min(64, 64 * first factor).
"""
from __future__ import annotations

import copy

from ..errors import InputError
from ..engine.graph import Graph
from .blocks import make_divisible
from .builder import NetBuilder
from .registry import ModelSpec, register

BASE_WIDTHS = (64, 128, 256, 512)
DEPTHS = (2, 8, 10, 1)            # pairs of (depthwise, pointwise) blocks per stage
SE_RATIO = 1 / 16                 # timm's SEModule default, on the block's output channels

# variant -> (width factors per stage, k x k conv branches, SE pairs at the end of each stage)
VARIANTS = {
    "s0": ((0.75, 1.0, 1.0, 2.0), 4, (0, 0, 0, 0)),
    "s1": ((1.5, 1.5, 2.0, 2.5), 1, (0, 0, 0, 0)),
    "s2": ((1.5, 2.0, 2.5, 4.0), 1, (0, 0, 0, 0)),
    "s3": ((2.0, 2.5, 3.0, 4.0), 1, (0, 0, 0, 0)),
    "s4": ((3.0, 3.5, 3.5, 4.0), 1, (0, 0, 5, 1)),
}


def mobileone_block(b: NetBuilder, x: str, prefix: str, out_ch: int, kernel: int, stride: int,
                    depthwise: bool, branches: int, se: bool) -> str:
    """timm's MobileOneBlock, training form: the branch sum in timm's order (scale, then
    each k x k, then identity), SE, ReLU."""
    in_ch = b.channels[x]
    groups = in_ch if depthwise else 1
    terms = [b.conv_bn_act(x, f"{prefix}.conv_kxk.{j}.conv", f"{prefix}.conv_kxk.{j}.bn",
                           out_ch, kernel, stride, groups) for j in range(branches)]
    if kernel > 1:
        terms.insert(0, b.conv_bn_act(x, f"{prefix}.conv_scale.conv", f"{prefix}.conv_scale.bn",
                                      out_ch, 1, stride, groups))
    if in_ch == out_ch and stride == 1:
        terms.append(b.bn(f"{prefix}.identity", x))
    y = terms[0]
    for j, term in enumerate(terms[1:]):
        y = b.add(f"{prefix}.sum{j}", y, term)
    if se:
        y = b.se(f"{prefix}.attn", y, make_divisible(out_ch * SE_RATIO, round_limit=0.0),
                 reduce="fc1", expand="fc2")
    return b.act(f"{prefix}.act", y, "relu")


def mobileone(variant: str = "s0", num_classes: int = 1000) -> Graph:
    """variant: the paper's S0 ... S4 ("s0" ... "s4")."""
    if variant not in VARIANTS:
        raise InputError(f"MobileOne variant must be one of {', '.join(map(repr, VARIANTS))} "
                         f"(the paper's S0-S4), got {variant!r}")
    factors, branches, se_pairs = VARIANTS[variant]
    b = NetBuilder()
    # timm builds the stem with one k x k branch in every variant (S0's 4 are in the stages)
    x = mobileone_block(b, Graph.INPUT, "stem", min(64, int(BASE_WIDTHS[0] * factors[0])), 3,
                        2, depthwise=False, branches=1, se=False)
    for s, (base, factor, pairs, n_se) in enumerate(zip(BASE_WIDTHS, factors, DEPTHS, se_pairs)):
        width = int(base * factor)
        for i in range(pairs):
            se = i >= pairs - n_se
            x = mobileone_block(b, x, f"stages.{s}.{2 * i}", b.channels[x], 3,
                                2 if i == 0 else 1, True, branches, se)
            x = mobileone_block(b, x, f"stages.{s}.{2 * i + 1}", width, 1, 1, False, branches, se)
    x = b.global_pool("head.global_pool", x)
    b.linear("head.fc", x, num_classes)
    return b.graph


def training_form(model):
    """``model`` as trained: the same weights, every branch its own conv (BN still folded),
    so ``training_form(m).summary()`` counts the multi-branch network that timm's
    ``mobileone_s*`` is before ``reparameterize``; ``m.summary()`` counts what runs."""
    from ..engine.passes import optimize
    trained = copy.copy(model)
    trained.plan = optimize(model.graph, reparam=False)
    return trained


for _variant in VARIANTS:
    register(ModelSpec(
        name=f"mobileone_{_variant}",
        build=mobileone,
        paper="Vasu et al. 2023, MobileOne (arXiv:2206.04040)",
        reference=f"timm.models.mobileone_{_variant}",
        layouts={"timm": None},
        defaults={"variant": _variant},
    ))
