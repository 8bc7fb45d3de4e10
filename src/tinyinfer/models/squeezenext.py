"""SqueezeNeXt.

Paper: Gholami et al., "SqueezeNext: Hardware-Aware Neural Network Design", CVPR Workshops
2018 (arXiv:1803.10615). Reference implementation: pytorchcv's
``pytorchcv/models/squeezenext.py`` (``pytorchcv.model_provider.get_model(name)``), whose
module names (features.init_block.conv.conv / .bn, features.stage{i}.unit{j}.conv1 ... conv5
and identity_conv, each with .conv and .bn, features.final_block.conv / .bn, output) are the
graph's node names, so its state_dict loads key for key.

The unit (the paper's Fig. 1, right): a two-stage bottleneck of 1x1 convs (to C/r, then to
C/2r), the 3x3 conv split into a 1x3 and a 3x1 (separable in space, not depthwise: 2K
weights per channel pair instead of K^2), a 1x1 expansion to the unit's output width, and a
residual add, then ReLU. Every conv has a bias, BN and ReLU (the expansion too, before the
add). The non-square convs run on the general (im2col) conv kernel, which takes kh != kw.

Where pytorchcv decides what the paper leaves open, this file follows pytorchcv:
- the reduction r: 1 in each stage's first (stride-2) unit, whose first 1x1 carries the
  stride; 4 when the input is wider than the output (stage 1's first unit: 64 -> 32); else 2;
- the shortcut is a 1x1 conv (with BN and ReLU, carrying the stride) wherever r != 2;
- the stem is a 7x7 conv, stride 2, padding 1 (not 3), then a 3x3 stride-2 max pool with
  ceil_mode, so 224 -> 110 -> 55;
- a width multiplier w scales every width, stem and final 1x1 included, as int(c * w);
- the head is a 7x7 average pool (the whole map at 224); here a global average pool, equal
  wherever pytorchcv's runs, and defined at any resolution.
"""
from __future__ import annotations

from ..errors import InputError
from ..engine.graph import Graph
from .builder import NetBuilder
from .registry import ModelSpec, register

# The paper's Table (23-layer networks): a stem, four stages of units (the first unit of
# stages 2-4 with stride 2), a final 1x1 conv, global pool, FC.
STEM_CHANNELS = 64
STAGE_WIDTHS = (32, 64, 128, 256)
FINAL_CHANNELS = 128
#   units per stage: SqNxt-23 spreads them evenly, v5 moves them to the 14x14 stage (the
#   paper's hardware-guided variant: fewer units at the high-resolution, low-utilisation
#   stages)
STAGE_REPEATS = {"23": (6, 6, 8, 1), "23v5": (2, 4, 14, 1)}


def _conv_bn_relu(b: NetBuilder, x: str, prefix: str, out_ch: int, kh: int, kw: int,
                  stride: int = 1, padding: tuple[int, int] | None = None) -> str:
    """pytorchcv's ConvBlock: conv (with bias, 'same' padding at stride 1 for odd kernels)
    -> BN -> ReLU, named {prefix}.conv, {prefix}.bn. NetBuilder.conv is square-only, so the
    1x3 / 3x1 conv node is declared here: same op kind, padding (top, bottom, left, right).
    padding: (rows, columns) padded on each side, if not 'same'."""
    ph, pw = padding if padding is not None else ((kh - 1) // 2, (kw - 1) // 2)
    name = f"{prefix}.conv"
    b.graph.add_node(name, "conv2d", [x], {
        "stride": (stride, stride), "padding": (ph, ph, pw, pw), "dilation": (1, 1),
        "groups": 1, "act": 0},
        {"weight": (out_ch, b.channels[x], kh, kw), "bias": (out_ch,)})
    b.channels[name] = out_ch
    return b.act(f"{prefix}.bn.act", b.bn(f"{prefix}.bn", name), "relu")


def sqnxt_unit(b: NetBuilder, x: str, prefix: str, out_ch: int, stride: int) -> str:
    in_ch = b.channels[x]
    if stride == 2:
        reduction = 1                              # the first 1x1 downsamples, keeps width
    elif in_ch > out_ch:
        reduction = 4
    else:
        reduction = 2
    mid = in_ch // reduction
    if in_ch // (2 * reduction) < 1:
        raise InputError(f"SqueezeNeXt unit {prefix}: width_mult leaves its bottleneck no "
                         f"channels ({in_ch} inputs / {2 * reduction}); use a larger width_mult")
    y = _conv_bn_relu(b, x, f"{prefix}.conv1", mid, 1, 1, stride)
    y = _conv_bn_relu(b, y, f"{prefix}.conv2", in_ch // (2 * reduction), 1, 1)
    y = _conv_bn_relu(b, y, f"{prefix}.conv3", mid, 1, 3)
    y = _conv_bn_relu(b, y, f"{prefix}.conv4", mid, 3, 1)
    y = _conv_bn_relu(b, y, f"{prefix}.conv5", out_ch, 1, 1)
    shortcut = x
    if reduction != 2:                             # width or resolution changes
        shortcut = _conv_bn_relu(b, x, f"{prefix}.identity_conv", out_ch, 1, 1, stride)
    # pytorchcv's final ReLU is a no-op (both summands are ReLU outputs, so the sum is >= 0);
    # kept so the graph reads as the reference, and free: it is fused into the add
    return b.act(f"{prefix}.activ", b.add(f"{prefix}.add", y, shortcut), "relu")


def squeezenext(version: str = "23", width_mult: float = 1.0, num_classes: int = 1000) -> Graph:
    """version: "23" (blocks per stage 6, 6, 8, 1) or "23v5" (2, 4, 14, 1); width_mult: the
    paper's leading factor (1.0-SqNxt-23, 1.5-, 2.0-; 1, 1.5 and 2 are registered)."""
    if version not in STAGE_REPEATS:
        raise InputError(f"SqueezeNeXt version must be one of "
                         f"{', '.join(map(repr, STAGE_REPEATS))}, got {version!r}")
    if not (isinstance(width_mult, (int, float)) and width_mult > 0):
        raise InputError(f"width_mult must be a number > 0 (1.0: the published network), "
                         f"got {width_mult!r}")
    b = NetBuilder()
    stem = int(STEM_CHANNELS * width_mult)
    if stem < 1:
        raise InputError(f"width_mult={width_mult!r} leaves the stem no channels; use a "
                         f"larger width_mult")
    # pytorchcv's stem pads 1, not the 3 that keeps a 7x7 centred: 224 -> 110
    x = _conv_bn_relu(b, Graph.INPUT, "features.init_block.conv", stem, 7, 7, 2, (1, 1))
    x = b.pool("features.init_block.pool", x, "max_pool2d", kernel=3, stride=2,
               ceil_mode=True)
    for s, (width, n) in enumerate(zip(STAGE_WIDTHS, STAGE_REPEATS[version])):
        for j in range(n):
            x = sqnxt_unit(b, x, f"features.stage{s + 1}.unit{j + 1}", int(width * width_mult),
                           2 if j == 0 and s > 0 else 1)
    x = _conv_bn_relu(b, x, "features.final_block", int(FINAL_CHANNELS * width_mult), 1, 1)
    x = b.global_pool("features.final_pool", x)
    b.linear("output", x, num_classes)
    return b.graph


# pytorchcv's names: w1 = 1x, w3d2 = 1.5x, w2 = 2x
WIDTH_NAMES = {"w1": 1.0, "w3d2": 1.5, "w2": 2.0}
REGISTERED = [(v, w) for v in STAGE_REPEATS for w in WIDTH_NAMES]

for _version, _width in REGISTERED:
    register(ModelSpec(
        name=f"sqnxt{_version}_{_width}",
        build=squeezenext,
        paper="Gholami et al. 2018, SqueezeNext (arXiv:1803.10615)",
        reference=f"pytorchcv.models.squeezenext.sqnxt{_version}_{_width}",
        layouts={"pytorchcv": None},
        defaults={"version": _version, "width_mult": WIDTH_NAMES[_width]},
    ))
