"""An inverted residual's expansion and depthwise conv in one kernel
(kernels/conv_blocked_fused.py) against PyTorch and against the two kernels it replaces, and
engine/layout.py's choice of which pairs run fused."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyinfer
from tinyinfer.engine import layout
from tinyinfer.kernels import blocked_layout as BL
from tinyinfer.kernels import conv_blocked as CBK
from tinyinfer.kernels import conv_blocked_fused as CF
from tinyinfer.kernels.activations import act_code
from conv_ref import TORCH_ACT, tol, torch_conv


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), cin=st.integers(1, 2 * BL.CB + 3),
       cexp=st.integers(1, 4 * BL.CB + 3), k=st.sampled_from([1, 3, 5]),
       s=st.integers(1, 2), data=st.data(), h=st.integers(1, 19), w=st.integers(1, 19),
       acts=st.tuples(st.sampled_from(sorted(TORCH_ACT)), st.sampled_from(sorted(TORCH_ACT))),
       bias=st.booleans(), blocked_in=st.booleans(), seed=st.integers(0, 2**31))
def test_expand_dw_matches_torch_and_the_two_kernels(n, cin, cexp, k, s, data, h, w, acts,
                                                     bias, blocked_in, seed):
    """Channel counts around the block size (odd block counts: a last group of one block),
    maps from 1x1 to 19 wide, depthwise kernels 1-5 with any padding up to the kernel,
    strides 1-2, any activations. The fused kernel does the two kernels' arithmetic in the
    same order: their results are equal bit for bit."""
    pads = tuple(data.draw(st.integers(0, k - 1)) for _ in range(4))
    if h + pads[0] + pads[1] < k or w + pads[2] + pads[3] < k:
        h, w = h + k, w + k
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cin, h, w), dtype=np.float32)
    we = (rng.standard_normal((cexp, cin, 1, 1)) / math.sqrt(cin)).astype(np.float32)
    wd = (rng.standard_normal((cexp, 1, k, k)) / k).astype(np.float32)
    be = rng.standard_normal(cexp, dtype=np.float32) if bias else None
    bd = rng.standard_normal(cexp, dtype=np.float32) if bias else None
    act_e, act_d = acts
    e = torch_conv(x, we, be, 1, (0, 0, 0, 0), 1, 1, act_e, None)
    want = torch_conv(e, wd, bd, s, pads, 1, cexp, act_d, None)
    xin = BL.to_blocked(x) if blocked_in else x
    run = CF.bind_expand_dw(xin, dict(weight=we, bias=be, act=act_e, cache={}),
                            dict(weight=wd, bias=bd, act=act_d, cache={}, stride=(s, s),
                                 padding=pads))
    got = BL.from_blocked(run(xin), cexp)
    np.testing.assert_allclose(got, want, **tol(cin * k * k))
    two = CBK.conv2d_blocked(CBK.conv2d_blocked(xin, we, be, 1, 0, 1, act_code(act_e)), wd,
                             bd, (s, s), pads, cexp, act_code(act_d))
    np.testing.assert_array_equal(got, BL.from_blocked(two, cexp))


@pytest.fixture
def two_threads(monkeypatch):
    """layout.py's fusion rule as on a 2-core machine, whatever this one has."""
    monkeypatch.setattr(layout.numba, "get_num_threads", lambda: 2)


def test_which_expansions_run_fused(two_threads, monkeypatch):
    """MobileNetV2's 16 expansions (96, 144 x 2, 192 x 3, 384 x 4, 576 x 3, 960 x 3
    channels): on 2 images with 2 threads those of 144+ channels make 4 tasks (two blocks
    of one image each) per thread, at batch 8 all of them, on one image none (with
    FUSE_MIN_IMAGES = 1: those of 384+ channels). A fused depthwise conv passes its input
    on; its expansion hands the output on as the depthwise conv would have."""
    m = tinyinfer.load("mobilenet_v2", weights=None)
    expansions = [n for n in m.plan if n.name.endswith("conv_pw")     # block 0: a
                  and not n.name.startswith("blocks.0.")]              # projection
    assert len(expansions) == 16
    for batch, min_images, fused_from in ((2, 2, 1), (8, 2, 0), (1, 2, 16), (1, 1, 6)):
        monkeypatch.setattr(CF, "FUSE_MIN_IMAGES", min_images)
        m.plan.layouts.clear()
        marked = layout.for_shape(m.plan, (batch, 3, 224, 224))
        fused = [n.name for n in marked if n.attrs.get("then_dw") is not None]
        assert fused == [n.name for n in expansions[fused_from:]], batch
        for name in fused:
            e = marked[name]
            d = e.attrs["then_dw"]
            assert d is marked[d.name] and d.inputs == [name] and d.attrs["fused"]
            assert e.attrs["blocked_out"] == d.attrs["blocked_out"]
        assert sum(bool(n.attrs.get("fused")) for n in marked) == len(fused)


def test_network_fused_equals_unfused(two_threads, monkeypatch):
    """MobileNetV3-Large on 2 images (squeeze-excite after some depthwise convs, hard-swish
    expansions): the same logits, bit for bit, with and without fusion; and a fused node
    given a new depthwise weight array runs with it (the bound pair follows both nodes)."""
    m = tinyinfer.load("mobilenet_v3_large", weights=None)
    x = np.random.default_rng(3).random((2, 3, 160, 160), dtype=np.float32)
    marked = layout.for_shape(m.plan, x.shape)
    pairs = [n for n in marked if n.attrs.get("then_dw") is not None]
    assert len(pairs) >= 8
    got = m(x)
    monkeypatch.setattr(CF, "FUSE_MIN_TASKS_PER_THREAD", math.inf)
    m.plan.layouts.clear()
    assert not any(n.attrs.get("then_dw") for n in layout.for_shape(m.plan, x.shape))
    np.testing.assert_array_equal(m(x), got)
    monkeypatch.setattr(CF, "FUSE_MIN_TASKS_PER_THREAD", 4)
    m.plan.layouts.clear()
    dw = m.plan[pairs[-1].attrs["then_dw"].name]
    dw.params["weight"] = dw.params["weight"] * np.float32(2.0)
    after = m(x)
    assert not np.allclose(after, got)
    monkeypatch.setattr(CF, "FUSE_MIN_TASKS_PER_THREAD", math.inf)
    m.plan.layouts.clear()
    np.testing.assert_array_equal(m(x), after)


def test_timed_runs_are_not_fused(two_threads):
    """A run timed node by node (Model.profile) runs each layer as its own kernel, so that
    the depthwise conv's time is not counted on its expansion."""
    from tinyinfer.engine.runtime import execute
    m = tinyinfer.load("mobilenet_v2", weights=None)
    x = np.random.default_rng(4).random((2, 3, 160, 160), dtype=np.float32)
    t = {}
    got = execute(m.plan, x, timings=t)
    assert set(t) == {n.name for n in m.plan}
    assert list(m.plan.layouts) == [x.shape + (False,)]
    np.testing.assert_array_equal(m(x), got)
    assert any(n.attrs.get("then_dw") for n in m.plan.layouts[x.shape + (True,)])
