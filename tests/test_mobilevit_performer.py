"""MobileViT with FAVOR+ (``attention="performer"``) against timm's MobileViT whose attention
modules run performer-pytorch's FastAttention in place of softmax attention (a test-side
patch), given the same projection matrices; its counts against FlopCounterMode."""
import math
import types

import numpy as np
import pytest
import torch
from performer_pytorch import FastAttention
from timm.models.vision_transformer import Attention
from torch.utils.flop_counter import FlopCounterMode

import tinyinfer
from reference_registry import reference
from torch_ref import RTOL, assert_matches, forward, image_batch, state_dict_numpy
from tinyinfer.errors import InputError


def _performer_forward(self, x, attn_mask=None, is_causal=False):
    """timm's Attention.forward with self.fast_attention where its softmax attention was."""
    B, N, C = x.shape
    q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(
        2, 0, 3, 1, 4).unbind(0)
    x = self.fast_attention(q, k, v).transpose(1, 2).reshape(B, N, self.attn_dim)
    return self.proj(self.norm(x))


def use_performer(ref: torch.nn.Module, model) -> list[str]:
    """Swap every Attention module of ``ref`` for FastAttention with the projection of the
    tinyinfer node of the same name; returns the names swapped."""
    names = []
    for name, m in ref.named_modules():
        if isinstance(m, Attention):
            P = model.graph[name].attrs["projection"]
            fa = FastAttention(dim_heads=m.head_dim, nb_features=P.shape[0])
            with torch.no_grad():
                fa.projection_matrix.copy_(torch.from_numpy(P))
            m.fast_attention = fa
            m.forward = types.MethodType(_performer_forward, m)
            names.append(name)
    return names


def attention_that_matters(ref: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """qkv and proj weights ~ N(0, 1/C). timm's own init (std 0.01) makes q.k ~ 0, so every
    attention is a plain average of v, and a small attention branch beside its residual:
    the logits then hardly depend on the attention (FAVOR+ and softmax agreed to 6e-5 of
    the logits, any projection passing). With these, q.k / sqrt(D) ~ N(0, 1) and the branch
    is O(1): FAVOR+ moves the logits by ~30% from softmax's, another projection draw too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, Attention):
                for lin in (m.qkv, m.proj):
                    lin.weight.copy_(torch.randn(lin.weight.shape, generator=g)
                                     / math.sqrt(lin.in_features))
    return ref


@pytest.mark.parametrize("batch,resolution,features", [(1, 256, 0), (3, 129, 32)])
def test_mobilevit_xxs_performer_matches_timm_with_fast_attention(batch, resolution,
                                                                  features):
    """The parity recipe (random weights, randomized BN statistics and LayerNorm affines)
    with attention_that_matters; features=0 draws performer's default M = int(D ln D) per
    layer (D = 16, 20, 24: M = 44, 59, 76), 32 the same M for all. torch's global seed is
    set first: timm draws the convs' weights from it, and with whatever state the tests
    that ran before in the same worker left, FAVOR+ once moved the logits by only 1.7% (a
    CI run, 2026-12-02), under the margin below."""
    torch.manual_seed(0)
    ref = attention_that_matters(reference("mobilevit_xxs", resolution))
    x = image_batch(batch, resolution)
    softmax = forward(ref, x)
    model = tinyinfer.load("mobilevit_xxs", weights=state_dict_numpy(ref),
                           attention="performer", features=features)
    swapped = use_performer(ref, model)
    favor = [n.name for n in model.graph if n.kind == "favor_attention"]
    assert swapped == favor and len(favor) == 2 + 4 + 3
    Ms = {model.graph[n].attrs["projection"].shape for n in favor}
    assert Ms == ({(44, 16), (59, 20), (76, 24)} if features == 0
                  else {(32, 16), (32, 20), (32, 24)})
    got = model(x)
    assert_matches(got, forward(ref, x), f"mobilevit_xxs performer @{batch}x{resolution}")
    # and the attention decides the logits: FAVOR+ is far from softmax, beyond the tolerance
    assert np.abs(got - softmax).max() > 30 * RTOL * np.abs(softmax).max(), \
        np.abs(got - softmax).max() / np.abs(softmax).max()


def test_performer_counts_equal_flop_counter():
    """MACs: tinyinfer's summary equals FlopCounterMode / 2 on the patched reference (every
    non-causal FAVOR+ product is an einsum it counts as a matmul, test_kernels_favor), as the
    softmax network's does on the unpatched one (test_mobilevit). Parameters are the softmax
    network's: a projection is a buffer in PyTorch and an attribute here, not a weight."""
    ref = reference("mobilevit_xxs", 256)
    softmax = tinyinfer.summary("mobilevit_xxs", resolution=256)
    model = tinyinfer.build("mobilevit_xxs", attention="performer", features=32)
    use_performer(ref, model)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ref(torch.zeros(1, 3, 256, 256))
    report = model.summary(resolution=256)
    assert report.macs == counter.get_total_flops() // 2
    assert report.params == softmax.params
    assert report.macs < softmax.macs     # 256 tokens per sequence, M = 32 features


@pytest.mark.parametrize("options,match", [
    (dict(attention="linformer"), "unknown attention 'linformer'"),
    (dict(features=16), "with attention='performer'"),
    (dict(attention="performer", features=-1), "features=-1"),
])
def test_bad_attention_options(options, match):
    with pytest.raises(InputError, match=match):
        tinyinfer.build("mobilevit_xxs", **options)


def test_projection_is_the_same_in_every_build_and_differs_by_layer():
    a = tinyinfer.build("mobilevit_xxs", attention="performer").graph
    b = tinyinfer.build("mobilevit_xxs", attention="performer").graph
    P = [n.attrs["projection"] for n in a if n.kind == "favor_attention"]
    Q = [n.attrs["projection"] for n in b if n.kind == "favor_attention"]
    assert all(np.array_equal(p, q) for p, q in zip(P, Q))
    assert not np.array_equal(P[0], P[1])     # two layers of the same width
