"""The transformer op kinds (engine/ops_transformer.py) and the token kernels they run
(kernels/tokens.py), against PyTorch: timm's own reshape code for MobileViT's patches,
F.interpolate for the resize, timm's Attention for mhsa, F.layer_norm for the norms.
``kinds_graph`` is picked up by tests/test_ops.py (shape rule vs kernel, every field, value)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyinfer.engine.graph import Graph
from tinyinfer.engine.ops import OPS, infer_shapes, node_costs
from tinyinfer.engine.runtime import execute
from tinyinfer.errors import InputError
from tinyinfer.kernels import tokens as TK
from tinyinfer.models.builder import NetBuilder

SETTINGS = settings(max_examples=15, deadline=None)


def _timm_unfold(x, ph, pw):
    """timm's MobileVitBlock.forward, unfold part, verbatim (timm/models/mobilevit.py)."""
    B, C, H, W = x.shape
    new_h, new_w = math.ceil(H / ph) * ph, math.ceil(W / pw) * pw
    num_patch_h, num_patch_w = new_h // ph, new_w // pw
    num_patches = num_patch_h * num_patch_w
    if new_h != H or new_w != W:
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    x = x.reshape(B * C * num_patch_h, ph, num_patch_w, pw).transpose(1, 2)
    return x.reshape(B, C, num_patches, ph * pw).transpose(1, 3).reshape(B * ph * pw,
                                                                          num_patches, -1)


def _timm_fold(x, B, C, H, W, ph, pw):
    """timm's MobileVitBlock.forward, fold part, verbatim."""
    new_h, new_w = math.ceil(H / ph) * ph, math.ceil(W / pw) * pw
    num_patch_h, num_patch_w = new_h // ph, new_w // pw
    x = x.contiguous().view(B, ph * pw, num_patch_h * num_patch_w, -1)
    x = x.transpose(1, 3).reshape(B * C * num_patch_h, num_patch_w, ph, pw)
    x = x.transpose(1, 2).reshape(B, C, num_patch_h * ph, num_patch_w * pw)
    if (new_h, new_w) != (H, W):
        x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
    return x


# ---- the kinds graph: every kind of ops_transformer.RECORDS -----------------------------
def kinds_graph(rng):
    """A map through group_norm (2 groups), layer_norm_2d, to tokens, one transformer block
    (layer norm, attention, residual, GELU MLP, residual), back to a map, MobileViT's unfold
    (6x5: resized to 6x6), a layer norm without affine, fold back (6x5), and MobileViTV2's
    resize up to 6x6."""
    b = NetBuilder(in_channels=8)
    x = Graph.INPUT
    y = b.layer_norm("ln2d", b.group_norm("gn", x, num_groups=2), eps=1e-6,
                     kind="layer_norm_2d")
    t = b.to_tokens("tok", y)
    a = b.mhsa("attn", b.layer_norm("norm1", t), num_heads=2)
    t = b.add("res1", a, t)
    h = b.act("mlp.act", b.linear("mlp.fc1", b.layer_norm("norm2", t), 16), "gelu")
    t = b.add("res2", b.linear("mlp.fc2", h, 8), t)
    m = b.from_tokens("map", t, like=x)
    p = b.layer_norm("pnorm", b.unfold_patches("unfold", m, (2, 2)), affine=False)
    f = b.fold_patches("fold", p, like=x, patch=(2, 2))
    b.resize_to_patches("resize", f, (2, 2))           # 6x5 -> 6x6 (MobileViTV2's)
    g = b.graph
    for n in g:
        n.params = {k: (rng.standard_normal(s) * (0.3 if len(s) > 1 else 0.1)
                        + (1.0 if k == "weight" and len(s) == 1 else 0.0)).astype(np.float32)
                    for k, s in n.param_shapes.items()}
    x = rng.standard_normal((2, 8, 6, 5)).astype(np.float32)
    return g, x, lambda x: _torch_forward(g, torch.from_numpy(x))


def _torch_forward(g, x):
    p = {n.name: {k: torch.from_numpy(v) for k, v in n.params.items()} for n in g}
    ln = lambda v, name, eps=1e-5: F.layer_norm(v, v.shape[-1:], p[name].get("weight"),  # noqa
                                                p[name].get("bias"), eps)
    N, C, H, W = x.shape
    gn = F.group_norm(x, 2, p["gn"]["weight"], p["gn"]["bias"], 1e-5)
    y = ln(gn.permute(0, 2, 3, 1), "ln2d", 1e-6)       # timm LayerNorm2d: over channels
    t = y.reshape(N, H * W, C)                         # = y.permute(0,3,1,2).flatten(2).mT
    t = t + _torch_attention(ln(t, "norm1"), p["attn"], heads=2)
    h = F.gelu(F.linear(ln(t, "norm2"), p["mlp.fc1"]["weight"], p["mlp.fc1"]["bias"]))
    t = t + F.linear(h, p["mlp.fc2"]["weight"], p["mlp.fc2"]["bias"])
    m = t.transpose(1, 2).reshape(N, C, H, W)
    u = ln(_timm_unfold(m, 2, 2), "pnorm")
    f = _timm_fold(u, N, C, H, W, 2, 2)
    return F.interpolate(f, size=(6, 6), mode="bilinear", align_corners=True)  # MobileVitV2Block


def _torch_attention(x, w, heads):
    """timm's Attention.forward (fused path)."""
    B, T, C = x.shape
    qkv = F.linear(x, w["qkv.weight"], w.get("qkv.bias")).reshape(B, T, 3, heads, C // heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, C)
    return F.linear(o, w["proj.weight"], w.get("proj.bias"))


# ---- kernels/tokens.py vs timm's code ----------------------------------------------------
@SETTINGS
@given(b=st.integers(1, 2), c=st.integers(1, 5), h=st.integers(1, 9), w=st.integers(1, 9),
       ph=st.integers(1, 3), pw=st.integers(1, 3), seed=st.integers(0, 99))
def test_unfold_and_fold_are_timms(b, c, h, w, ph, pw, seed):
    """Exactly timm's reshape order (bit for bit when no resize is needed), the resize of
    non-multiples included; the NumPy references agree too."""
    x = np.random.default_rng(seed).standard_normal((b, c, h, w)).astype(np.float32)
    want = _timm_unfold(torch.from_numpy(x), ph, pw).numpy()
    got = TK.unfold_patches(x, (ph, pw))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(TK.unfold_patches_ref(x, (ph, pw)), want, rtol=1e-5, atol=1e-6)
    back = _timm_fold(torch.from_numpy(want), b, c, h, w, ph, pw).numpy()
    # a resized fold blends two values in float32, in another order than torch does: a
    # result near 0 from values near 1 can differ by a few float32 epsilons of those
    # values (seen: 1.2e-6 on -0.0035, at 9x8 with 2x1 patches), hence atol 1e-5
    np.testing.assert_allclose(TK.fold_patches(got, b, h, w, (ph, pw)), back, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(TK.fold_patches_ref(got, b, h, w, (ph, pw)), back, rtol=1e-5,
                               atol=1e-5)
    if h % ph == 0 and w % pw == 0:
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(TK.fold_patches(got, b, h, w, (ph, pw)), x)


@SETTINGS
@given(h=st.integers(1, 12), w=st.integers(1, 12), oh=st.integers(1, 12),
       ow=st.integers(1, 12), seed=st.integers(0, 99))
def test_resize_bilinear_is_f_interpolate(h, w, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w)).astype(np.float32)
    want = F.interpolate(torch.from_numpy(x), size=(oh, ow), mode="bilinear",
                         align_corners=False).numpy()
    # atol 1e-5 as for the resized fold above: blends in another order than torch's (seen:
    # 1.9e-6 at 2x10 -> 2x6)
    np.testing.assert_allclose(TK.resize_bilinear(x, oh, ow), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(TK.resize_bilinear_ref(x, oh, ow), want, rtol=1e-5, atol=1e-5)


def test_token_kernels_refuse_bad_input():
    t = np.zeros((8, 9, 4), np.float32)
    with pytest.raises(InputError, match=r"do not fold into 2 image\(s\) of 6x8"):
        TK.fold_patches(t, 2, 6, 8, 2)
    with pytest.raises(InputError, match="x must"):
        TK.unfold_patches(np.zeros((2, 3, 4), np.float32), 2)
    with pytest.raises(InputError, match="patch height"):
        TK.unfold_patches(np.zeros((1, 3, 4, 4), np.float32), (0, 2))


def test_patch_costs_count_the_resize_only_when_there_is_one():
    """Pure data movement (0 FLOPs) on multiples of the patch; 9 FLOPs per resized output
    element otherwise (4 taps, 3 blends of 2 mul + 1 add), up on unfold, down on fold."""
    assert TK.patches_cost((1, 4, 8, 6), 2).flops == 0
    assert TK.patches_cost((1, 4, 7, 6), 2).flops == 9 * 4 * 8 * 6        # up to 8x6
    assert TK.patches_cost((1, 4, 7, 6), 2, fold=True).flops == 9 * 4 * 7 * 6   # down to 7x6


# ---- the op records ----------------------------------------------------------------------
def _graph_with(kind_builder, in_channels, rng):
    b = NetBuilder(in_channels)
    kind_builder(b)
    for n in b.graph:
        n.params = {k: rng.standard_normal(s).astype(np.float32) * 0.3
                    for k, s in n.param_shapes.items()}
    return b.graph


@SETTINGS
@given(batch=st.integers(1, 2), t=st.integers(1, 20), heads=st.sampled_from([1, 2, 4]),
       d=st.integers(1, 8), bias=st.booleans(), seed=st.integers(0, 99))
def test_mhsa_node_is_timm_attention(batch, t, heads, d, bias, seed):
    """An mhsa node equals timm's Attention (fused and unfused paths) loaded with its
    weights, and its MACs are what FlopCounterMode counts on the unfused path (the fused
    path's scaled_dot_product_attention has no FLOP rule on CPU: it counts only the two
    linears, test_mobilevit.py shows the network-level consequence)."""
    from timm.models.vision_transformer import Attention
    from torch.utils.flop_counter import FlopCounterMode
    rng = np.random.default_rng(seed)
    c = heads * d
    g = _graph_with(lambda b: b.mhsa("attn", b.to_tokens("tok", Graph.INPUT), heads,
                                     qkv_bias=bias, proj_bias=bias), c, rng)
    ref = Attention(c, num_heads=heads, qkv_bias=bias, proj_bias=bias).eval()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in g["attn"].params.items()})
    x = rng.standard_normal((batch, c, 1, t)).astype(np.float32)
    tok = torch.from_numpy(x).flatten(2).transpose(1, 2)
    for fused in (True, False):
        ref.fused_attn = fused
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            want = ref(tok).numpy()
        np.testing.assert_allclose(execute(g, x), want, rtol=1e-4, atol=1e-5)
    cost = dict((n.name, c) for n, _, c in node_costs(g, x.shape))["attn"]
    assert 2 * cost.macs == counter.get_total_flops()
    assert cost.params == sum(p.numel() for p in ref.parameters())


@SETTINGS
@given(shape=st.sampled_from([(2, 5, 7), (1, 1, 3), (3, 4, 16)]), affine=st.booleans(),
       eps=st.sampled_from([1e-5, 1e-6]), seed=st.integers(0, 99))
def test_layer_norm_nodes_are_torchs(shape, affine, eps, seed):
    """layer_norm on tokens = F.layer_norm over the last dim; layer_norm_2d on NCHW = over
    the channels (timm's LayerNorm2d); with and without affine."""
    rng = np.random.default_rng(seed)
    n, t, c = shape
    g = _graph_with(lambda b: (b.layer_norm("ln", b.to_tokens("tok", Graph.INPUT), eps, affine),
                               b.layer_norm("ln2d", Graph.INPUT, eps, affine, "layer_norm_2d")),
                    c, rng)
    g.output = "ln"
    x = (rng.standard_normal((n, c, 1, t)) * 3 + 2).astype(np.float32)
    w = {k: torch.from_numpy(v) for k, v in g["ln"].params.items()}
    tok = torch.from_numpy(x).flatten(2).transpose(1, 2)
    want = F.layer_norm(tok, (c,), w.get("weight"), w.get("bias"), eps).numpy()
    np.testing.assert_allclose(execute(g, x), want, rtol=1e-4, atol=1e-5)
    g.output = "ln2d"
    w = {k: torch.from_numpy(v) for k, v in g["ln2d"].params.items()}
    want = F.layer_norm(torch.from_numpy(x).permute(0, 2, 3, 1), (c,), w.get("weight"),
                        w.get("bias"), eps).permute(0, 3, 1, 2).numpy()
    np.testing.assert_allclose(execute(g, x), want, rtol=1e-4, atol=1e-5)
    assert infer_shapes(g, x.shape)["ln"] == (n, t, c)


def test_token_kinds_refuse_wrong_shapes():
    """A map where tokens are expected (and the reverse), and tokens that do not make the
    map asked for, are one InputError each when shapes are inferred."""
    b = NetBuilder(4)
    b.layer_norm("ln", b.to_tokens("tok", b.to_tokens("tok0", Graph.INPUT)))
    with pytest.raises(InputError, match=r"tok \(to_tokens\) needs an NCHW map"):
        infer_shapes(b.graph, (1, 4, 3, 3))
    b = NetBuilder(4)
    b.mhsa("attn", Graph.INPUT, 2)
    with pytest.raises(InputError, match=r"attn \(mhsa\) needs tokens"):
        infer_shapes(b.graph, (1, 4, 3, 3))
    b = NetBuilder(4)
    small = b.conv("small", Graph.INPUT, 4, 3, stride=2)
    b.from_tokens("map", b.to_tokens("tok", Graph.INPUT), like=small)
    with pytest.raises(InputError, match="map: 36 tokens do not make a 3x3 map"):
        infer_shapes(b.graph, (1, 4, 6, 6))
    b = NetBuilder(4)
    small = b.conv("small", Graph.INPUT, 4, 3, stride=2)
    b.fold_patches("fold", b.unfold_patches("un", Graph.INPUT, (2, 2)), like=small, patch=(2, 2))
    with pytest.raises(InputError, match="fold: tokens"):
        infer_shapes(b.graph, (1, 4, 6, 6))
    assert {"to_tokens", "from_tokens", "unfold_patches", "fold_patches", "layer_norm",
            "layer_norm_2d", "mhsa"} <= set(OPS)
