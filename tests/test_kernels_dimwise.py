"""DiCENet's kernels (tinyinfer/kernels/dimwise.py) against the torch operations pytorchcv's
SpatialDiceBranch runs (F.interpolate / F.adaptive_avg_pool2d, transpose, depthwise
F.conv2d, transpose back), on random shapes and weights; their costs by hand; bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from tinyinfer.errors import InputError
from tinyinfer.kernels import dimwise as D

# Nine products per output plus at most two 2-tap resizes, |x|, |w| ~ 1: float32 rounding of
# sums of ~10 terms of size ~3, a few ulps of ~10 (the orders of summation differ).
RTOL, ATOL = 1e-5, 1e-5
SETTINGS = settings(max_examples=30, deadline=None)


def _resize(t, axis, size):
    """pytorchcv's rule on one axis: bilinear (align_corners) to enlarge, adaptive pool to
    shrink; the other axis keeps its size."""
    target = list(t.shape[2:])
    target[axis - 2] = size
    if size > t.shape[axis]:
        return F.interpolate(t, size=target, mode="bilinear", align_corners=True)
    return F.adaptive_avg_pool2d(t, target) if size < t.shape[axis] else t


def torch_dimwise(x, weight, axis):
    """SpatialDiceBranch.forward, with the weight as its conv's."""
    t, size, real = torch.from_numpy(x), weight.shape[0], x.shape[axis]
    t = _resize(t, axis, size).transpose(1, axis).contiguous()
    t = F.conv2d(t, torch.from_numpy(weight), padding=1, groups=size)
    return _resize(t.transpose(1, axis).contiguous(), axis, real).numpy()


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 6), st.integers(1, 9), st.integers(1, 9),
       st.integers(1, 12), st.sampled_from([2, 3]), st.integers(0, 2**31))
def test_dimwise_conv_matches_torch(n, c, h, w, size, axis, seed):
    """Any map size against any built-for size: equal (no resize), enlarged and shrunk."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((size, 1, 3, 3)).astype(np.float32)
    want = torch_dimwise(x, weight, axis)
    got = D.dimwise_conv(x, weight, axis)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(D.dimwise_conv_ref(x, weight, axis), want, rtol=RTOL, atol=ATOL)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 8), st.integers(1, 8), st.integers(1, 12),
       st.sampled_from([2, 3]), st.integers(0, 2**31))
def test_resize_axis_matches_torch(c, h, w, size, axis, seed):
    x = np.random.default_rng(seed).standard_normal((2, c, h, w)).astype(np.float32)
    want = _resize(torch.from_numpy(x), axis, size).numpy()
    np.testing.assert_allclose(D.resize_axis(x, axis, size), want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(D.resize_axis_ref(x, axis, size), want, rtol=RTOL, atol=ATOL)


def test_the_height_kernel_slides_over_channels_and_columns():
    """One-hot checks of the index formulas: a single 1 at (c=1, h=2, w=1) and a kernel whose
    only nonzero tap is (i=0, j=2) reaches out[c=2, h=2, w=0] along H (c + i - 1 = 1,
    w + j - 1 = 1) and out[c=0, h=3, w=1] along W (c + j - 1 = 1, h + i - 1 = 2)."""
    x = np.zeros((1, 3, 4, 3), np.float32)
    x[0, 1, 2, 1] = 1
    for axis, size, hit in ((2, 4, (2, 2, 0)), (3, 3, (0, 3, 1))):
        weight = np.zeros((size, 1, 3, 3), np.float32)
        weight[:, 0, 0, 2] = np.arange(1, size + 1)    # a different value per row/column
        out = D.dimwise_conv(x, weight, axis)
        expected = np.zeros_like(out)
        expected[(0,) + hit] = hit[axis - 1] + 1       # the weight of the output's row/column
        np.testing.assert_array_equal(out, expected)


def test_costs_by_hand():
    """A (1, 4, 6, 5) map. Height-wise conv built for 6 rows: no resize, 9 MACs per element
    (120 -> 1080), 54 weights. Built for 4: the conv runs on (1, 4, 4, 5), 720 MACs; the
    shrink 6 -> 4 takes windows [0,2) [1,3) [3,5) [4,6), 8 taps per column, and 20 columns
    (4 channels x 5): 2 x 8 x 20 = 320 FLOPs; the bilinear 4 -> 6 back (source o x 3/5) has 2
    taps for o = 0..4 and 1 at o = 5 (source 3, the last row): 2 x 11 x 20 = 440 FLOPs."""
    same = D.dimwise_conv_cost((1, 4, 6, 5), 6, 2)
    assert (same.macs, same.flops, same.params) == (1080, 2160, 54)
    resized = D.dimwise_conv_cost((1, 4, 6, 5), 4, 2)
    assert (resized.macs, resized.params) == (720, 36)
    assert resized.flops == 320 + 2 * 720 + 440
    assert resized.elems_written == 80 + 80 + 120    # shrunk map, conv output, restored map
    assert D.resize_taps(6, 4)[1].tolist() == [2, 2, 2, 2]
    assert D.resize_taps(4, 6)[1].tolist() == [2, 2, 2, 2, 2, 1]


@pytest.mark.parametrize("call,words", [
    (lambda: D.dimwise_conv(np.zeros((1, 2, 3, 3), np.float32),
                            np.zeros((3, 2, 3, 3), np.float32), 2), r"\(S, 1, 3, 3\)"),
    (lambda: D.dimwise_conv(np.zeros((1, 2, 3, 3), np.float32),
                            np.zeros((3, 1, 3, 3), np.float32), 1), "axis must be 2"),
    (lambda: D.dimwise_conv(np.zeros((2, 3, 3), np.float32),
                            np.zeros((3, 1, 3, 3), np.float32), 2), "4-D"),
    (lambda: D.dimwise_conv(np.zeros((1, 2, 3, 3), np.int64),
                            np.zeros((3, 1, 3, 3), np.float32), 2), "floating-point"),
    (lambda: D.resize_taps(0, 3), "sizes must be >= 1"),
])
def test_bad_input_is_one_clear_error(call, words):
    with pytest.raises(InputError, match=words):
        call()
