"""ShuffleNet (V1).

Paper: Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network for
Mobile Devices", CVPR 2018 (arXiv:1707.01083). Reference implementation: pytorchcv's
``pytorchcv/models/shufflenet.py`` (``pytorchcv.model_provider.get_model(name)``), whose
module names (features.init_block.conv / bn, features.stage{1,2,3}.unit{j}.compress_conv1 /
compress_bn1 / dw_conv2 / dw_bn2 / expand_conv3 / expand_bn3, output) are the graph's node
names, so its state_dict loads key for key.

The unit (the paper's Fig. 2 b, c): a grouped 1x1 conv down to a quarter of the unit's
output width (the bottleneck), BN, ReLU, a channel shuffle so the next grouped conv sees
every group's channels, a 3x3 depthwise conv and BN (no ReLU: the paper says so), a grouped
1x1 conv back up and BN. At stride 1 the input is added; at stride 2 (each stage's first
unit) the input is average-pooled (3x3, stride 2, pad 1) and concatenated after the conv
branch, which therefore outputs only (out - in) channels. ReLU after the add / concat.

Where pytorchcv decides what the paper leaves open, this file follows pytorchcv:
- the stem: 3x3 conv stride 2 to 24 channels, BN, ReLU, 3x3 stride-2 max pool (pad 1);
- the first unit of the first stage has an ungrouped first 1x1 (its input has only 24
  channels), and the shuffle after it is still done with ``groups``;
- a width multiplier w scales every width, stem included, as int(c * w), and the
  bottleneck is a quarter of the scaled stage width (integer division);
- the head is a 7x7 average pool (the whole map at 224 and 193); here a global average pool,
  equal wherever pytorchcv's runs, and defined at any resolution.
"""
from __future__ import annotations

from ..errors import InputError
from ..engine.graph import Graph
from .builder import NetBuilder
from .registry import ModelSpec, register

# The paper's Table 1. After the stem, three stages of units, the first of each with
# stride 2; then global pool and FC.
STAGE_REPEATS = (4, 8, 4)
STEM_CHANNELS = 24
#   output channels of stage2, stage3, stage4 per number of groups g (complexity ~ 140M
#   MFLOPs at every g: larger g, cheaper grouped 1x1s, so wider stages)
STAGE_WIDTHS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}


def shuffle_unit(b: NetBuilder, x: str, prefix: str, out_ch: int, groups: int,
                 downsample: bool, ignore_group: bool) -> str:
    """One unit: ``out_ch`` output channels (including, at stride 2, the pooled input's)."""
    in_ch = b.channels[x]
    mid = out_ch // 4                              # the bottleneck: 1/4 of the output
    branch_out = out_ch - in_ch if downsample else out_ch
    first_groups = 1 if ignore_group else groups
    _check_grouped(prefix, in_ch, mid, branch_out, groups, first_groups)
    y = b.conv_bn_act(x, f"{prefix}.compress_conv1", f"{prefix}.compress_bn1", mid, 1,
                      groups=first_groups, act="relu")
    if groups > 1:                                 # shuffling 1 group is the identity
        y = b.channel_shuffle(f"{prefix}.c_shuffle", y, groups)
    y = b.conv_bn_act(y, f"{prefix}.dw_conv2", f"{prefix}.dw_bn2", mid, 3,
                      2 if downsample else 1, groups=mid)
    y = b.conv_bn_act(y, f"{prefix}.expand_conv3", f"{prefix}.expand_bn3", branch_out, 1,
                      groups=groups)
    if downsample:
        shortcut = b.pool(f"{prefix}.avgpool", x, "avg_pool2d", kernel=3, stride=2, padding=1)
        y = b.concat(f"{prefix}.cat", [y, shortcut])
    else:
        y = b.add(f"{prefix}.add", y, x)
    return b.act(f"{prefix}.activ", y, "relu")


def _check_grouped(prefix, in_ch, mid, branch_out, groups, first_groups):
    """Every grouped conv needs whole groups and every conv at least one channel; a width
    multiplier can break either (the registered widths never do)."""
    if branch_out < 1 or mid < 1:
        raise InputError(f"ShuffleNet unit {prefix}: width_mult leaves {mid} bottleneck and "
                         f"{branch_out} output channels; use a larger width_mult")
    for what, c, g in (("input", in_ch, first_groups), ("bottleneck", mid, groups),
                       ("output", branch_out, groups)):
        if c % g:
            raise InputError(f"ShuffleNet unit {prefix}: {c} {what} channels do not split into "
                             f"{g} groups; choose a width_mult that keeps each width a "
                             f"multiple of groups (the registered ones: 1, 0.75, 0.5, 0.25)")


def shufflenet_v1(groups: int = 3, width_mult: float = 1.0, num_classes: int = 1000,
                  stem_channels: int | None = None) -> Graph:
    """groups: g of the paper's Table 1 (1, 2, 3, 4 or 8); width_mult: the paper's "s"
    (0.25, 0.5, 0.75, 1, 1.5 and 2 are registered); stem_channels: the stem conv's width
    (None: int(24 * width_mult), pytorchcv's rule; the authors' 1.5x keeps 24)."""
    if groups not in STAGE_WIDTHS:
        raise InputError(f"ShuffleNet groups must be one of {', '.join(map(str, STAGE_WIDTHS))} "
                         f"(the paper's Table 1), got {groups!r}")
    if not width_mult > 0:
        raise InputError(f"width_mult must be a number > 0 (1.0: the published network), "
                         f"got {width_mult!r}")
    if stem_channels is not None and not (isinstance(stem_channels, int) and stem_channels > 0):
        raise InputError(f"stem_channels must be an integer > 0, got {stem_channels!r}")
    stem = int(STEM_CHANNELS * width_mult) if stem_channels is None else stem_channels
    if stem < 1:
        raise InputError(f"width_mult={width_mult!r} leaves the stem no channels; use a "
                         f"larger width_mult")
    b = NetBuilder()
    x = b.conv_bn_act(Graph.INPUT, "features.init_block.conv", "features.init_block.bn", stem,
                      3, 2, act="relu")
    x = b.pool("features.init_block.pool", x, "max_pool2d", kernel=3, stride=2, padding=1)
    for s, (width, n) in enumerate(zip(STAGE_WIDTHS[groups], STAGE_REPEATS)):
        out_ch = int(width * width_mult)
        for j in range(n):
            x = shuffle_unit(b, x, f"features.stage{s + 1}.unit{j + 1}", out_ch, groups,
                             downsample=j == 0, ignore_group=s == 0 and j == 0)
    x = b.global_pool("features.final_pool", x)
    b.linear("output", x, num_classes)
    return b.graph


# pytorchcv's names: w1 = 1x, w3d4 = 0.75x, wd2 = 0.5x, wd4 = 0.25x
WIDTH_NAMES = {"w1": 1.0, "w3d4": 0.75, "wd2": 0.5, "wd4": 0.25}
REGISTERED = [(g, "w1") for g in STAGE_WIDTHS] + [(g, w) for g in (1, 3)
                                                  for w in ("w3d4", "wd2", "wd4")]

for _groups, _width in REGISTERED:
    register(ModelSpec(
        name=f"shufflenet_g{_groups}_{_width}",
        build=shufflenet_v1,
        paper="Zhang et al. 2018, ShuffleNet (arXiv:1707.01083)",
        reference=f"pytorchcv.models.shufflenet.shufflenet_g{_groups}_{_width}",
        layouts={"pytorchcv": None},
        defaults={"groups": _groups, "width_mult": WIDTH_NAMES[_width]},
    ))

# The paper's two wider g=3 networks (its Table 5; MobileNetV2's Table 4 "ShuffleNet (1.5)"
# and "(x2)"), which pytorchcv does not register; named in its style. Their stems are the
# authors' code's (megvii-model/ShuffleNet-Series, ShuffleNetV1/network.py): 24 channels at
# 1.5x, not int(24 * 1.5) = 36, and 48 at 2x. The reference is pytorchcv's ShuffleNet class
# at these widths (tests/reference_registry.py).
AUTHORS_WIDER = {"w3d2": (1.5, 24), "w2": (2.0, 48)}   # name: (width_mult, stem channels)

for _width, (_mult, _stem) in AUTHORS_WIDER.items():
    register(ModelSpec(
        name=f"shufflenet_g3_{_width}",
        build=shufflenet_v1,
        paper="Zhang et al. 2018, ShuffleNet (arXiv:1707.01083), Table 5",
        reference=f"pytorchcv ShuffleNet class at the authors' {_mult}x widths (stem {_stem})",
        layouts={"pytorchcv": None},
        defaults={"groups": 3, "width_mult": _mult, "stem_channels": _stem},
    ))
