"""EdgeViT XXS / XS / S.

Paper: Pan et al., "EdgeViTs: Competing Light-weight CNNs on Mobile Devices with Vision
Transformers", ECCV 2022 (arXiv:2205.03436). Reference implementation: the authors' code,
saic-fi/edgevit ``src/edgevit.py`` (Apache-2.0; no package ships it: the tests carry it as
tests/edgevit_ref.py). Node names are its module names, so the authors' state_dict loads key
for key: patch_embed{1-4}.proj / .norm, blocks{1-4}.{i}.LocalAgg.* and .SelfAttn.*, norm,
head.

Four stages, each a patch embedding (a k x k conv of stride k, k = 4, 2, 2, 2, then a
LayerNorm over channels) and LGL blocks at the stage's width C. An LGL block is
local - global - local information exchange:

    LocalAgg (stages 1-3)   x += dw3x3(x)                    conditional position encoding
                            x += 1x1(dw5x5(1x1(BN(x))))      local aggregation
                            x += 1x1(GELU(1x1(BN(x))))       conv feed-forward, ratio 4
    SelfAttn                x += dw3x3(x)                    conditional position encoding
                            x += proj(global(LN(x)))         (as tokens)
                            x += fc2(GELU(fc1(LN(x))))       feed-forward, ratio 4

where global() is sparse attention over "delegate" tokens: keep every r-th pixel of every
r-th row (avg-pool with a 1x1 window and stride r), multi-head self-attention among those
(H*W / r^2 tokens instead of H*W: r^4 = 256x fewer scores in stage 1), then a depthwise r x r
transposed conv of stride r spreads each delegate back over the r x r pixels it stood for
(local propagation) and a LayerNorm follows. Stage 4 (r = 1) is plain attention and has no
LocalAgg. Heads: C / head_dim.

Resolution: the delegate maps must tile their stage's map exactly, as in the reference
(which reshapes to H/r x W/r): floor(H/4) a multiple of 8, i.e. H = 32m .. 32m + 3 (224, 227,
256, ...). Elsewhere the propagated map and the stage's map differ and the residual add is
refused.
"""
from __future__ import annotations

from ..errors import InputError
from ..engine.graph import Graph
from .builder import NetBuilder
from .registry import ModelSpec, register

PATCH = (4, 2, 2, 2)              # patch-embedding stride (= kernel) per stage
SR = (4, 2, 2, 1)                 # delegate stride r per stage ("sr_ratios")
MLP_RATIO = 4
LN_EPS = 1e-6                     # the blocks' LayerNorms; PatchEmbed's and LocalProp's: 1e-5

# variant -> (blocks per stage, widths C per stage, head_dim), the authors' edgevit_* configs
VARIANTS = {
    "xxs": ((1, 1, 3, 2), (36, 72, 144, 288), 36),
    "xs": ((1, 1, 3, 1), (48, 96, 240, 384), 48),
    "s": ((1, 2, 5, 3), (48, 96, 240, 384), 48),
}


def residual_conv(b: NetBuilder, name: str, x: str, kernel: int) -> str:
    """x + dwconv(x) with bias (the position encodings; LocalAgg's 5x5 sits inside a branch)."""
    y = b.conv(name, x, b.channels[x], kernel, groups=b.channels[x], bias=True)
    return b.add(f"{name}.add", y, x)


def local_agg(b: NetBuilder, x: str, p: str) -> str:
    c = b.channels[x]
    x = residual_conv(b, f"{p}.pos_embed", x, 3)
    y = b.conv(f"{p}.conv1", b.bn(f"{p}.norm1", x), c, 1, bias=True)
    y = b.conv(f"{p}.conv2", b.conv(f"{p}.attn", y, c, 5, groups=c, bias=True), c, 1, bias=True)
    x = b.add(f"{p}.add1", y, x)
    y = b.conv(f"{p}.mlp.fc1", b.bn(f"{p}.norm2", x), MLP_RATIO * c, 1, bias=True)
    y = b.conv(f"{p}.mlp.fc2", b.act(f"{p}.mlp.act", y, "gelu"), c, 1, bias=True)
    return b.add(f"{p}.add2", y, x)


def global_sparse_attn(b: NetBuilder, tokens: str, like: str, p: str, heads: int,
                       r: int) -> str:
    """The authors' GlobalSparseAttn on ``tokens`` of the map ``like``: delegates, attention
    among them, local propagation, LayerNorm, then the output projection."""
    c = b.channels[tokens]
    if r == 1:
        return b.mhsa(p, tokens, heads)
    grid = b.from_tokens(f"{p}.grid", tokens, like)
    delegates = b.pool(f"{p}.sampler", grid, "avg_pool2d", kernel=1, stride=r)
    y = b.mhsa(p, b.to_tokens(f"{p}.delegates", delegates), heads, proj=False)
    y = b.from_tokens(f"{p}.delegate_grid", y, delegates)
    y = b.conv_transpose(f"{p}.LocalProp", y, c, r, stride=r, groups=c)
    y = b.layer_norm(f"{p}.norm", b.to_tokens(f"{p}.propagated", y))   # eps 1e-5
    return b.linear(f"{p}.proj", y, c)


def self_attn(b: NetBuilder, x: str, p: str, heads: int, r: int) -> str:
    c = b.channels[x]
    x = residual_conv(b, f"{p}.pos_embed", x, 3)
    t = b.to_tokens(f"{p}.tokens", x)
    y = global_sparse_attn(b, b.layer_norm(f"{p}.norm1", t, LN_EPS), x, f"{p}.attn", heads, r)
    t = b.add(f"{p}.add1", y, t)
    y = b.linear(f"{p}.mlp.fc1", b.layer_norm(f"{p}.norm2", t, LN_EPS), MLP_RATIO * c)
    y = b.linear(f"{p}.mlp.fc2", b.act(f"{p}.mlp.act", y, "gelu"), c)
    return b.from_tokens(f"{p}.map", b.add(f"{p}.add2", y, t), x)


def edgevit(variant: str = "xxs", num_classes: int = 1000) -> Graph:
    """variant: the authors' "xxs", "xs" or "s"."""
    if variant not in VARIANTS:
        raise InputError(f"EdgeViT variant must be one of {', '.join(map(repr, VARIANTS))}, "
                         f"got {variant!r}")
    depths, widths, head_dim = VARIANTS[variant]
    b = NetBuilder()
    x = Graph.INPUT
    for s, (depth, c, k, r) in enumerate(zip(depths, widths, PATCH, SR), start=1):
        x = b.conv(f"patch_embed{s}.proj", x, c, k, stride=k, padding=0, bias=True)
        x = b.layer_norm(f"patch_embed{s}.norm", x, kind="layer_norm_2d")   # eps 1e-5
        for i in range(depth):
            if r > 1:
                x = local_agg(b, x, f"blocks{s}.{i}.LocalAgg")
            x = self_attn(b, x, f"blocks{s}.{i}.SelfAttn", c // head_dim, r)
    x = b.global_pool("pool", b.bn("norm", x))
    b.linear("head", x, num_classes)
    return b.graph


for _variant in VARIANTS:
    register(ModelSpec(
        name=f"edgevit_{_variant}",
        build=edgevit,
        paper="Pan et al. 2022, EdgeViTs (ECCV 2022, arXiv:2205.03436)",
        reference="saic-fi/edgevit src/edgevit.py (the authors' code)",
        layouts={"edgevit": None},
        defaults={"variant": _variant},
        interpolation="bicubic",      # the authors' eval transform (DeiT's): resize 256, crop 224
    ))
