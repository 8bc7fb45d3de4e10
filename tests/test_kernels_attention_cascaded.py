"""Cascaded group attention (kernels/attention_cascaded.py) against timm's own
LocalWindowAttention / CascadedGroupAttention (timm/models/efficientvit_msra.py), and the
biased softmax attention it runs per head against F.scaled_dot_product_attention."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from timm.models.efficientvit_msra import CascadedGroupAttention, LocalWindowAttention
from torch.utils.flop_counter import FlopCounterMode

from tinyinfer.errors import InputError
from tinyinfer.kernels import attention as At
from tinyinfer.kernels import attention_cascaded as AC
from torch_ref import randomize

# Outputs are O(1) (attention averages of BN'd values); q k sums <= 8 terms, the 1x1 conv
# <= 8, the dw conv <= 25, in another order than torch's: errors of a few 1e-7 measured.
RTOL, ATOL = 1e-4, 2e-5
SETTINGS = settings(max_examples=15, deadline=None)


def timm_window_attention(dim, key_dim, heads, window, kernels, seed, act="relu"):
    """timm's LocalWindowAttention with random weights, BN statistics and attention biases
    (timm zero-initialises them, which would hide a wrong bias index), its projection
    removed: ReLU only (act "relu") or nothing (act "none"), as the kernel's output is."""
    torch.manual_seed(seed)
    m = LocalWindowAttention(dim, key_dim, heads, attn_ratio=dim / (key_dim * heads),
                             resolution=window, window_resolution=window, kernels=kernels)
    with torch.no_grad():
        m.attn.attention_biases.normal_()
    randomize(m, seed)
    m.attn.proj = torch.nn.ReLU() if act == "relu" else torch.nn.Identity()
    return m.eval()


def kernel_args(attn: CascadedGroupAttention):
    """The kernel's arguments from a timm CascadedGroupAttention's tensors."""
    def arr(t):
        return t.detach().numpy()

    def bn(b):
        return tuple(arr(t) for t in (b.weight, b.bias, b.running_mean, b.running_var))
    return ([arr(q.conv.weight) for q in attn.qkvs], [bn(q.bn) for q in attn.qkvs],
            [arr(d.conv.weight) for d in attn.dws], [bn(d.bn) for d in attn.dws],
            arr(attn.attention_biases), attn.key_dim, attn.resolution)


def cga_node_params(attn: CascadedGroupAttention) -> dict:
    """A cascaded_group_attention node's params from timm's module: its state dict, BN's
    num_batches_tracked and the projection left out."""
    return {k: v.detach().numpy().copy() for k, v in attn.state_dict().items()
            if v.is_floating_point() and not k.startswith("proj.")}


@pytest.mark.parametrize("window", [1, 2, 4, 7])
def test_bias_index_is_timms(window):
    attn = CascadedGroupAttention(8, 2, 2, attn_ratio=2, resolution=window, kernels=(3, 3))
    np.testing.assert_array_equal(AC.bias_index(window), attn.attention_bias_idxs.numpy())


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 4),
       st.lists(st.sampled_from([1, 3, 5]), min_size=3, max_size=3), st.integers(1, 2),
       st.integers(1, 10), st.integers(1, 10), st.sampled_from(["relu", "none"]),
       st.integers(0, 2**31))
def test_matches_timm_local_window_attention(heads, key_dim, cg, window, kernels, B, H, W,
                                             act, seed):
    """Any map size against any window: whole windows, padded ones, a map smaller than the
    window (padded to one window), one window exactly (timm skips the partition)."""
    m = timm_window_attention(heads * cg, key_dim, heads, window, kernels[:heads], seed, act)
    x = np.random.default_rng(seed).standard_normal((B, heads * cg, H, W), dtype=np.float32)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    args = kernel_args(m.attn)
    np.testing.assert_allclose(AC.cascaded_group_attention(x, *args, act=act), want,
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(AC.cascaded_group_attention_ref(x, *args, act=act), want,
                               rtol=RTOL, atol=ATOL)


def test_efficientvit_m0_first_stage_shape():
    """The real shape: 64 channels, 4 heads of key dim 16, 7x7 windows on a 14x14 map, 5x5
    dw convs; and a 15x15 map (an odd input resolution), padded to 3x3 windows."""
    m = timm_window_attention(64, 16, 4, 7, (5, 5, 5, 5), seed=3)
    for hw in (14, 15):
        x = np.random.default_rng(hw).standard_normal((1, 64, hw, hw), dtype=np.float32)
        with torch.no_grad():
            want = m(torch.from_numpy(x)).numpy()
        got = AC.cascaded_group_attention(x, *kernel_args(m.attn), act="relu")
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("hw,window", [((14, 14), 7), ((9, 11), 4), ((3, 3), 4)])
def test_cost_macs_equal_flop_counter(hw, window):
    """MACs = FlopCounterMode's FLOPs / 2 (its convolutions and bmm) on timm's module,
    padding tokens included; params = the module's parameters (timm's BN running
    statistics are buffers, the cost counts them as the 4 vectors a BN stores)."""
    kernels = (5, 3, 1)
    m = timm_window_attention(24, 4, 3, window, kernels, seed=0)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(torch.zeros(2, 24, *hw))
    cost = AC.cascaded_group_attention_cost((2, 24, *hw), 4, window, kernels, act="relu")
    assert cost.macs == fc.get_total_flops() // 2
    bn_buffers = sum(b.numel() for n, b in m.named_buffers() if "running" in n)
    assert cost.params == sum(p.numel() for p in m.parameters()) + bn_buffers


def test_sdpa_bias_matches_torch_attn_mask():
    """kernels/attention.py's bias argument (added for this kernel) is torch's float mask,
    per head (H, Tq, Tk) and shared (Tq, Tk)."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, t, 8), dtype=np.float32) for t in (9, 11, 11))
    for bias in (rng.standard_normal((3, 9, 11), dtype=np.float32) * 3,
                 rng.standard_normal((9, 11), dtype=np.float32) * 3):
        want = F.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)),
                                              attn_mask=torch.from_numpy(bias)).numpy()
        got = At.scaled_dot_product_attention(q, k, v, bias=bias)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    with pytest.raises(InputError, match="bias must have shape"):
        At.scaled_dot_product_attention(q, k, v, bias=np.zeros((2, 9, 11), np.float32))


def test_bad_inputs_are_one_clear_error():
    m = timm_window_attention(8, 2, 2, 3, (3, 3), seed=0)
    args = kernel_args(m.attn)
    x = np.zeros((1, 8, 5, 5), np.float32)
    with pytest.raises(InputError, match="4-D array"):
        AC.cascaded_group_attention(x[0], *args)
    with pytest.raises(InputError, match="2 heads must divide the 9"):
        AC.cascaded_group_attention(np.zeros((1, 9, 5, 5), np.float32), *args)
    with pytest.raises(InputError, match="attention_biases must have shape"):
        AC.cascaded_group_attention(x, *args[:4], args[4][:, :4], args[5], args[6])
    with pytest.raises(InputError, match="one qkv weight"):
        AC.cascaded_group_attention(x, args[0][:1], *args[1:])
    with pytest.raises(InputError, match="k odd"):
        AC.cascaded_group_attention(x, args[0], args[1], [np.zeros((2, 1, 2, 2))] * 2,
                                    *args[3:])
    with pytest.raises(InputError, match="window must be >= 1"):
        AC.cascaded_group_attention(x, *args[:6], 0)
