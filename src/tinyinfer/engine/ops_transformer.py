"""Op records of the transformer building blocks: layer norm, token reshapes (an NCHW map to
tokens and back, MobileViT's patch unfold / fold) and multi-head self-attention.

Tokens are 3-D arrays (batch, tokens, channels); maps are NCHW. See ops.py for what a record
holds and how to add a kind. The CNN kinds ``linear`` (over the last dim), ``act`` and
``add`` work on tokens as they are, so a transformer block is

    layer_norm -> mhsa -> add (residual) -> layer_norm -> linear (+act) -> linear -> add

Kinds here:
    to_tokens       (N, C, H, W) -> (N, H*W, C)
    from_tokens     (N, H*W, C) -> (N, C, H, W); H, W those of its second input ("like",
                    any NCHW value of that size, e.g. the map the tokens came from: a graph
                    stores no sizes, so it runs at every resolution)
    unfold_patches  (B, C, H, W) -> (B*P, N, C), MobileViT's patches (kernels/tokens.py)
    fold_patches    the inverse; H, W from its second input, as from_tokens
    resize_to_patches  (N, C, H, W) -> (N, C, H', W'), H' and W' rounded up to multiples of
                    attrs ``patch``, bilinear with align_corners=True (MobileViTV2's odd maps)
    layer_norm      over the last dim (tokens); params weight, bias optional; attrs eps
    layer_norm_2d   over the channels of NCHW (timm's LayerNorm2d); the same params
    group_norm      over each sample's channel groups of NCHW (nn.GroupNorm); params weight,
                    bias; attrs num_groups, eps (MobileViTV2: one group)
    mhsa            fused qkv linear, softmax attention per head, output projection: timm's
                    Attention, params qkv.weight/.bias, proj.weight/.bias; attrs num_heads
                    (without proj.*: no output projection, EdgeViT's delegate attention)
"""
from __future__ import annotations

from .costs import Cost, RefOp, numel
from ..errors import InputError
from .op_record import WHOLE, Op, copy, same_shape
from ..kernels import attention as AT
from ..kernels import dimwise as DW
from ..kernels import linear as L
from ..kernels import norm as N
from ..kernels import tokens as TK


# ---- resize_to_patches: timm's MobileVitV2Block, before its patches ----------------------
# A map whose height or width is not a multiple of the patch is resized up to the next one
# (F.interpolate, bilinear, align_corners=True) and keeps that size: 224 px ends on a 7x7
# map that runs as 8x8. Bilinear is separable, so it is kernels/dimwise.resize_axis (the
# same align_corners rule, DiCENet's) along H, then along W; a map that fits is returned
# as it is, at no cost.
def _resize_to_patches_shape(node, in_shapes):
    shape = _map(node, in_shapes[0])
    ph, pw = node.attrs["patch"]
    return tuple(shape[:2]) + TK.padded_size(shape[2], shape[3], (ph, pw))


def _resize_to_patches_run(node, inputs):
    x = inputs[0]
    for axis, size in zip((2, 3), TK.padded_size(x.shape[2], x.shape[3], node.attrs["patch"])):
        x = DW.resize_axis(x, axis, size)          # no-op when the axis already fits
    return x


def _resize_to_patches_cost(node, in_shapes, out_shape):
    shape, cost = tuple(in_shapes[0]), Cost()
    for axis in (2, 3):
        if out_shape[axis] != shape[axis]:
            cost = cost + DW.resize_axis_cost(shape, axis, out_shape[axis])
            shape = shape[:axis] + (out_shape[axis],) + shape[axis + 1:]
    return cost


def _resize_to_patches_lower(node, in_shapes, out_shape, calls):
    # timm's MobileVitV2Block: F.interpolate, only when the map does not fit the patches
    n_in, n_out = numel(in_shapes[0]), numel(out_shape)
    return [RefOp("interpolate", n_in=n_in, n_out=n_out, call="functional")] \
        if tuple(out_shape) != tuple(in_shapes[0]) else []


# ---- tokens <-> maps ----------------------------------------------------------------------
def _map_hw(node, in_shapes) -> tuple[int, int]:
    """(H, W) of the map a from_tokens / fold_patches node produces: those of its second
    input, read for its shape only (a graph holds no sizes, so it runs at any resolution)."""
    return tuple(_map(node, in_shapes[1])[2:4])


def _to_tokens_shape(node, in_shapes):
    n, c, h, w = _map(node, in_shapes[0])
    return (n, h * w, c)


def _from_tokens_shape(node, in_shapes):
    n, t, c = _tokens(node, in_shapes[0])
    h, w = _map_hw(node, in_shapes)
    if h * w != t:
        raise InputError(f"{node.name}: {t} tokens do not make a {h}x{w} map")
    return (n, c, h, w)


def _unfold_shape(node, in_shapes):
    return TK.patches_shape(_map(node, in_shapes[0]), node.attrs["patch"])


def _fold_shape(node, in_shapes):
    bp, n, c = _tokens(node, in_shapes[0])
    ph, pw = node.attrs["patch"]
    h, w = _map_hw(node, in_shapes)
    if bp % (ph * pw) or TK.patches_shape((bp // (ph * pw), c, h, w), (ph, pw)) != (bp, n, c):
        raise InputError(f"{node.name}: tokens {tuple(in_shapes[0])} do not fold into a "
                         f"{h}x{w} map with {ph}x{pw} patches")
    return (bp // (ph * pw), c, h, w)


def _map(node, shape):
    if len(shape) != 4:
        raise InputError(f"{node.name} ({node.kind}) needs an NCHW map, got shape {shape}")
    return shape


def _tokens(node, shape):
    if len(shape) != 3:
        raise InputError(f"{node.name} ({node.kind}) needs tokens (N, T, C), got shape {shape}")
    return shape


def _moved(node, in_shapes, out_shape) -> Cost:
    n = numel(out_shape)
    return Cost(elems_read=n, elems_written=n)


def _fold_run(node, inputs):
    b, _, h, w = _fold_shape(node, [a.shape for a in inputs])
    return TK.fold_patches(inputs[0], b, h, w, node.attrs["patch"])


def _from_tokens_run(node, inputs):
    n, c, h, w = _from_tokens_shape(node, [a.shape for a in inputs])
    return TK.fold_patches(inputs[0], n, h, w, (1, 1))


def _fold_cost(node, in_shapes, out_shape):
    return TK.patches_cost(out_shape, node.attrs["patch"], fold=True)


def _patches_lower(fold: bool):
    """timm's MobileViT block: F.interpolate (bilinear, to the patch multiples) before the
    unfold and back after the fold when the map does not fit the patches; the unfold / fold
    themselves are reshapes (copies)."""
    def lower(node, in_shapes, out_shape, calls):
        map_shape = out_shape if fold else in_shapes[0]
        b, c, h, w = map_shape
        padded = b * c * numel(TK.padded_size(h, w, node.attrs["patch"]))
        ops = [RefOp("copy", n_in=padded, n_out=padded, call="operator")]
        if padded == numel(map_shape):
            return ops
        resize = RefOp("interpolate", n_in=padded if fold else numel(map_shape),
                       n_out=numel(map_shape) if fold else padded, call="functional")
        return (ops + [resize]) if fold else ([resize] + ops)
    return lower


# ---- layer norm -------------------------------------------------------------------------
def _ln_args(node):
    p = node.params
    return p.get("weight"), p.get("bias"), node.attrs["eps"]


def _ln_cost(cost_fn):
    def cost(node, in_shapes, out_shape):
        return cost_fn(in_shapes[0], affine="weight" in node.param_shapes)
    return cost


def _norm_lower(ref_op):
    """nn.LayerNorm / nn.GroupNorm (``ref_op``); ``bias``: with an affine (the tools count
    more for it); ``calls[kind]``: "subclass" for timm's GroupNorm1."""
    def lower(node, in_shapes, out_shape, calls):
        n = numel(out_shape)
        return [RefOp(ref_op, n_in=n, n_out=n, bias=n if "bias" in node.param_shapes else 0,
                      call=calls.get(node.kind, "module"))]
    return lower


# ---- group norm (MobileViTV2's GroupNorm(1, C)) -------------------------------------------
def _gn_shape(node, in_shapes):
    shape = _map(node, tuple(in_shapes[0]))
    if shape[1] % node.attrs["num_groups"]:
        raise InputError(f"{node.name}: {node.attrs['num_groups']} groups do not divide "
                         f"{shape[1]} channels")
    return shape


def _gn_run(node, inputs):
    p = node.params
    return N.group_norm(inputs[0], node.attrs["num_groups"], p.get("weight"), p.get("bias"),
                        node.attrs["eps"])


def _gn_cost(node, in_shapes, out_shape):
    return N.group_norm_cost(in_shapes[0], node.attrs["num_groups"],
                             affine="weight" in node.param_shapes)


# ---- multi-head self-attention ----------------------------------------------------------
def _mhsa_run(node, inputs):
    p = node.params
    packed = tuple(None if p.get(k) is None else L.cached_weight_panels(node.cache, k, p[k])
                   for k in ("qkv.weight", "proj.weight"))
    return AT.multi_head_self_attention(inputs[0], p["qkv.weight"], p.get("qkv.bias"),
                                        p.get("proj.weight"), p.get("proj.bias"),
                                        node.attrs["num_heads"], packed)


def _mhsa_shape(node, in_shapes):
    b, t, c = _tokens(node, in_shapes[0])
    if node.param_shapes["qkv.weight"] != (3 * c, c) or c % node.attrs["num_heads"]:
        raise InputError(f"{node.name}: tokens of {c} channels do not fit qkv weight "
                         f"{node.param_shapes['qkv.weight']} with "
                         f"{node.attrs['num_heads']} heads")
    return (b, t, c)


def _mhsa_cost(node, in_shapes, out_shape):
    ps = node.param_shapes
    return AT.multi_head_self_attention_cost(in_shapes[0], node.attrs["num_heads"],
                                             "qkv.bias" in ps, "proj.bias" in ps,
                                             proj="proj.weight" in ps)


def _mhsa_lower(node, in_shapes, out_shape, calls):
    """timm's Attention: qkv Linear, scaled_dot_product_attention (q k^T, softmax, . v),
    proj Linear (if the node has one). calls: "sdpa", "functional" (timm's fused
    F.scaled_dot_product_attention) or "operator" (written out: q @ k^T, attn.softmax(),
    attn @ v); "mhsa": "timm_attention" when the node is timm's Attention module, which
    ptflops counts as a whole (timm's default, fused attention); "mhsa_qkv": how the qkv
    Linear is called."""
    b, t, c = in_shapes[0]
    n, ps, heads = b * t * c, node.param_shapes, node.attrs["num_heads"]
    if calls.get("mhsa") == "timm_attention":      # every op below is inside that module
        qkv = sdpa = softmax = proj = "timm_attention"
    else:
        qkv, proj = calls.get("mhsa_qkv", "module"), "module"
        sdpa = calls.get("sdpa", "functional")
        # inside the fused F.scaled_dot_product_attention, or written attn.softmax(dim=-1)
        softmax = "method" if sdpa == "operator" else "fused"
    ops = [RefOp("linear", macs=3 * n * c, n_in=n, n_out=3 * n,
                 bias=3 * n if "qkv.bias" in ps else 0, call=qkv),
           # q k^T and (softmax) . v, t*t*c MACs each; the softmax of heads*t*t scores
           RefOp("sdpa", macs=2 * b * t * t * c, n_in=3 * n, n_out=n, call=sdpa),
           RefOp("softmax", n_in=b * heads * t * t, n_out=b * heads * t * t, call=softmax)]
    if "proj.weight" not in ps:
        return ops
    return ops + [RefOp("linear", macs=n * c, n_in=n, n_out=n,
                        bias=n if "proj.bias" in ps else 0, call=proj)]


# ---- the records -------------------------------------------------------------------------
#  Op(kind, run, shape, cost, lower, op_class, layer_type, memory[, buffers])
RECORDS: list[Op] = [
    Op("to_tokens", lambda node, x: TK.unfold_patches(x[0], (1, 1)), _to_tokens_shape,
       _moved, copy, "other", "to tokens", WHOLE),
    Op("from_tokens", _from_tokens_run, _from_tokens_shape, _moved, copy, "other",
       "from tokens", WHOLE),
    Op("resize_to_patches", _resize_to_patches_run, _resize_to_patches_shape,
       _resize_to_patches_cost, _resize_to_patches_lower, "other", "resize", WHOLE),
    Op("unfold_patches", lambda node, x: TK.unfold_patches(x[0], node.attrs["patch"]),
       _unfold_shape, lambda node, s, o: TK.patches_cost(s[0], node.attrs["patch"]),
       _patches_lower(fold=False), "other", "unfold patches", WHOLE),
    Op("fold_patches", _fold_run, _fold_shape, _fold_cost, _patches_lower(fold=True), "other",
       "fold patches", WHOLE),
    Op("layer_norm", lambda node, x: N.layer_norm(x[0], *_ln_args(node)), same_shape,
       _ln_cost(N.layer_norm_cost), _norm_lower("layer_norm"), "norm", "LayerNorm", WHOLE),
    Op("layer_norm_2d", lambda node, x: N.layer_norm_2d(x[0], *_ln_args(node)), same_shape,
       _ln_cost(N.layer_norm_2d_cost), _norm_lower("layer_norm"), "norm", "LayerNorm", WHOLE),
    Op("mhsa", _mhsa_run, _mhsa_shape, _mhsa_cost, _mhsa_lower, "attention",
       "Self-attention", WHOLE),
    Op("group_norm", _gn_run, _gn_shape, _gn_cost, _norm_lower("group_norm"), "norm",
       "GroupNorm", WHOLE),
]
