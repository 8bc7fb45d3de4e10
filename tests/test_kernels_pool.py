"""Pooling kernels against torch.nn.functional, on hypothesis-drawn shapes and arguments."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from tinyinfer.errors import InputError
from tinyinfer.kernels import pooling as P

# A window sums at most 5*5 float32 values of N(0,1) data; summation order may differ from
# torch's by a few ulps per add, so ~25 * 6e-8 * |sum| at worst.
AVG_RTOL, AVG_ATOL = 1e-5, 2e-6
# Global / adaptive average: we sum in float64, torch in float32 over up to 16*16 terms.
GAP_RTOL, GAP_ATOL = 1e-5, 1e-6
# Max pooling returns one of its inputs: it must be exact.

SETTINGS = settings(max_examples=40, deadline=None)


def _data(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@st.composite
def pool_case(draw, with_dilation):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if with_dilation else (1, 1)
    # the smallest input that still gives one output: d*(k-1) + 1 - 2p
    H = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 16))
    W = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 16))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    return dict(shape=(N, C, H, W), k=(kh, kw), s=(sh, sw), p=(ph, pw), d=(dh, dw),
                ceil=draw(st.booleans()), seed=draw(st.integers(0, 2**31)))


@SETTINGS
@given(pool_case(with_dilation=False), st.booleans())
def test_avg_pool2d_matches_torch(c, count_include_pad):
    x = _data(c["seed"], c["shape"])
    got = P.avg_pool2d(x, c["k"], c["s"], c["p"], c["ceil"], count_include_pad)
    want = F.avg_pool2d(torch.from_numpy(x), c["k"], c["s"], c["p"], c["ceil"],
                        count_include_pad).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=AVG_RTOL, atol=AVG_ATOL)


@SETTINGS
@given(pool_case(with_dilation=True))
def test_max_pool2d_matches_torch(c):
    x = _data(c["seed"], c["shape"])
    got = P.max_pool2d(x, c["k"], c["s"], c["p"], c["d"], c["ceil"])
    want = F.max_pool2d(torch.from_numpy(x), c["k"], c["s"], c["p"], c["d"],
                        c["ceil"]).numpy()
    np.testing.assert_array_equal(got, want)


@SETTINGS
@given(pool_case(with_dilation=True), st.floats(0.02, 0.3))
def test_max_pool2d_propagates_nan_as_torch_does(c, frac):
    """A NaN anywhere in a window makes that output NaN (PyTorch's rule), whichever tap it
    is and whatever comes after it in the window: the row loops must not let a later,
    larger value overwrite it."""
    x = _data(c["seed"], c["shape"])
    x[np.random.default_rng(c["seed"]).random(x.shape) < frac] = np.nan
    got = P.max_pool2d(x, c["k"], c["s"], c["p"], c["d"], c["ceil"])
    want = F.max_pool2d(torch.from_numpy(x), c["k"], c["s"], c["p"], c["d"],
                        c["ceil"]).numpy()
    np.testing.assert_array_equal(got, want)   # NaN == NaN for assert_array_equal


def _ceil_out(size, k, s, p):
    # written from the rule's statement: ceil division, then drop a last window that
    # would start in the right padding (at or past size + p)
    out = math.ceil((size + 2 * p - k) / s) + 1
    return out - 1 if (out - 1) * s >= size + p else out


@pytest.mark.parametrize("size,k,s,p", [
    (111, 3, 2, 0),   # SqueezeNet's first max pool: 111 -> 55
    (112, 3, 2, 0),   # GoogLeNet's: 112 -> 56 (floor mode would give 55)
    (5, 2, 2, 1),     # the last-window rule bites: ceil gives 4, rule drops it to 3
    (7, 2, 3, 1),     # same: ceil gives 4, the 4th window would start at 9 >= 7 + 1
    (7, 3, 2, 1),
])
def test_ceil_mode_output_size(size, k, s, p):
    x = _data(0, (1, 2, size, size))
    got = P.max_pool2d(x, k, s, p, ceil_mode=True)
    assert got.shape[2] == _ceil_out(size, k, s, p)
    np.testing.assert_array_equal(
        got, F.max_pool2d(torch.from_numpy(x), k, s, p, ceil_mode=True).numpy())
    got_avg = P.avg_pool2d(x, k, s, p, ceil_mode=True)
    np.testing.assert_allclose(
        got_avg, F.avg_pool2d(torch.from_numpy(x), k, s, p, ceil_mode=True).numpy(),
        rtol=AVG_RTOL, atol=AVG_ATOL)


def test_max_pool_propagates_nan_and_ignores_padding():
    x = -np.abs(_data(1, (1, 1, 4, 4))) - 1.0       # all negative: zero padding would win
    x[0, 0, 1, 2] = np.nan
    got = P.max_pool2d(x, 3, 1, 1)
    want = F.max_pool2d(torch.from_numpy(x), 3, 1, 1).numpy()
    np.testing.assert_array_equal(got, want)        # assert_array_equal treats NaN == NaN
    assert np.isnan(got).any() and (got[~np.isnan(got)] < -1.0).all()


def test_stride_defaults_to_kernel_and_noncontiguous_input():
    x = _data(2, (2, 3, 20, 18))
    xs = x[:, :, ::2, ::-1]                          # strided and negative-stride view
    t = torch.from_numpy(np.ascontiguousarray(xs))
    np.testing.assert_array_equal(P.max_pool2d(xs, 2), F.max_pool2d(t, 2).numpy())
    np.testing.assert_allclose(P.avg_pool2d(xs, 3), F.avg_pool2d(t, 3).numpy(),
                               rtol=AVG_RTOL, atol=AVG_ATOL)
    np.testing.assert_allclose(P.global_avg_pool(xs), t.mean((2, 3)).numpy(),
                               rtol=GAP_RTOL, atol=GAP_ATOL)


@SETTINGS
@given(st.integers(0, 3), st.integers(1, 8), st.integers(1, 16), st.integers(1, 16),
       st.integers(0, 2**31))
def test_global_avg_pool_matches_torch(N, C, H, W, seed):
    x = _data(seed, (N, C, H, W))
    got = P.global_avg_pool(x)
    assert got.shape == (N, C)
    np.testing.assert_allclose(got, torch.from_numpy(x).mean((2, 3)).numpy(),
                               rtol=GAP_RTOL, atol=GAP_ATOL)


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 4), st.integers(1, 15), st.integers(1, 15),
       st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**31))
def test_adaptive_avg_pool2d_matches_torch(N, C, H, W, OH, OW, seed):
    # OH > H exercises repeated windows (upsampling), OH not dividing H overlapping ones
    x = _data(seed, (N, C, H, W))
    got = P.adaptive_avg_pool2d(x, (OH, OW))
    want = F.adaptive_avg_pool2d(torch.from_numpy(x), (OH, OW)).numpy()
    np.testing.assert_allclose(got, want, rtol=GAP_RTOL, atol=GAP_ATOL)


def test_adaptive_avg_pool2d_int_and_none():
    x = _data(3, (1, 2, 7, 9))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(P.adaptive_avg_pool2d(x, 3), F.adaptive_avg_pool2d(t, 3).numpy(),
                               rtol=GAP_RTOL, atol=GAP_ATOL)
    np.testing.assert_allclose(P.adaptive_avg_pool2d(x, (None, 4)),
                               F.adaptive_avg_pool2d(t, (None, 4)).numpy(),
                               rtol=GAP_RTOL, atol=GAP_ATOL)


def test_refs_agree_with_torch():
    x = _data(4, (2, 3, 11, 9))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(P.avg_pool2d_ref(x, 3, 2, 1, True, False),
                               F.avg_pool2d(t, 3, 2, 1, True, False).numpy(), rtol=AVG_RTOL,
                               atol=AVG_ATOL)
    np.testing.assert_array_equal(P.max_pool2d_ref(x, 3, 2, 1, 2, True),
                                  F.max_pool2d(t, 3, 2, 1, 2, True).numpy())
    np.testing.assert_allclose(P.adaptive_avg_pool2d_ref(x, (4, 5)),
                               F.adaptive_avg_pool2d(t, (4, 5)).numpy(), rtol=GAP_RTOL,
                               atol=GAP_ATOL)


def test_costs():
    # 3x3 stride 2 pad 1 on 112x112: 56x56 outputs per plane
    n_out = 2 * 64 * 56 * 56
    c = P.max_pool2d_cost((2, 64, 112, 112), 3, 2, 1)
    assert (c.macs, c.flops, c.params) == (0, 8 * n_out, 0)
    assert (c.elems_read, c.elems_written) == (2 * 64 * 112 * 112, n_out)
    assert P.avg_pool2d_cost((2, 64, 112, 112), 3, 2, 1).flops == 9 * n_out
    g = P.global_avg_pool_cost((1, 1280, 7, 7))
    assert (g.flops, g.elems_read, g.elems_written) == (1280 * 49, 1280 * 49, 1280)
    # 7 -> 3 adaptive: windows [0,3) [2,5) [4,7): lengths 3+3+3 = 9 per axis
    a = P.adaptive_avg_pool2d_cost((1, 2, 7, 7), 3)
    assert (a.flops, a.elems_written) == (2 * 9 * 9, 2 * 9)
    # identity-size adaptive pooling does one FLOP per element
    assert P.adaptive_avg_pool2d_cost((1, 2, 6, 6), 6).flops == 72


@pytest.mark.parametrize("call,match", [
    (lambda x: P.max_pool2d(x, 3, 1, 2), "half the kernel"),
    (lambda x: P.avg_pool2d(x, 9), "too small"),
    (lambda x: P.max_pool2d(x, 0), "kernel"),
    (lambda x: P.max_pool2d(x, (2, 2, 2)), "pair"),
    (lambda x: P.avg_pool2d(x, 2.0), "integer"),
    (lambda x: P.max_pool2d(x[0], 2), "4-D"),
    (lambda x: P.global_avg_pool(x.astype(np.int32)), "floating"),
    (lambda x: P.global_avg_pool(x.tolist()), "NumPy array"),
    (lambda x: P.adaptive_avg_pool2d(x, (0, 2)), "out_hw"),
])
def test_bad_input_raises_input_error(call, match):
    x = _data(5, (1, 2, 6, 6))
    with pytest.raises(InputError, match=match):
        call(x)
