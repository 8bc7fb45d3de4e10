"""Winograd's F(2x2, 3x3) (kernels/conv_winograd.py): its matrices against the direct
definition, the kernel against the NumPy reference and PyTorch on drawn 3x3 stride-1 convs,
its multiply count, and the engine keeping one transformed weight per node.

Tolerance: conv_ref.tol, the same as every conv variant (inputs N(0, 1), weights N(0, 1/K)):
the transforms add at most 4 terms of O(1) values, a few ulps on top of the direct sum's
rounding, well inside its ~100x margin.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyinfer.engine.graph import Graph
from tinyinfer.engine.runtime import execute
from tinyinfer.kernels.activations import RELU
from tinyinfer.kernels.conv import choose_variant, conv2d, conv2d_ref
from tinyinfer.kernels import conv_winograd
from tinyinfer.kernels.conv_winograd import (AT, BT, G, fused_rows, weight_transform,
                                             winograd_macs)
from conv_ref import TORCH_ACT, tol


def test_the_matrices_compute_two_outputs_of_a_3_tap_filter():
    """Lavin & Gray's F(2, 3): A^T [(G g) * (B^T d)] = the direct correlation, for random
    d (4 inputs) and g (3 taps); and the 2-D nesting for a 4x4 tile."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        d, g = rng.standard_normal(4), rng.standard_normal(3)
        direct = [d[0] * g[0] + d[1] * g[1] + d[2] * g[2], d[1] * g[0] + d[2] * g[1] + d[3] * g[2]]
        np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), direct, rtol=1e-12, atol=1e-12)
        d2, g2 = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
        direct2 = [[np.sum(d2[i:i + 3, j:j + 3] * g2) for j in range(2)] for i in range(2)]
        np.testing.assert_allclose(AT @ ((G @ g2 @ G.T) * (BT @ d2 @ BT.T)) @ AT.T, direct2,
                                   rtol=1e-12, atol=1e-12)


def test_weight_transform_by_hand():
    """A filter of ones: G @ ones = (1, 3/2, 1/2, 1), so U = the outer product of that
    with itself, at every position s = 4a + b; one (output, input) pair per filter."""
    w = np.zeros((2, 3, 3, 3), np.float32)
    w[1, 2] = 1.0
    u = weight_transform(w)
    assert u.shape == (16, 2, 3) and u.dtype == np.float32
    col = np.array([1.0, 1.5, 0.5, 1.0])
    np.testing.assert_array_equal(u[:, 1, 2], np.outer(col, col).reshape(16))
    assert not u[:, 0].any() and not u[:, 1, :2].any()


def test_weight_transform_is_g_g_gt():
    """The kernel's spelled-out G against the matrix G of the paper, on random weights."""
    w = np.random.default_rng(3).standard_normal((7, 5, 3, 3)).astype(np.float32)
    want = np.einsum("ai,ocij,bj->aboc", G, w.astype(np.float64), G).reshape(16, 7, 5)
    np.testing.assert_allclose(weight_transform(w), want, rtol=1e-6, atol=1e-7)


def test_winograd_macs_by_hand():
    """VGG-16's 64->64 3x3 at 224x224: 16 x 112 x 112 tiles x 64 x 64 = 822,083,584
    multiplies, against 9 x 224^2 x 64 x 64 = 1,849,688,064 directly (2.25x); a 7x7 map
    is 4 x 4 tiles (the last row and column of outputs half wasted): 16 x 16 = 256 per
    channel pair against 9 x 49 = 441."""
    assert winograd_macs(1, 64, 64, 224, 224) == 822_083_584
    assert 9 * 224 * 224 * 64 * 64 == 1_849_688_064
    assert winograd_macs(1, 512, 512, 7, 7) == 256 * 512 * 512
    assert winograd_macs(8, 3, 5, 1, 1) == 8 * 16 * 15


@st.composite
def winograd_cases(draw):
    """3x3 stride-1 convs: any channels, batch, padding (each side 0-2) and map, odd sizes
    and 1-pixel outputs included, every activation, with and without bias and residual."""
    pad = tuple(draw(st.lists(st.integers(0, 2), min_size=4, max_size=4)))
    h = draw(st.integers(max(1, 3 - pad[0] - pad[1]), 19))
    w = draw(st.integers(max(1, 3 - pad[2] - pad[3]), 19))
    return dict(n=draw(st.integers(1, 3)), cin=draw(st.integers(1, 40)),
                cout=draw(st.integers(1, 13)), h=h, w=w, pad=pad,
                act=draw(st.sampled_from(sorted(TORCH_ACT))), bias=draw(st.booleans()),
                residual=draw(st.booleans()), after=draw(st.booleans()),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(winograd_cases())
def test_winograd_matches_the_reference_and_torch(c):
    rng = np.random.default_rng(c["seed"])
    k = c["cin"] * 9
    x = rng.standard_normal((c["n"], c["cin"], c["h"], c["w"]), dtype=np.float32)
    w = (rng.standard_normal((c["cout"], c["cin"], 3, 3)) / math.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(c["cout"], dtype=np.float32) if c["bias"] else None
    ho, wo = c["h"] + c["pad"][0] + c["pad"][1] - 2, c["w"] + c["pad"][2] + c["pad"][3] - 2
    res = (rng.standard_normal((c["n"], c["cout"], ho, wo), dtype=np.float32)
           if c["residual"] else None)
    got = conv2d(x, w, b, 1, c["pad"], 1, 1, c["act"], res, variant="winograd",
                 act_after_residual=c["after"])
    want = conv2d_ref(x, w, b, 1, c["pad"], 1, 1, c["act"], res,
                      act_after_residual=c["after"])
    assert got.shape == want.shape == (c["n"], c["cout"], ho, wo)
    np.testing.assert_allclose(got, want, **tol(k))
    pt, pb, pl, pr = c["pad"]
    t = F.conv2d(F.pad(torch.from_numpy(x), (pl, pr, pt, pb)), torch.from_numpy(w),
                 None if b is None else torch.from_numpy(b))
    if c["after"] and res is not None:
        t = TORCH_ACT[c["act"]](t + torch.from_numpy(res))
    else:
        t = TORCH_ACT[c["act"]](t)
        if res is not None:
            t = t + torch.from_numpy(res)
    np.testing.assert_allclose(got, t.numpy(), **tol(k))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(winograd_cases(), st.integers(1, 3))
def test_the_fused_path_in_blocks_of_any_rows(c, rows):
    """The fused path (per block of tile rows, fused_rows) on the drawn convs, with blocks
    forced down to ``rows`` tile rows (the engine picks it only on large maps)."""
    mp = pytest.MonkeyPatch()
    try:
        tw = -(-(c["w"] + c["pad"][2] + c["pad"][3] - 2) // 2)
        mp.setattr(conv_winograd, "BLOCK_BYTES", 16 * (c["cin"] + c["cout"]) * tw * 4 * rows)
        mp.setattr(conv_winograd, "MIN_BLOCK_TILES", 1)
        mp.setattr(conv_winograd, "MIN_TASKS_PER_THREAD", 0)
        th = -(-(c["h"] + c["pad"][0] + c["pad"][1] - 2) // 2)
        assert 1 <= fused_rows(c["n"], c["cin"], c["cout"], th, tw, 2) <= rows
        rng = np.random.default_rng(c["seed"])
        k = c["cin"] * 9
        x = rng.standard_normal((c["n"], c["cin"], c["h"], c["w"]), dtype=np.float32)
        w = (rng.standard_normal((c["cout"], c["cin"], 3, 3)) / math.sqrt(k)).astype(np.float32)
        b = rng.standard_normal(c["cout"], dtype=np.float32)
        want = conv2d_ref(x, w, b, 1, c["pad"], 1, 1, c["act"])
        res = rng.standard_normal(want.shape, dtype=np.float32) if c["residual"] else None
        want = conv2d_ref(x, w, b, 1, c["pad"], 1, 1, c["act"], res,
                          act_after_residual=c["after"])
        got = conv2d(x, w, b, 1, c["pad"], 1, 1, c["act"], res, variant="winograd",
                     act_after_residual=c["after"])
        np.testing.assert_allclose(got, want, **tol(k))
    finally:
        mp.undo()


def test_vgg_and_resnet_layers_at_full_size():
    """Full-size layers where the dispatch picks winograd, with real-sized reductions,
    ReLU and a residual, against PyTorch: fused in blocks (64 channels at 56x56, 2 images)
    and unfused (the others)."""
    assert fused_rows(2, 64, 64, 28, 28, 2) and not fused_rows(2, 256, 256, 7, 7, 2)
    rng = np.random.default_rng(1)
    for cin, cout, size in [(64, 64, 56), (256, 256, 14), (512, 512, 7), (16, 24, 31)]:
        k = cin * 9
        x = rng.standard_normal((2, cin, size, size), dtype=np.float32)
        w = (rng.standard_normal((cout, cin, 3, 3)) / math.sqrt(k)).astype(np.float32)
        b = rng.standard_normal(cout, dtype=np.float32)
        res = rng.standard_normal((2, cout, size, size), dtype=np.float32)
        assert choose_variant(x.shape, w.shape, 1, 1) == "winograd"
        got = conv2d(x, w, b, 1, 1, act=RELU, residual=res)
        want = F.relu(F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                               padding=1)) + torch.from_numpy(res)
        np.testing.assert_allclose(got, want.numpy(), **tol(k))


def test_the_engine_transforms_a_weight_once_and_never_serves_a_stale_one():
    """A conv node keeps weight_transform(weight) in its cache: a second call reuses it;
    the weight turns read-only, so an in-place edit raises; a new weight array is
    transformed anew (and gives the new answer)."""
    rng = np.random.default_rng(2)
    g = Graph(64)
    g.add_node("c", "conv2d", [g.input], {"stride": (1, 1), "padding": (1,) * 4,
                                          "dilation": (1, 1), "groups": 1, "act": 0},
               {"weight": (64, 64, 3, 3)})
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) * 0.05
    g["c"].params = {"weight": w}
    x = rng.standard_normal((1, 64, 16, 16), dtype=np.float32)
    first = execute(g, x)
    u = g["c"].cache["winograd"][1]
    np.testing.assert_allclose(first, conv2d_ref(x, w, None, 1, 1), **tol(64 * 9))
    execute(g, x)
    assert g["c"].cache["winograd"][1] is u
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0, 0, 0] = 1.0
    w2 = w * 2
    g["c"].params = {"weight": w2}
    np.testing.assert_allclose(execute(g, x), 2 * first, rtol=1e-5, atol=1e-5)
    assert g["c"].cache["winograd"][1] is not u
