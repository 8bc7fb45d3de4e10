"""EdgeViT XXS / XS / S (tinyinfer/models/edgevit.py): counts vs the authors' code
(tests/edgevit_ref.py) and vs the paper, the checkpoint layout, the delegate attention's
pieces, and the input sizes the network refuses. (Parity with the authors' code at 224 and
227 is tests/test_models.py's, through tests/reference_registry.py.)

Counting rule as in test_mobileone.py: Mult-Adds within 2% and parameters within 1% of a
published figure, plus half a unit of its last printed digit (0.6G means 0.55G..0.65G).
"""
import re

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import tinyinfer
from tinyinfer.analysis.conventions import count, torch_params
from tinyinfer.engine.ops import infer_shapes
from tinyinfer.errors import InputError
from tinyinfer.kernels.attention import (multi_head_self_attention,
                                         multi_head_self_attention_cost)
import edgevit_ref
from torch_ref import assert_matches

NAMES = list(edgevit_ref.BUILDERS)


def within(ours, published, rel, half_unit):
    return abs(ours - published) <= rel * published + half_unit


def reference_counts(name, resolution=224):
    """(MACs, parameters) of the authors' module: torch's FlopCounterMode / 2 (it counts the
    convolutions, transposed ones included, the Linear layers and the attention's two
    batched matmuls, nothing else), and its parameters as PyTorch counts them."""
    ref = edgevit_ref.BUILDERS[name](img_size=resolution).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        ref(torch.zeros(1, 3, resolution, resolution))
    return fc.get_total_flops() // 2, sum(p.numel() for p in ref.parameters()), ref


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_the_authors_code(name):
    """Exactly. tinyinfer's report counts a BatchNorm that runs on its own (LocalAgg's two,
    which come BEFORE their 1x1 convs, and the last one before pooling: none follows a conv,
    so none folds) with its running mean and variance, 4 numbers per channel where PyTorch's
    parameter count has 2; torch_params counts as PyTorch does."""
    macs, params, ref = reference_counts(name)
    rep = tinyinfer.summary(name)
    model = tinyinfer.load(name, weights=None)
    bn_channels = sum(m.num_features for m in ref.modules()
                      if isinstance(m, torch.nn.BatchNorm2d))
    assert rep.macs == macs
    assert torch_params(model.graph) == params
    assert rep.params == params + 2 * bn_channels


@pytest.mark.parametrize("name", NAMES)
def test_tool_conventions_equal_the_tools(name):
    """tinyinfer's emulations of FlopCounterMode and fvcore (analysis/conventions.py) give
    the tools' own numbers on the authors' module: its attention is written with the @
    operator (aten bmm / matmul, which both count, unlike a fused F.scaled_dot_product_
    attention) and it pools with x.mean (fvcore's adaptive-pool rule does not see it)."""
    from fvcore.nn import FlopCountAnalysis
    macs, _, ref = reference_counts(name)
    model = tinyinfer.load(name, weights=None)
    assert count(model, "torch").total == 2 * macs
    tool = FlopCountAnalysis(ref, torch.zeros(1, 3, 224, 224))
    tool.unsupported_ops_warnings(False)
    tool.uncalled_modules_warnings(False)
    assert count(model, "fvcore").total == tool.total()


# name, published Mult-Adds (G), parameters (M), exact ours (MACs, params at 224)
PAPER = [
    ("edgevit_xxs", 0.6, 4.1, 551_262_816, 4_067_704),
    ("edgevit_xs", 1.1, 6.7, 1_127_815_200, 6_770_056),
    ("edgevit_s", 1.9, 11.1, 1_911_021_792, 13_108_168),
]


@pytest.mark.parametrize("name,gmacs,mparams,macs,params", PAPER, ids=[p[0] for p in PAPER])
def test_paper_counts(name, gmacs, mparams, macs, params):
    """The paper's Table (Pan et al., ECCV 2022: XXS 4.1M / 0.6G, XS 6.7M / 1.1G, S 11.1M /
    1.9G, as issue 9 quotes it; the paper's own table was not reachable from here to read the
    figures at first hand). Cross-check for XXS: EfficientViT's comparison table (seeds 000)
    prints EdgeViT-XXS at 556M FLOPs and 4.1M parameters; ours, 551.3M, is 0.85% under.

    XXS 0.551G / 4.068M and XS 1.128G / 6.770M pass: 0.551G prints as 0.6G; XS's 6.770M is
    1.04% over 6.7M and its 1.128G 2.5% over 1.1G, both within the half unit of a printed
    figure of two digits. S's 1.911G is 0.6% over 1.9G, but its 13.108M parameters are
    2.008M (18%) over 11.1M: the authors' code (depths 1, 2, 5, 3 at widths 48, 96, 240, 384)
    builds more parameters than the paper states. The arithmetic, from the authors' module:
    a stage-4 block (C = 384, no LocalAgg) holds 1,778,304 parameters, nearly all in its four
    Linear layers, 12 C^2 = 1,769,472, yet costs only 88.7M MACs on the 7x7 map; S with two
    stage-4 blocks instead of three would have 13,108,168 - 1,778,304 = 11,329,864 (2.1% over
    11.1M) at 1.822G (4% under 1.9G). No depth table of these blocks gives both published
    figures, so the test pins the code's counts and records the parameter gap."""
    ours_macs, ours_params, ref = reference_counts(name)
    assert (ours_macs, ours_params) == (macs, params)
    assert within(macs / 1e9, gmacs, 0.02, 0.05)
    if name != "edgevit_s":
        assert within(params / 1e6, mparams, 0.01, 0.05)
        return
    stage4_block = sum(p.numel() for p in ref.blocks4[2].parameters())
    assert stage4_block == 1_778_304
    assert params - 11.1e6 == pytest.approx(2.008e6, abs=1e3)
    assert within((params - stage4_block) / 1e6, mparams, 0.025, 0)


def test_xxs_matches_efficientvit_table():
    """EfficientViT's Table (seeds 000, Liu et al., CVPR 2023): EdgeViT-XXS 556M FLOPs."""
    macs, params, _ = reference_counts("edgevit_xxs")
    assert within(macs / 1e6, 556, 0.02, 0.5)
    assert within(params / 1e6, 4.1, 0.01, 0.05)


@pytest.mark.parametrize("name", NAMES)
def test_layout_is_the_authors_state_dict(name):
    """Every key of the authors' state_dict is a weight of the graph and the reverse (BN's
    num_batches_tracked aside, which no inference reads)."""
    ref = edgevit_ref.BUILDERS[name]()
    keys = {k for k in ref.state_dict() if not k.endswith("num_batches_tracked")}
    assert keys == set(tinyinfer.load(name, weights=None).graph.expected_params())


def test_delegates_are_one_token_per_r_x_r_pixels():
    """At 224, XXS's stage-1 map is 56x56 = 3136 tokens; attention runs over the 14x14 = 196
    delegates (r = 4), stage 3's over 7x7 = 49 of 14x14 (r = 2), stage 4's over all 49
    (r = 1: plain attention, with its output projection inside the attention node)."""
    graph = tinyinfer.load("edgevit_xxs", weights=None).graph
    shapes = infer_shapes(graph, (1, 3, 224, 224))
    assert shapes["blocks1.0.SelfAttn.tokens"] == (1, 3136, 36)
    assert shapes["blocks1.0.SelfAttn.attn"] == (1, 196, 36)
    assert shapes["blocks1.0.SelfAttn.attn.LocalProp"] == (1, 36, 56, 56)
    assert shapes["blocks3.2.SelfAttn.attn"] == (1, 49, 144)
    assert shapes["blocks4.1.SelfAttn.attn"] == (1, 49, 288)
    assert "proj.weight" in graph["blocks4.1.SelfAttn.attn"].param_shapes
    assert "proj.weight" not in graph["blocks1.0.SelfAttn.attn"].param_shapes
    assert "blocks4.0.LocalAgg.pos_embed" not in {n.name for n in graph}


def test_attention_without_projection_matches_the_authors():
    """The delegate attention's core, GlobalSparseAttn's qkv -> per-head softmax(q k^T / sqrt
    (D)) v -> merged heads (before LocalProp and proj), computed as the authors' forward
    does, vs the mhsa kernel without projection; its cost vs FlopCounterMode on the same
    torch ops."""
    torch.manual_seed(0)
    B, T, C, H = 2, 20, 48, 2
    m = edgevit_ref.GlobalSparseAttn(C, num_heads=H, qkv_bias=True, sr_ratio=1)
    x = torch.randn(B, T, C)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        qkv = m.qkv(x).reshape(B, -1, 3, H, C // H).permute(2, 0, 3, 1, 4)
        attn = ((qkv[0] @ qkv[1].transpose(-2, -1)) * m.scale).softmax(dim=-1)
        want = (attn @ qkv[2]).transpose(1, 2).reshape(B, -1, C).numpy()
    got = multi_head_self_attention(x.numpy(), m.qkv.weight.detach().numpy(),
                                    m.qkv.bias.detach().numpy(), None, None, H)
    assert_matches(got, want, "attention without projection", rtol=1e-5)
    cost = multi_head_self_attention_cost((B, T, C), H, qkv_bias=True, proj_bias=False,
                                          proj=False)
    assert cost.macs == fc.get_total_flops() // 2
    assert cost.params == sum(p.numel() for p in m.qkv.parameters())
    with pytest.raises(InputError, match="b_proj given without w_proj"):
        multi_head_self_attention(x.numpy(), m.qkv.weight.detach().numpy(), None, None,
                                  np.zeros(C, np.float32), H)


@pytest.mark.parametrize("resolution", [200, 240])
def test_sizes_whose_delegates_do_not_tile_are_refused(resolution):
    """The authors' code cannot run these either (it reshapes the delegates to H/r x W/r):
    200 gives a 50x50 stage-1 map, 13x13 delegates, 52x52 propagated; 240 gives 60 -> 30 ->
    15, whose stage-3 delegates (8x8) propagate to 16x16. One InputError naming the layer."""
    model = tinyinfer.load("edgevit_xxs", weights=None)
    with pytest.raises(InputError, match=r"edgevit_xxs cannot run on input .*SelfAttn\.add1: "
                                         r"cannot add shapes") as e:
        model(np.zeros((1, 3, resolution, resolution), np.float32))
    # ...and the error names the nearest sizes that do work (not "use a larger image": 240
    # is larger than 224), each of which runs.
    sizes = re.search(r"nearest input sizes \(H x W\) that work are ([0-9x or]+):", str(e.value))
    assert sizes, str(e.value)
    for size in sizes.group(1).split(" or "):
        h, w = map(int, size.split("x"))
        assert abs(h - resolution) <= 16 and abs(w - resolution) <= 16
        infer_shapes(model.plan, (1, 3, h, w))


def test_unknown_variant_is_one_clear_error():
    with pytest.raises(InputError, match=r"EdgeViT variant must be one of 'xxs', 'xs', 's'"):
        tinyinfer.load("edgevit_xxs", weights=None, variant="m")
