"""What kind of convolution a conv is, and which loop runs it: decided here, once.

Two questions with two answers, both from shapes alone:

``conv_class(w_shape, groups)`` -- what the layer *is*, the papers' classes. Reports name
layers by it (MobileNet's Table 2: "Conv DW 3x3", "Conv 1x1", ...) and activation memory
asks it whether a slice of input channels gives a slice of output channels:

    "depthwise"  groups > 1 and one input channel per group (groups == Cin)
    "grouped"    groups > 1 and several input channels per group (RegNet, ResNeXt)
    "pointwise"  groups == 1, 1x1 kernel
    "dense"      groups == 1, any larger kernel

``conv_variant(w_shape, groups, stride, padding, out_pixels, dilation, batch)`` -- which of the
kernel's loops runs it (kernels/conv.py's dispatch table; the loops are described there):

    "depthwise"  one input channel per group, and a kernel or stride larger than 1:
                 plane by plane. A dense conv over ONE input channel runs here too (it is
                 a depthwise conv with channel multiplier Cout).
    "grouped"    several input channels per group, kernel larger than 1x1: direct loop
    "winograd"   3x3, stride 1, no dilation, groups == 1, and ``winograd_wins`` (64+ input
                 channels, or 16+ on maps of up to WINOGRAD_SMALL_MAP output pixels; on
                 AVX-512 also WINOGRAD_MIN_TILES 2x2 tiles over the batch):
                 kernels/conv_winograd.py's F(2x2, 3x3), 2.25x fewer multiplies
    "gemm"       groups == 1 and ``gemm_wins``, a rule per kind of CPU (below): columns of
                 K = Cin*KH*KW >= 24 (AVX-512) or 64 (AVX2), on 32+ (AVX-512) or 16+
                 (AVX2) output pixels: kernels/gemm.py's register-blocked product [on
                 im2col columns, gathered panel by panel: kernels/conv_gemm.py]
    "dot"        other convs with groups == 1 and fewer than SMALL_IMAGE output pixels per
                 image: [im2col,] then a dot product over the (pixels, K) transpose
    "pointwise"  other 1x1 without padding (stride only subsamples): output rows += w * x
                 rows
    "im2col"     anything else: im2col, then the pointwise rows loop

The two differ on purpose at the edges: a 1x1 depthwise conv at stride 1 *is* depthwise
(a report says "Conv DW 1x1") but runs fastest as grouped pointwise rows; a 3x3 conv on a
one-channel image is dense but runs on the depthwise loop.

This module imports nothing from tinyinfer but cpu.py (which imports nothing), so the
kernels' dispatcher can call it as well as ops.py, report.py and memory.py.
"""
from __future__ import annotations

from ..cpu import AVX512

CONV_CLASSES = ("depthwise", "grouped", "pointwise", "dense")
CONV_VARIANTS = ("depthwise", "grouped", "winograd", "dot", "gemm", "pointwise", "im2col")

# Variants kernels/conv.py can run by name that conv_variant never picks, because they
# measured slower than the one it picks on every layer tried (none at the moment; to
# compare variants: python -m tinyinfer.bench kernels --variants pointwise,gemm,dot).
NOT_DISPATCHED = ()

# Where "gemm" (kernels/gemm.py: 4 x NR register tiles, packed X panels) beats the other
# loops. It depends on the vector width (cpu.py), which sets the tile's NR.
#
# AVX2 (NR = 16): every conv without groups whose columns are at least GEMM_MIN_K long
# (K = Cin * KH * KW; im2col first unless it is a plain 1x1) on at least GEMM_MIN_PIXELS
# output pixels. Measured 2026-12-02 on the 2-core AMD EPYC Zen 2 (LLVM: znver2), 2
# threads, ReLU or SiLU epilogue, best of 3 interleaved rounds, ms gemm / other:
#   1x1 vs rows: 256->64 @56x56 1.14 / 1.53, 256->128 @56x56 2.11 / 2.95, 144->24 @56x56
#   0.31 / 0.36, 64->256 @56x56 1.00 / 1.33; at 64x64 maps the rows kernel collapses
#   (rows 4 KB apart: 64->256 1.4-2.1 / 7.3-9.6 ms and 128->256 3.2 / 17.9 inside
#   MobileViT-S and MobileViTV2-100); it loses with fewer than 64 channels in (24->144
#   @56x56 0.71 / 0.55, 16->96 @112x112 1.69 / 1.00, 32->192 @28x28 0.22 / 0.19; 64->64
#   @56x56 0.45 / 0.41 is the edge), and the stem 3->32 (K = 27) 0.80 / 0.60.
#   3x3 vs im2col + rows: 128->128 @28 2.76 / 3.60, 256->256 @14 2.45 / 3.97, 96->96 @32
#   2.27 / 2.54, 64->64 @56 3.22 / 3.46.
#   1x1 vs dot on small maps: 512->2048 @7x7 1.40 / 1.70, 160->640 @8x8 0.17 / 0.23,
#   960->160 @7x7 0.21 / 0.22; 512->512 3x3 @7x7 3.06 / 3.01 (even).
# Whole networks, interleaved in one process, ms old rule (1x1 with 64+ channels on
# 128-1024 pixels only) / this one: MobileViT-S 96.0 / 66.0, MobileViTV2-100 111.5 /
# 64.9, ResNet-50 123.9 / 121.5, MobileNetV2 17.8 / 17.9, EfficientNet-B0 24.8 / 24.5,
# SqueezeNet 1.1 13.2 / 12.1 (GEMM_MIN_K = 24, as on AVX-512: MobileNetV2 18.6).
# The 2026-12-02 rule from the AMD Zen 3 (gemm lost on 64x64 maps there) predates two
# gemm fixes: whole-panel tasks and the activation applied per task row, not per tile.
#
# AVX-512 (NR = 64, 512-bit vectors: cpu.prefer_full_width_vectors): the same rule with
# columns from 24 long, whatever the channels or the map size. Measured 2026-12-02 on the
# 2-core Intel Xeon (LLVM: rocketlake), 2 threads, ReLU, best of 7 interleaved rounds,
# ms gemm / other:
#   1x1 vs rows: 64->128 @128x128 1.27 / 2.11, 32->64 @256x256 1.66 / 2.76, 512->128
#   @32x32 0.58 / 1.44, 24->144 @56x56 0.16 / 0.22, 96->24 @56x56 0.09 / 0.11, 24->24
#   @56x56 0.041 / 0.048; it loses with 16 channels in or fewer: 16->96 @112x112 0.53 /
#   0.42, 8->16 @112x112 0.070 / 0.053, 16->48 @128x128 0.217 / 0.216.
#   1x1 vs dot on small maps: 960->160 @7x7 0.102 / 0.128, 96->576 @10x10 0.076 / 0.135,
#   1024->256 @8x8 0.15 / 0.27, 2048->512 @7x7 0.56 / 0.54; 384->64 @4x4 0.035 / 0.026.
#   3x3 vs im2col + rows: 64->64 @56 1.21 / 1.85, 128->128 @28 1.43 / 3.22, 512->512 @7
#   1.38 / 3.56 (dot 1.75), 16->64 @112 1.30 / 1.62, 32->48 @112 s2 0.64 / 0.83; the
#   stem 3->32 @224 s2 (K = 27) 0.27 / 0.26.
GEMM_MIN_K = 24 if AVX512 else 64
# From 16 output pixels on AVX2 (a 4x4 map), 32 on AVX-512 (384->64 @4x4 lost there, above).
# On AVX2, after the micro-tile's per-tile branches (tiles.py), measured 2026-12-02 on the
# Zen 2, 2 threads, dot / gemm time: 4x4 maps 1.07-1.24 at batch 1 (384->64, 64->384,
# 256->256, 1024->256) and 1.58-1.63 at batch 8 (EfficientViT-M5's 384 <-> 768); 5x5 even
# (0.95-1.07); 3x3 and smaller maps 0.35-0.93 (dot wins). EfficientViT-M5 at batch 8,
# whole network, one process: 146 -> 137 ms (M0 39.4 -> 37.2; batch 1 M5 31.0 -> 30.3).
GEMM_MIN_PIXELS = 32 if AVX512 else 16
#
# Maps of a multiple of 1024 pixels (32x32, 64x64, 128x128: rows exactly 4 KB apart)
# take gemm from K = 24 on AVX2 too. The rows kernel then reads 8 input rows and updates 4
# output rows that all fall in one set of the 8-way L1 cache, and runs from L2: whole
# networks, interleaved in one process, ms without / with this clause: MobileViT-S 63.7 /
# 57.4, MobileViTV2-050 24.8 / 21.5, MobileViT-XXS 21.9 / 20.6, MobileViTV2-100 54.1 /
# 52.4, EfficientViT-B1 (224 px) 25.1 / 25.0. (gemm packs its input; it is immune.)
ROWS_4KB = 1024
GEMM_MIN_K_4KB = 24

# Where "winograd" (kernels/conv_winograd.py: F(2x2, 3x3), whose 16 products run on gemm.py's
# kernel) beats the loop that would run a 3x3 stride-1 conv otherwise (gemm or dot).
# Measured 2026-12-02 on the 2-core AMD EPYC Zen 2, 2 threads, ReLU, batch 1, Cin = Cout,
# the other loop's time / Winograd's (two rounds in one process):
#   channels   16         32         64         128        256        512
#   @7x7       1.63-1.85  1.52-1.55  1.44-1.52  1.59-1.61  1.71-1.77  1.51-1.53
#   @14x14     1.29-1.46  1.22-1.41  1.32-1.48  1.49-1.55  1.48-1.57  1.72-1.82
#   @28x28     1.09       1.26-1.28  1.30-1.35  1.51-1.55  1.65-1.82  1.93-2.07
#   @56x56     0.72-0.77  0.90-0.97  1.12-1.17  1.27-1.34  1.82-2.45
#   @112x112   0.83-0.84  1.00-1.06  1.17-1.22  1.70-2.05
# With few channels on large maps the transforms (memory-bound passes over 4 floats per
# pixel and channel) cost more than the multiplies they save. Not measured on AVX-512
# (same rule: the products are gemm.py's there too).
WINOGRAD_MIN_CIN = 64
WINOGRAD_SMALL_MAP = 1024          # pixels; from 16 input channels up
WINOGRAD_SMALL_MAP_MIN_CIN = 16
# On AVX-512 the 16 products' panels are NR = 64 tiles wide, and a 7x7 map has 16 tiles
# of 2x2 outputs per image: at batch 1 three quarters of every panel is padding.
# Measured 2026-12-03 on the 2-core AMD EPYC Zen 4 (AVX-512), 2 threads, ReLU, ms
# winograd / gemm / dot: 512->512 @7x7 6.24 / 2.21 / 2.10 (ResNet-18's three such layers
# took 11.7 of its 35 ms), 160->160 @7 0.47 / 0.39 / 0.34; at batch 8 (128 tiles) 512 @7
# 9.6 / 17.7 / 17.5; @14x14 (49 tiles) 256 1.22 / 2.26 / 2.06, 64 0.22 / 0.33 / 0.31,
# 32 0.115 / 0.158 / 0.146. So winograd needs this many tiles per product (batch x tiles
# per image) there; on AVX2 (NR = 16) 16 tiles won (the table above, @7x7).
WINOGRAD_MIN_TILES = 32 if AVX512 else 0

# Below this many pixels per image, rows are too short to vectorize well (a 7x7 map is 49
# floats: 3 vectors and a scalar tail), so convs without groups switch to the dot-product
# kernel. (kernels/conv.py's dispatcher calls conv_variant.)
SMALL_IMAGE = 128


def conv_class(w_shape, groups: int) -> str:
    """One of CONV_CLASSES for a weight (Cout, Cin/groups, KH, KW) and ``groups``."""
    _, cin_g, kh, kw = w_shape
    if groups > 1:
        return "depthwise" if cin_g == 1 else "grouped"
    return "pointwise" if kh == kw == 1 else "dense"


def gemm_wins(w_shape, groups: int, padding, out_pixels: int) -> bool:
    """Whether the "gemm" loop runs this conv (the numbers above): the rule for this CPU."""
    cout, cin_g, kh, kw = w_shape
    if groups != 1:
        return False
    min_k = GEMM_MIN_K_4KB if out_pixels % ROWS_4KB == 0 else GEMM_MIN_K
    return cin_g * kh * kw >= min_k and out_pixels >= GEMM_MIN_PIXELS


def winograd_wins(w_shape, groups: int, stride, out_pixels: int, dilation=(1, 1),
                  batch: int = 1, out_hw=None) -> bool:
    """Whether the "winograd" loop runs this conv (the numbers above). ``out_hw``: the
    output map (Ho, Wo), for its count of 2x2 tiles (else a square map of out_pixels)."""
    _, cin_g, kh, kw = w_shape
    if not (kh == kw == 3 and groups == 1 and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1)):
        return False
    ho, wo = out_hw if out_hw is not None else (round(out_pixels ** 0.5),) * 2
    if batch * ((ho + 1) // 2) * ((wo + 1) // 2) < WINOGRAD_MIN_TILES:
        return False
    return cin_g >= WINOGRAD_MIN_CIN or (out_pixels <= WINOGRAD_SMALL_MAP
                                         and cin_g >= WINOGRAD_SMALL_MAP_MIN_CIN)


def conv_variant(w_shape, groups: int, stride, padding, out_pixels: int,
                 dilation=(1, 1), batch: int = 1, out_hw=None) -> str:
    """One of CONV_VARIANTS: the loop that runs a conv with weight (Cout, Cin/groups, KH,
    KW), stride (sh, sw), padding (top, bottom, left, right), Ho*Wo output pixels (out_hw:
    (Ho, Wo) if known), dilation (dh, dw), on ``batch`` images."""
    _, cin_g, kh, kw = w_shape
    one_by_one = kh == kw == 1
    if cin_g == 1 and not (one_by_one and tuple(stride) == (1, 1)):
        return "depthwise"
    if conv_class(w_shape, groups) == "grouped" and not one_by_one:
        return "grouped"
    if winograd_wins(w_shape, groups, stride, out_pixels, dilation, batch, out_hw):
        return "winograd"
    if gemm_wins(w_shape, groups, padding, out_pixels):
        return "gemm"
    if groups == 1 and out_pixels < SMALL_IMAGE:
        return "dot"
    return "pointwise" if one_by_one and not any(padding) else "im2col"
