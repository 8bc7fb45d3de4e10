"""Squeeze-and-excitation against a torch composition and torchvision's SqueezeExcitation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torchvision.ops import SqueezeExcitation

from tinyinfer.errors import InputError
from tinyinfer.kernels import activations as A
from tinyinfer.kernels import se as S

# y = x * g with g in (0, 1); g passes through two FCs of <= 32 terms and a gate, each a
# few float32 ulps from torch's (different summation order; we pool in float64). With
# |x| <= ~4 the output error is ~1e-6.
SE_RTOL, SE_ATOL = 1e-5, 1e-5

SETTINGS = settings(max_examples=30, deadline=None)

# (act, gate) pairs the zoo uses: SENet/MnasNet, EfficientNet, MobileNetV3
VARIANTS = {(A.RELU, A.SIGMOID): (F.relu, torch.sigmoid),
            (A.SWISH, A.SIGMOID): (F.silu, torch.sigmoid),
            (A.RELU, A.HSIGMOID): (F.relu, F.hardsigmoid)}


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 32), st.integers(1, 8), st.integers(1, 9),
       st.integers(1, 9), st.sampled_from(sorted(VARIANTS)), st.booleans(), st.booleans(),
       st.integers(0, 2**31))
def test_squeeze_excite_matches_torch_composition(N, C, Crd, H, W, variant, conv_shaped,
                                                  bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w_r = (rng.standard_normal((Crd, C, 1, 1)) / np.sqrt(C)).astype(np.float32)
    w_e = (rng.standard_normal((C, Crd, 1, 1)) / np.sqrt(Crd)).astype(np.float32)
    b_r = rng.standard_normal(Crd).astype(np.float32) if bias else None
    b_e = rng.standard_normal(C).astype(np.float32) if bias else None
    act_fn, gate_fn = VARIANTS[variant]
    t = torch.from_numpy(x)
    T = lambda a: None if a is None else torch.from_numpy(a)   # noqa: E731
    s = F.adaptive_avg_pool2d(t, 1)
    s = act_fn(F.conv2d(s, T(w_r), T(b_r)))
    want = (t * gate_fn(F.conv2d(s, T(w_e), T(b_e)))).numpy()
    if not conv_shaped:
        w_r, w_e = w_r[:, :, 0, 0], w_e[:, :, 0, 0]
    got = S.squeeze_excite(x, w_r, b_r, w_e, b_e, *variant)
    np.testing.assert_allclose(got, want, rtol=SE_RTOL, atol=SE_ATOL)


@pytest.mark.parametrize("scale_activation,gate", [(torch.nn.Sigmoid, "sigmoid"),
                                                   (torch.nn.Hardsigmoid, "hsigmoid")])
def test_torchvision_squeeze_excitation(scale_activation, gate):
    torch.manual_seed(0)
    se = SqueezeExcitation(24, 8, scale_activation=scale_activation).eval()
    with torch.no_grad():
        for p in se.parameters():           # random weights, so the gate is not ~0.5
            p.normal_(0, 0.5)
    x = torch.randn(2, 24, 7, 5)
    with torch.no_grad():
        want = se(x).numpy()
    params = [p.detach().numpy() for p in (se.fc1.weight, se.fc1.bias, se.fc2.weight,
                                           se.fc2.bias)]
    got = S.squeeze_excite(x.numpy(), *params, "relu", gate)
    np.testing.assert_allclose(got, want, rtol=SE_RTOL, atol=SE_ATOL)
    ref = S.squeeze_excite_ref(x.numpy(), *params, "relu", gate)
    np.testing.assert_allclose(ref, want, rtol=SE_RTOL, atol=SE_ATOL)


def test_noncontiguous_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32).transpose(0, 1, 3, 2)
    w_r = rng.standard_normal((2, 4)).astype(np.float32)
    w_e = rng.standard_normal((4, 2)).astype(np.float32)
    t = torch.from_numpy(x.copy())
    g = torch.sigmoid(F.relu(t.mean((2, 3)) @ torch.from_numpy(w_r).T) @ torch.from_numpy(w_e).T)
    np.testing.assert_allclose(S.squeeze_excite(x, w_r, None, w_e, None),
                               (t * g[:, :, None, None]).numpy(), rtol=SE_RTOL, atol=SE_ATOL)


def test_cost():
    # EfficientNet-B0's first MBConv SE: C = 32, Crd = 8, 112x112, swish / sigmoid
    c = S.squeeze_excite_cost((1, 32, 112, 112), 8, A.SWISH, A.SIGMOID)
    n = 32 * 112 * 112
    assert c.macs == 2 * 32 * 8
    assert c.flops == 2 * 512 + n + 8 * 5 + 32 * 4 + n
    assert c.params == 2 * 32 * 8 + 8 + 32
    assert (c.elems_read, c.elems_written) == (n + c.params, n)


@pytest.mark.parametrize("call,match", [
    (lambda x, wr, we: S.squeeze_excite(x, wr[:, :3], None, we, None), "w_reduce"),
    (lambda x, wr, we: S.squeeze_excite(x, wr, None, we[:, :1], None), "w_expand"),
    (lambda x, wr, we: S.squeeze_excite(x, wr, np.ones(3, np.float32), we, None), "b_reduce"),
    (lambda x, wr, we: S.squeeze_excite(x, wr, None, we, np.ones(3, np.float32)), "b_expand"),
    (lambda x, wr, we: S.squeeze_excite(x, wr, None, we, None, gate="softmax"), "gate"),
    (lambda x, wr, we: S.squeeze_excite(x[0], wr, None, we, None), "4-D"),
])
def test_bad_input_raises_input_error(call, match):
    x = np.ones((1, 4, 3, 3), np.float32)
    with pytest.raises(InputError, match=match):
        call(x, np.ones((2, 4), np.float32), np.ones((4, 2), np.float32))
