"""Attention kernels against F.scaled_dot_product_attention, nn.MultiheadAttention and timm."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from tinyinfer.errors import InputError
from tinyinfer.kernels import attention as At

# Outputs are convex combinations of V rows (|v| <~ 4). Scores are dot products of <= 32
# float32 terms, summed in a different (vectorized) order than torch's BLAS; a score error
# of ~1e-6 moves a probability by ~1e-6 relative, so output errors are a few 1e-6.
SDPA_RTOL, SDPA_ATOL = 1e-4, 2e-5
# MHSA adds two projections of up to 64 terms before and after; outputs are O(1).
MHSA_RTOL, MHSA_ATOL = 1e-4, 3e-5

SETTINGS = settings(max_examples=30, deadline=None)


def _t(a):
    return torch.from_numpy(a)


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 4), st.integers(1, 40), st.integers(1, 40),
       st.integers(1, 32), st.integers(1, 32), st.sampled_from([None, 0.05, 1.0]),
       st.integers(0, 2**31))
def test_sdpa_matches_torch(B, H, Tq, Tk, D, Dv, scale, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, H, Tq, D)).astype(np.float32)
    k = rng.standard_normal((B, H, Tk, D)).astype(np.float32)
    v = rng.standard_normal((B, H, Tk, Dv)).astype(np.float32)
    got = At.scaled_dot_product_attention(q, k, v, scale)
    want = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), scale=scale).numpy()
    np.testing.assert_allclose(got, want, rtol=SDPA_RTOL, atol=SDPA_ATOL)


def test_sdpa_stable_with_huge_scores():
    # scores of size ~1e4: exp overflows unless the row max is subtracted. Expected values
    # from torch in float64.
    rng = np.random.default_rng(1)
    q = (rng.standard_normal((1, 2, 9, 16)) * 30).astype(np.float32)
    k = (rng.standard_normal((1, 2, 11, 16)) * 30).astype(np.float32)
    v = rng.standard_normal((1, 2, 11, 8)).astype(np.float32)
    got = At.scaled_dot_product_attention(q, k, v)
    want = F.scaled_dot_product_attention(_t(q).double(), _t(k).double(), _t(v).double())
    assert np.isfinite(got).all()
    # near-one-hot rows: a score error of 1e-6 * 1e4 can shift weight between close rivals
    np.testing.assert_allclose(got, want.float().numpy(), rtol=1e-3, atol=1e-3)


def test_sdpa_noncontiguous_and_3d():
    rng = np.random.default_rng(2)
    qkv = rng.standard_normal((2, 12, 3, 4, 8)).astype(np.float32)   # (B, T, 3, H, D)
    q, k, v = qkv.transpose(2, 0, 3, 1, 4)                            # views (B, H, T, D)
    want = F.scaled_dot_product_attention(*(_t(a.copy()) for a in (q, k, v))).numpy()
    np.testing.assert_allclose(At.scaled_dot_product_attention(q, k, v), want,
                               rtol=SDPA_RTOL, atol=SDPA_ATOL)
    np.testing.assert_allclose(At.scaled_dot_product_attention(q[0], k[0], v[0]), want[0],
                               rtol=SDPA_RTOL, atol=SDPA_ATOL)


def _mha_weights(rng, C, bias):
    # std 1/sqrt(C), as a trained net's projections roughly are, keeps activations O(1)
    w_qkv = (rng.standard_normal((3 * C, C)) / np.sqrt(C)).astype(np.float32)
    w_proj = (rng.standard_normal((C, C)) / np.sqrt(C)).astype(np.float32)
    b_qkv = rng.standard_normal(3 * C).astype(np.float32) * 0.5 if bias else None
    b_proj = rng.standard_normal(C).astype(np.float32) * 0.5 if bias else None
    return w_qkv, b_qkv, w_proj, b_proj


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 40), st.sampled_from([(1, 8), (2, 8), (4, 16),
                                                                (4, 64), (3, 24)]),
       st.booleans(), st.integers(0, 2**31))
def test_mhsa_matches_torch_multihead_attention(B, T, heads_C, bias, seed):
    H, C = heads_C
    rng = np.random.default_rng(seed)
    w_qkv, b_qkv, w_proj, b_proj = _mha_weights(rng, C, bias)
    mha = torch.nn.MultiheadAttention(C, H, bias=bias, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(_t(w_qkv))
        mha.out_proj.weight.copy_(_t(w_proj))
        if bias:
            mha.in_proj_bias.copy_(_t(b_qkv))
            mha.out_proj.bias.copy_(_t(b_proj))
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    with torch.no_grad():
        want = mha(_t(x), _t(x), _t(x), need_weights=False)[0].numpy()
    got = At.multi_head_self_attention(x, w_qkv, b_qkv, w_proj, b_proj, H)
    np.testing.assert_allclose(got, want, rtol=MHSA_RTOL, atol=MHSA_ATOL)


@pytest.mark.parametrize("qkv_bias,fused", [(True, True), (False, False)])
def test_mhsa_matches_timm_attention(qkv_bias, fused):
    from timm.models.vision_transformer import Attention
    torch.manual_seed(0)
    C, H = 48, 4
    attn = Attention(C, num_heads=H, qkv_bias=qkv_bias).eval()
    attn.fused_attn = fused
    x = torch.randn(2, 17, C)
    with torch.no_grad():
        want = attn(x).numpy()
    got = At.multi_head_self_attention(
        x.numpy(), attn.qkv.weight.detach().numpy(),
        attn.qkv.bias.detach().numpy() if qkv_bias else None,
        attn.proj.weight.detach().numpy(), attn.proj.bias.detach().numpy(), H)
    np.testing.assert_allclose(got, want, rtol=MHSA_RTOL, atol=MHSA_ATOL)


def test_refs_agree_with_torch():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((1, 2, 5, 4)).astype(np.float32) for _ in range(3))
    np.testing.assert_allclose(At.scaled_dot_product_attention_ref(q, k, v),
                               F.scaled_dot_product_attention(_t(q), _t(k), _t(v)).numpy(),
                               rtol=SDPA_RTOL, atol=SDPA_ATOL)
    w_qkv, b_qkv, w_proj, b_proj = _mha_weights(rng, 8, True)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    np.testing.assert_allclose(At.multi_head_self_attention_ref(x, w_qkv, b_qkv, w_proj,
                                                                b_proj, 2),
                               At.multi_head_self_attention(x, w_qkv, b_qkv, w_proj,
                                                            b_proj, 2),
                               rtol=MHSA_RTOL, atol=MHSA_ATOL)


def test_costs():
    # MobileViT-S's first transformer: 4 patches as batch, 256 tokens, C = 144, 4 heads
    B, T, C, H = 4, 256, 144, 4
    D = C // H
    c = At.multi_head_self_attention_cost((B, T, C), H)
    macs = B * T * C * 3 * C + 2 * B * H * T * T * D + B * T * C * C
    assert c.macs == macs
    assert c.flops == 2 * macs + B * T * C + 5 * B * H * T * T
    assert c.params == 4 * C * C + 4 * C
    assert (c.elems_read, c.elems_written) == (B * T * C + c.params, B * T * C)
    assert At.multi_head_self_attention_cost((B, T, C), H, False, False).params == 4 * C * C
    s = At.scaled_dot_product_attention_cost((2, 3, 10, 8), (2, 3, 12, 8), (2, 3, 12, 4))
    assert s.macs == 6 * 10 * 12 * (8 + 4)
    assert s.flops == 2 * s.macs + 6 * 10 * 8 + 5 * 6 * 10 * 12
    assert s.elems_written == 6 * 10 * 4


@pytest.mark.parametrize("call,match", [
    (lambda q: At.scaled_dot_product_attention(q, q[..., :3], q), "same head dim"),
    (lambda q: At.scaled_dot_product_attention(q, q, q[:, :, :2]), "same number of tokens"),
    (lambda q: At.scaled_dot_product_attention(q, q[:1], q), "leading"),
    (lambda q: At.scaled_dot_product_attention(q, q, q, scale="x"), "scale"),
    (lambda q: At.scaled_dot_product_attention(q, q[0], q), "same number of dims"),
])
def test_sdpa_bad_input(call, match):
    q = np.ones((2, 2, 5, 4), np.float32)
    with pytest.raises(InputError, match=match):
        call(q)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_heads=5), "divide"),
    (dict(w_qkv=np.ones((8, 8), np.float32)), "w_qkv"),
    (dict(b_qkv=np.ones(8, np.float32)), "b_qkv"),
    (dict(w_proj=np.ones((8, 4), np.float32)), "w_proj"),
    (dict(x=np.ones((5, 8), np.float32)), "3-D"),
])
def test_mhsa_bad_input(kwargs, match):
    args = dict(x=np.ones((1, 5, 8), np.float32), w_qkv=np.ones((24, 8), np.float32),
                b_qkv=None, w_proj=np.ones((8, 8), np.float32), b_proj=None, num_heads=2)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        At.multi_head_self_attention(**args)
