"""ReLU linear attention (kernels/attention_linear.py) against timm's LiteMLA computation:
the reshape / chunk / ReLU / pad lines of ``LiteMLA.forward`` copied below, and timm's own
``LiteMLA._attn`` for the two matmuls and the division."""
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from timm.models.efficientvit_mit import LiteMLA
from torch.utils.flop_counter import FlopCounterMode

from tinyinfer.errors import InputError
from tinyinfer.kernels import attention_linear as AL

# Each output is a convex combination of value rows (the weights ReLU(q).ReLU(k_m) are
# >= 0), shrunk by den / (den + eps), so |out| <= max|v| ~ 4 here. Both sides sum up to
# N*D float32 products in different orders (torch's BLAS, our vectorized loops): a few
# 1e-7 relative in numerator and denominator, i.e. errors of ~1e-6 on outputs of O(1).
RTOL, ATOL = 1e-4, 1e-5

SETTINGS = settings(max_examples=30, deadline=None)


def timm_linear_attention(qkv: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
    """timm's LiteMLA.forward from the concatenated multi-scale qkv to the input of its
    projection conv (timm/models/efficientvit_mit.py)."""
    B, _, H, W = qkv.shape
    x = qkv.reshape(B, -1, 3 * dim, H * W).transpose(-1, -2)
    q, k, v = x.chunk(3, dim=-1)
    q, k = F.relu(q), F.relu(k)
    v = F.pad(v, (0, 1), mode="constant", value=1.0)
    out = LiteMLA._attn(types.SimpleNamespace(eps=eps), q, k, v)
    return out.transpose(-1, -2).reshape(B, -1, H, W)


def _qkv(rng, B, G, dim, H, W):
    return rng.standard_normal((B, G * 3 * dim, H, W)).astype(np.float32)


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 4), st.integers(1, 16), st.integers(1, 9),
       st.integers(1, 9), st.sampled_from([1e-5, 1e-2, 1.0]), st.integers(0, 2**31))
def test_matches_timm(B, G, dim, H, W, eps, seed):
    qkv = _qkv(np.random.default_rng(seed), B, G, dim, H, W)
    want = timm_linear_attention(torch.from_numpy(qkv), dim, eps).numpy()
    got = AL.relu_linear_attention(qkv, dim, eps)
    assert got.shape == (B, G * dim, H, W)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(AL.relu_linear_attention_ref(qkv, dim, eps), want,
                               rtol=RTOL, atol=ATOL)


def test_network_sized_heads_match_timm(rng):
    """The shapes the networks run at 224: B0's last stage (128 channels = 8 heads of 16,
    doubled to G = 16 by the multi-scale tokens, over 7x7) and B3's third stage (256
    channels = 8 heads of 32, G = 16, over 14x14)."""
    for G, dim, hw in ((16, 16, 7), (16, 32, 14)):
        qkv = _qkv(rng, 1, G, dim, hw, hw)
        want = timm_linear_attention(torch.from_numpy(qkv), dim, 1e-5).numpy()
        np.testing.assert_allclose(AL.relu_linear_attention(qkv, dim), want, rtol=RTOL,
                                   atol=ATOL)


def test_token_with_no_positive_query_gives_zero(rng):
    """ReLU(q) = 0 makes numerator and denominator 0: timm's eps turns 0/0 into 0."""
    qkv = _qkv(rng, 1, 2, 4, 3, 3)
    qkv[:, 0:4, 1, 2] = -1.0            # head 0's queries at pixel (1, 2)
    out = AL.relu_linear_attention(qkv, 4)
    assert np.all(out[:, 0:4, 1, 2] == 0) and np.isfinite(out).all()
    assert np.abs(out[:, 4:8, 1, 2]).max() > 0      # head 1 there is untouched


def test_output_is_a_convex_combination_of_values(rng):
    """Non-negative weights: every output lies within its head's value range (times
    den / (den + eps) <= 1), whatever the query and key magnitudes."""
    qkv = _qkv(rng, 1, 3, 8, 6, 5) * 50
    out = AL.relu_linear_attention(qkv, 8).reshape(3, 8, -1)
    v = qkv.reshape(3, 3, 8, -1)[:, 2]
    assert np.all(out <= v.max(-1, keepdims=True) + 1e-4)
    assert np.all(out >= v.min(-1, keepdims=True) - 1e-4)


@pytest.mark.parametrize("B,G,dim,H,W", [(1, 8, 16, 14, 14), (2, 3, 5, 4, 7)])
def test_cost_matches_flop_counter_and_is_linear_in_tokens(B, G, dim, H, W):
    """MACs = the two matmuls FlopCounterMode sees (its FLOPs / 2), and doubling the tokens
    doubles every count (softmax attention's would quadruple)."""
    qkv = torch.zeros(B, G * 3 * dim, H, W)
    with FlopCounterMode(display=False) as fc:
        timm_linear_attention(qkv, dim, 1e-5)
    cost = AL.relu_linear_attention_cost(qkv.shape, dim)
    assert cost.macs == fc.get_total_flops() // 2
    N, M = G * H * W * dim, B * G * H * W
    assert cost.flops == 2 * cost.macs + 2 * B * N + M + B * N
    assert cost.elems_read == qkv.numel() and cost.elems_written == B * N
    double = AL.relu_linear_attention_cost((B, G * 3 * dim, 2 * H, W), dim)
    assert (double.macs, double.flops) == (2 * cost.macs, 2 * cost.flops)


@pytest.mark.parametrize("qkv,dim,eps,match", [
    (np.zeros((1, 12, 3, 3), np.float32), 5, 1e-5, "not a positive multiple of 3\\*dim = 15"),
    (np.zeros((1, 12, 3, 3), np.float32), 0, 1e-5, "dim must be >= 1"),
    (np.zeros((1, 12, 3, 3), np.float32), 2.0, 1e-5, "dim must be an integer"),
    (np.zeros((1, 12, 3, 3), np.float32), 4, 0.0, "eps must be > 0"),
    (np.zeros((1, 12, 3, 3), np.float32), 4, "x", "eps must be a number"),
    (np.zeros((12, 3, 3), np.float32), 4, 1e-5, "must be a 4-D array"),
    (np.zeros((1, 12, 3, 3), np.int32), 4, 1e-5, "floating-point"),
    (np.zeros((1, 12, 0, 3), np.float32), 4, 1e-5, "at least one token"),
    (np.zeros((1, 0, 3, 3), np.float32), 4, 1e-5, "not a positive multiple"),
])
def test_bad_inputs_are_one_clear_error(qkv, dim, eps, match):
    with pytest.raises(InputError, match=match):
        AL.relu_linear_attention(qkv, dim, eps)
