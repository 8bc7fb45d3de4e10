"""What kind of convolution a conv is, and which loop runs it: decided here, once.

Two questions with two answers, both from shapes alone:

``conv_class(w_shape, groups)`` -- what the layer *is*, the papers' classes. Reports name
layers by it (MobileNet's Table 2: "Conv DW 3x3", "Conv 1x1", ...) and activation memory
asks it whether a slice of input channels gives a slice of output channels:

    "depthwise"  groups > 1 and one input channel per group (groups == Cin)
    "grouped"    groups > 1 and several input channels per group (RegNet, ResNeXt)
    "pointwise"  groups == 1, 1x1 kernel
    "dense"      groups == 1, any larger kernel

``conv_variant(w_shape, groups, stride, padding, out_pixels)`` -- which of the kernel's
loops runs it (kernels/conv.py's dispatch table; the loops are described there):

    "depthwise"  one input channel per group, and a kernel or stride larger than 1:
                 plane by plane. A dense conv over ONE input channel runs here too (it is
                 a depthwise conv with channel multiplier Cout).
    "grouped"    several input channels per group, kernel larger than 1x1: direct loop
    "dot"        groups == 1 and fewer than SMALL_IMAGE output pixels per image:
                 [im2col,] then a dot product over the (pixels, K) transpose
    "gemm"       groups == 1, at least GEMM_MIN_CHANNELS output channels, SMALL_IMAGE to
                 GEMM_MAX_PIXELS output pixels, and either a 1x1 without padding with at
                 least GEMM_MIN_CHANNELS input channels, or (on AVX-512) any other conv
                 whose im2col columns are at least GEMM_MIN_IM2COL_K long:
                 kernels/gemm.py's register-blocked product
    "pointwise"  other 1x1 without padding (stride only subsamples): output rows += w * x
                 rows
    "im2col"     anything else: im2col, then the pointwise rows loop

The two differ on purpose at the edges: a 1x1 depthwise conv at stride 1 *is* depthwise
(a report says "Conv DW 1x1") but runs fastest as grouped pointwise rows; a 3x3 conv on a
one-channel image is dense but runs on the depthwise loop.

This module imports nothing from tinyinfer but cpu.py (which imports nothing), so the kernels' dispatcher can call it as
well as ops.py, report.py and memory.py.
"""
from __future__ import annotations

from ..cpu import AVX512

CONV_CLASSES = ("depthwise", "grouped", "pointwise", "dense")
CONV_VARIANTS = ("depthwise", "grouped", "dot", "gemm", "pointwise", "im2col")

# Variants kernels/conv.py can run by name that conv_variant never picks, because they
# measured slower than the one it picks on every layer tried (none at the moment; to
# compare variants: python -m tinyinfer.bench kernels --variants pointwise,gemm,dot).
NOT_DISPATCHED = ()

# Where "gemm" (kernels/gemm.py: 4 x NR register tiles, packed X panels) beats the rows
# loop. It depends on the vector width (cpu.py), which sets the tile's NR.
#
# AVX2 (NR = 16). Measured 2026-12-02 on the 2-core AMD EPYC Zen 3, 1 thread, SiLU
# epilogue, best of 3 interleaved rounds, ms gemm / rows: 128->64 @32x32 0.64 / 1.45,
# 64->129 @32x32 0.77 / 1.24, 256->128 @32x32 2.47 / 2.76, 384->64 @14x14 0.25 / 0.32,
# 64->384 @14x14 0.31 / 0.36. It loses with few channels, whose rows are long and its
# tiles short in k (16->96 @112x112 6.98 / 3.08, 96->24 @56x56 0.81 / 0.55), on 7x7 maps
# to "dot" (320->1280: 1.43 / 1.29), and inside whole networks on 64x64 maps
# (MobileViTV2-050's 128->64 @64x64: 7.98 / 2.33 ms; "the open lead" in gemm.py). Whole
# networks, 1 thread, interleaved with the rows-only dispatch in one process: MobileNetV2
# 0.92x the time, EfficientNet-B0 0.94x, ResNet-50 0.97x, MobileViTV2-050 1.01x.
#
# AVX-512 (NR = 32). Measured 2026-12-02 on the 2-core Intel Xeon (LLVM: rocketlake), 2
# threads, SiLU epilogue, best of 7 interleaved rounds, ms gemm / rows: 128->256 @64x64
# 1.84 / 2.30, 256->128 @64x64 1.54 / 1.97, 512->128 @32x32 0.78 / 1.14, 1024->256
# @14x14 0.64 / 0.75, 64->128 @128x128 2.44 / 2.24 (and 1.98 in another run); few
# channels still lose (16->96 @112x112 0.90 / 0.54, 24->144 @56x56 0.35 / 0.29). Whole
# networks with the bound at 1024 / 4096 / 16384 pixels, interleaved in one process, ms:
# MobileViTV2-100 32.7 / 30.2 / 29.4, MobileViTV2-200 103.7 / 95.9 / 93.1, ResNet-50
# 74.1 / 74.4 / 74.5, EfficientNet-B0 12.6 / 12.5 / 12.4, MobileNetV2 8.7 / 8.7 / 8.6.
GEMM_MIN_CHANNELS = 64
GEMM_MAX_PIXELS = 128 * 128 if AVX512 else 32 * 32

# Convs that need im2col columns (a kernel larger than 1x1, or padding) run on "gemm" too,
# on AVX-512, when the columns are long enough (K = Cin * KH * KW) to pay for their copy.
# Measured there (2 threads, ReLU, best of 5 interleaved), 3x3 convs, ms gemm / im2col
# (rows) / dot: ResNet-50's 64->64 @56 1.72 / 2.33 / 7.85, 128->128 @28 1.67 / 2.73 /
# 2.74, 256->256 @14 1.58 / 2.31 / 1.80, 128->128 @56 s2 1.77 / 2.81 / 2.83; 48->96 @56 s2
# 0.57 / 0.65; short columns lose: 16->64 @112 (K = 144) 1.82 / 1.66, 3->32 @224 s2
# 0.36 / 0.27. Not measured on AVX2, so there they stay on im2col.
GEMM_ON_IM2COL = AVX512
GEMM_MIN_IM2COL_K = 256

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


def conv_variant(w_shape, groups: int, stride, padding, out_pixels: int) -> str:
    """One of CONV_VARIANTS: the loop that runs a conv with weight (Cout, Cin/groups, KH,
    KW), stride (sh, sw), padding (top, bottom, left, right) and Ho*Wo output pixels."""
    _, cin_g, kh, kw = w_shape
    one_by_one = kh == kw == 1
    if cin_g == 1 and not (one_by_one and tuple(stride) == (1, 1)):
        return "depthwise"
    if conv_class(w_shape, groups) == "grouped" and not one_by_one:
        return "grouped"
    if groups == 1 and out_pixels < SMALL_IMAGE:
        return "dot"
    plain_1x1 = one_by_one and not any(padding)
    if groups == 1 and out_pixels <= GEMM_MAX_PIXELS and w_shape[0] >= GEMM_MIN_CHANNELS:
        if plain_1x1 and cin_g >= GEMM_MIN_CHANNELS:
            return "gemm"
        if not plain_1x1 and GEMM_ON_IM2COL and cin_g * kh * kw >= GEMM_MIN_IM2COL_K:
            return "gemm"
    return "pointwise" if plain_1x1 else "im2col"
