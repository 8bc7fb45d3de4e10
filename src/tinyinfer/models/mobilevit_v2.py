"""MobileViTV2 (widths 0.5 ... 2.0).

Paper: Mehta & Rastegari, "Separable Self-attention for Mobile Vision Transformers", TMLR 2023
(arXiv:2206.02680). Reference implementation: timm's ``mobilevitv2_050`` ... ``_200``
(``timm/models/mobilevit.py``: ``_mobilevitv2_cfg``, ``MobileVitV2Block``,
``LinearTransformerBlock``, ``LinearSelfAttention``; stages built by ``byobnet.py``), whose
module names are the graph's node names, so its state_dict loads key for key.

The network (timm's config; every width is int(c * alpha) for the width multiplier alpha):

    stem      3x3 conv, stride 2, to 32 alpha; BN; SiLU
    stage 0   1 MV2 block to 64 alpha
    stage 1   2 MV2 blocks to 128 alpha, the first stride 2
    stage 2   MV2 block s2 to 256 alpha, then a MobileViTV2 block: 2 transformer blocks
    stage 3   MV2 block s2 to 384 alpha, then a MobileViTV2 block: 4 transformer blocks
    stage 4   MV2 block s2 to 512 alpha, then a MobileViTV2 block: 3 transformer blocks
    head      global average pool, fully connected to 1000 classes

MV2 block (timm's BottleneckBlock, MobileNetV2's inverted residual): 1x1 conv to 2x the input
channels + BN + SiLU, 3x3 depthwise (stride) + BN + SiLU, 1x1 conv + BN, + input when the
shape is kept. MobileViTV2 block on C channels, with d = C / 2:

    local      3x3 depthwise conv + BN + SiLU, 1x1 conv to d (no bias, no BN)
    global     per transformer block, on the map as tokens:
                   x = x + out_proj(separable_attention(qkv_proj(GroupNorm(x))))
                   x = x + fc2(SiLU(fc1(GroupNorm(x))))          (fc1 to 2d channels)
               then GroupNorm
    back       1x1 conv to C + BN (no activation)

Tokens are the pixels of 2x2 patches: timm unfolds the map to (B, d, 4, N), attends over the
N patches separately at each of the 4 pixel positions, and folds back. Every layer between
unfold and fold but the attention is blind to that layout (1x1 convs act per pixel, and
GroupNorm(1, d) normalizes over all of d x 4 x N = d x H x W, in any order), so the graph has
no unfold or fold nodes: the separable_attention kernel reads the map in place, with the
patch position of pixel (h, w) being (h % 2, w % 2). GroupNorm(1, C) is MobileViTV2's
"layer norm" (timm's GroupNorm1).

timm resizes a map whose height or width is odd to the next even size (bilinear,
align_corners=True) at the start of each MobileViTV2 block and keeps that size; so does the
``resize_to_patches`` node there (at 224 px the last block's 7x7 map runs as 8x8; at 256
every map fits and the node costs nothing).
"""
from __future__ import annotations

from ..engine.graph import Graph
from ..errors import InputError
from .blocks import make_divisible
from .builder import NetBuilder
from .registry import ModelSpec, register

STEM = 32
# one row per stage: output channels (x alpha), MV2 blocks, stride of the first, transformer
# blocks of the MobileViTV2 block that ends the stage (0: none)
STAGES = [
    (64, 1, 1, 0),
    (128, 2, 2, 0),
    (256, 1, 2, 2),
    (384, 1, 2, 4),
    (512, 1, 2, 3),
]
MV2_EXPANSION = 2.0        # the MV2 blocks' hidden channels: 2 x their input
TRANSFORMER_RATIO = 0.5    # d = C / 2 in every MobileViTV2 block
MLP_RATIO = 2.0            # the transformer MLP's hidden channels: 2d
PATCH = (2, 2)


def mv2_block(b: NetBuilder, x: str, prefix: str, out_ch: int, stride: int) -> str:
    """timm's BottleneckBlock(bottle_in=True, linear_out=True, group_size=1)."""
    in_ch = b.channels[x]
    mid = make_divisible(in_ch * MV2_EXPANSION)
    y = b.conv_bn_act(x, f"{prefix}.conv1_1x1.conv", f"{prefix}.conv1_1x1.bn", mid, 1,
                      act="silu")
    y = b.conv_bn_act(y, f"{prefix}.conv2_kxk.conv", f"{prefix}.conv2_kxk.bn", mid, 3, stride,
                      groups=mid, act="silu")
    y = b.conv_bn_act(y, f"{prefix}.conv3_1x1.conv", f"{prefix}.conv3_1x1.bn", out_ch, 1)
    return b.add(f"{prefix}.add", y, x) if stride == 1 and in_ch == out_ch else y


def transformer_block(b: NetBuilder, x: str, prefix: str) -> str:
    """timm's LinearTransformerBlock: pre-norm separable attention and 1x1-conv MLP."""
    d = b.channels[x]
    qkv = b.conv(f"{prefix}.attn.qkv_proj", b.group_norm(f"{prefix}.norm1", x), 1 + 2 * d, 1,
                 bias=True)
    a = b.separable_attention(f"{prefix}.attn", qkv, PATCH)
    x = b.add(f"{prefix}.add1", b.conv(f"{prefix}.attn.out_proj", a, d, 1, bias=True), x)
    h = b.conv(f"{prefix}.mlp.fc1", b.group_norm(f"{prefix}.norm2", x), int(d * MLP_RATIO), 1,
               bias=True)
    h = b.conv(f"{prefix}.mlp.fc2", b.act(f"{prefix}.mlp.act", h, "silu"), d, 1, bias=True)
    return b.add(f"{prefix}.add2", h, x)


def mobilevitv2_block(b: NetBuilder, x: str, prefix: str, depth: int) -> str:
    """timm's MobileVitV2Block (module docstring): local, global (``depth`` transformer
    blocks on d = C / 2 channels), back to C."""
    c = b.channels[x]
    x = b.resize_to_patches(f"{prefix}.resize", x, PATCH)   # odd maps only, as timm
    y = b.conv_bn_act(x, f"{prefix}.conv_kxk.conv", f"{prefix}.conv_kxk.bn", c, 3, groups=c,
                      act="silu")
    y = b.conv(f"{prefix}.conv_1x1", y, make_divisible(c * TRANSFORMER_RATIO), 1)
    for j in range(depth):
        y = transformer_block(b, y, f"{prefix}.transformer.{j}")
    y = b.group_norm(f"{prefix}.norm", y)
    return b.conv_bn_act(y, f"{prefix}.conv_proj.conv", f"{prefix}.conv_proj.bn", c, 1)


def mobilevitv2(width_mult: float = 1.0, num_classes: int = 1000) -> Graph:
    """MobileViTV2 at width multiplier ``width_mult`` (registered: 0.5 ... 2.0)."""
    if not (isinstance(width_mult, (int, float)) and not isinstance(width_mult, bool)
            and width_mult > 0):
        raise InputError(f"width_mult must be a number > 0 (the registered widths are "
                         f"0.5 ... 2.0), got {width_mult!r}")
    ch = lambda c: int(c * width_mult)   # timm: int(c * multiplier), no rounding to 8
    b = NetBuilder()
    x = b.conv_bn_act(Graph.INPUT, "stem.conv", "stem.bn", ch(STEM), 3, 2, act="silu")
    for s, (out_ch, repeats, stride, depth) in enumerate(STAGES):
        for i in range(repeats):
            x = mv2_block(b, x, f"stages.{s}.{i}", ch(out_ch), stride if i == 0 else 1)
        if depth:
            x = mobilevitv2_block(b, x, f"stages.{s}.{repeats}", depth)
    x = b.global_pool("head.global_pool", x)
    b.linear("head.fc", x, num_classes)
    return b.graph


for _name, _width in (("mobilevitv2_050", 0.5), ("mobilevitv2_075", 0.75),
                      ("mobilevitv2_100", 1.0), ("mobilevitv2_125", 1.25),
                      ("mobilevitv2_150", 1.5), ("mobilevitv2_175", 1.75),
                      ("mobilevitv2_200", 2.0)):
    register(ModelSpec(
        name=_name,
        build=mobilevitv2,
        paper="Mehta & Rastegari 2022, Separable Self-attention for Mobile Vision "
              "Transformers (arXiv:2206.02680)",
        reference=f"timm.models.{_name}",
        layouts={"timm": None},
        defaults={"width_mult": _width},
        # timm's pretrained_cfg: 256 px, bicubic, crop_pct 0.888 (256 / 0.888 = 288), and
        # no mean / std normalization (the cvnets models take pixels in [0, 1])
        input_size=256,
        resize=288,
        interpolation="bicubic",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    ))
