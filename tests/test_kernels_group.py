"""The grouped-convolution kernel (kernels/conv_group.py, conv2d's "grouped" variant) against
PyTorch's F.conv2d on drawn shapes, and its bad-input errors.

Tolerance, as in test_kernels_conv.py: inputs N(0, 1), weights N(0, 1/K) for a reduction of
K = Cin/groups * KH * KW terms, so outputs are O(1); two float32 sums of the same K products
in different orders differ by about 6e-8 * sqrt(K); 1e-5 * sqrt(K) leaves ~100x margin, and
rtol 1e-4 covers float32 exp in the sigmoid-type activations.
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyinfer.errors import InputError
from tinyinfer.kernels.activations import NONE, RELU
from tinyinfer.kernels.conv import conv2d, conv2d_ref
from conv_ref import TORCH_ACT, make_arrays, tol, torch_conv


def grouped_conv2d(*args, **kwargs):
    """conv2d forced onto the grouped kernel, whatever shape the dispatch would send elsewhere."""
    return conv2d(*args, variant="grouped", **kwargs)

@st.composite
def grouped_cases(draw):
    """Group counts from 2 up to 'nearly depthwise' (one input channel per group but more
    outputs), the channel counts per group RegNet and ShuffleNet V1 use scaled down (1..12,
    so both the 4-output blocks and the leftover single outputs run), any geometry."""
    groups = draw(st.integers(2, 6))
    cin_g, cout_g = draw(st.integers(1, 12)), draw(st.integers(1, 9))
    kh, kw = draw(st.sampled_from([(3, 3), (1, 1), (5, 5), (3, 1), (2, 4)]))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = tuple(draw(st.lists(st.integers(0, 3), min_size=4, max_size=4)))
    hmin = max(1, dil[0] * (kh - 1) + 1 - pad[0] - pad[1])
    wmin = max(1, dil[1] * (kw - 1) + 1 - pad[2] - pad[3])
    h = hmin + draw(st.integers(0, max(0, 30 - hmin)))
    w = wmin + draw(st.integers(0, max(0, 30 - wmin)))
    return dict(n=draw(st.integers(1, 3)), groups=groups, cin=groups * cin_g,
                cout=groups * cout_g, kh=kh, kw=kw, stride=stride, dil=dil, pad=pad, h=h, w=w,
                act=draw(st.sampled_from(sorted(TORCH_ACT))), bias=draw(st.booleans()),
                residual=draw(st.booleans()), after=draw(st.booleans()),
                seed=draw(st.integers(0, 2 ** 32 - 1)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_cases())
def test_grouped_conv_matches_torch(c):
    x, w, b, res, k = make_arrays(c)
    got = grouped_conv2d(x, w, b, c["stride"], c["pad"], c["dil"], c["groups"], c["act"], res,
                         act_after_residual=c["after"])
    want = torch_conv(x, w, b, c["stride"], c["pad"], c["dil"], c["groups"], c["act"], res,
                      c["after"])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, **tol(k))


@pytest.mark.parametrize("cin,h,groups,stride", [
    (32, 112, 2, 2),     # RegNetX-400MF stage 1 (group width 16), 224 input
    (400, 7, 25, 1),     # its last stage
    (152, 28, 19, 2),    # RegNetX-200MF (group width 8)
    (240, 28, 3, 1),     # ShuffleNet V1 g=3 (80 channels per group)
])
def test_grouped_conv_network_shapes(cin, h, groups, stride):
    """The full-size layers the kernel is for (the drawn cases above are small), against
    PyTorch, with ReLU and a residual as a RegNet block's last conv would have."""
    rng = np.random.default_rng(cin)
    k = cin // groups * 9
    x = rng.standard_normal((1, cin, h, h), dtype=np.float32)
    w = (rng.standard_normal((cin, cin // groups, 3, 3)) / math.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(cin, dtype=np.float32)
    ho = (h - 1) // stride + 1
    res = rng.standard_normal((1, cin, ho, ho), dtype=np.float32)
    got = grouped_conv2d(x, w, b, stride, 1, 1, groups, RELU, res)
    np.testing.assert_allclose(got, torch_conv(x, w, b, (stride, stride), (1, 1, 1, 1), (1, 1),
                                               groups, RELU, res), **tol(k))


def test_numpy_reference_is_the_definition():
    """The NumPy reference agrees with PyTorch on grouped convs too (so either can judge)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 9, 8), dtype=np.float32)
    w = rng.standard_normal((9, 2, 3, 3), dtype=np.float32) / 4
    want = torch_conv(x, w, None, (2, 1), (1, 0, 2, 1), (1, 2), 3, NONE, None)
    np.testing.assert_allclose(conv2d_ref(x, w, None, (2, 1), (1, 0, 2, 1), (1, 2), 3),
                               want, **tol(18))


def test_noncontiguous_input():
    """A channel slice (ShuffleNet's split at batch > 1) is accepted; float64 is refused
    with the fix in the message, as conv2d does."""
    rng = np.random.default_rng(2)
    big = rng.standard_normal((2, 16, 10, 10)).astype(np.float32)
    x = big[:, 8:]
    w = rng.standard_normal((8, 2, 3, 3), dtype=np.float32) / 4
    got = grouped_conv2d(x, w, None, 1, 1, 1, 4)
    np.testing.assert_allclose(got, torch_conv(np.ascontiguousarray(x), w, None, (1, 1),
                                               (1, 1, 1, 1), (1, 1), 4, NONE, None), **tol(18))
    with pytest.raises(InputError, match=r"astype\(np.float32\)"):
        grouped_conv2d(x.astype(np.float64), w, None, 1, 1, 1, 4)


@pytest.mark.parametrize("kwargs,match", [
    (dict(groups=3), r"input channels \(8\) must be divisible by groups \(3\)"),
    (dict(groups=0), "groups must be an int >= 1"),
    (dict(groups=2.0), "groups must be an int >= 1"),
    (dict(groups=2, bias=np.zeros(5, np.float32)), r"bias must have shape \(8,\)"),
    (dict(groups=2, residual=np.zeros((1, 8, 4, 4), np.float32)), "residual must have"),
    (dict(groups=2, padding=-1), "padding"),
    (dict(groups=2, stride=0), "stride"),
])
def test_bad_input(kwargs, match):
    x = np.zeros((1, 8, 5, 5), np.float32)
    w = np.zeros((8, 4, 3, 3), np.float32)
    kwargs = {"padding": 1, **kwargs}
    with pytest.raises(InputError, match=match):
        grouped_conv2d(x, w, **kwargs)


def test_too_small_input():
    with pytest.raises(InputError, match="smaller than the dilated kernel"):
        grouped_conv2d(np.zeros((1, 4, 2, 2), np.float32), np.zeros((4, 2, 3, 3), np.float32),
                       groups=2)
