"""conv2d and linear against PyTorch on drawn shapes; their cost models against the
MobileNet paper's closed forms; and every kind of bad input."""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyinfer.engine.costs import Cost
from tinyinfer.errors import InputError
from tinyinfer.kernels.activations import NONE, RELU6
from tinyinfer.kernels.conv import (conv2d, conv2d_cost, conv2d_out_shape, conv2d_ref,
                                    normalize_padding, same_padding)
from tinyinfer.kernels.linear import linear, linear_cost, linear_ref
from conv_ref import TORCH_ACT, conv_cases, make_arrays, tol, torch_conv

HYP = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@HYP
@given(conv_cases())
def test_conv2d_matches_torch(c):
    x, w, b, res, k = make_arrays(c)
    got = conv2d(x, w, b, c["stride"], c["pad_arg"], c["dil"], c["groups"], act=c["act"],
                 residual=res, act_after_residual=c["after"])
    want = torch_conv(x, w, b, c["stride"], c["pad"], c["dil"], c["groups"], c["act"], res,
                      c["after"])
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, **tol(k))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases())
def test_conv2d_ref_matches_torch(c):
    x, w, b, res, k = make_arrays(c)
    got = conv2d_ref(x, w, b, c["stride"], c["pad_arg"], c["dil"], c["groups"], act=c["act"],
                     residual=res, act_after_residual=c["after"])
    want = torch_conv(x, w, b, c["stride"], c["pad"], c["dil"], c["groups"], c["act"], res,
                      c["after"])
    np.testing.assert_allclose(got, want, **tol(k))


@pytest.mark.parametrize("name, cin, cout, hw, k, s, groups", [
    ("stem", 3, 32, 33, 3, 2, 1),
    ("expand", 24, 144, 28, 1, 1, 1),           # big image: the row kernel
    ("project", 160, 96, 7, 1, 1, 1),          # 49 pixels: the dot-product kernel
    ("depthwise_s1", 32, 32, 15, 3, 1, 32),
    ("depthwise_s2", 48, 48, 15, 3, 2, 48),
    ("depthwise_k5_s2", 16, 16, 14, 5, 2, 16),
    ("depthwise_k7", 8, 8, 9, 7, 1, 8),
])
def test_mobilenet_layers_with_fused_epilogue(name, cin, cout, hw, k, s, groups):
    """MobileNet-like layers at batch 3, with ReLU6 and with the residual add."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, cin, hw, hw), dtype=np.float32)
    w = (rng.standard_normal((cout, cin // groups, k, k)) / math.sqrt(cin // groups * k * k)
         ).astype(np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    pad = (k // 2,) * 4
    for act in (RELU6, NONE):
        out_shape = conv2d_out_shape(x.shape, w.shape, s, pad, 1)
        res = rng.standard_normal(out_shape, dtype=np.float32) if act == NONE else None
        got = conv2d(x, w, b, s, pad, 1, groups, act=act, residual=res)
        want = torch_conv(x, w, b, s, pad, 1, groups, act, res)
        np.testing.assert_allclose(got, want, **tol(cin // groups * k * k))


def test_conv2d_tensorflow_same_padding_odd_size():
    """TF "same" at stride 2 pads more at the bottom/right: the asymmetric 4-tuple path."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 8, 193, 193), dtype=np.float32)
    w = (rng.standard_normal((8, 1, 3, 3)) / 3).astype(np.float32)
    top, bottom = same_padding(193, 3, 2, 1)
    left, right = same_padding(193, 3, 2, 1)
    got = conv2d(x, w, None, 2, (top, bottom, left, right), 1, 8)
    assert got.shape == (1, 8, 97, 97)                        # ceil(193 / 2)
    want = torch_conv(x, w, None, 2, (top, bottom, left, right), 1, 8, NONE, None)
    np.testing.assert_allclose(got, want, **tol(9))


def test_conv2d_accepts_noncontiguous_input_and_nan():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((1, 20, 12, 6), dtype=np.float32)
    x = base.transpose(0, 1, 3, 2)[:, ::2]                   # (1, 10, 6, 12), strided view
    w = (rng.standard_normal((4, 10, 3, 3)) / 10).astype(np.float32)
    got = conv2d(x, w, None, 1, 1)
    np.testing.assert_allclose(got, torch_conv(np.ascontiguousarray(x), w, None, 1, (1,) * 4,
                                               1, 1, NONE, None), **tol(90))
    x = np.ascontiguousarray(x)
    x[0, 0, 0, 0] = np.nan                                    # NaN is data, not an error
    y = conv2d(x, w, None, 1, 1)
    assert np.isnan(y[0, :, 0, 0]).all() and np.isfinite(y[0, :, 5, 11]).all()


def test_conv2d_act_by_name_and_batch_zero():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 5, 5), dtype=np.float32)
    w = rng.standard_normal((6, 4, 3, 3), dtype=np.float32)
    np.testing.assert_array_equal(conv2d(x, w, act="relu6"), conv2d(x, w, act=RELU6))
    assert conv2d(x[:0], w).shape == (0, 6, 3, 3)


# ---------------------------------------------------------------------------------------
# linear

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead=st.lists(st.integers(1, 6), min_size=1, max_size=3), fin=st.integers(1, 70),
       fout=st.integers(1, 13), bias=st.booleans(), act=st.sampled_from(sorted(TORCH_ACT)),
       seed=st.integers(0, 2 ** 32 - 1))
def test_linear_matches_torch(lead, fin, fout, bias, act, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(lead) + (fin,), dtype=np.float32)
    w = (rng.standard_normal((fout, fin)) / math.sqrt(fin)).astype(np.float32)
    b = rng.standard_normal(fout, dtype=np.float32) if bias else None
    got = linear(x, w, b, act)
    want = TORCH_ACT[act](F.linear(torch.from_numpy(x), torch.from_numpy(w),
                                   None if b is None else torch.from_numpy(b))).numpy()
    assert got.shape == tuple(lead) + (fout,)
    np.testing.assert_allclose(got, want, **tol(fin))
    np.testing.assert_allclose(linear_ref(x, w, b, act), want, **tol(fin))


@pytest.mark.parametrize("rows", [1, 2, 15, 16, 17, 33, 100])
@pytest.mark.parametrize("fout", [1, 5, 37, 130])
def test_linear_both_kernels(rows, fout):
    """Under PANEL_MIN_ROWS rows the rows kernel runs (one row of W at a time for one row
    of x, four at a time for more), from there the panel kernel (4 rows per tile, ragged
    last rows; outputs in panels of NR, ragged last panel; few panels split the rows into
    chunks)."""
    rng = np.random.default_rng(rows * 1000 + fout)
    x = rng.standard_normal((rows, 67), dtype=np.float32)
    w = (rng.standard_normal((fout, 67)) / math.sqrt(67)).astype(np.float32)
    b = rng.standard_normal(fout, dtype=np.float32)
    want = F.linear(*(torch.from_numpy(a) for a in (x, w, b))).numpy()
    np.testing.assert_allclose(linear(x, w, b), want, **tol(67))


def test_linear_packed_weight_is_the_weight_and_is_checked():
    """A caller-kept pack_weight_panels(w) gives the same result as packing per call, and
    a pack of another weight's shape is refused."""
    from tinyinfer.kernels.linear import pack_weight_panels
    rng = np.random.default_rng(11)
    x = rng.standard_normal((40, 67), dtype=np.float32)
    w = (rng.standard_normal((70, 67)) / math.sqrt(67)).astype(np.float32)
    b = rng.standard_normal(70, dtype=np.float32)
    want = F.linear(*(torch.from_numpy(a) for a in (x, w, b))).numpy()
    np.testing.assert_allclose(linear(x, w, b, packed=pack_weight_panels(w)), want, **tol(67))
    with pytest.raises(InputError, match="pack_weight_panels"):
        linear(x, w, b, packed=pack_weight_panels(w[:60].copy()))


def test_engine_packs_a_linear_weight_once_and_never_serves_a_stale_one():
    """ops.py keeps each linear node's packed weight in node.cache: reused while the weight
    array is the same object, rebuilt when a new array is assigned, and the weight is made
    read-only, so an in-place edit fails loudly instead of running the old weights."""
    from tinyinfer.engine.graph import Graph
    from tinyinfer.engine.runtime import execute
    rng = np.random.default_rng(12)
    g = Graph(in_channels=24)
    g.add_node("fc", "linear", [g.input], {"act": 0}, {"weight": (40, 24), "bias": (40,)})
    g.output = "fc"
    node = g["fc"]
    w1 = rng.standard_normal((40, 24), dtype=np.float32)
    node.params = {"weight": w1, "bias": np.zeros(40, np.float32)}
    x = rng.standard_normal((2, 30, 24), dtype=np.float32)
    np.testing.assert_allclose(execute(g, x), x @ w1.T, rtol=1e-5, atol=1e-5)
    packed = node.cache["weight"][1]
    execute(g, x)
    assert node.cache["weight"][1] is packed
    with pytest.raises(ValueError, match="read-only"):
        w1[0, 0] = 1.0
    w2 = rng.standard_normal((40, 24), dtype=np.float32)
    node.params["weight"] = w2
    np.testing.assert_allclose(execute(g, x), x @ w2.T, rtol=1e-5, atol=1e-5)


def test_linear_classifier_shape():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 1280), dtype=np.float32)
    w = (rng.standard_normal((1000, 1280)) / 36).astype(np.float32)
    b = rng.standard_normal(1000, dtype=np.float32)
    want = F.linear(*(torch.from_numpy(a) for a in (x, w, b))).numpy()
    np.testing.assert_allclose(linear(x, w, b), want, **tol(1280))
    np.testing.assert_allclose(linear(x[:1], w, b), want[:1], **tol(1280))


# ---------------------------------------------------------------------------------------
# costs: the MobileNet paper's closed forms (Howard et al. 2017, sec. 3.1), written out here
# independently of the code under test. D_K kernel size, M input and N output channels,
# D_F the (stride 1, "same") feature map size.

@settings(max_examples=50, deadline=None)
@given(m=st.integers(1, 512), n=st.integers(1, 512), dk=st.sampled_from([1, 3, 5, 7]),
       df=st.integers(1, 112))
def test_conv_cost_closed_forms(m, n, dk, df):
    p = dk // 2
    depthwise = conv2d_cost((1, m, df, df), (m, 1, dk, dk), 1, p, 1, groups=m).macs
    pointwise = conv2d_cost((1, m, df, df), (n, m, 1, 1), 1, 0, 1).macs
    standard = conv2d_cost((1, m, df, df), (n, m, dk, dk), 1, p, 1).macs
    assert depthwise == dk * dk * m * df * df
    assert pointwise == m * n * df * df
    assert standard == dk * dk * m * n * df * df
    assert Fraction(depthwise + pointwise, standard) == Fraction(1, n) + Fraction(1, dk * dk)


def test_conv_cost_fields():
    # 3x3 stride-2 stem, 3 -> 32 on 224: 112x112 out
    c = conv2d_cost((1, 3, 224, 224), (32, 3, 3, 3), 2, 1, 1, 1, act=RELU6, has_bias=True)
    out = 32 * 112 * 112
    assert c == Cost(macs=out * 27, flops=2 * out * 27 + 2 * out, params=32 * 27 + 32,
                     elems_read=3 * 224 * 224 + 32 * 27 + 32, elems_written=out)
    # projection with residual, no bias: +1 FLOP and +1 element read per output
    c = conv2d_cost((2, 144, 56, 56), (24, 144, 1, 1), has_bias=False, residual=True)
    out = 2 * 24 * 56 * 56
    assert c == Cost(macs=out * 144, flops=2 * out * 144 + out, params=24 * 144,
                     elems_read=2 * 144 * 56 * 56 + 24 * 144 + out, elems_written=out)


def test_linear_cost_fields():
    c = linear_cost((3, 1280), (1000, 1280), has_bias=True, act=0)
    assert c == Cost(macs=3 * 1280 * 1000, flops=2 * 3 * 1280 * 1000, params=1281000,
                     elems_read=3 * 1280 + 1281000, elems_written=3000)
    assert linear_cost((2, 5, 8), (4, 8), False, "hswish").flops == 2 * 10 * 8 * 4 + 5 * 40


def test_shapes_and_padding_helpers():
    assert normalize_padding(2) == (2, 2, 2, 2)
    assert normalize_padding((1, 3)) == (1, 1, 3, 3)
    assert normalize_padding((0, 1, 2, 3)) == (0, 1, 2, 3)
    # TF "same": total = max((ceil(in/s) - 1)*s + (k-1)*d + 1 - in, 0), extra pixel after
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(225, 3, 2) == (1, 1)
    assert same_padding(7, 5, 1) == (2, 2)
    assert same_padding(10, 3, 2, 2) == (1, 2)      # (5 - 1)*2 + 2*2 + 1 - 10 = 3
    assert same_padding(5, 1, 2) == (0, 0)
    for size in range(1, 40):
        for k, s, d in [(3, 1, 1), (3, 2, 1), (5, 2, 1), (3, 2, 2), (7, 3, 1)]:
            pads = same_padding(size, k, s, d)
            shape = conv2d_out_shape((1, 1, size, size), (1, 1, k, k), s, pads + pads, d)
            assert shape == (1, 1, -(-size // s), -(-size // s))
    assert conv2d_out_shape((2, 3, 10, 11), (5, 3, 3, 2), (2, 1), (1, 0, 2, 1), (1, 2)) == \
        (2, 5, (10 + 1 - 2 - 1) // 2 + 1, (11 + 3 - 2 - 1) // 1 + 1)


# ---------------------------------------------------------------------------------------
# bad input: an InputError (a ValueError) that says what was wrong and what to do

X = np.zeros((1, 4, 8, 8), np.float32)
W = np.zeros((6, 4, 3, 3), np.float32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=X[0]), "4 dimensions"),
    (dict(x=X.astype(np.float64)), r"x.astype\(np.float32\)"),
    (dict(x=X.tolist()), "NumPy array"),
    (dict(weight=W.astype(np.float16)), r"weight.astype\(np.float32\)"),
    (dict(weight=W[0]), "4 dimensions"),
    (dict(weight=np.zeros((6, 3, 3, 3), np.float32)), r"x has 4 channels.*expects 3"),
    (dict(weight=np.zeros((6, 1, 3, 3), np.float32), groups=3), "divisible by groups"),
    (dict(weight=np.zeros((5, 2, 3, 3), np.float32), groups=2), "output channels .*divisible"),
    (dict(weight=np.zeros((6, 4, 9, 9), np.float32)), "output size would be"),
    (dict(dilation=5), "output size would be"),
    (dict(bias=np.zeros(5, np.float32)), r"bias must have shape \(6,\)"),
    (dict(bias=np.zeros(6, np.float64)), r"bias.astype\(np.float32\)"),
    (dict(residual=np.zeros((1, 6, 8, 8), np.float32)), r"residual must have .*\(1, 6, 6, 6\)"),
    (dict(stride=0), "stride must be"),
    (dict(stride=(1, 2, 3)), "stride must be"),
    (dict(padding=-1), "padding must be"),
    (dict(padding=(1, 2, 3)), "padding must be"),
    (dict(groups=0), "groups must be"),
    (dict(act="leaky"), "unknown activation"),
    (dict(act_after_residual="yes"), "act_after_residual must be True or False"),
])
def test_conv2d_bad_input(kwargs, match):
    args = dict(x=X, weight=W)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        conv2d(**args)


@pytest.mark.parametrize("x, w, b, match", [
    (np.zeros((2, 5), np.float32), np.zeros((3, 4), np.float32), None, "5 features"),
    (np.zeros((2, 4)), np.zeros((3, 4), np.float32), None, r"x.astype\(np.float32\)"),
    (np.zeros((2, 4), np.float32), np.zeros((3, 4, 1), np.float32), None, "2 dimensions"),
    (np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32), np.zeros(4, np.float32),
     r"bias must have shape \(3,\)"),
    (np.float32(1.0), np.zeros((3, 4), np.float32), None, "NumPy array"),
])
def test_linear_bad_input(x, w, b, match):
    with pytest.raises(InputError, match=match):
        linear(x, w, b)
    assert issubclass(InputError, ValueError)
