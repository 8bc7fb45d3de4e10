"""batch_norm, fold_batchnorm, layer_norm, layer_norm_2d and softmax against torch / timm."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from tinyinfer.errors import InputError
from tinyinfer.kernels import norm as Nm

# Normalized outputs are O(1) (times gamma up to ~2); we compute statistics in float64, so
# we differ from the exact result by float32 rounding of the output, a few ulps.
# Layer norm's expected values come from torch in float64: torch's float32 layer norm is
# itself off by ~3e-5 when a row's variance is comparable to eps (seen with C = 2).
NORM_RTOL, NORM_ATOL = 1e-5, 1e-5
# Conv + BN vs the folded conv: two different float32 convolutions (different weights,
# one extra rounding of each weight) summing up to C_in*K*K = 72 products, scaled by up to
# gamma/sqrt(var) ~ 6. Errors ~1e-6 * |y|; outputs are O(10).
FOLD_RTOL, FOLD_ATOL = 1e-4, 1e-4
# softmax outputs are in [0, 1]; float32 exp agrees to a few ulps.
SOFTMAX_RTOL, SOFTMAX_ATOL = 1e-5, 1e-7

SETTINGS = settings(max_examples=30, deadline=None)


def _rng(seed):
    return np.random.default_rng(seed)


def _bn_stats(rng, C):
    """Randomized running statistics and affine params, as a trained net would have."""
    return dict(
        gamma=rng.uniform(-2, 2, C).astype(np.float32),
        beta=rng.standard_normal(C).astype(np.float32),
        mean=rng.standard_normal(C).astype(np.float32),
        var=rng.uniform(0.1, 3.0, C).astype(np.float32))


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 8), st.sampled_from([(), (5,), (4, 6)]),
       st.floats(1e-6, 1e-2), st.integers(0, 2**31))
def test_batch_norm_matches_torch_eval(N, C, spatial, eps, seed):
    rng = _rng(seed)
    x = rng.standard_normal((N, C) + spatial).astype(np.float32)
    s = _bn_stats(rng, C)
    got = Nm.batch_norm(x, s["gamma"], s["beta"], s["mean"], s["var"], eps)
    want = F.batch_norm(torch.from_numpy(x), torch.from_numpy(s["mean"]),
                        torch.from_numpy(s["var"]), torch.from_numpy(s["gamma"]),
                        torch.from_numpy(s["beta"]), training=False, eps=eps).numpy()
    np.testing.assert_allclose(got, want, rtol=NORM_RTOL, atol=NORM_ATOL)


@SETTINGS
@given(st.integers(1, 2), st.sampled_from([1, 2, 4]), st.integers(1, 3),
       st.integers(1, 3), st.sampled_from([1, 3]), st.booleans(), st.integers(0, 2**31))
def test_fold_batchnorm_equals_conv_then_bn(N, groups, cin_g, cout_g, k, bias, seed):
    rng = _rng(seed)
    torch.manual_seed(seed % 2**31)
    cin, cout = groups * cin_g, groups * cout_g
    conv = torch.nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=bias)
    bn = torch.nn.BatchNorm2d(cout, eps=1e-3)
    s = _bn_stats(rng, cout)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(s["gamma"]))
        bn.bias.copy_(torch.from_numpy(s["beta"]))
        bn.running_mean.copy_(torch.from_numpy(s["mean"]))
        bn.running_var.copy_(torch.from_numpy(s["var"]))
    bn.eval()
    x = torch.from_numpy(rng.standard_normal((N, cin, 6, 5)).astype(np.float32))
    with torch.no_grad():
        want = bn(conv(x)).numpy()
    w, b = Nm.fold_batchnorm(conv.weight.detach().numpy(),
                             conv.bias.detach().numpy() if bias else None,
                             s["gamma"], s["beta"], s["mean"], s["var"], bn.eps)
    assert w.dtype == b.dtype == np.float32 and w.shape == tuple(conv.weight.shape)
    got = F.conv2d(x, torch.from_numpy(w), torch.from_numpy(b), padding=k // 2,
                   groups=groups).numpy()
    np.testing.assert_allclose(got, want, rtol=FOLD_RTOL, atol=FOLD_ATOL)


def test_fold_batchnorm_linear_and_closed_form():
    rng = _rng(1)
    lin = torch.nn.Linear(7, 5)
    bn = torch.nn.BatchNorm1d(5)
    s = _bn_stats(rng, 5)
    with torch.no_grad():
        for p, key in ((bn.weight, "gamma"), (bn.bias, "beta"), (bn.running_mean, "mean"),
                       (bn.running_var, "var")):
            p.copy_(torch.from_numpy(s[key]))
    bn.eval()
    x = torch.from_numpy(rng.standard_normal((3, 7)).astype(np.float32))
    w, b = Nm.fold_batchnorm(lin.weight.detach().numpy(), lin.bias.detach().numpy(),
                             s["gamma"], s["beta"], s["mean"], s["var"], bn.eps)
    with torch.no_grad():
        np.testing.assert_allclose(F.linear(x, torch.from_numpy(w), torch.from_numpy(b)),
                                   bn(lin(x)), rtol=FOLD_RTOL, atol=FOLD_ATOL)
    # a BN with gamma = sqrt(var + eps), beta = mean is the identity: folding leaves w, b
    var = np.full(5, 0.25, np.float32)
    w2, b2 = Nm.fold_batchnorm(np.ones((5, 7), np.float32), np.full(5, 2.0, np.float32),
                               np.sqrt(var + 1e-5), np.ones(5, np.float32),
                               np.ones(5, np.float32), var, 1e-5)
    np.testing.assert_allclose(w2, 1.0, rtol=1e-6)
    np.testing.assert_allclose(b2, 2.0, rtol=1e-6)


@SETTINGS
@given(st.lists(st.integers(1, 5), min_size=0, max_size=2), st.integers(1, 48),
       st.booleans(), st.floats(1e-6, 1e-3), st.integers(0, 2**31))
def test_layer_norm_matches_torch(lead, C, affine, eps, seed):
    rng = _rng(seed)
    x = (rng.standard_normal(tuple(lead) + (C,)) * 3 + 1).astype(np.float32)
    g = rng.uniform(-2, 2, C).astype(np.float32) if affine else None
    b = rng.standard_normal(C).astype(np.float32) if affine else None
    want = F.layer_norm(torch.from_numpy(x).double(), (C,),
                        None if g is None else torch.from_numpy(g).double(),
                        None if b is None else torch.from_numpy(b).double(), eps).numpy()
    np.testing.assert_allclose(Nm.layer_norm(x, g, b, eps), want, rtol=NORM_RTOL,
                               atol=NORM_ATOL)


def test_layer_norm_is_stable_with_a_large_mean():
    # mean 1e4, std 1: E[x^2] - E[x]^2 in float32 would lose every digit. The expected
    # values come from torch in float64.
    rng = _rng(2)
    x = (rng.standard_normal((4, 64)) + 1e4).astype(np.float32)
    want = F.layer_norm(torch.from_numpy(x).double(), (64,), eps=1e-5).float().numpy()
    np.testing.assert_allclose(Nm.layer_norm(x, eps=1e-5), want, rtol=NORM_RTOL,
                               atol=NORM_ATOL)


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 12), st.integers(1, 12), st.integers(1, 12),
       st.integers(0, 2**31))
def test_layer_norm_2d_matches_timm(N, C, H, W, seed):
    from timm.layers import LayerNorm2d
    rng = _rng(seed)
    ln = LayerNorm2d(C)                                # eps 1e-6, as our default
    g = rng.uniform(-2, 2, C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    with torch.no_grad():
        ln.weight.copy_(torch.from_numpy(g))
        ln.bias.copy_(torch.from_numpy(b))
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)   # H*W up to 144: >1 block
    with torch.no_grad():
        want = ln.double()(torch.from_numpy(x).double()).numpy()   # float64: see the top
    got = Nm.layer_norm_2d(x, g, b)
    np.testing.assert_allclose(got, want, rtol=NORM_RTOL, atol=NORM_ATOL)


@SETTINGS
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.integers(0, 3),
       st.sampled_from([1.0, 30.0]), st.integers(0, 2**31))
def test_softmax_matches_torch(shape, axis_pick, scale, seed):
    # scale 30 puts logits around +-100: exp would overflow without the max subtraction
    x = (_rng(seed).standard_normal(shape) * scale).astype(np.float32)
    axis = axis_pick % len(shape) - (len(shape) if axis_pick % 2 else 0)   # mix of +/- axes
    got = Nm.softmax(x, axis)
    want = torch.softmax(torch.from_numpy(x), axis).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=SOFTMAX_RTOL, atol=SOFTMAX_ATOL)


def test_softmax_extremes():
    x = np.array([[1000.0, 0.0, -1000.0], [-np.inf, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(Nm.softmax(x), torch.softmax(torch.from_numpy(x), -1).numpy(),
                               rtol=SOFTMAX_RTOL, atol=SOFTMAX_ATOL)


def test_noncontiguous_inputs():
    rng = _rng(3)
    x = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)[:, ::2, :, ::-1]
    t = torch.from_numpy(x.copy())
    s = _bn_stats(rng, 3)
    want = F.batch_norm(t, *(torch.from_numpy(s[k]) for k in ("mean", "var", "gamma", "beta")))
    np.testing.assert_allclose(Nm.batch_norm(x, s["gamma"], s["beta"], s["mean"], s["var"]),
                               want.numpy(), rtol=NORM_RTOL, atol=NORM_ATOL)
    np.testing.assert_allclose(Nm.layer_norm(x), F.layer_norm(t, (7,)).numpy(),
                               rtol=NORM_RTOL, atol=NORM_ATOL)


def test_refs_agree_with_torch():
    rng = _rng(4)
    x = rng.standard_normal((2, 5, 3, 4)).astype(np.float32)
    t = torch.from_numpy(x)
    s = _bn_stats(rng, 5)
    want = F.batch_norm(t, *(torch.from_numpy(s[k]) for k in ("mean", "var", "gamma", "beta")))
    np.testing.assert_allclose(Nm.batch_norm_ref(x, s["gamma"], s["beta"], s["mean"], s["var"]),
                               want.numpy(), rtol=NORM_RTOL, atol=NORM_ATOL)
    np.testing.assert_allclose(Nm.layer_norm_ref(x), F.layer_norm(t, (4,)).numpy(),
                               rtol=NORM_RTOL, atol=NORM_ATOL)
    np.testing.assert_allclose(Nm.softmax_ref(x, 1), torch.softmax(t, 1).numpy(),
                               rtol=SOFTMAX_RTOL, atol=SOFTMAX_ATOL)


def test_costs():
    b = Nm.batch_norm_cost((2, 8, 4, 4))
    assert (b.flops, b.params, b.elems_read, b.elems_written) == (512, 32, 256 + 32, 256)
    # (B, T, C) = (1, 10, 16): 160 elements * 8 + 10 rows * 5
    ln = Nm.layer_norm_cost((1, 10, 16))
    assert (ln.flops, ln.params) == (160 * 8 + 10 * 5, 32)
    assert Nm.layer_norm_cost((1, 10, 16), affine=False).flops == 160 * 6 + 10 * 5
    assert Nm.layer_norm_2d_cost((1, 16, 2, 5)) == ln
    assert Nm.softmax_cost((3, 7)).flops == 5 * 21


@pytest.mark.parametrize("call,match", [
    (lambda x, v: Nm.batch_norm(x, v, v, v, v[:2]), r"shape \(4,\)"),
    (lambda x, v: Nm.batch_norm(x, v, v, v, -v), "var \\+ eps"),
    (lambda x, v: Nm.batch_norm(x, v, v, v, v, eps="small"), "eps"),
    (lambda x, v: Nm.fold_batchnorm(x[0, 0, 0], None, v, v, v, v), "output channels first"),
    (lambda x, v: Nm.fold_batchnorm(x, v[:3], v, v, v, v), "conv_bias"),
    (lambda x, v: Nm.layer_norm(x, v), r"gamma must have shape \(5,\)"),
    (lambda x, v: Nm.layer_norm_2d(x[0], v, v), "4-D"),
    (lambda x, v: Nm.softmax(x, 4), "out of range"),
])
def test_bad_input_raises_input_error(call, match):
    x = np.ones((2, 4, 3, 5), np.float32)
    v = np.ones(4, np.float32)
    with pytest.raises(InputError, match=match):
        call(x, v)
