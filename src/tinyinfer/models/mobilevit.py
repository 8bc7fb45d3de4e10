"""MobileViT (v1): MobileNetV2 blocks and MobileViT blocks, transformers as convolutions.

Paper: Mehta and Rastegari, "MobileViT: Light-weight, General-purpose, and Mobile-friendly
Vision Transformer", ICLR 2022 (arXiv:2110.02178). Reference implementation: timm's
``mobilevit_xxs`` / ``mobilevit_xs`` / ``mobilevit_s`` (timm.models.mobilevit, a port of
Apple's ml-cvnets, built by timm.models.byobnet), whose module names are the graph's node
names, so timm's (and ml-cvnets-converted) checkpoints load key for key.

The MobileViT block (paper Section 3.1, Figure 1b), on a map of C channels:
    local:   3x3 conv (C -> C) + BN + SiLU, then 1x1 conv (C -> d), no BN: to the transformer
             width d
    global:  unfold into 2x2 patches: P = 4 sequences (one per pixel position inside a
             patch) of N = HW/4 tokens each; L transformer blocks over each sequence
             (pre-norm: x + MHSA(LN(x)), x + MLP(LN(x)), MLP d -> 2d -> d with SiLU), a
             final LayerNorm, fold back to the map
    fuse:    1x1 conv (d -> C) + BN + SiLU, concatenate with the block's input (2C), 3x3 conv
             (2C -> C) + BN + SiLU
Attention runs between the same pixel of different patches; each pixel already saw its
3x3 neighbourhood through the local conv, so every pixel sees every other (Figure 4).
A map whose side is not a multiple of 2 (e.g. 7x7 at 224 px) is resized bilinearly to the
next multiple before the unfold and back after the fold, as timm does (kernels/tokens.py).

attention="performer" (any variant) swaps each softmax attention for FAVOR+ (Performer,
kernels/attention_favor.py) with the same weights: what performer-pytorch's FastAttention
computes in place of timm's softmax. Each layer's (M, D) projection is drawn when the graph
is built, seeded by the layer's name (the same matrix in every build), as performer-pytorch
draws it (gaussian_orthogonal_projection); it is not read from the checkpoint, so a softmax
checkpoint loads as it is. features=M (0: performer's default int(D ln D) for head dim D).
"""
from __future__ import annotations

import math
import zlib

from ..engine.graph import Graph
from ..errors import InputError
from ..kernels.attention_favor import gaussian_orthogonal_projection
from .blocks import make_divisible
from .builder import NetBuilder
from .registry import ModelSpec, register

# The paper's architecture table (Appendix, "MobileViT architecture"), one row per layer,
# as timm's model_cfgs spell it out. After the stem (3x3 conv, stride 2, 16 channels):
#   ("mv2", c, s, n)          n MobileNetV2 blocks to c channels, the first with stride s
#   ("vit", c, s, d, L)       one MV2 block to c (stride s), then a MobileViT block of
#                             transformer width d and depth L (2x2 patches, 4 heads)
# then a 1x1 conv to ``head`` channels, global pool, linear classifier. ``expansion``: the
# MV2 blocks' expansion ratio (2 for XXS, 4 for XS and S).
ARCHS = {
    "xxs": dict(expansion=2, head=320, layers=[
        ("mv2", 16, 1, 1),
        ("mv2", 24, 2, 3),
        ("vit", 48, 2, 64, 2),
        ("vit", 64, 2, 80, 4),
        ("vit", 80, 2, 96, 3)]),
    "xs": dict(expansion=4, head=384, layers=[
        ("mv2", 32, 1, 1),
        ("mv2", 48, 2, 3),
        ("vit", 64, 2, 96, 2),
        ("vit", 80, 2, 120, 4),
        ("vit", 96, 2, 144, 3)]),
    "s": dict(expansion=4, head=640, layers=[
        ("mv2", 32, 1, 1),
        ("mv2", 64, 2, 3),
        ("vit", 96, 2, 144, 2),
        ("vit", 128, 2, 192, 4),
        ("vit", 160, 2, 240, 3)]),
}
STEM = 16
PATCH = (2, 2)
HEADS = 4
MLP_RATIO = 2
ACT = "silu"
LN_EPS = 1e-5


def conv_bn_act(b: NetBuilder, x: str, prefix: str, out_ch: int, kernel: int, stride: int = 1,
                groups: int = 1, act: str | None = ACT) -> str:
    """timm's ConvNormAct: {prefix}.conv, {prefix}.bn (BN with its activation)."""
    return b.conv_bn_act(x, f"{prefix}.conv", f"{prefix}.bn", out_ch, kernel, stride,
                         groups, act=act)


def mv2_block(b: NetBuilder, x: str, prefix: str, out_ch: int, stride: int,
              expansion: float) -> str:
    """MobileNetV2's inverted residual (timm's BottleneckBlock, bottle_in, linear_out):
    1x1 expand + SiLU, 3x3 depthwise (stride) + SiLU, 1x1 project, + input if shapes allow."""
    in_ch = b.channels[x]
    mid = make_divisible(in_ch * expansion)
    y = conv_bn_act(b, x, f"{prefix}.conv1_1x1", mid, 1)
    y = conv_bn_act(b, y, f"{prefix}.conv2_kxk", mid, 3, stride, groups=mid)
    y = conv_bn_act(b, y, f"{prefix}.conv3_1x1", out_ch, 1, act=None)
    return b.add(f"{prefix}.add", y, x) if stride == 1 and in_ch == out_ch else y


ATTENTIONS = ("softmax", "performer")


def attention_layer(b: NetBuilder, x: str, prefix: str, kind: str = "softmax",
                    features: int = 0) -> str:
    """The token mixer of a transformer block (the one place attention nodes are made):
    timm's Attention, or with kind="performer" the same node and weights with FAVOR+ inside
    (module docstring)."""
    y = b.mhsa(prefix, x, HEADS)
    if kind == "performer":
        D = b.channels[x] // HEADS
        node = b.graph[y]
        node.kind = "favor_attention"
        node.attrs.update(causal=False, projection=gaussian_orthogonal_projection(
            features or int(D * math.log(D)), D, seed=zlib.crc32(prefix.encode())))
    return y


def transformer_block(b: NetBuilder, x: str, prefix: str, **attn) -> str:
    """timm's vision_transformer.Block, pre-norm: x + attn(norm1(x)), x + mlp(norm2(x)).
    ``attn``: attention_layer()'s kind and features."""
    d = b.channels[x]
    y = attention_layer(b, b.layer_norm(f"{prefix}.norm1", x, LN_EPS), f"{prefix}.attn",
                        **attn)
    x = b.add(f"{prefix}.add1", y, x)
    y = b.layer_norm(f"{prefix}.norm2", x, LN_EPS)
    y = b.act(f"{prefix}.mlp.act", b.linear(f"{prefix}.mlp.fc1", y, MLP_RATIO * d), ACT)
    return b.add(f"{prefix}.add2", b.linear(f"{prefix}.mlp.fc2", y, d), x)


def mobilevit_block(b: NetBuilder, x: str, prefix: str, dim: int, depth: int, **attn) -> str:
    """Local 3x3 + 1x1 to ``dim``; unfold; ``depth`` transformer blocks; norm; fold; 1x1 back
    to the input's channels; concat with the input; 3x3 fusion conv (module docstring)."""
    c = b.channels[x]
    y = conv_bn_act(b, x, f"{prefix}.conv_kxk", c, 3)
    y = b.conv(f"{prefix}.conv_1x1", y, dim, 1)
    t = b.unfold_patches(f"{prefix}.unfold", y, PATCH)
    for i in range(depth):
        t = transformer_block(b, t, f"{prefix}.transformer.{i}", **attn)
    t = b.layer_norm(f"{prefix}.norm", t, LN_EPS)
    y = b.fold_patches(f"{prefix}.fold", t, like=x, patch=PATCH)   # x: same H, W as y
    y = conv_bn_act(b, y, f"{prefix}.conv_proj", c, 1)
    y = b.concat(f"{prefix}.cat", [x, y])
    return conv_bn_act(b, y, f"{prefix}.conv_fusion", c, 3)


def mobilevit(variant: str = "s", num_classes: int = 1000, attention: str = "softmax",
              features: int = 0) -> Graph:
    """MobileViT-XXS, -XS or -S (``variant`` "xxs", "xs", "s"): stem, stages (timm's
    ``stages.{s}.{i}``), 1x1 head conv, classifier. attention="performer": FAVOR+ with
    ``features`` random features per layer (module docstring)."""
    if variant not in ARCHS:
        raise InputError(f"unknown MobileViT variant {variant!r}; choose one of "
                         f"{', '.join(map(repr, ARCHS))}")
    if attention not in ATTENTIONS:
        raise InputError(f"unknown attention {attention!r}; choose one of "
                         f"{', '.join(map(repr, ATTENTIONS))}")
    if features < 0 or (features and attention != "performer"):
        raise InputError(f"features={features} is the number of FAVOR+ random features: "
                         f"an integer >= 1 with attention='performer' (0: its default)")
    arch = ARCHS[variant]
    b = NetBuilder()
    x = conv_bn_act(b, Graph.INPUT, "stem", STEM, 3, 2)
    for s, (kind, c, stride, *rest) in enumerate(arch["layers"]):
        if kind == "mv2":
            for i in range(rest[0]):
                x = mv2_block(b, x, f"stages.{s}.{i}", c, stride if i == 0 else 1,
                              arch["expansion"])
        else:
            x = mv2_block(b, x, f"stages.{s}.0", c, stride, arch["expansion"])
            x = mobilevit_block(b, x, f"stages.{s}.1", *rest, kind=attention,
                                features=features)
    x = conv_bn_act(b, x, "final_conv", arch["head"], 1)
    x = b.global_pool("head.global_pool", x)
    b.linear("head.fc", x, num_classes)
    return b.graph


for _variant in ARCHS:
    register(ModelSpec(
        name=f"mobilevit_{_variant}",
        build=mobilevit,
        paper="Mehta and Rastegari 2022, MobileViT: Light-weight, General-purpose, and "
              "Mobile-friendly Vision Transformer (arXiv:2110.02178)",
        reference=f"timm.models.mobilevit_{_variant}",
        layouts={"timm": None},
        defaults={"variant": _variant, "attention": "softmax", "features": 0},
        option_limits={"features": 4096},
        # timm's pretrained_cfg: 256 px, crop_pct 0.9 (resize 284), bicubic, and no
        # normalization (mean 0, std 1: the network takes pixels in [0, 1])
        input_size=256,
        resize=284,
        interpolation="bicubic",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    ))
