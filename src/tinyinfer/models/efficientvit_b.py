"""EfficientViT-B0 ... B3 (MIT's EfficientViT: multi-scale ReLU linear attention).

Paper: Cai, Li, Hu, Gan, Han, "EfficientViT: Multi-Scale Linear Attention for High-Resolution
Dense Prediction", ICCV 2023 (arXiv:2205.14756). Reference implementation: timm's
``efficientvit_b0`` ... ``efficientvit_b3`` (``timm.models.efficientvit_mit``, adapted from
the authors' mit-han-lab/efficientvit), whose state_dict names are the graph's node names.
(Microsoft's "memory efficient" EfficientViT-M0..M5 is another network: efficientvit_m.py.)

The network, as timm's ``EfficientVit`` builds it (the authors' design, layer for layer):

    stem      3x3 conv stride 2 + BN + hardswish, then residual DSConv blocks (depthwise 3x3
              + BN + hardswish, 1x1 + BN)
    stage 1-2 MBConv (1x1 expand x4, depthwise 3x3, 1x1 project; BN, hardswish): the first
              at stride 2, the rest residual                                (stride 4, 8)
    stage 3-4 an MBConv at stride 2 whose expand and depthwise convs have a bias and no BN
              ("fewer norm"), then EfficientViT modules                     (stride 16, 32)
    head      1x1 conv + BN + hardswish, global average pool, linear (no bias) + LayerNorm +
              hardswish, classifier

An EfficientViT module is two residual blocks: a context block, LiteMLA (below), and a local
block, the fewer-norm MBConv. LiteMLA ("lightweight multi-scale attention"):

    qkv       1x1 conv to 3 * heads * dim channels, no bias, no norm (heads = C / dim)
    aggregate per scale (timm and the paper: 5): depthwise 5x5 + grouped 1x1 (one group per
              head's q, k or v), so nearby tokens are mixed into new "multi-scale" tokens
    attention concat [qkv, aggregated]: 2 * heads heads, each [q, k, v] of dim channels, and
              ReLU linear attention over all H*W pixels (kernels/attention_linear.py):
              linear in the number of pixels, which is the paper's point
    proj      1x1 conv + BN back to C channels
"""
from __future__ import annotations

from functools import partial

from ..engine.graph import Graph
from ..kernels.attention_linear import LITEMLA_EPS
from .builder import NetBuilder
from .registry import ModelSpec, register

# The configurations of the paper's B series (timm's efficientvit_b0 ... b3).
#   widths    channels of the stem and of stages 1-4 (stride 2, then 4, 8, 16, 32)
#   depths    DSConv blocks in the stem, then blocks per stage (stages 3-4: EfficientViT
#             modules after the stride-2 MBConv; stages 1-2: MBConvs including it)
#   head_dim  channels per attention head
#   head      channels of the head's 1x1 conv and of its hidden linear layer
#                    widths                    depths           head_dim  head
EFFICIENTVIT_B = {
    "efficientvit_b0": ((8, 16, 32, 64, 128),    (1, 2, 2, 2, 2),  16,  (1024, 1280)),
    "efficientvit_b1": ((16, 32, 64, 128, 256),  (1, 2, 3, 3, 4),  16,  (1536, 1600)),
    "efficientvit_b2": ((24, 48, 96, 192, 384),  (1, 3, 4, 4, 6),  32,  (2304, 2560)),
    "efficientvit_b3": ((32, 64, 128, 256, 512), (1, 4, 6, 6, 9),  32,  (2304, 2560)),
}
EXPAND_RATIO = 4           # every MBConv's expansion
ATTENTION_SCALES = (5,)    # kernel of each multi-scale aggregation
ACT = "hswish"
VIT_STAGES = (2, 3)        # stages 3 and 4 (0-based): attention


def conv_norm_act(b: NetBuilder, x: str, prefix: str, out_ch: int, kernel: int, stride: int = 1,
                  groups: int = 1, norm: bool = True, act: str | None = None) -> str:
    """timm's ConvNormAct: conv ``{prefix}.conv`` (a bias exactly when there is no norm, as
    every EfficientViT-B layer has it), BN ``{prefix}.norm``, activation."""
    y = b.conv(f"{prefix}.conv", x, out_ch, kernel, stride, groups, bias=not norm)
    if norm:
        y = b.bn(f"{prefix}.norm", y)
    return b.act(f"{prefix}.act", y, act) if act else y


def ds_conv(b: NetBuilder, x: str, prefix: str, out_ch: int) -> str:
    """DSConv: depthwise 3x3 + BN + hardswish, 1x1 + BN."""
    y = conv_norm_act(b, x, f"{prefix}.depth_conv", b.channels[x], 3, groups=b.channels[x],
                      act=ACT)
    return conv_norm_act(b, y, f"{prefix}.point_conv", out_ch, 1)


def mb_conv(b: NetBuilder, x: str, prefix: str, out_ch: int, stride: int,
            fewer_norm: bool = False) -> str:
    """MBConv: 1x1 expand + hardswish, depthwise 3x3 (stride) + hardswish, 1x1 project + BN.
    ``fewer_norm`` (the attention stages): no BN after the first two convs, a bias instead."""
    mid = round(b.channels[x] * EXPAND_RATIO)
    y = conv_norm_act(b, x, f"{prefix}.inverted_conv", mid, 1, norm=not fewer_norm, act=ACT)
    y = conv_norm_act(b, y, f"{prefix}.depth_conv", mid, 3, stride, groups=mid,
                      norm=not fewer_norm, act=ACT)
    return conv_norm_act(b, y, f"{prefix}.point_conv", out_ch, 1)


def lite_mla(b: NetBuilder, x: str, prefix: str, dim: int) -> str:
    """timm's LiteMLA (module docstring): qkv, multi-scale aggregation, ReLU linear
    attention, projection."""
    channels = b.channels[x]
    heads = channels // dim
    qkv = b.conv(f"{prefix}.qkv.conv", x, 3 * heads * dim, 1)
    tokens = [qkv]
    for i, k in enumerate(ATTENTION_SCALES):
        y = b.conv(f"{prefix}.aggreg.{i}.0", qkv, 3 * heads * dim, k, groups=3 * heads * dim)
        tokens.append(b.conv(f"{prefix}.aggreg.{i}.1", y, 3 * heads * dim, 1,
                             groups=3 * heads))
    y = b.concat(f"{prefix}.multi_scale_qkv", tokens)
    attn = f"{prefix}.attn"
    b.graph.add_node(attn, "relu_linear_attention", [y], {"dim": dim, "eps": LITEMLA_EPS})
    b.channels[attn] = b.channels[y] // 3
    return conv_norm_act(b, attn, f"{prefix}.proj", channels, 1)


def residual(b: NetBuilder, block, x: str, prefix: str, *args, **kwargs) -> str:
    """timm's ResidualBlock with an identity shortcut: ``{prefix}.main`` + x."""
    return b.add(f"{prefix}.add", block(b, x, f"{prefix}.main", *args, **kwargs), x)


def efficientvit_b(widths, depths, head_dim: int, head, num_classes: int = 1000) -> Graph:
    b = NetBuilder()
    x = conv_norm_act(b, Graph.INPUT, "stem.in_conv", widths[0], 3, 2, act=ACT)
    for i in range(depths[0]):
        x = residual(b, ds_conv, x, f"stem.res{i}", widths[0])
    for s, (width, depth) in enumerate(zip(widths[1:], depths[1:])):
        prefix = f"stages.{s}.blocks"
        vit = s in VIT_STAGES
        x = mb_conv(b, x, f"{prefix}.0.main", width, 2, fewer_norm=vit)
        if vit:     # EfficientViT modules: context (attention) block, then local block
            for i in range(1, depth + 1):
                x = residual(b, lite_mla, x, f"{prefix}.{i}.context_module", head_dim)
                x = residual(b, mb_conv, x, f"{prefix}.{i}.local_module", width, 1,
                             fewer_norm=True)
        else:
            for i in range(1, depth):
                x = residual(b, mb_conv, x, f"{prefix}.{i}", width, 1)
    x = conv_norm_act(b, x, "head.in_conv", head[0], 1, act=ACT)
    x = b.global_pool("head.global_pool", x)
    x = b.linear("head.classifier.0", x, head[1], bias=False)
    x = b.act("head.classifier.2", b.layer_norm("head.classifier.1", x), ACT)
    b.linear("head.classifier.4", x, num_classes)
    return b.graph


for _name, _config in EFFICIENTVIT_B.items():
    register(ModelSpec(
        name=_name,
        build=partial(efficientvit_b, *_config),
        paper="Cai et al. 2023, EfficientViT: Multi-Scale Linear Attention for High-Resolution "
              "Dense Prediction (arXiv:2205.14756)",
        reference=f"timm.models.{_name}",
        layouts={"timm": None},
        # timm's pretrained_cfg (the r224_in1k weights): 224 px, crop_pct 0.95, bicubic
        input_size=224, resize=int(224 / 0.95), interpolation="bicubic",
    ))
