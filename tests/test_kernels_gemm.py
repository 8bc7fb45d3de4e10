"""gemm.py's folded path: the images' pixels as one row, panels across image boundaries
(gemm_bias_act's ``fold``), and conv_gemm.py's implicit path (columns gathered panel by
panel, never written out), against the NumPy reference and PyTorch. The per-image path
over written columns is covered with every other variant in test_kernels_variants.py."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyinfer.kernels import conv_gemm, gemm
from tinyinfer.kernels.conv import conv2d, conv2d_ref
from tinyinfer.kernels.tiles import NR
from conv_ref import TORCH_ACT, tol


@st.composite
def folded_cases(draw):
    """Dense convs on small maps (a panel spans up to several images) of 2-5 images,
    K = Cin*KH*KW from 1 past gemm.KC = 256 (so a crossing panel is also read back
    between blocks of k), with bias, activation and residual in either order."""
    k = draw(st.sampled_from([1, 3]))
    s = draw(st.integers(1, 2))
    pad = k // 2 if draw(st.booleans()) else 0
    h, w = draw(st.integers(k, 9)), draw(st.integers(k, 9))
    return dict(n=draw(st.integers(2, 5)), cin=draw(st.integers(1, 40)),
                cout=draw(st.integers(1, 13)), k=k, s=s, pad=pad, h=h, w=w,
                act=draw(st.sampled_from(sorted(TORCH_ACT))), residual=draw(st.booleans()),
                after=draw(st.booleans()), seed=draw(st.integers(0, 2**31)))


def check_patched(c, stride, pad, dilation, module, name, value):
    """conv2d's "gemm" variant on case c with module.name patched to value, against the
    NumPy reference (bias, activation, and a residual before or after it as c draws)."""
    rng = np.random.default_rng(c["seed"])
    kk = c["cin"] * c["k"] ** 2
    x = rng.standard_normal((c["n"], c["cin"], c["h"], c["w"]), dtype=np.float32)
    w = (rng.standard_normal((c["cout"], c["cin"], c["k"], c["k"])) / math.sqrt(kk)
         ).astype(np.float32)
    b = rng.standard_normal(c["cout"], dtype=np.float32)
    args = (stride, pad, dilation, 1, c["act"])
    want = conv2d_ref(x, w, b, *args)
    res = rng.standard_normal(want.shape, dtype=np.float32) if c["residual"] else None
    want = conv2d_ref(x, w, b, *args, res, act_after_residual=c["after"])
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(module, name, value)
        got = conv2d(x, w, b, *args, res, variant="gemm", act_after_residual=c["after"])
    finally:
        mp.undo()
    np.testing.assert_allclose(got, want, **tol(kk))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(folded_cases())
def test_folded_panels_match_the_reference(c):
    check_patched(c, c["s"], c["pad"], 1, conv_gemm, "folds", lambda n, p, k: True)


def test_the_fold_rule():
    """Folded where whole panels per image would waste over 10%: on AVX-512 (64-pixel
    panels) from 2 images on 7x7 and 14x14 maps; on AVX2 (16-pixel panels) only from 4
    images of 2+ panels each with K >= 256. Never one image, nor maps that fill their
    panels."""
    assert gemm.folds(8, 49, 288)                      # 49 pixels: 4 x 16 or 1 x 64
    assert gemm.folds(8, 196, 512) == (NR == 64)      # 14x14: 13 x 16 = 208, or 4 x 64
    assert gemm.folds(8, 49, 96) == (NR == 64)
    assert gemm.folds(2, 49, 288) == (NR == 64)
    assert not gemm.folds(1, 49, 2048)
    assert not gemm.folds(8, 64, 512)
    assert not gemm.folds(8, 56 * 56, 512)             # 49 panels of 64, 196 of 16


def test_efficientvit_and_resnet_layers_folded_against_torch():
    """Full-size 7x7 layers at batch 8 where the rule folds (on AVX2): EfficientViT-M5's
    FFN (288 -> 576 with ReLU, 576 -> 288 with its residual) and ResNet-50's last
    bottleneck's 512 -> 2048 with ReLU after the residual add."""
    rng = np.random.default_rng(3)
    for cin, cout, act, res_on, after in [(288, 576, "relu", False, False),
                                          (576, 288, "none", True, False),
                                          (512, 2048, "relu", True, True)]:
        x = rng.standard_normal((8, cin, 7, 7), dtype=np.float32)
        w = (rng.standard_normal((cout, cin, 1, 1)) / math.sqrt(cin)).astype(np.float32)
        b = rng.standard_normal(cout, dtype=np.float32)
        res = rng.standard_normal((8, cout, 7, 7), dtype=np.float32) if res_on else None
        got = conv2d(x, w, b, 1, 0, 1, 1, act, res, variant="gemm", act_after_residual=after)
        t = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b))
        if res is not None and after:
            t = F.relu(t + torch.from_numpy(res))
        else:
            t = F.relu(t) if act == "relu" else t
            t = t + torch.from_numpy(res) if res is not None else t
        np.testing.assert_allclose(got, t.numpy(), **tol(cin))


@st.composite
def implicit_cases(draw):
    """Convs with taps (1x1 padded up to 7x7), strides 1-3, dilations 1-2, padding from none
    to past the kernel's reach and uneven (TensorFlow's 'same'), maps from the kernel's
    extent up, K from 1 past gemm.KC = 256 (several blocks of k per panel), with bias,
    activation and residual in either order."""
    k = draw(st.sampled_from([1, 2, 3, 5, 7]))
    d = draw(st.integers(1, 2))
    reach = d * (k - 1) + 1
    pad = tuple(draw(st.integers(0, reach)) for _ in range(4))
    if k == 1 and not any(pad):
        pad = (0, 1, 1, 0)        # an unpadded 1x1 reads its input directly, not taps
    h, w = draw(st.integers(reach, 19)), draw(st.integers(reach, 19))
    return dict(n=draw(st.integers(1, 3)), cin=draw(st.integers(1, 300 // (k * k) + 2)),
                cout=draw(st.integers(1, 13)), k=k, s=draw(st.integers(1, 3)), d=d, pad=pad,
                h=h, w=w, act=draw(st.sampled_from(sorted(TORCH_ACT))),
                residual=draw(st.booleans()), after=draw(st.booleans()),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(implicit_cases())
def test_implicit_panels_match_the_reference(c):
    check_patched(c, c["s"], c["pad"], c["d"], conv_gemm, "implicit_wins", lambda *a: True)


def test_the_implicit_rule(monkeypatch):
    """Columns gathered per panel where each thread sweeps all of W over its own pixels
    (ResNet's stem and strided 3x3s at batch 8); written out first where the threads
    split W's rows (both would gather the same pixels: small maps) or the product folds."""
    assert conv_gemm.implicit_wins(8, 64, 112 * 112, 147, 2)
    assert conv_gemm.implicit_wins(1, 64, 112 * 112, 147, 2)
    assert conv_gemm.implicit_wins(8, 128, 28 * 28, 1152, 2)
    assert not conv_gemm.implicit_wins(1, 128, 28 * 28, 1152, 2)
    monkeypatch.setattr(conv_gemm, "folds", lambda n, p, k: True)
    assert not conv_gemm.implicit_wins(8, 64, 112 * 112, 147, 2)


def test_resnet_stem_at_batch_8_against_torch():
    """ResNet's 7x7 stride-2 stem, full size, two images (the implicit path's largest
    gather: 147 taps over 12,544 pixels each), with ReLU, against PyTorch."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 224, 224), dtype=np.float32)
    w = (rng.standard_normal((64, 3, 7, 7)) / math.sqrt(147)).astype(np.float32)
    b = rng.standard_normal(64, dtype=np.float32)
    assert conv_gemm.implicit_wins(2, 64, 112 * 112, 147, 2)
    got = conv2d(x, w, b, 2, 3, 1, 1, "relu", variant="gemm")
    t = F.relu(F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                        stride=2, padding=3))
    np.testing.assert_allclose(got, t.numpy(), **tol(147))
