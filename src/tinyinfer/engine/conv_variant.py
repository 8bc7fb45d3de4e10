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
    "pointwise"  1x1 without padding (stride only subsamples): output rows += w * x rows
    "im2col"     anything else: im2col, then the pointwise rows loop

The two differ on purpose at the edges: a 1x1 depthwise conv at stride 1 *is* depthwise
(a report says "Conv DW 1x1") but runs fastest as grouped pointwise rows; a 3x3 conv on a
one-channel image is dense but runs on the depthwise loop.

This module imports nothing from tinyinfer, so the kernels' dispatcher can call it as
well as ops.py, report.py and memory.py.
"""
from __future__ import annotations

CONV_CLASSES = ("depthwise", "grouped", "pointwise", "dense")
CONV_VARIANTS = ("depthwise", "grouped", "dot", "pointwise", "im2col")

# Variants kernels/conv.py can run by name that conv_variant never picks, because they
# measured slower than the one it picks on every layer tried. "gemm" (kernels/gemm.py, a
# 4 x 16 register-blocked product with stack accumulators and packed X panels), measured
# 2026-12-02 on this 2-core AMD EPYC *without AVX-512* (znver3 to LLVM; AVX2, 16 ymm
# registers), 1 thread, load average 10-15, best of 40 interleaved rounds, GFLOP/s gemm /
# rows ("pointwise"): 96x16x12544 1.1 / 12.3, 144x24x3136 2.8 / 15.8, 384x64x196 4.9 /
# 10.3, 1280x320x49 1.5 / 3.2, 256x64x3136 1.5 / 5.5, 64x256x3136 1.8 / 5.5 (Cout x Cin x
# pixels). Its inner loop alone runs at 36-66 GFLOP/s in L1: the loss is around it. To
# re-measure: python -m tinyinfer.bench kernels --variants pointwise,gemm,dot
NOT_DISPATCHED = ("gemm",)

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
    return "pointwise" if one_by_one and not any(padding) else "im2col"
