"""The efficient-attention op kinds (engine/ops_attention.py) against PyTorch. ``kinds_graph``
is picked up by tests/test_ops.py (shape rule vs kernel, every field, value vs torch); each
kind's kernel has its own tests in tests/test_kernels_attention*.py."""
import numpy as np
import pytest
import torch

from test_kernels_attention_cascaded import cga_node_params, timm_window_attention
from test_kernels_attention_linear import timm_linear_attention
from tinyinfer.engine.graph import Graph
from tinyinfer.engine.ops import infer_shapes
from tinyinfer.errors import InputError


# ---- the kinds graph: every kind of ops_attention.RECORDS --------------------------------
def kinds_graph(rng):
    """The input map (2 images of 12 channels, 5x4) through:
    cascaded_group_attention  timm's LocalWindowAttention (its proj cut to the ReLU): 2
                            heads of 6 channels, key dim 2, q-conv kernels 3 and 1, 3x3
                            windows (the 5x4 map padded to 2x2 of them)
    relu_linear_attention   as EfficientViT's qkv map: 2 heads of dim 2 (q, k, v each 2)."""
    g = Graph(12)
    cga = timm_window_attention(12, 2, 2, 3, (3, 1), seed=int(rng.integers(1000)))
    params = cga_node_params(cga.attn)
    g.add_node("cga", "cascaded_group_attention", [g.input], {
        "key_dim": 2, "window": 3, "kernels": (3, 1), "eps": 1e-5, "act": 1},
        {k: v.shape for k, v in params.items()})
    g["cga"].params = params
    g.add_node("rla", "relu_linear_attention", ["cga"], {"dim": 2, "eps": 1e-5})
    x = rng.standard_normal((2, 12, 5, 4)).astype(np.float32)
    return g, x, lambda x: _torch_forward(cga, torch.from_numpy(x))


def _torch_forward(cga, x):
    with torch.no_grad():
        return timm_linear_attention(cga(x), 2, 1e-5)


def test_relu_linear_attention_shape_rule_refuses_a_map_without_whole_heads():
    g = Graph(12)
    g.add_node("rla", "relu_linear_attention", [g.input], {"dim": 3, "eps": 1e-5})
    assert infer_shapes(g, (1, 18, 4, 4))["rla"] == (1, 6, 4, 4)
    with pytest.raises(InputError, match="heads of 3\\*dim = 9 channels"):
        infer_shapes(g, (1, 12, 4, 4))
    with pytest.raises(InputError, match="NCHW map"):
        infer_shapes(g, (1, 16, 18))
