"""The transposed-convolution kernel (kernels/conv_transpose.py) against PyTorch's
F.conv_transpose2d on drawn shapes (depthwise, as EdgeViT uses it, and grouped / dense),
its NumPy reference, its cost against torch's FlopCounterMode, and its bad-input errors.

Tolerance as in conv_ref.py: inputs N(0, 1), weights N(0, 1/K) with K the number of products
summed into one output (at most Cin/groups * KH * KW), outputs O(1).
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from tinyinfer.errors import InputError
from tinyinfer.kernels.conv_transpose import (conv_transpose2d, conv_transpose2d_cost,
                                              conv_transpose2d_out_shape, conv_transpose2d_ref)
from conv_ref import tol


@st.composite
def cases(draw, depthwise: bool):
    """Random geometry: stride 1-4, kernel 1-5 per axis, dilation 1-2, padding up to what
    still leaves an output, output_padding below max(stride, dilation) (PyTorch's rule)."""
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    opad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dil))
    # the uncropped output is (h-1)*s + d*(k-1) + 1 + op; padding crops 2p of it, leaving >= 1
    full = [(h - 1) * stride[0] + dil[0] * (kh - 1) + 1 + opad[0],
            (w - 1) * stride[1] + dil[1] * (kw - 1) + 1 + opad[1]]
    pad = tuple(draw(st.integers(0, min(3, (f - 1) // 2))) for f in full)
    if depthwise:
        groups = draw(st.integers(1, 12))
        cin, cout = groups, groups * draw(st.sampled_from([1, 1, 2]))   # multiplier 1 or 2
    else:
        groups = draw(st.integers(1, 3))
        cin, cout = groups * draw(st.integers(1, 4)), groups * draw(st.integers(1, 4))
    return dict(n=draw(st.integers(1, 3)), cin=cin, cout=cout, groups=groups, k=(kh, kw),
                stride=stride, pad=pad, opad=opad, dil=dil, h=h, w=w, bias=draw(st.booleans()),
                seed=draw(st.integers(0, 2 ** 32 - 1)))


def arrays(c):
    rng = np.random.default_rng(c["seed"])
    k = c["cin"] // c["groups"] * c["k"][0] * c["k"][1]
    x = rng.standard_normal((c["n"], c["cin"], c["h"], c["w"]), dtype=np.float32)
    w = (rng.standard_normal((c["cin"], c["cout"] // c["groups"], *c["k"]))
         / math.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(c["cout"], dtype=np.float32) if c["bias"] else None
    return x, w, b, k


def torch_answer(x, w, b, c):
    t = lambda a: None if a is None else torch.from_numpy(a)
    return F.conv_transpose2d(t(x), t(w), t(b), c["stride"], c["pad"], c["opad"], c["groups"],
                              c["dil"]).numpy()


def run_both(c):
    x, w, b, k = arrays(c)
    got = conv_transpose2d(x, w, b, c["stride"], c["pad"], c["opad"], c["dil"], c["groups"])
    want = torch_answer(x, w, b, c)
    assert got.shape == want.shape == conv_transpose2d_out_shape(
        x.shape, w.shape, c["stride"], c["pad"], c["opad"], c["dil"], c["groups"])
    np.testing.assert_allclose(got, want, **tol(k))
    ref = conv_transpose2d_ref(x, w, b, c["stride"], c["pad"], c["opad"], c["dil"], c["groups"])
    np.testing.assert_allclose(ref, want, **tol(k))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(depthwise=True))
def test_depthwise_matches_torch(c):
    run_both(c)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(depthwise=False))
def test_grouped_and_dense_match_torch(c):
    run_both(c)


@pytest.mark.parametrize("c,h,r", [(36, 14, 4), (72, 14, 2), (240, 7, 2), (48, 15, 2)])
def test_edgevit_local_propagation(c, h, r):
    """EdgeViT's LocalProp as the authors build it: nn.ConvTranspose2d(C, C, r, stride=r,
    groups=C) on the h x h delegate map (XXS stage 1 at 224: 36 channels, 14x14, r = 4)."""
    rng = np.random.default_rng(c)
    m = torch.nn.ConvTranspose2d(c, c, r, stride=r, groups=c)
    x = rng.standard_normal((2, c, h, h), dtype=np.float32)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    got = conv_transpose2d(x, m.weight.detach().numpy(), m.bias.detach().numpy(), r, groups=c)
    assert got.shape == (2, c, h * r, h * r)
    np.testing.assert_allclose(got, want, **tol(1))


@pytest.mark.parametrize("cin,cout,groups,k,stride,pad,opad", [
    (36, 36, 36, 4, 4, 0, 0), (8, 16, 2, 3, 2, 1, 1), (4, 6, 1, 5, (2, 3), (2, 1), (1, 0))])
def test_cost_matches_flop_counter(cin, cout, groups, k, stride, pad, opad):
    """MACs = torch's FlopCounterMode / 2 (it counts the transposed conv as the scatter); the
    parameter count is the module's."""
    m = torch.nn.ConvTranspose2d(cin, cout, k, stride, pad, opad, groups)
    x = torch.zeros(2, cin, 7, 6)
    with FlopCounterMode(display=False) as fc:
        y = m(x)
    cost = conv_transpose2d_cost(x.shape, m.weight.shape, stride, pad, opad, 1, groups)
    assert cost.macs == fc.get_total_flops() // 2
    assert cost.flops == 2 * cost.macs
    assert cost.params == sum(p.numel() for p in m.parameters())
    assert cost.elems_written == y.numel()


@pytest.mark.parametrize("kwargs,match", [
    (dict(output_padding=2, stride=2), r"output_padding 2 along h must be smaller than the "
                                       r"stride \(2\)"),
    (dict(padding=3, stride=1), r"output size would be -3x-3"),
    (dict(groups=3), r"input channels \(4\) must be divisible by groups \(3\)"),
    (dict(stride=0), r"stride must be >= 1"),
    (dict(bias=np.zeros(3, np.float32)), r"bias must have shape \(4,\)"),
])
def test_bad_arguments_raise_one_clear_error(kwargs, match):
    x = np.zeros((1, 4, 2, 2), np.float32)
    w = np.zeros((4, 1, 2, 2), np.float32)
    with pytest.raises(InputError, match=match):
        conv_transpose2d(x, w, **{"groups": 4, **kwargs})


def test_weight_in_conv2d_layout_is_named():
    """A Conv2d-layout weight (Cout, Cin/groups, ...) for a dense 4 -> 8 layer: the message
    says which dim is the input's."""
    with pytest.raises(InputError, match=r"x has 4 channels but the transposed-conv weight "
                                         r"\(8, 4, 2, 2\) expects 8 \(its first dim"):
        conv_transpose2d(np.zeros((1, 4, 3, 3), np.float32), np.zeros((8, 4, 2, 2), np.float32))


def test_float64_input_is_refused_with_the_fix():
    with pytest.raises(InputError, match=r"x must be float32, got float64; convert with"):
        conv_transpose2d(np.zeros((1, 4, 2, 2)), np.zeros((4, 1, 2, 2), np.float32), groups=4)
