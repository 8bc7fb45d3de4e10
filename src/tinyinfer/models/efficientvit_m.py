"""EfficientViT-M0 ... M5, Microsoft's "memory efficient" vision transformer.

Paper: Liu et al., "EfficientViT: Memory Efficient Vision Transformer with Cascaded Group
Attention", CVPR 2023 (arXiv:2305.07027). Reference implementation: timm's
``efficientvit_m0`` ... ``efficientvit_m5`` (``timm.models.efficientvit_msra``, ported from
microsoft/Cream), whose module names are the graph's node names, so timm checkpoints load
name for name.

The network: an overlapping patch embedding (four 3x3 stride-2 conv+BN, ReLU
between: /16), then three stages of EfficientViT blocks, stages 2 and 3 entered through a
subsample block; global average pool, BN, linear. Everything is conv + BN (no LayerNorm):
BN folds into the convs at load time.

An EfficientViT block is the paper's "sandwich layout": one attention between two pairs
of (depthwise 3x3 conv, FFN), each a residual:

    x = x + DW(x);  x = x + FFN(x);  x = x + Attn(x);  x = x + DW(x);  x = x + FFN(x)

FFN = 1x1 conv to 2C, ReLU, 1x1 conv back. Attn = cascaded group attention in local
windows (kernels/attention_cascaded.py: one node of kind ``cascaded_group_attention``),
then ReLU and a 1x1 conv projection (the ReLU runs in the attention node's output, the
projection is an ordinary conv node, so its BN folds and the residual add fuses into it).

A subsample block (timm's downsample) is (DW, FFN) residuals at the old width, then the
"patch merging" inverted residual (1x1 to 4C, ReLU, 3x3 depthwise stride 2, ReLU, SE, 1x1
to the new width, no shortcut), then (DW, FFN) residuals at the new width.

Windows: timm fixes each stage's attention window when the model is built, as min(7,
the stage's map size at its ``img_size``): 7, 7, 4 at 224. The graph keeps those windows
at every input size, as timm's module does: a 15x15 map (input 225..240) is padded to three
7x7 windows across. The option ``windows`` sets them (``stage_windows(img_size)`` gives
those of timm's model built with another img_size).
"""
from __future__ import annotations

from ..engine.graph import Graph
from ..errors import InputError
from .blocks import make_divisible
from .builder import NetBuilder
from .registry import ModelSpec, register

PAPER = ("Liu et al. 2023, EfficientViT: Memory Efficient Vision Transformer with Cascaded "
         "Group Attention (CVPR 2023, arXiv:2305.07027)")

# The paper's table of the model variants' architecture: per stage the width C_i, the
# number of blocks L_i and of heads H_i; the key dim is 16 and the window 7 in every stage. The last column, each head's kernel of the
# depthwise conv on q, is not in that table: it is timm's / the authors' code's ``kernels``.
#                  C1   C2   C3    L1 L2 L3   H1 H2 H3   q-conv kernel per head
VARIANTS = {
    "efficientvit_m0": ((64, 128, 192), (1, 2, 3), (4, 4, 4), (5, 5, 5, 5)),
    "efficientvit_m1": ((128, 144, 192), (1, 2, 3), (2, 3, 3), (7, 5, 3, 3)),
    "efficientvit_m2": ((128, 192, 224), (1, 2, 3), (4, 3, 2), (7, 5, 3, 3)),
    "efficientvit_m3": ((128, 240, 320), (1, 2, 3), (4, 3, 4), (5, 5, 5, 5)),
    "efficientvit_m4": ((128, 256, 384), (1, 2, 3), (4, 4, 4), (7, 5, 3, 3)),
    "efficientvit_m5": ((192, 288, 384), (1, 3, 4), (3, 3, 4), (7, 5, 3, 3)),
}
KEY_DIM = 16
WINDOW = 7
PATCH = 16      # the patch embedding's four stride-2 convs


def conv_bn(b: NetBuilder, x: str, name: str, out_ch: int, kernel: int = 1, stride: int = 1,
            groups: int = 1, act: str | None = None) -> str:
    """timm's ConvNorm (conv without bias, BN) named ``{name}.conv`` / ``{name}.bn``."""
    return b.conv_bn_act(x, f"{name}.conv", f"{name}.bn", out_ch, kernel, stride, groups, act)


def dw_residual(b: NetBuilder, x: str, name: str) -> str:
    """x + BN(depthwise 3x3 conv(x))"""
    return b.add(f"{name}.add", conv_bn(b, x, f"{name}.m", b.channels[x], 3,
                                        groups=b.channels[x]), x)


def ffn_residual(b: NetBuilder, x: str, name: str) -> str:
    """x + FFN(x): 1x1 conv to 2C, ReLU, 1x1 conv back (timm's ConvMlp)"""
    c = b.channels[x]
    y = conv_bn(b, x, f"{name}.m.pw1", 2 * c, act="relu")
    return b.add(f"{name}.add", conv_bn(b, y, f"{name}.m.pw2", c), x)


def cascaded_group_attention(b: NetBuilder, x: str, name: str, heads: int, kernels,
                             window: int) -> str:
    """One ``cascaded_group_attention`` node (timm's CascadedGroupAttention before its
    projection, windows included) with its output ReLU, holding timm's parameters under
    their names: per head qkvs.{h} (1x1 conv C/H -> 2*16 + C/H, BN) and dws.{h} (depthwise
    conv on q, BN), and attention_biases (heads, window^2)."""
    c = b.channels[x]
    cg, qkv = c // heads, 2 * KEY_DIM + c // heads
    bn = lambda n: {f"{n}.bn.{p}": (n_ch,) for p in ("weight", "bias", "running_mean",
                                                      "running_var")
                    for n_ch in [qkv if n.startswith("qkvs") else KEY_DIM]}
    shapes = {"attention_biases": (heads, window * window)}
    for h in range(heads):
        k = kernels[h]
        shapes.update({f"qkvs.{h}.conv.weight": (qkv, cg, 1, 1), **bn(f"qkvs.{h}"),
                       f"dws.{h}.conv.weight": (KEY_DIM, 1, k, k), **bn(f"dws.{h}")})
    b.graph.add_node(name, "cascaded_group_attention", [x], {
        "key_dim": KEY_DIM, "window": window, "kernels": tuple(kernels[:heads]),
        "eps": b.bn_eps, "act": 1}, shapes)   # act 1: ReLU, the first layer of timm's proj
    b.channels[name] = c
    return name


def attention_residual(b: NetBuilder, x: str, name: str, heads: int, kernels,
                       window: int) -> str:
    """x + proj(ReLU(cascaded group attention(x)))  (timm's LocalWindowAttention)"""
    y = cascaded_group_attention(b, x, f"{name}.m.attn", heads, kernels, window)
    return b.add(f"{name}.add", conv_bn(b, y, f"{name}.m.attn.proj.1", b.channels[x]), x)


def efficientvit_block(b: NetBuilder, x: str, name: str, heads: int, kernels,
                       window: int) -> str:
    """The sandwich: DW, FFN, attention, DW, FFN (each a residual)."""
    x = ffn_residual(b, dw_residual(b, x, f"{name}.dw0"), f"{name}.ffn0")
    x = attention_residual(b, x, f"{name}.mixer", heads, kernels, window)
    return ffn_residual(b, dw_residual(b, x, f"{name}.dw1"), f"{name}.ffn1")


def subsample(b: NetBuilder, x: str, name: str, out_ch: int) -> str:
    """(DW, FFN) at the old width, patch merging to ``out_ch`` at stride 2, (DW, FFN)."""
    x = ffn_residual(b, dw_residual(b, x, f"{name}.res1.0"), f"{name}.res1.1")
    hid = 4 * b.channels[x]
    pm = f"{name}.patchmerge"
    y = conv_bn(b, x, f"{pm}.conv1", hid, act="relu")
    y = conv_bn(b, y, f"{pm}.conv2", hid, 3, 2, groups=hid, act="relu")
    # timm's SqueezeExcite(hid, 0.25): fc1/fc2 1x1 convs with bias, ReLU, sigmoid gate
    y = b.se(f"{pm}.se", y, make_divisible(hid * 0.25, 8, round_limit=0.0), act="relu",
             gate="sigmoid", reduce="fc1", expand="fc2")
    x = conv_bn(b, y, f"{pm}.conv3", out_ch)
    return ffn_residual(b, dw_residual(b, x, f"{name}.res2.0"), f"{name}.res2.1")


def stage_windows(img_size: int, stages: int = 3) -> list[int]:
    """Each stage's attention window as timm fixes it at construction: min(7, the stage's
    map size at ``img_size``), map size img_size // 16, then halved rounding up."""
    res, out = img_size // PATCH, []
    for s in range(stages):
        res = res if s == 0 else (res - 1) // 2 + 1
        out.append(min(WINDOW, res))
    return out


def efficientvit_m(embed_dim, depth, num_heads, kernels, windows=(7, 7, 4),
                   num_classes: int = 1000) -> Graph:
    """The network of one row of VARIANTS, with each stage's attention window (see the
    module docstring); the graph runs at any input size."""
    windows = tuple(windows)
    if len(windows) != len(embed_dim) or not all(isinstance(w, int) and w >= 1
                                                 for w in windows):
        raise InputError(f"windows must be {len(embed_dim)} integers >= 1, one per stage "
                         f"(timm's at 224: {tuple(stage_windows(224))}), got {windows!r}")
    for c, h in zip(embed_dim, num_heads):
        if c % h or len(kernels) < h:
            raise InputError(f"a stage of width {c} with {h} heads needs {h} | {c} and a "
                             f"q-conv kernel per head (kernels={tuple(kernels)})")
    b = NetBuilder()
    x, c0 = Graph.INPUT, embed_dim[0]
    for i, ch in enumerate((c0 // 8, c0 // 4, c0 // 2, c0)):     # the /16 patch embedding
        x = conv_bn(b, x, f"patch_embed.conv{i + 1}", ch, 3, 2, act="relu" if i < 3 else None)
    for s, (ch, n, heads, window) in enumerate(zip(embed_dim, depth, num_heads, windows)):
        if s > 0:
            x = subsample(b, x, f"stages.{s}.downsample", ch)
        for i in range(n):
            x = efficientvit_block(b, x, f"stages.{s}.blocks.{i}", heads, kernels, window)
    x = b.global_pool("global_pool", x)
    b.linear("head.linear", b.bn("head.bn", x), num_classes)   # timm's NormLinear: BN1d, FC
    return b.graph


for _name, (_dims, _depth, _heads, _kernels) in VARIANTS.items():
    register(ModelSpec(
        name=_name,
        build=efficientvit_m,
        paper=PAPER,
        reference=f"timm.models.{_name}",
        layouts={"timm": None},
        defaults={"embed_dim": _dims, "depth": _depth, "num_heads": _heads,
                  "kernels": _kernels, "windows": tuple(stage_windows(224))},
        interpolation="bicubic",   # timm's pretrained_cfg: bicubic, crop_pct 0.875
    ))
