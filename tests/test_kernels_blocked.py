"""The channel-blocked layout's kernels (kernels/blocked_layout.py, conv_blocked.py,
conv_blocked_dw.py, se.py's blocked squeeze-excite) against PyTorch on drawn shapes, and
engine/layout.py's choice of which nodes run blocked. Whole networks run blocked in
test_models.py's parity tests (MobileNets and EfficientNets from the stem to the pool)."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyinfer
from tinyinfer.engine import layout
from tinyinfer.engine.ops import infer_shapes
from tinyinfer.errors import InputError
from tinyinfer.kernels import conv_blocked as CBK
from tinyinfer.kernels.activations import act_code
from conv_ref import TORCH_ACT, tol, torch_conv


@st.composite
def blocked_cases(draw):
    """Pointwise, depthwise or dense convs (groups 1, any kernel) with channel
    counts around the block size (so partial blocks and the pointwise tile's partial pair
    of output blocks occur), maps from 1x1 to 19 wide (partial pixel tiles of every
    kernel), kernels 1-5, strides 1-2, any padding up to the kernel, bias, activation,
    residual in either order."""
    kind = draw(st.sampled_from(["pointwise", "depthwise", "dense"]))
    cin = draw(st.integers(2, 3 * CBK.CB + 3) if kind == "depthwise" else     # groups = cin
               st.integers(1, 3 * CBK.CB + 3))
    if kind == "pointwise":
        cout, k, s, pads = draw(st.integers(1, 3 * CBK.CB + 3)), 1, 1, (0, 0, 0, 0)
    else:
        cout = cin if kind == "depthwise" else draw(st.integers(1, 3 * CBK.CB + 3))
        k = draw(st.sampled_from([1, 3, 5] if kind == "depthwise" else [1, 2, 3, 5]))
        s = draw(st.integers(1, 2))
        pads = tuple(draw(st.integers(0, k - 1)) for _ in range(4))
    depthwise = kind == "depthwise"
    h = draw(st.integers(max(1, k - pads[0] - pads[1]), 19))
    w = draw(st.integers(max(1, k - pads[2] - pads[3]), 19))
    return dict(n=draw(st.integers(1, 3)), cin=cin, cout=cout, k=k, s=s, pads=pads, h=h, w=w,
                groups=cin if depthwise else 1, bias=draw(st.booleans()),
                act=draw(st.sampled_from(sorted(TORCH_ACT))), residual=draw(st.booleans()),
                after=draw(st.booleans()), blocked_in=draw(st.booleans()),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocked_cases())
def test_blocked_convs_match_torch(c):
    rng = np.random.default_rng(c["seed"])
    kk = c["cin"] // c["groups"] * c["k"] ** 2
    x = rng.standard_normal((c["n"], c["cin"], c["h"], c["w"]), dtype=np.float32)
    w = (rng.standard_normal((c["cout"], c["cin"] // c["groups"], c["k"], c["k"]))
         / math.sqrt(kk)).astype(np.float32)
    b = rng.standard_normal(c["cout"], dtype=np.float32) if c["bias"] else None
    t, bo, le, ri = c["pads"]
    ho, wo = (c["h"] + t + bo - c["k"]) // c["s"] + 1, (c["w"] + le + ri - c["k"]) // c["s"] + 1
    res = (rng.standard_normal((c["n"], c["cout"], ho, wo), dtype=np.float32)
           if c["residual"] else None)
    want = torch_conv(x, w, b, c["s"], c["pads"], 1, c["groups"], c["act"], res, c["after"])
    code = act_code(c["act"])
    xin = CBK.to_blocked(x) if c["blocked_in"] else x
    rin = CBK.to_blocked(res) if (res is not None and c["blocked_in"]) else res
    if c["blocked_in"] and c["cin"] % CBK.CB:
        xin[:, -1, ..., c["cin"] % CBK.CB:] = 7.0   # padded channels: act(0) there, ignored
    assert CBK.supports(w.shape, c["groups"], (c["s"],) * 2, c["pads"], (1, 1))
    got = CBK.conv2d_blocked(xin, w, b, (c["s"], c["s"]), c["pads"], c["groups"], code, rin,
                             cache={}, blocked_out=True, act_after_residual=c["after"])
    assert got.shape == (c["n"], CBK.blocks(c["cout"]), ho, wo, CBK.CB)
    np.testing.assert_allclose(CBK.from_blocked(got, c["cout"]), want, **tol(kk))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 2 * CBK.CB + 3), k=st.sampled_from([1, 3, 5]),
       s=st.integers(1, 2), h=st.integers(5, 19), data=st.data(), seed=st.integers(0, 2**31))
def test_depthwise_row_bands_match_whole_planes(n, c, k, s, h, data, seed):
    """The depthwise kernel split into bands of output rows (each copying the input rows
    it reads, halo included) gives the whole-plane result bit for bit, for any band count."""
    from tinyinfer.kernels import conv_blocked_dw as D
    rng = np.random.default_rng(seed)
    pads = tuple(data.draw(st.integers(0, k - 1)) for _ in range(4))
    xb = CBK.to_blocked(rng.standard_normal((n, c, h, h + 2), dtype=np.float32))
    wd = D.pack_depthwise(rng.standard_normal((c, 1, k, k), dtype=np.float32))
    bias = rng.standard_normal(xb.shape[1] * CBK.CB, dtype=np.float32)
    ho, wo = (h + pads[0] + pads[1] - k) // s + 1, (h + 2 + pads[2] + pads[3] - k) // s + 1
    res = rng.standard_normal((n, xb.shape[1], ho, wo, CBK.CB), dtype=np.float32)
    bands = data.draw(st.integers(min(2, ho), ho))
    outs = []
    for b in (1, bands):
        out = np.full((n, xb.shape[1], ho, wo, CBK.CB), np.nan, np.float32)
        D._depthwise(xb, wd, bias, s, s, pads[0], pads[2], act_code("swish"), res, True, out,
                     data.draw(st.integers(1, 3)), b)
        outs.append(out)
    np.testing.assert_array_equal(outs[1], outs[0])
    want = torch_conv(CBK.from_blocked(xb, c), wd.transpose(0, 3, 1, 2).reshape(-1, 1, k, k)[:c],
                      bias[:c], s, pads, 1, c, act_code("swish"), CBK.from_blocked(res, c), False)
    np.testing.assert_allclose(CBK.from_blocked(outs[1], c), want, **tol(k * k))


@pytest.mark.parametrize("cout, k, off", [(16, 1, 0), (40, 1, 2), (33, 3, 1), (8, 3, 3)])
def test_convs_write_into_a_concat_output(cout, k, off):
    """A 1x1 or dense blocked conv writing into blocks off.. of a bigger output (a joined
    concat's, layout._join_in_place) writes exactly its own blocks, as it would alone."""
    rng = np.random.default_rng(cout)
    x = CBK.to_blocked(rng.standard_normal((2, 24, 9, 11), dtype=np.float32))
    w = rng.standard_normal((cout, 24, k, k), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    run = CBK.bind_conv2d_blocked(x, w, b, 1, k // 2, 1, act_code("relu"))
    alone = run(x, None)
    nb = CBK.blocks(cout)
    out = np.full((2, off + nb + 2) + alone.shape[2:], np.nan, np.float32)
    assert run(x, None, (out, off, out.shape[1])) is out
    np.testing.assert_array_equal(out[:, off:off + nb], alone)
    assert np.isnan(out[:, :off]).all() and np.isnan(out[:, off + nb:]).all()
    made = run(x, None, (None, off, off + nb))         # the first input makes the output
    np.testing.assert_array_equal(made[:, off:], alone)


def test_squeezenet_concats_are_written_in_place():
    """Each fire module's two expand convs write their halves of the concat's output, the
    second after the first (reading its output); the concat passes it on."""
    sq = tinyinfer.load("squeezenet1_1", weights=None)
    for fuse in (True, False):                  # timed runs too
        marked = layout.for_shape(sq.plan, (1, 3, 224, 224), fuse=fuse)
        cats = [n for n in marked if n.kind == "concat"]
        assert len(cats) == 8 and all(n.attrs.get("joined") for n in cats)
        for n in cats:
            (last,) = n.inputs
            first = marked[last].inputs[1]
            nb = marked[first].param_shapes["weight"][0] // CBK.CB
            assert marked[first].attrs["into"] == (0, 2 * nb)
            assert marked[last].attrs["into"] == (nb, 2 * nb)
            assert len(marked[first].inputs) == 1


def test_row_bands_keep_every_thread_busy():
    from tinyinfer.kernels.conv_blocked_dw import row_bands
    assert [row_bands(planes, 56, 2) for planes in (1, 2, 3, 4, 5, 11)] == [2, 1, 2, 1, 2, 1]
    assert row_bands(3, 56, 8) == 5         # 15 tasks on 8 threads: 1 of 16 slots idle
    assert row_bands(3, 5, 8) == 5 and row_bands(1, 1, 2) == 1


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3 * CBK.CB + 3), h=st.integers(1, 9),
       w=st.integers(1, 9), seed=st.integers(0, 2**31))
def test_blocked_global_pool_matches_torch(n, c, h, w, seed):
    """The pool at the end of a blocked run: the first c channels' means, as torch's."""
    import torch
    from tinyinfer.kernels.blocked_layout import global_avg_pool_blocked
    x = np.random.default_rng(seed).standard_normal((n, c, h, w), dtype=np.float32)
    want = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), 1)[:, :, 0, 0]
    got = global_avg_pool_blocked(CBK.to_blocked(x), c)
    assert got.shape == (n, c)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 2 * CBK.CB + 3), k=st.integers(1, 4),
       s=st.integers(1, 3), d=st.integers(1, 2), ceil=st.booleans(), data=st.data(),
       seed=st.integers(0, 2**31))
def test_blocked_max_pool_matches_torch(n, c, k, s, d, ceil, data, seed):
    """Any kernel, stride, padding (<= k/2, as torch allows), dilation and ceil mode; NaN
    wins as in torch; the padded channels (garbage here) are never read into real ones."""
    import torch
    from tinyinfer.kernels.blocked_layout import max_pool2d_blocked
    p = data.draw(st.integers(0, k // 2))
    h = data.draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 17))
    w = data.draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 17))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    x[rng.random(x.shape) < 0.02] = np.nan
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, p, d, ceil_mode=ceil)
    xb = CBK.to_blocked(x)
    if c % CBK.CB:
        xb[:, -1, ..., c % CBK.CB:] = 1e30
    got = CBK.from_blocked(max_pool2d_blocked(xb, k, s, p, d, ceil), c)
    np.testing.assert_array_equal(got, want.numpy())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), cs=st.lists(st.integers(1, 2 * CBK.CB + 3), min_size=1, max_size=3),
       h=st.integers(1, 6), w=st.integers(1, 6), g=st.integers(1, 4), data=st.data(),
       seed=st.integers(0, 2**31))
def test_blocked_channel_moves_match_numpy(n, cs, h, w, g, data, seed):
    """blocked_layout.move_channels as a concat of any channel counts, a channel slice and a
    channel shuffle (tensor_ops' order) of the concat, and the three composed into one move
    (engine/layout.py folds ShuffleNetV2's chains so), on blocked values whose padded lanes
    hold NaN: the real channels equal NumPy's, the padded lanes come out 0."""
    from tinyinfer.kernels import blocked_layout as BL
    from tinyinfer.kernels.tensor_ops import channel_shuffle_ref
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((n, c, h, w), dtype=np.float32) for c in cs]
    xbs = [CBK.to_blocked(x) for x in xs]
    for x, xb in zip(xs, xbs):
        xb[:, -1, ..., x.shape[1] % CBK.CB or CBK.CB:] = np.nan
    cat = np.concatenate(xs, axis=1)
    C = cat.shape[1]
    starts = np.cumsum([0] + cs[:-1])
    maps = [o + np.arange(c) for o, c in zip(starts, cs)]

    def move(srcs, xs_nchw, maps, channels):
        tables = [BL.scatter_table(d, x.shape) for x, d in zip(xs_nchw, maps)]
        y = BL.move_channels(srcs, tables, channels)
        if channels % CBK.CB:
            assert not y[:, -1, ..., channels % CBK.CB:].any()
        return CBK.from_blocked(y, channels)

    np.testing.assert_array_equal(move(xbs, xs, maps, C), cat)
    catb = CBK.to_blocked(cat)
    start = data.draw(st.integers(0, C - 1))
    stop = data.draw(st.integers(start + 1, C))
    s = np.arange(C)
    np.testing.assert_array_equal(
        move([catb], [cat], [np.where((s >= start) & (s < stop), s - start, -1)], stop - start),
        cat[:, start:stop])
    if C % g == 0:
        shuffle = s % (C // g) * g + s // (C // g)      # channel s goes there
        want = channel_shuffle_ref(cat, g)
        np.testing.assert_array_equal(move([catb], [cat], [shuffle], C), want)
        np.testing.assert_array_equal(move(xbs, xs, [shuffle[m] for m in maps], C), want)


def test_layout_round_trip_and_padding_channels():
    x = np.random.default_rng(0).standard_normal((2, CBK.CB + 3, 5, 7), dtype=np.float32)
    xb = CBK.to_blocked(x)
    assert xb.shape == (2, 2, 5, 7, CBK.CB)
    assert xb[0, 1, 2, 3, 2] == x[0, CBK.CB + 2, 2, 3]
    assert not xb[:, 1, ..., 3:].any()            # channels past C are zeros
    np.testing.assert_array_equal(CBK.from_blocked(xb, CBK.CB + 3), x)


def test_which_convs_run_blocked(monkeypatch):
    """MobileNetV2, two images at 224: every conv (the dense stem, 17 blocks' 2 or 3 convs,
    the last 1x1) and the pool run blocked; every conv's output stays blocked, and the pool
    hands the classifier NCHW. With a limit of 14x14 output pixels only the convs of the
    14x14 and 7x7 stages (blocks 7-17 and the last 1x1: 3 per block, but block 7's expand
    reads a 28x28 map: its output is 28x28 too) and the pool."""
    m = tinyinfer.load("mobilenet_v2", weights=None)
    run, stored = layout.assign(m.plan, (2, 3, 224, 224))
    marked = layout.for_shape(m.plan, (2, 3, 224, 224))
    assert layout.for_shape(m.plan, (2, 3, 224, 224)) is marked        # cached per shape
    blocked = [n for n in marked if n.attrs.get("blocked")]
    convs = [n for n in marked if n.kind == "conv2d"]
    assert len(convs) == 1 + 2 + 3 * 16 + 1
    assert blocked == convs + [marked["global_pool"]] and len(run) == len(blocked)
    assert stored == {n.name for n in convs}
    assert marked["global_pool"].attrs["channels"] == 1280
    reader_of = {v: [n for n in marked if v in n.inputs] for v in run}
    for n in blocked:
        assert n.attrs["blocked_out"] == (n.name in stored)
        assert n.attrs["blocked_out"] == all(r.attrs.get("blocked") for r in reader_of[n.name])
    assert not marked[marked.output].attrs.get("blocked")
    assert not any(n.attrs.get("blocked") for n in m.plan)        # the plan itself unchanged
    monkeypatch.setattr(layout, "MAX_PIXELS", 14 * 14)
    small, _ = layout.assign(m.plan, (2, 3, 224, 224))
    assert len(small) == 2 + 3 * 10 + 1 + 1


def test_which_pools_concats_and_dense_convs_run_blocked():
    """SqueezeNet 1.1 runs blocked whole (its concats join whole blocks: 64 + 64 ... 256 +
    256 channels); ResNet-18's 3x3 convs only where their im2col panel is at most
    MAX_PANEL floats (not @56x56: 64*9 taps x 3136 pixels, nor the 7x7 stem), and on
    batches of 4+ with at most MAX_DENSE_TAPS taps (not stage 4's 256 and 512); GhostNet's
    concats of partial blocks (8 + 8 channels ...) not on maps over MAX_GATHER_PIXELS, and
    a concat only with both inputs blocked. ShuffleNetV2's slice -> concat -> shuffle
    chains fold into the shuffle."""
    sq = tinyinfer.load("squeezenet1_1", weights=None)
    run, _ = layout.assign(sq.plan, (1, 3, 224, 224))
    assert run == {n.name for n in sq.plan if n.kind != "flatten"}
    r18 = tinyinfer.load("resnet18", weights=None)
    for batch in (1, layout.MAX_DENSE_TAPS_FROM_BATCH):
        run, _ = layout.assign(r18.plan, (batch, 3, 224, 224))
        shapes = infer_shapes(r18.plan, (batch, 3, 224, 224))
        for n in r18.plan:
            if n.kind == "conv2d" and n.param_shapes["weight"][2] > 1:
                cin, kh, kw = n.param_shapes["weight"][1:]
                ho, wo = shapes[n.name][2:]
                fits = (cin * kh * kw * ho * wo <= layout.MAX_PANEL
                        and (cin * kh * kw <= layout.MAX_DENSE_TAPS or batch == 1))
                assert layout._eligible(n, shapes) == fits, (batch, n.name)
                if not fits:        # (a fitting one may still be dropped with its run:
                    assert n.name not in run    # too few values kept blocked per conversion)
        # stage 4's 3x3 convs (2304, 4608 taps): blocked on one image, not on a batch
        layer4 = {n.name for n in r18.plan if n.name.startswith("layer4")
                  and n.name.endswith(("conv1", "conv2"))}
        assert len(layer4) == 4
        assert (layer4 <= run) if batch == 1 else not (layer4 & run), batch
    sh = tinyinfer.load("shufflenet_v2_x0_5", weights=None)    # 16 units, 13 of stride 1
    marked = layout.for_shape(sh.plan, (1, 3, 224, 224))
    folded = [n.kind for n in marked if n.attrs.get("folded")]
    assert sorted(folded) == ["concat"] * 16 + ["slice"] * 13   # into the 16 shuffles
    for n in marked:
        if n.kind == "channel_shuffle":     # reads the unit's input and branch directly
            assert len(n.inputs) == 2 and not any(marked[v].attrs.get("folded")
                                                  for v in n.inputs)
    gh = tinyinfer.load("ghostnet_100", weights=None)
    run, stored = layout.assign(gh.plan, (1, 3, 224, 224))
    shapes = infer_shapes(gh.plan, (1, 3, 224, 224))
    cats = [n for n in gh.plan if n.kind == "concat"]
    for n in cats:
        h, w = shapes[n.name][2:]
        if any(shapes[v][1] % CBK.CB for v in n.inputs) and h * w > layout.MAX_GATHER_PIXELS:
            assert n.name not in run
        if n.name in run:
            assert all(v in stored for v in n.inputs)
    assert any(n.name in run for n in cats)
    adds = [n.name for n in gh.plan if n.kind == "add"]     # the blocks' residuals
    assert len(adds) == 11 and sum(a in run for a in adds) >= 8


@pytest.mark.parametrize("name, shape", [("efficientnet_b0", (1, 3, 224, 224)),
                                         ("efficientnet_b0", (2, 3, 96, 128)),
                                         ("squeezenet1_1", (2, 3, 160, 144)),
                                         ("googlenet", (1, 3, 224, 224)),
                                         ("shufflenet_v2_x0_5", (2, 3, 224, 224)),
                                         ("ghostnet_100", (1, 3, 128, 160))])
def test_network_blocked_equals_nchw(name, shape, monkeypatch):
    """The same weights run with and without the blocked layout give the same logits (here
    with random BN-free weights; test_models.py checks the blocked run against torch).
    SqueezeNet and GoogLeNet: dense 3x3 convs on blocked input, max pools, concats;
    ShuffleNetV2: channel slices, concats of partial blocks and shuffles (gathers);
    GhostNet: residual adds of blocked values."""
    m = tinyinfer.load(name, weights=None)
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    got = m(x)
    assert any(n.attrs.get("blocked") for n in layout.for_shape(m.plan, shape))
    monkeypatch.setattr(layout, "MAX_PIXELS", 0)
    m.plan.layouts.clear()
    assert not any(n.attrs.get("blocked") for n in layout.for_shape(m.plan, shape))
    want = m(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 3 * CBK.CB + 3), red=st.integers(1, 24),
       h=st.integers(1, 9), w=st.integers(1, 9), seed=st.integers(0, 2**31),
       acts=st.sampled_from([("relu", "sigmoid"), ("swish", "sigmoid"),
                             ("relu", "hard_sigmoid")]))
def test_blocked_squeeze_excite_matches_torch(n, c, red, h, w, seed, acts):
    """se.squeeze_excite_blocked: pool, reduce FC + act, expand FC + gate, scale, as
    torch's modules compute it (timm's SqueezeExcite), on the blocked layout."""
    import torch
    import torch.nn.functional as F
    from tinyinfer.kernels.se import squeeze_excite_blocked
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    w_r = (rng.standard_normal((red, c)) / math.sqrt(c)).astype(np.float32)
    w_e = (rng.standard_normal((c, red)) / math.sqrt(red)).astype(np.float32)
    b_r, b_e = rng.standard_normal(red, dtype=np.float32), rng.standard_normal(c, dtype=np.float32)
    act, gate = acts
    torch_act = {"relu": F.relu, "swish": F.silu}[act]
    torch_gate = {"sigmoid": torch.sigmoid, "hard_sigmoid": F.hardsigmoid}[gate]
    xt = torch.from_numpy(x)
    s = xt.mean(dim=(2, 3))
    g = torch_gate(torch_act(s @ torch.from_numpy(w_r).T + torch.from_numpy(b_r))
                   @ torch.from_numpy(w_e).T + torch.from_numpy(b_e))
    want = (xt * g[:, :, None, None]).numpy()
    got = CBK.from_blocked(squeeze_excite_blocked(CBK.to_blocked(x), w_r, b_r, w_e, b_e,
                                                  act, gate), c)
    np.testing.assert_allclose(got, want, **tol(c))
    nchw = squeeze_excite_blocked(x, w_r, b_r, w_e, b_e, act, gate, blocked_out=False)
    np.testing.assert_array_equal(nchw, got)          # NCHW in and out: the same numbers
    from tinyinfer.kernels import se
    # the shapes drawn run as one serial kernel (_se_serial); the larger SEs' paths: the
    # pool and scale kernels with the serial FCs, then with linear.py's FCs (batch 8)
    saved = se.SERIAL_SE_FLOATS, se.SERIAL_FC_MACS
    assert n * CBK.blocks(c) * h * w * CBK.CB <= se.SERIAL_SE_FLOATS
    for limits in [(-1, saved[1]), (-1, -1)]:
        se.SERIAL_SE_FLOATS, se.SERIAL_FC_MACS = limits
        try:
            wide = squeeze_excite_blocked(x, w_r, b_r, w_e, b_e, act, gate, blocked_out=False)
        finally:
            se.SERIAL_SE_FLOATS, se.SERIAL_FC_MACS = saved
        np.testing.assert_allclose(wide, want, **tol(c))


def test_blocked_squeeze_excite_bad_input():
    from tinyinfer.kernels.se import squeeze_excite_blocked
    w_r, w_e = np.zeros((4, 20), np.float32), np.zeros((20, 4), np.float32)
    for x in (np.zeros((1, 21, 3, 3), np.float32), np.zeros((1, 9, 3, 3, CBK.CB), np.float32),
              np.zeros((1, 20, 0, 3), np.float32), np.zeros((20, 3, 3), np.float32)):
        with pytest.raises(InputError, match="squeeze_excite_blocked: x has shape"):
            squeeze_excite_blocked(x, w_r, None, w_e, None)


@pytest.mark.parametrize("case, match", [
    (dict(x=np.zeros((1, 8, 5, 5), np.float64)), "float32"),
    (dict(w=np.zeros((8, 4, 3, 3), np.float32), groups=2), "use conv2d"),   # grouped
    (dict(w=np.zeros((8, 8, 3, 3), np.float32), x=np.zeros((1, 8, 2, 2), np.float32)),
     "smaller than the kernel"),
    (dict(x=np.zeros((1, 9, 5, 5), np.float32)), r"needs \(N, 8, H, W\)"),
    (dict(x=np.zeros((1, 3, 5, 5, CBK.CB), np.float32)), "needs"),               # 3 blocks
    (dict(residual=np.zeros((1, 8, 4, 5), np.float32)), "the output is"),
    (dict(bias=np.zeros(7, np.float32)), "bias must have shape"),
])
def test_blocked_conv_bad_input(case, match):
    """Arguments a jitted kernel would misread (or crash on) raise one InputError."""
    a = dict(x=np.zeros((1, 8, 5, 5), np.float32), w=np.zeros((8, 8, 1, 1), np.float32),
             bias=None, stride=1, residual=None, groups=1) | case
    with pytest.raises(InputError, match=match):
        CBK.conv2d_blocked(a["x"], a["w"], a["bias"], a["stride"], 0, a["groups"], 0,
                           a["residual"])


@pytest.mark.parametrize("name, kind", [("mobilenet_v2", "conv2d"),
                                        ("mobilenet_v3_small", "se")])
def test_bound_blocked_nodes_follow_a_new_weight(name, kind):
    """The engine binds a blocked conv's (and squeeze-excite's) checked arguments and packed
    weights once per input shape (engine/ops_blocked.py); a node given a new weight array
    runs with it."""
    m = tinyinfer.load(name, weights=None)
    x = np.random.default_rng(2).random((1, 3, 64, 64), dtype=np.float32)
    before = m(x)
    node = [n for n in m.plan if n.kind == kind][-1]                # the last one, blocked
    assert layout.for_shape(m.plan, x.shape)[node.name].attrs["blocked"]
    key = sorted(k for k in node.params if k.endswith("weight"))[-1]   # se: one of its FCs
    node.params[key] = node.params[key] * np.float32(2.0)
    after = m(x)
    for n in m.plan:
        n.cache.clear()
    m.plan.layouts.clear()
    np.testing.assert_array_equal(m(x), after)
    assert not np.allclose(after, before)
