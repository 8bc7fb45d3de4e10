"""Op records of the efficient attention variants (FAVOR+, cascaded group attention, ReLU
linear attention, separable self-attention, ...), each beside the networks' kernels in
kernels/. See ops.py for what a record holds and how to add a kind.
"""
from __future__ import annotations

from ..errors import InputError
from ..kernels import attention_linear as AL
from ..kernels import attention_separable as SA
from .costs import RefOp, numel
from .op_record import WHOLE, Op


# ---- ReLU linear attention (EfficientViT-B's LiteMLA) --------------------------------------
# Input: the NCHW map of per-head [q, k, v] channel groups (qkv conv + multi-scale aggregates,
# concatenated); output: NCHW, dim channels per head. attrs: dim (per-head), eps.
def _rla_shape(node, in_shapes):
    shape = tuple(in_shapes[0])
    dim = node.attrs["dim"]
    if len(shape) != 4 or shape[1] % (3 * dim):
        raise InputError(f"{node.name}: ReLU linear attention needs an NCHW map of heads of "
                         f"3*dim = {3 * dim} channels (q, k, v), got shape {shape}")
    return (shape[0], shape[1] // 3) + shape[2:]


def _rla_lower(node, in_shapes, out_shape, calls):
    """timm's LiteMLA: nn.ReLU on q and on k, then F.pad of v with ones, the matmuls k^T v
    and q (kv), and out / (den + eps): one op named after this kind (class "attention"),
    carrying the matmuls' MACs."""
    n_in, n_out = numel(in_shapes[0]), numel(out_shape)
    macs = AL.relu_linear_attention_cost(in_shapes[0], node.attrs["dim"]).macs
    return [RefOp("relu", n_in=n_out, n_out=n_out, call=calls.get("relu", "module")),
            RefOp("relu", n_in=n_out, n_out=n_out, call=calls.get("relu", "module")),
            RefOp(node.kind, macs=macs, n_in=n_in, n_out=n_out, call="operator")]


# ---- separable self-attention (MobileViTV2's LinearSelfAttention between its 1x1 convs) ---
# Input: the qkv conv's map (B, 1 + 2C, H, W): one query channel, C keys, C values; output
# ReLU(v) * context, (B, C, H, W). attrs: patch (ph, pw), the patches the tokens come from.
def _sep_shape(node, in_shapes):
    shape = tuple(in_shapes[0])
    if len(shape) != 4 or shape[1] < 3 or shape[1] % 2 == 0:
        raise InputError(f"{node.name}: separable attention needs an NCHW map of 1 + 2C "
                         f"channels (one query, C keys, C values), got shape {shape}")
    SA.check_patch_grid(shape, node.attrs["patch"], node.name)
    return (shape[0], (shape[1] - 1) // 2) + shape[2:]


def _sep_lower(node, in_shapes, out_shape, calls):
    """timm's LinearSelfAttention between qkv_proj and out_proj: split, F.softmax over the
    tokens, (key * scores).sum over the tokens as one op named after this kind (class
    "attention") with the context vectors' MACs; then F.relu(value) and the multiply by the
    context (elementwise, in the kind's FLOPs)."""
    n_in, n_out = numel(in_shapes[0]), numel(out_shape)
    macs = SA.separable_context_mix_cost(in_shapes[0]).macs
    return [RefOp(node.kind, macs=macs, n_in=n_in, n_out=n_out, call="operator"),
            RefOp("relu", n_in=n_out, n_out=n_out, call=calls.get("relu", "functional"))]


RECORDS: list[Op] = [
    Op("relu_linear_attention",
       lambda node, x: AL.relu_linear_attention(x[0], node.attrs["dim"], node.attrs["eps"]),
       _rla_shape, lambda node, s, o: AL.relu_linear_attention_cost(s[0], node.attrs["dim"]),
       _rla_lower, "attention", "ReLU linear attention", WHOLE),
    Op("separable_attention",
       lambda node, x: SA.separable_context_mix(x[0], node.attrs["patch"]), _sep_shape,
       lambda node, s, o: SA.separable_context_mix_cost(s[0]), _sep_lower, "attention",
       "Separable attention", WHOLE),
]
