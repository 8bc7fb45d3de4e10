"""The efficient-attention op kinds (engine/ops_attention.py) against PyTorch. ``kinds_graph``
is picked up by tests/test_ops.py (shape rule vs kernel, every field, value vs torch); each
kind's kernel has its own tests in tests/test_kernels_attention*.py."""
import numpy as np
import pytest
import torch

from test_kernels_attention_cascaded import cga_node_params, timm_window_attention
from test_kernels_attention_linear import timm_linear_attention
from test_kernels_attention_separable import timm_attention, timm_on_map
from tinyinfer.engine.graph import Graph
from tinyinfer.engine.ops import infer_shapes
from tinyinfer.errors import InputError


# ---- the kinds graph: every kind of ops_attention.RECORDS --------------------------------
def kinds_graph(rng):
    """The input map (2 images of 12 channels, 5x4) through:
    separable_attention     timm's LinearSelfAttention on 1x2 patches (5 x 2 tokens per patch
                            position): a qkv 1x1 conv to 25 channels, the kind, an output
                            1x1 conv to 12, named as in MobileViTV2
    cascaded_group_attention  timm's LocalWindowAttention (its proj cut to the ReLU): 2
                            heads of 6 channels, key dim 2, q-conv kernels 3 and 1, 3x3
                            windows (the 5x4 map padded to 2x2 of them)
    relu_linear_attention   as EfficientViT's qkv map: 2 heads of dim 2 (q, k, v each 2)
    favor_attention         its output as 20 tokens of 4 channels: 2 heads of D = 2, M = 5."""
    g = Graph(12)
    sep = timm_attention(rng, 12)
    _conv1x1(g, "sep.qkv_proj", g.input, sep.qkv_proj)
    g.add_node("sep", "separable_attention", ["sep.qkv_proj"], {"patch": (1, 2)})
    _conv1x1(g, "sep.out_proj", "sep", sep.out_proj)
    cga = timm_window_attention(12, 2, 2, 3, (3, 1), seed=int(rng.integers(1000)))
    params = cga_node_params(cga.attn)
    g.add_node("cga", "cascaded_group_attention", ["sep.out_proj"], {
        "key_dim": 2, "window": 3, "kernels": (3, 1), "eps": 1e-5, "act": 1},
        {k: v.shape for k, v in params.items()})
    g["cga"].params = params
    g.add_node("rla", "relu_linear_attention", ["cga"], {"dim": 2, "eps": 1e-5})
    favor = add_favor_attention(g, "rla", rng)
    x = rng.standard_normal((2, 12, 5, 4)).astype(np.float32)
    return g, x, lambda x: favor(_torch_forward(cga, timm_on_map(sep, torch.from_numpy(x),
                                                                 (1, 2))))


def _conv1x1(g, name, x, conv):
    """A conv2d node with the weights of the torch 1x1 ``conv``."""
    g.add_node(name, "conv2d", [x], {"stride": (1, 1), "padding": (0, 0, 0, 0),
                                     "dilation": (1, 1), "groups": 1, "act": 0},
               {"weight": tuple(conv.weight.shape), "bias": tuple(conv.bias.shape)})
    g[name].params = {"weight": conv.weight.detach().numpy(), "bias": conv.bias.detach().numpy()}


def _torch_forward(cga, x):
    with torch.no_grad():
        return timm_linear_attention(cga(x), 2, 1e-5)


def add_favor_attention(g, x, rng):
    """to_tokens, then favor_attention (2 heads over 4 channels, M = 5 features) after node
    ``x``; returns the same in torch (timm's Attention with performer-pytorch's FastAttention
    in place of softmax) as a function of x's output."""
    from test_kernels_favor import fast_attention, torch_favor_mhsa
    g.add_node("tokens", "to_tokens", [x])
    w = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    params = {"qkv.weight": w(12, 4), "qkv.bias": w(12), "proj.weight": w(4, 4),
              "proj.bias": w(4)}
    fa = fast_attention(2, 5, False, seed=int(rng.integers(1000)))
    g.add_node("favor", "favor_attention", ["tokens"], {
        "num_heads": 2, "causal": False, "projection": fa.projection_matrix.numpy()},
        {k: v.shape for k, v in params.items()})
    g["favor"].params = params
    weights = [torch.from_numpy(params[k]) for k in ("qkv.weight", "qkv.bias", "proj.weight",
                                                     "proj.bias")]

    def forward(y):
        with torch.no_grad():
            return torch_favor_mhsa(y.flatten(2).transpose(1, 2), *weights, 2, fa)
    return forward


def test_favor_attention_shape_rule_refuses_a_projection_of_another_head_dim():
    g = Graph(8)
    g.add_node("favor", "favor_attention", [g.input], {
        "num_heads": 2, "causal": False, "projection": np.ones((5, 3), np.float32)},
        {"qkv.weight": (24, 8), "proj.weight": (8, 8)})
    with pytest.raises(InputError, match="projection for head dim 3"):
        infer_shapes(g, (1, 10, 8))
    g["favor"].attrs["projection"] = np.ones((5, 4), np.float32)
    assert infer_shapes(g, (1, 10, 8))["favor"] == (1, 10, 8)


def test_relu_linear_attention_shape_rule_refuses_a_map_without_whole_heads():
    g = Graph(12)
    g.add_node("rla", "relu_linear_attention", [g.input], {"dim": 3, "eps": 1e-5})
    assert infer_shapes(g, (1, 18, 4, 4))["rla"] == (1, 6, 4, 4)
    with pytest.raises(InputError, match="heads of 3\\*dim = 9 channels"):
        infer_shapes(g, (1, 12, 4, 4))
    with pytest.raises(InputError, match="NCHW map"):
        infer_shapes(g, (1, 16, 18))
