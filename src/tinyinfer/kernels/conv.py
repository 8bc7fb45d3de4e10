"""2-D convolution: shapes, cost, the NumPy reference, argument checks and the dispatch to
one of seven variants (six algorithms, each in its own file; all Numba, no BLAS), with bias,
activation and a residual add fused into the epilogue.

    x        (N, Cin, H, W)              float32, NCHW
    weight   (Cout, Cin // groups, KH, KW)  float32, PyTorch's layout
    bias     (Cout,) or None
    residual (N, Cout, Ho, Wo) or None   added AFTER the activation (MobileNetV2's skip), or
                                         before it with act_after_residual=True (ResNet's)
    out      (N, Cout, Ho, Wo)           Ho = (H + pt + pb - dh*(KH-1) - 1) // sh + 1

    out = act(conv(x, weight) + bias) + residual     (act_after_residual: act(... + residual))

``conv2d`` validates in Python, then runs the variant that ``conv_variant`` (in
tinyinfer/engine/conv_variant.py, which ops, report and memory ask too, and which holds the
rules and the measurements behind them) names:

    "depthwise"  conv_depthwise.py  one input channel per group: plane by plane
    "grouped"    conv_group.py      a few channels per group: direct, per group
    "winograd"   conv_winograd.py   3x3 stride 1: Winograd's F(2x2, 3x3), 16 products
    "gemm"       conv_gemm.py       register-blocked packed product (gemm.py) [on im2col
                                    columns, gathered panel by panel]
    "dot"        conv_im2col.py     small maps: [im2col,] linear's dot kernel on the
                                    (pixels, K) transpose
    "pointwise"  conv_pointwise.py  1x1, no padding: out row += w * x row
    "im2col"     conv_im2col.py     anything else: im2col, then the rows kernel

(a 1x1 conv with stride s just runs on x[:, :, ::s, ::s]).

``conv2d(..., variant=name)``
runs a named variant instead, on any shape ``VARIANTS[name].supports``: so the tests and
``python -m tinyinfer.bench kernels --variants`` can run them side by side against
``conv2d_ref``, the plain-NumPy definition. A variant with a ``prepare`` step (Winograd's
weight transform) keeps its result in the ``cache`` dict conv2d is given (the engine gives
each conv node its own), so it runs once per weight.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..engine.costs import Cost, numel
from ..engine.conv_variant import SMALL_IMAGE, conv_variant  # noqa: F401 (re-exported)
from ..errors import InputError
from .activations import ACT_FLOPS, act_code, activation_ref, epilogue_code
from .common import cached_derived, check_act, check_array, check_bias
from .conv_depthwise import depthwise_conv2d_into
from .conv_group import grouped_conv2d_into
from .conv_im2col import dot_conv2d_into, im2col_conv2d_into
from .conv_pointwise import pointwise_conv2d_into
from .conv_winograd import weight_transform, winograd_conv2d_into, winograd_supports
from .conv_gemm import gemm_conv2d_into


# ---------------------------------------------------------------------------------------
# Shapes and costs

def _pair(v, name: str, minimum: int):
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or not all(isinstance(e, (int, np.integer)) and e >= minimum for e in v)):
        raise InputError(f"{name} must be an int >= {minimum} or a pair of them (h, w), got {v!r}")
    return int(v[0]), int(v[1])


def normalize_padding(padding) -> tuple:
    """int p -> (p, p, p, p); (ph, pw) -> (ph, ph, pw, pw); (top, bottom, left, right) as is."""
    if isinstance(padding, (int, np.integer)):
        padding = (int(padding),) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        padding = (padding[0], padding[0], padding[1], padding[1])
    if (not isinstance(padding, (tuple, list)) or len(padding) != 4
            or not all(isinstance(p, (int, np.integer)) and p >= 0 for p in padding)):
        raise InputError(f"padding must be an int >= 0, (ph, pw) or (top, bottom, left, right), "
                         f"got {padding!r}")
    return tuple(int(p) for p in padding)


def same_padding(in_size: int, k: int, stride: int = 1, dilation: int = 1) -> tuple:
    """TensorFlow's "same" padding along one axis: (before, after); the odd pixel goes after."""
    total = max((-(-in_size // stride) - 1) * stride + (k - 1) * dilation + 1 - in_size, 0)
    return total // 2, total - total // 2


def conv2d_out_shape(x_shape, w_shape, stride=1, padding=0, dilation=1) -> tuple:
    """(N, Cout, Ho, Wo) for input (N, Cin, H, W) and weight (Cout, Cin/groups, KH, KW)."""
    n, _, h, w = (int(d) for d in x_shape)
    cout, _, kh, kw = (int(d) for d in w_shape)
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    pt, pb, pl, pr = normalize_padding(padding)
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return (n, cout, ho, wo)


def conv2d_cost(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, act=0,
                has_bias=True, residual=False) -> Cost:
    """MACs = N*Cout*Ho*Wo * (Cin/groups)*KH*KW; FLOPs = 2 MACs + activation (+ residual add)."""
    out = conv2d_out_shape(x_shape, w_shape, stride, padding, dilation)
    cout, cin_g, kh, kw = (int(d) for d in w_shape)
    out_elems = numel(out)
    macs = out_elems * cin_g * kh * kw
    flops = 2 * macs + ACT_FLOPS[act_code(act)] * out_elems + (out_elems if residual else 0)
    params = cout * cin_g * kh * kw + (cout if has_bias else 0)
    read = numel(x_shape) + params + (out_elems if residual else 0)
    return Cost(macs=macs, flops=flops, params=params, elems_read=read, elems_written=out_elems)


# ---------------------------------------------------------------------------------------
# Reference: the definition, in NumPy (float64, BLAS allowed, speed irrelevant)

def conv2d_ref(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, act=0,
               residual=None, act_after_residual=False) -> np.ndarray:
    """out[n, o, i, j] = sum over c, ky, kx of
           w[o, c, ky, kx] * xpad[n, g*Cg + c, i*sh + ky*dh, j*sw + kx*dw]
    with g = o // (Cout/groups) the group of output channel o and Cg = Cin/groups."""
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    pt, pb, pl, pr = normalize_padding(padding)
    n, cout, ho, wo = conv2d_out_shape(x.shape, weight.shape, (sh, sw), (pt, pb, pl, pr), (dh, dw))
    _, cg, kh, kw = weight.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    w64 = weight.astype(np.float64)
    og = cout // groups
    out = np.zeros((n, cout, ho, wo))
    for g in range(groups):
        for ky in range(kh):
            for kx in range(kw):
                # every output pixel's (ky, kx) tap, for all channels of group g at once
                patch = xp[:, g * cg:(g + 1) * cg,
                           ky * dh: ky * dh + sh * (ho - 1) + 1: sh,
                           kx * dw: kx * dw + sw * (wo - 1) + 1: sw]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch,
                                                         w64[g * og:(g + 1) * og, :, ky, kx])
    if bias is not None:
        out += bias.astype(np.float64)[None, :, None, None]
    if act_after_residual and residual is not None:
        return activation_ref((out + residual).astype(np.float32), act)
    y = activation_ref(out.astype(np.float32), act)
    if residual is not None:
        y = y + residual
    return y.astype(np.float32)


# ---------------------------------------------------------------------------------------
# Argument checks: every variant relies on them (no Numba typing error reaches a user)

def check_conv_args(x, weight, bias, stride, padding, dilation, groups, act, residual):
    """Validate conv2d's arguments; returns
    (x, weight, bias, (sh, sw), (top, bottom, left, right), (dh, dw), groups, act code,
    residual, out_shape) with arrays float32 C-contiguous and bias zeros when None."""
    x = check_array(x, "x", 4)
    weight = check_array(weight, "weight", 4)
    code = check_act(act)
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    pt, pb, pl, pr = normalize_padding(padding)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise InputError(f"groups must be an int >= 1, got {groups!r}")
    groups = int(groups)
    n, cin, h, w_in = x.shape
    cout, cin_g, kh, kw = weight.shape
    if min(cout, cin_g, kh, kw) < 1:
        raise InputError(f"weight must have no zero-sized dimension, got shape {weight.shape}")
    if cin % groups:
        raise InputError(f"input channels ({cin}) must be divisible by groups ({groups})")
    if cin_g * groups != cin:
        raise InputError(f"x has {cin} channels but weight {weight.shape} with groups={groups} "
                         f"expects {cin_g * groups} (= weight.shape[1] * groups); check the "
                         f"layout is NCHW and the weight (Cout, Cin/groups, KH, KW)")
    if cout % groups:
        raise InputError(f"output channels ({cout}) must be divisible by groups ({groups})")
    out_shape = conv2d_out_shape(x.shape, weight.shape, (sh, sw), (pt, pb, pl, pr), (dh, dw))
    ho, wo = out_shape[2], out_shape[3]
    if ho < 1 or wo < 1:
        raise InputError(f"output size would be {ho}x{wo}: input {h}x{w_in} with padding "
                         f"{(pt, pb, pl, pr)} is smaller than the dilated kernel "
                         f"{dh * (kh - 1) + 1}x{dw * (kw - 1) + 1}; pad more or use a larger input")
    bias = check_bias(bias, cout, "one per output channel")
    has_res = residual is not None
    if has_res:
        residual = check_array(residual, "residual", 4)
        if residual.shape != out_shape:
            raise InputError(f"residual must have the output's shape {out_shape}, "
                             f"got {residual.shape}")
    return (x, weight, bias, (sh, sw), (pt, pb, pl, pr), (dh, dw), groups, code, residual,
            out_shape)


# ---------------------------------------------------------------------------------------
# The variants by name, and the dispatch

class Variant(NamedTuple):
    """One conv algorithm: ``run`` fills ``out`` for arguments check_conv_args has
    validated; ``supports(cin, kh, kw, padding, groups, stride, dilation)`` says which
    convs it can run. ``prepare``, if any, derives from the weight what ``run`` takes as
    its last argument (a transformed weight): conv2d's ``cache`` keeps it per weight."""
    run: Callable
    supports: Callable
    needs: str            # what supports() checks, for the error message
    prepare: Callable | None = None


def _any(*conv):
    return True


VARIANTS = {
    "depthwise": Variant(depthwise_conv2d_into,
                         lambda cin, kh, kw, pad, groups, *_: groups == cin,
                         "groups == input channels"),
    "grouped": Variant(grouped_conv2d_into, _any, "nothing"),
    "pointwise": Variant(pointwise_conv2d_into,
                         lambda cin, kh, kw, pad, groups, *_: kh == kw == 1 and not any(pad),
                         "a 1x1 kernel and no padding"),
    "im2col": Variant(im2col_conv2d_into, _any, "nothing"),
    "dot": Variant(dot_conv2d_into, lambda cin, kh, kw, pad, groups, *_: groups == 1,
                   "groups == 1"),
    "gemm": Variant(gemm_conv2d_into, lambda cin, kh, kw, pad, groups, *_: groups == 1,
                    "groups == 1"),
    "winograd": Variant(winograd_conv2d_into, winograd_supports,
                        "a 3x3 kernel, stride 1, dilation 1 and groups == 1",
                        prepare=weight_transform),
}


def choose_variant(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1) -> str:
    """The name of the variant conv2d runs for these shapes (a key of VARIANTS)."""
    n, _, ho, wo = conv2d_out_shape(x_shape, w_shape, stride, padding, dilation)
    return conv_variant(tuple(w_shape), int(groups), _pair(stride, "stride", 1),
                        normalize_padding(padding), ho * wo, _pair(dilation, "dilation", 1),
                        n, (ho, wo))


def supported_variants(x_shape, w_shape, padding=0, groups=1, stride=1, dilation=1) -> list:
    """The names of every variant that can run this conv."""
    _, cin, _, _ = x_shape
    _, _, kh, kw = w_shape
    pad = normalize_padding(padding)
    st, dil = _pair(stride, "stride", 1), _pair(dilation, "dilation", 1)
    return [name for name, v in VARIANTS.items()
            if v.supports(cin, kh, kw, pad, groups, st, dil)]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, act=0,
           residual=None, variant=None, cache=None, act_after_residual=False) -> np.ndarray:
    """out = act(conv2d(x, weight) + bias) + residual; shapes in the module docstring.

    stride, dilation: int or (h, w). padding: int, (ph, pw) or (top, bottom, left, right).
    act: an activation code or name (see activations.py). act_after_residual: True for
    out = act(conv2d(x, weight) + bias + residual) instead (ResNet's blocks end so; every
    variant applies it in its epilogue). variant: None (conv2d picks) or a
    key of VARIANTS, to run that algorithm (for tests and benchmarks). cache: a dict kept
    with this weight (an engine node's): a variant's derived weight is made once into it
    (else on every call).
    """
    (x, weight, bias, stride, padding, dilation, groups, code, residual,
     out_shape) = check_conv_args(x, weight, bias, stride, padding, dilation, groups, act,
                                  residual)
    if not isinstance(act_after_residual, (bool, np.bool_)):
        raise InputError(f"act_after_residual must be True or False, got {act_after_residual!r}")
    code = epilogue_code(code, residual is not None, act_after_residual)
    cin = x.shape[1]
    kh, kw = weight.shape[2], weight.shape[3]
    if variant is None:
        variant = conv_variant(weight.shape, groups, stride, padding,
                               out_shape[2] * out_shape[3], dilation, out_shape[0],
                               out_shape[2:])
    elif not isinstance(variant, str) or variant not in VARIANTS:
        raise InputError(f"unknown conv variant {variant!r}; known: {', '.join(VARIANTS)}")
    elif not VARIANTS[variant].supports(cin, kh, kw, padding, groups, stride, dilation):
        can = supported_variants(x.shape, weight.shape, padding, groups, stride, dilation)
        raise InputError(f"conv variant {variant!r} needs {VARIANTS[variant].needs}; this conv "
                         f"(input {x.shape}, weight {weight.shape}, stride {stride}, padding "
                         f"{padding}, dilation {dilation}, groups {groups}) can run: "
                         f"{', '.join(can)}")
    out = np.empty(out_shape, np.float32)
    if out.size == 0:
        return out
    v = VARIANTS[variant]
    if v.prepare is None:
        return v.run(x, weight, bias, stride, padding, dilation, groups, code, residual, out)
    prepared = (cached_derived(cache, variant, weight, v.prepare, 4) if cache is not None
                else None)
    if prepared is None:
        prepared = v.prepare(weight)
    return v.run(x, weight, bias, stride, padding, dilation, groups, code, residual, out,
                 prepared)
