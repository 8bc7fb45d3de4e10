"""Separable self-attention (MobileViTV2) against timm's LinearSelfAttention on timm's own
unfolded layout, and group norm (MobileViTV2's GroupNorm(1)) against F.group_norm."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from timm.models.mobilevit import LinearSelfAttention

from tinyinfer.errors import InputError
from tinyinfer.kernels import attention_separable as SA
from tinyinfer.kernels import norm as N

# Outputs are O(1): two 1x1 projections of <= 2C + 1 = 65 float32 terms around a context
# vector that is a convex combination of keys; torch sums in another (BLAS) order, so the
# differences are a few 1e-6.
RTOL, ATOL = 1e-4, 3e-5
SETTINGS = settings(max_examples=25, deadline=None)


def _unfold(x, ph, pw):
    """timm's MobileVitV2Block unfold: (B, C, H, W) -> (B, C, P, N)."""
    B, C, H, W = x.shape
    t = x.reshape(B, C, H // ph, ph, W // pw, pw).permute(0, 1, 3, 5, 2, 4)
    return t.reshape(B, C, ph * pw, -1)


def _fold(t, H, W, ph, pw):
    """timm's MobileVitV2Block fold: (B, C, P, N) -> (B, C, H, W)."""
    B, C = t.shape[:2]
    t = t.reshape(B, C, ph, pw, H // ph, W // pw).permute(0, 1, 4, 2, 5, 3)
    return t.reshape(B, C, H, W)


def timm_attention(rng, C, bias=True):
    """timm's LinearSelfAttention on C channels, every weight and bias ~ N(0, 1/C)."""
    m = LinearSelfAttention(C, bias=bias).eval()
    with torch.no_grad():
        for p in m.parameters():   # biases too: timm's init would leave them at 0
            p.copy_(torch.from_numpy(rng.standard_normal(p.shape).astype(np.float32))
                    / np.sqrt(C))
    return m


def timm_on_map(m, x, patch=(2, 2)):
    """timm's LinearSelfAttention ``m`` on the map ``x`` (a tensor), through timm's unfold
    and fold, as MobileVitV2Block runs it."""
    (ph, pw), (H, W) = patch, x.shape[2:]
    with torch.no_grad():
        return _fold(m(_unfold(x, ph, pw)), H, W, ph, pw)


def _weights(m):
    get = lambda t: None if t is None else t.detach().numpy()
    return (get(m.qkv_proj.weight), get(m.qkv_proj.bias), get(m.out_proj.weight),
            get(m.out_proj.bias))


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 32), st.sampled_from([(1, 1), (2, 2), (2, 3)]),
       st.integers(1, 6), st.integers(1, 6), st.booleans(), st.integers(0, 2**31))
def test_matches_timm_linear_self_attention(B, C, patch, nh, nw, bias, seed):
    ph, pw = patch
    H, W = nh * ph, nw * pw
    rng = np.random.default_rng(seed)
    m = timm_attention(rng, C, bias)
    x = (rng.standard_normal((B, C, H, W)) * 2).astype(np.float32)
    want = timm_on_map(m, torch.from_numpy(x), (ph, pw)).numpy()
    got = SA.separable_self_attention(x, *_weights(m), patch=(ph, pw))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(SA.separable_self_attention_ref(x, *_weights(m), (ph, pw)),
                               want, rtol=RTOL, atol=ATOL)


def test_attention_is_per_patch_position():
    """Tokens attend only to tokens at the same position inside their patch: changing every
    token of position (0, 0) leaves the outputs at the other positions unchanged (up to
    the 1x1 projections, which mix channels, not pixels), and changes position (0, 0)'s."""
    rng = np.random.default_rng(3)
    m = timm_attention(rng, 8, True)
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    y = x.copy()
    y[:, :, 0::2, 0::2] += 1.0
    a, b = (SA.separable_self_attention(v, *_weights(m)) for v in (x, y))
    others = np.ones((6, 6), bool)
    others[0::2, 0::2] = False
    np.testing.assert_array_equal(a[..., others], b[..., others])
    assert np.abs(a[:, :, 0::2, 0::2] - b[:, :, 0::2, 0::2]).max() > 1e-3


def test_large_query_scores_stay_finite():
    """Query scores of ~1e4 overflow exp unless the maximum is subtracted first."""
    rng = np.random.default_rng(4)
    m = timm_attention(rng, 4, True)
    with torch.no_grad():
        m.qkv_proj.weight[0] *= 3e3
    x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    got = SA.separable_self_attention(x, *_weights(m))
    want = timm_on_map(m, torch.from_numpy(x)).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_cost_is_linear_in_tokens():
    """B T (3 C^2 + 2 C) MACs: doubling the tokens doubles every count but the params."""
    one, two = (SA.separable_self_attention_cost((1, 16, 8, s)) for s in (8, 16))
    assert one.macs == 64 * (3 * 16 * 16 + 2 * 16)
    assert (two.macs, two.flops) == (2 * one.macs, 2 * one.flops)
    assert one.params == two.params == 33 * 16 + 16 * 16 + 33 + 16
    # the part between the projections: the context vectors' B T C MACs
    assert SA.separable_context_mix_cost((1, 33, 8, 8)).macs == 64 * 16


def test_bad_inputs_raise_one_clear_error():
    rng = np.random.default_rng(5)
    w_qkv, b_qkv, w_out, b_out = _weights(timm_attention(rng, 4, True))
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    with pytest.raises(InputError, match="6x6 map does not split into 4x4 patches"):
        SA.separable_self_attention(x, w_qkv, b_qkv, w_out, b_out, patch=4)
    with pytest.raises(InputError, match=r"w_qkv must have shape \(11, 5, 1, 1\)"):
        SA.separable_self_attention(rng.standard_normal((1, 5, 6, 6)).astype(np.float32),
                                    w_qkv, b_qkv, w_out, b_out)
    with pytest.raises(InputError, match="patch must be an int or a pair"):
        SA.separable_self_attention(x, w_qkv, b_qkv, w_out, b_out, patch=(2, 2, 2))
    with pytest.raises(InputError, match="float32"):
        SA.separable_self_attention(x.astype(np.float64), w_qkv, b_qkv, w_out, b_out)
    with pytest.raises(InputError, match="needs 1 \\+ 2C channels .* got 8"):
        SA.separable_context_mix(np.zeros((1, 8, 4, 4), np.float32))


# ---- group norm ------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.sampled_from([(1, 1), (1, 7), (2, 6), (3, 9), (8, 8)]),
       st.integers(2, 9), st.integers(1, 9), st.booleans(), st.floats(-20, 20),
       st.integers(0, 2**31))
def test_group_norm_matches_torch(N_, groups_channels, H, W, affine, offset, seed):
    """Random affines (gamma ~ U(0.5, 1.5), beta ~ N(0, 1)) and inputs far from zero mean:
    a one-pass E[x^2] - E[x]^2 would lose digits at |mean| >> std. (H >= 2: torch refuses
    a group of one value.)"""
    G, C = groups_channels
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N_, C, H, W)) + offset).astype(np.float32)
    gamma = (rng.random(C) + 0.5).astype(np.float32) if affine else None
    beta = rng.standard_normal(C).astype(np.float32) if affine else None
    t = lambda a: None if a is None else torch.from_numpy(a)
    want = F.group_norm(t(x), G, t(gamma), t(beta), eps=1e-5).numpy()
    # Both sides round x - mean in float32: an error of a few ulp(|x|), divided by the
    # group's std. A group of a few values close together (var ~ eps) is ill-conditioned
    # (seen: 2 values near 4 differing by ~0.005 gave 1.9e-4 apart from torch), so the
    # tolerance grows with max|x| / sqrt(min group var + eps).
    groups = x.astype(np.float64).reshape(N_, G, -1)
    scale = np.abs(x).max() / np.sqrt(groups.var(-1).min() + 1e-5)
    atol = 2e-5 + 8 * np.finfo(np.float32).eps * scale * (1.5 if affine else 1.0)
    np.testing.assert_allclose(N.group_norm(x, G, gamma, beta), want, rtol=1e-4, atol=atol)
    np.testing.assert_allclose(N.group_norm_ref(x, G, gamma, beta), want, rtol=1e-4,
                               atol=atol)


def test_group_norm_bad_inputs():
    x = np.zeros((1, 6, 2, 2), np.float32)
    with pytest.raises(InputError, match="num_groups=4 must divide the 6 channels"):
        N.group_norm(x, 4)
    with pytest.raises(InputError, match=r"gamma must have shape \(6,\)"):
        N.group_norm(x, 1, np.ones(5, np.float32))
    with pytest.raises(InputError, match="num_groups must be >= 1"):
        N.group_norm(x, 0)


def test_group_norm_cost():
    c = N.group_norm_cost((2, 6, 4, 4), 3)
    assert (c.flops, c.params) == (8 * 192 + 5 * 6, 12)
