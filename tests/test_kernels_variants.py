"""Every conv variant, by name, on every drawn shape it supports, against the NumPy
reference conv2d_ref (reference + named variants side by side); the dispatch table; and the
errors for a variant that does not exist or cannot run a shape.

Tolerance as in test_kernels_conv.py (conv_ref.tol): inputs N(0, 1), weights N(0, 1/K), so
outputs are O(1) and two float32 sums of K products differ by about 6e-8 * sqrt(K).
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tinyinfer.engine.conv_variant import NOT_DISPATCHED
from tinyinfer.errors import InputError
from tinyinfer.kernels.activations import RELU6
from tinyinfer.cpu import AVX512
from tinyinfer.kernels.conv import (VARIANTS, choose_variant, conv2d, conv2d_ref,
                                    supported_variants)
from conv_ref import conv_cases, make_arrays, tol


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases())
def test_every_variant_matches_the_reference(c):
    x, w, b, res, k = make_arrays(c)
    want = conv2d_ref(x, w, b, c["stride"], c["pad"], c["dil"], c["groups"], c["act"], res,
                      act_after_residual=c["after"])
    names = supported_variants(x.shape, w.shape, c["pad"], c["groups"], c["stride"], c["dil"])
    # "grouped" and "im2col" run any conv, so every case checks at least two variants
    assert {"grouped", "im2col"} <= set(names)
    assert choose_variant(x.shape, w.shape, c["stride"], c["pad_arg"], c["dil"],
                          c["groups"]) in names
    for name in names:
        got = conv2d(x, w, b, c["stride"], c["pad_arg"], c["dil"], c["groups"], c["act"], res,
                     variant=name, act_after_residual=c["after"])
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, **tol(k), err_msg=f"variant {name}")


# The module docstring's table, one row per branch, on the layers that take each branch.
# (N, Cin, H, W), (Cout, Cin/groups, KH, KW), stride, padding, groups -> variant on AVX2,
# variant on AVX-512 (engine/conv_variant.gemm_wins: gemm from K = 64 on AVX2, 24 on AVX-512;
# winograd_wins: 3x3 stride 1 from 64 input channels, or 16 on maps of up to 1024 pixels;
# on AVX-512 from 32 2x2 tiles over the batch)
DISPATCH = [
    ((1, 32, 112, 112), (32, 1, 3, 3), 1, 1, 32, "depthwise", "depthwise"),  # MBv2 3x3 dw
    ((1, 16, 14, 14), (32, 1, 5, 5), 2, 2, 16, "depthwise", "depthwise"),    # mult. 2, 5x5 s2
    ((1, 32, 56, 56), (32, 1, 1, 1), 2, 0, 32, "depthwise", "depthwise"),    # 1x1 dw, stride 2
    ((1, 48, 56, 56), (48, 16, 3, 3), 1, 1, 3, "grouped", "grouped"),        # RegNet width 16
    ((1, 160, 7, 7), (960, 160, 1, 1), 1, 0, 1, "gemm", "gemm"),        # 7x7 expand: 49 px
    ((1, 32, 7, 7), (192, 32, 1, 1), 1, 0, 1, "dot", "gemm"),           # 49 px, K = 32
    ((1, 64, 7, 7), (64, 64, 3, 3), 1, 1, 1, "winograd", "gemm"),       # 7x7: 16 tiles
    ((2, 64, 7, 7), (64, 64, 3, 3), 1, 1, 1, "winograd", "winograd"),   # 2 images: 32 tiles
    ((1, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1, "winograd", "winograd"),  # ResNet 3x3 @56x56
    ((1, 32, 56, 56), (32, 32, 3, 3), 1, 1, 1, "gemm", "gemm"),         # 32 in, 3136 px
    ((1, 16, 28, 28), (24, 16, 3, 3), 1, 1, 1, "winograd", "winograd"),  # 16 in, 784 px
    ((1, 8, 28, 28), (24, 8, 3, 3), 1, 1, 1, "gemm", "gemm"),           # 8 in: K = 72
    ((1, 64, 56, 56), (64, 64, 3, 3), 2, 1, 1, "gemm", "gemm"),         # 3x3 stride 2
    ((1, 64, 64, 64), (256, 64, 1, 1), 1, 0, 1, "gemm", "gemm"),        # MobileViT, K = 64
    ((1, 32, 112, 112), (128, 32, 1, 1), 1, 0, 1, "pointwise", "gemm"),  # K = 32
    ((1, 32, 128, 128), (128, 32, 1, 1), 1, 0, 1, "gemm", "gemm"),      # rows 64 KB apart
    ((1, 16, 128, 128), (64, 16, 1, 1), 1, 0, 1, "pointwise", "pointwise"),  # K = 16
    ((1, 384, 4, 4), (64, 384, 1, 1), 1, 0, 1, "gemm", "dot"),          # 16 pixels
    ((1, 384, 3, 3), (64, 384, 1, 1), 1, 0, 1, "dot", "dot"),           # 9 pixels
    ((1, 96, 14, 14), (576, 96, 1, 1), 1, 0, 1, "gemm", "gemm"),        # 14x14 expand
    ((1, 128, 32, 32), (64, 128, 1, 1), 1, 0, 1, "gemm", "gemm"),       # MobileViTV2 proj.
    ((1, 24, 56, 56), (144, 24, 1, 1), 1, 0, 1, "pointwise", "gemm"),   # 56x56 expand
    ((1, 24, 56, 56), (144, 24, 1, 1), 2, 0, 1, "pointwise", "gemm"),   # strided 1x1
    ((1, 16, 112, 112), (96, 16, 1, 1), 1, 0, 1, "pointwise", "pointwise"),  # 16 channels in
    ((1, 240, 28, 28), (240, 80, 1, 1), 1, 0, 3, "pointwise", "pointwise"),  # ShuffleNet g=3
    ((1, 32, 56, 56), (32, 1, 1, 1), 1, 0, 32, "pointwise", "pointwise"),    # 1x1 dw, stride 1
    ((1, 3, 224, 224), (32, 3, 3, 3), 2, 1, 1, "im2col", "gemm"),       # stem (K = 27)
    ((1, 2, 64, 64), (16, 2, 3, 3), 1, 1, 1, "im2col", "im2col"),       # K = 18
    ((1, 16, 28, 28), (16, 16, 1, 1), 1, 1, 1, "im2col", "im2col"),     # padded 1x1, K 16
    ((1, 8, 28, 28), (8, 2, 1, 1), 1, 1, 4, "im2col", "im2col"),        # padded grouped 1x1
]


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, groups, avx2, avx512", DISPATCH)
def test_dispatch_table(x_shape, w_shape, stride, pad, groups, avx2, avx512):
    want = avx512 if AVX512 else avx2
    assert choose_variant(x_shape, w_shape, stride, pad, 1, groups) == want
    assert want in supported_variants(x_shape, w_shape, pad, groups, stride)


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, groups, avx2, avx512",
                         [d for d in DISPATCH if d[0][2] <= 56])
def test_variants_on_network_layers(x_shape, w_shape, stride, pad, groups, avx2, avx512):
    """Full-size layers (the drawn ones are small), every supported variant, ReLU6 and a
    residual as a MobileNetV2 projection would not have both: the epilogue's worst case."""
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    k = w_shape[1] * w_shape[2] * w_shape[3]
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = (rng.standard_normal(w_shape) / math.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(w_shape[0], dtype=np.float32)
    res = rng.standard_normal(conv2d(x, w, b, stride, pad, 1, groups).shape, dtype=np.float32)
    ref = conv2d_ref(x, w, b, stride, pad, 1, groups, RELU6, res)
    for name in supported_variants(x_shape, w_shape, pad, groups, stride):
        got = conv2d(x, w, b, stride, pad, 1, groups, RELU6, res, variant=name)
        np.testing.assert_allclose(got, ref, **tol(k), err_msg=f"variant {name}")


def test_unknown_or_unsupported_variant():
    x = np.zeros((1, 4, 8, 8), np.float32)
    w = np.zeros((4, 1, 3, 3), np.float32)
    with pytest.raises(InputError, match=r"unknown conv variant 'fft'; known: depthwise,"):
        conv2d(x, w, groups=4, variant="fft")
    with pytest.raises(InputError, match=r"unknown conv variant \['dot'\]"):
        conv2d(x, w, groups=4, variant=["dot"])
    with pytest.raises(InputError, match=r"'dot' needs groups == 1.*can run: depthwise, "
                                         r"grouped, im2col"):
        conv2d(x, w, groups=4, variant="dot")
    with pytest.raises(InputError, match=r"'pointwise' needs a 1x1 kernel and no padding"):
        conv2d(x, w, padding=1, groups=4, variant="pointwise")
    with pytest.raises(InputError, match=r"'depthwise' needs groups == input channels"):
        conv2d(x, np.zeros((4, 4, 3, 3), np.float32), variant="depthwise")
    with pytest.raises(InputError, match=r"'winograd' needs a 3x3 kernel, stride 1, dilation 1 "
                                         r"and groups == 1; .*stride \(2, 2\).*can run: "
                                         r"grouped, im2col, dot, gemm$"):
        conv2d(x, np.zeros((4, 4, 3, 3), np.float32), stride=2, variant="winograd")


def test_every_variant_is_reachable_from_the_dispatch():
    """No variant is dead code: the table above sends some layer to each, except the ones
    conv_variant.py lists as measured slower everywhere (run by name, for benchmarks)."""
    assert {d[-1] for d in DISPATCH} == set(VARIANTS) - set(NOT_DISPATCHED)
    assert set(NOT_DISPATCHED) <= set(VARIANTS)


def test_kernel_benchmark_runs_named_variants(capsys):
    """python -m tinyinfer.bench kernels --variants: a column per variant, "-" where the
    variant cannot run the layer, and one line of error for an unknown name."""
    from tinyinfer.bench.kernels import main
    assert main(runs=3, size=32, use_torch=False, variants="depthwise,dot") == 0
    lines = capsys.readouterr().out.splitlines()
    assert next(ln for ln in lines if ln.startswith("kind")).split()[-2:] == ["depthwise", "dot"]
    rows = [ln.split() for ln in lines if ln.startswith("depthwise ")]
    # a depthwise layer: the depthwise variant timed, dot (groups == 1 only) cannot run it
    assert rows and all(r[-2:] == ["ms", "-"] for r in rows)
    assert all(r[6] == "depthwise" for r in rows)           # what the dispatch chose
    assert any(ln.startswith("variant dot:") for ln in lines)
    assert main(variants="fft") == 2
    assert "unknown conv variant(s) fft" in capsys.readouterr().err
