"""Op records of the efficient attention variants (FAVOR+, cascaded group attention, ReLU
linear attention, separable self-attention, ...), each beside the networks' kernels in
kernels/. See ops.py for what a record holds and how to add a kind.
"""
from __future__ import annotations

from ..errors import InputError
from ..kernels import attention_cascaded as AC
from ..kernels import attention_favor as AF
from ..kernels import attention_linear as AL
from ..kernels import attention_separable as SA
from .costs import RefOp, numel
from .op_record import WHOLE, Op, act_ops


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


# ---- cascaded group attention (EfficientViT-M's LocalWindowAttention before its proj) -----
# NCHW in and out (same shape). Params as timm names them inside the module: per head h
# qkvs.{h}.conv.weight, qkvs.{h}.bn.*, dws.{h}.conv.weight, dws.{h}.bn.*, and
# attention_biases. attrs: key_dim, window, kernels (each head's dw kernel size), eps, act.
_BN = ("weight", "bias", "running_mean", "running_var")


def _cga_heads(node):
    return range(len(node.attrs["kernels"]))


def _cga_buffers(node):
    """Every head's BN statistics (buffers in PyTorch)."""
    return tuple(f"{m}.{h}.bn.{s}" for m in ("qkvs", "dws") for h in _cga_heads(node)
                 for s in _BN[2:])


def _cga_run(node, inputs):
    p, a = node.params, node.attrs
    weights = {m: [p[f"{m}.{h}.conv.weight"] for h in _cga_heads(node)] for m in ("qkvs", "dws")}
    norms = {m: [tuple(p[f"{m}.{h}.bn.{s}"] for s in _BN) for h in _cga_heads(node)]
             for m in ("qkvs", "dws")}
    return AC.cascaded_group_attention(inputs[0], weights["qkvs"], norms["qkvs"],
                                       weights["dws"], norms["dws"], p["attention_biases"],
                                       a["key_dim"], a["window"], a["eps"], a["act"])


def _cga_shape(node, in_shapes):
    shape = tuple(in_shapes[0])
    cg = node.param_shapes["qkvs.0.conv.weight"][1]
    if len(shape) != 4 or shape[1] != cg * len(node.attrs["kernels"]):
        raise InputError(f"{node.name}: cascaded group attention needs an NCHW map of "
                         f"{len(node.attrs['kernels'])} heads x {cg} channels, got {shape}")
    return shape


def _cga_cost(node, in_shapes, out_shape):
    a = node.attrs
    return AC.cascaded_group_attention_cost(in_shapes[0], a["key_dim"], a["window"],
                                            a["kernels"], a["act"])


def _cga_lower(node, in_shapes, out_shape, calls):
    """timm's CascadedGroupAttention per head: (+ previous head), 1x1 conv, BN, dw conv on q,
    BN, q * scale, then q^T k + bias, softmax, v attn^T as one op named after this kind
    (class "attention") with the two matmuls' MACs; the window padding and permutes are
    copies; then the ReLU before the projection. timm runs its projection (ReLU, 1x1 conv
    C -> C, BN) inside the padded windows too; the graph's conv node after this one counts
    it on the real map, and the padding's share is lowered here."""
    a, (B, C, H, W) = node.attrs, in_shapes[0]
    D, ws = a["key_dim"], a["window"]
    nh, nw = AC.windows(H, W, ws)
    n_tok, Dv, T = B * nh * nw * ws * ws, C // len(a["kernels"]), ws * ws
    copies = (H, W) != (ws, ws)        # timm pads and partitions unless one window fits
    ops = [RefOp("copy", n_in=B * C * H * W, n_out=n_tok * C, call="operator")] * copies
    for h, k in enumerate(a["kernels"]):
        o = 2 * D + Dv
        ops += [RefOp("add", n_in=n_tok * Dv, n_out=n_tok * Dv, call="operator")] if h else []
        ops += [RefOp("conv", macs=n_tok * Dv * o, n_in=n_tok * Dv, n_out=n_tok * o),
                RefOp("batchnorm", n_in=n_tok * o, n_out=n_tok * o),
                RefOp("conv", macs=n_tok * D * k * k, n_in=n_tok * D, n_out=n_tok * D),
                RefOp("batchnorm", n_in=n_tok * D, n_out=n_tok * D),
                RefOp("mul", n_in=n_tok * D, n_out=n_tok * D, call="operator"),
                RefOp(node.kind, macs=n_tok * T * (D + Dv), n_in=n_tok * o,
                      n_out=n_tok * Dv, call="operator")]
    pad = (n_tok - B * H * W) * C                   # padding elements of the C-channel map
    proj_on_padding = [RefOp("conv", macs=pad * C, n_in=pad, n_out=pad),
                       RefOp("batchnorm", n_in=pad, n_out=pad)] if pad else []
    return ops + act_ops(a["act"], n_tok * C, calls) + proj_on_padding


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
    tokens (of the one query channel), (key * scores).sum over the tokens as one op named
    after this kind (class "attention") with the context vectors' MACs; then F.relu(value)
    and the multiply by the context (elementwise, in the kind's FLOPs)."""
    n_in, n_out = numel(in_shapes[0]), numel(out_shape)
    b, _, h, w = in_shapes[0]
    macs = SA.separable_context_mix_cost(in_shapes[0]).macs
    return [RefOp("softmax", n_in=b * h * w, n_out=b * h * w, call="functional"),
            RefOp(node.kind, macs=macs, n_in=n_in, n_out=n_out, call="operator"),
            RefOp("relu", n_in=n_out, n_out=n_out, call=calls.get("relu", "functional"))]


# ---- FAVOR+ (Performer) multi-head self-attention --------------------------------------
# Tokens (B, T, C) in and out, with ops_transformer's mhsa weights (timm's Attention names:
# qkv.weight/.bias, proj.weight/.bias); attrs: num_heads, causal, and projection, the
# (M, C/num_heads) random-feature matrix: drawn when the model is built, not a weight
# (models/mobilevit.py), so a softmax checkpoint loads into either.
def _favor_run(node, inputs):
    p, a = node.params, node.attrs
    return AF.favor_self_attention(inputs[0], p["qkv.weight"], p.get("qkv.bias"),
                                   p["proj.weight"], p.get("proj.bias"), a["num_heads"],
                                   a["projection"], a["causal"])


def _favor_shape(node, in_shapes):
    shape, H = tuple(in_shapes[0]), node.attrs["num_heads"]
    c, D = shape[-1], node.attrs["projection"].shape[1]
    if len(shape) != 3 or node.param_shapes["qkv.weight"] != (3 * c, c) or c % H or D * H != c:
        raise InputError(f"{node.name}: tokens {shape} do not fit qkv weight "
                         f"{node.param_shapes['qkv.weight']}, {H} heads and a projection "
                         f"for head dim {D}")
    return shape


def _favor_cost(node, in_shapes, out_shape):
    ps = node.param_shapes
    return AF.favor_self_attention_cost(in_shapes[0], node.attrs["num_heads"],
                                        node.attrs["projection"].shape[0],
                                        "qkv.bias" in ps, "proj.bias" in ps)


def _favor_lower(node, in_shapes, out_shape, calls):
    """timm's Attention with performer-pytorch's FastAttention in place of its softmax: qkv
    Linear; FastAttention's einsums as one op named after this kind (class "attention")
    carrying their MACs; proj Linear."""
    b, t, c = in_shapes[0]
    n, ps, H = b * t * c, node.param_shapes, node.attrs["num_heads"]
    heads = (b, H, t, c // H)
    macs = AF.favor_attention_cost(heads, heads, heads, node.attrs["projection"].shape).macs
    return [RefOp("linear", macs=3 * n * c, n_in=n, n_out=3 * n,
                  bias=3 * n if "qkv.bias" in ps else 0),
            RefOp(node.kind, macs=macs, n_in=3 * n, n_out=n, call="module"),
            RefOp("linear", macs=n * c, n_in=n, n_out=n, bias=n if "proj.bias" in ps else 0)]


RECORDS: list[Op] = [
    Op("relu_linear_attention",
       lambda node, x: AL.relu_linear_attention(x[0], node.attrs["dim"], node.attrs["eps"]),
       _rla_shape, lambda node, s, o: AL.relu_linear_attention_cost(s[0], node.attrs["dim"]),
       _rla_lower, "attention", "ReLU linear attention", WHOLE),
    Op("separable_attention",
       lambda node, x: SA.separable_context_mix(x[0], node.attrs["patch"]), _sep_shape,
       lambda node, s, o: SA.separable_context_mix_cost(s[0]), _sep_lower, "attention",
       "Separable attention", WHOLE),
    Op("cascaded_group_attention", _cga_run, _cga_shape, _cga_cost, _cga_lower, "attention",
       "Cascaded group attention", WHOLE, buffers=_cga_buffers),
    Op("favor_attention", _favor_run, _favor_shape, _favor_cost, _favor_lower, "attention",
       "FAVOR+ attention", WHOLE),
]
