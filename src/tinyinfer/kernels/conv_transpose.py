"""Transposed 2-D convolution (PyTorch's ``ConvTranspose2d``), any groups: EdgeViT's "local
propagation" is the depthwise case (groups = channels, kernel = stride = r), which spreads
each delegate token back over the r x r pixels it was sampled from.

    x        (N, Cin, H, W)                      float32, NCHW
    weight   (Cin, Cout // groups, KH, KW)       float32, PyTorch's ConvTranspose layout
                                                 (input channels first, unlike Conv2d)
    bias     (Cout,) or None
    out      (N, Cout, Ho, Wo)
             Ho = (H - 1)*sh - 2*ph + dh*(KH - 1) + oph + 1     (oph: output_padding)

A transposed convolution is the gradient of a convolution with respect to its input: every
input pixel (iy, ix) scatters x * w[ky, kx] into output pixel (iy*sh + ky*dh - ph,
ix*sw + kx*dw - pw). Written as that scatter: each output plane is accumulated in a full-size
buffer (no padding cropped yet), then the ``padding`` border is cropped off and the bias
added. ``output_padding`` only makes the output taller / wider by that many rows / columns
on the bottom / right (which then receive nothing but the bias): PyTorch's way to pick one of
the several input sizes that a strided convolution maps to the same output size.

Counts (``conv_transpose2d_cost``) are those of the scatter, as torch's FlopCounterMode and
fvcore count it: every input element meets every tap of every output channel of its group,
MACs = N * Cin * H * W * (Cout/groups) * KH * KW, including taps whose target falls in the
cropped border.
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .common import FASTMATH, check_array, check_bias, check_int


# ---------------------------------------------------------------------------------------
# Shapes, costs and checks

def _pair(v, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise InputError(f"{name} must be an int or a pair (h, w), got {v!r}")
        return check_int(v[0], name, minimum), check_int(v[1], name, minimum)
    v = check_int(v, name, minimum)
    return v, v


def conv_transpose2d_out_shape(x_shape, w_shape, stride=1, padding=0, output_padding=0,
                               dilation=1, groups=1) -> tuple:
    """(N, Cout, Ho, Wo) for input (N, Cin, H, W) and weight (Cin, Cout/groups, KH, KW)."""
    n, _, h, w = (int(d) for d in x_shape)
    _, cout_g, kh, kw = (int(d) for d in w_shape)
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    (oph, opw), (dh, dw) = _pair(output_padding, "output_padding", 0), _pair(dilation,
                                                                             "dilation", 1)
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    return (n, cout_g * int(groups), ho, wo)


def conv_transpose2d_cost(x_shape, w_shape, stride=1, padding=0, output_padding=0,
                          dilation=1, groups=1, has_bias=True) -> Cost:
    """MACs = N*Cin*H*W * (Cout/groups)*KH*KW (module docstring); FLOPs = 2 MACs."""
    out = conv_transpose2d_out_shape(x_shape, w_shape, stride, padding, output_padding,
                                     dilation, groups)
    macs = numel(x_shape) * numel(w_shape[1:])
    params = numel(w_shape) + (out[1] if has_bias else 0)
    return Cost(macs=macs, flops=2 * macs, params=params, elems_read=numel(x_shape) + params,
                elems_written=numel(out))


def check_conv_transpose_args(x, weight, bias, stride, padding, output_padding, dilation,
                              groups):
    """Validate conv_transpose2d's arguments; returns (x, weight, bias, (sh, sw), (ph, pw),
    (dh, dw), groups, out_shape) with arrays float32 C-contiguous and bias zeros when None."""
    x = check_array(x, "x", 4)
    weight = check_array(weight, "weight", 4)
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    output_padding, dilation = (_pair(output_padding, "output_padding", 0),
                                _pair(dilation, "dilation", 1))
    groups = check_int(groups, "groups", 1)
    cin, cout_g, kh, kw = weight.shape
    if min(weight.shape) < 1:
        raise InputError(f"weight must have no zero-sized dimension, got shape {weight.shape}")
    if x.shape[1] != cin:
        raise InputError(f"x has {x.shape[1]} channels but the transposed-conv weight "
                         f"{weight.shape} expects {cin} (its first dim: PyTorch's "
                         f"ConvTranspose2d layout is (Cin, Cout/groups, KH, KW))")
    if cin % groups:
        raise InputError(f"input channels ({cin}) must be divisible by groups ({groups})")
    for axis, op, s, d in zip("hw", output_padding, stride, dilation):
        if op >= max(s, d):   # PyTorch's rule: it would add rows that no stride step reaches
            raise InputError(f"output_padding {op} along {axis} must be smaller than the stride "
                             f"({s}) or the dilation ({d}), as in PyTorch")
    out_shape = conv_transpose2d_out_shape(x.shape, weight.shape, stride, padding,
                                           output_padding, dilation, groups)
    if out_shape[2] < 1 or out_shape[3] < 1:
        raise InputError(f"output size would be {out_shape[2]}x{out_shape[3]}: padding "
                         f"{padding} crops more than the {x.shape[2]}x{x.shape[3]} input "
                         f"spreads to; use less padding")
    bias = check_bias(bias, out_shape[1], "one per output channel")
    return x, weight, bias, stride, padding, dilation, groups, out_shape


# ---------------------------------------------------------------------------------------
# Reference: the definition, in NumPy (float64)

def conv_transpose2d_ref(x, weight, bias=None, stride=1, padding=0, output_padding=0,
                         dilation=1, groups=1) -> np.ndarray:
    """full[n, g*Og + o, iy*sh + ky*dh, ix*sw + kx*dw] += x[n, c, iy, ix] * w[c, o, ky, kx]
    for every input channel c of group g (Og = Cout/groups), then
    out = full[:, :, ph:ph + Ho, pw:pw + Wo] + bias."""
    (sh, sw), (ph, pw), (dh, dw) = (_pair(stride, "stride", 1), _pair(padding, "padding", 0),
                                    _pair(dilation, "dilation", 1))
    n, cout, ho, wo = conv_transpose2d_out_shape(x.shape, weight.shape, stride, padding,
                                                 output_padding, dilation, groups)
    cin, og, kh, kw = weight.shape
    cg = cin // groups
    h, w = x.shape[2:]
    full = np.zeros((n, cout, ho + 2 * ph, wo + 2 * pw))
    for g in range(groups):
        xg = x[:, g * cg:(g + 1) * cg].astype(np.float64)
        for ky in range(kh):
            for kx in range(kw):
                # tap (ky, kx) of every input pixel lands on a strided grid of the output
                contrib = np.einsum("nchw,co->nohw", xg, weight[g * cg:(g + 1) * cg, :, ky, kx])
                full[:, g * og:(g + 1) * og,
                     ky * dh: ky * dh + sh * (h - 1) + 1: sh,
                     kx * dw: kx * dw + sw * (w - 1) + 1: sw] += contrib
    out = full[:, :, ph:ph + ho, pw:pw + wo]
    if bias is not None:
        out = out + bias.astype(np.float64)[None, :, None, None]
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------
# The kernel

@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _conv_transpose(x, w, bias, groups, sh, sw, ph, pw, dh, dw, out, nchunks):
    """out[n, co] = crop(sum over c in co's group of scatter(x[n, c], w[c, co % Og])) + bias

    x (N, Cin, H, W)   w (Cin, Og, KH, KW)   bias (Cout,)   out (N, Cout, Ho, Wo)

    One output plane at a time (planes are independent: parallel over N*Cout of them), in a
    buffer of the uncropped size Hf x Wf; each buffer is zeroed per plane, allocated once
    per thread's chunk. The innermost loop runs along an input row, writing every sw-th
    element of one buffer row.
    """
    N, Cin, H, W = x.shape
    Og, KH, KW = w.shape[1], w.shape[2], w.shape[3]
    Cout, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    Cg = Cin // groups
    Hf, Wf = Ho + 2 * ph, Wo + 2 * pw
    planes = N * Cout
    nchunks = min(planes, nchunks)
    for chunk in numba.prange(nchunks):
        full = np.empty((Hf, Wf), np.float32)
        for plane in range(chunk * planes // nchunks, (chunk + 1) * planes // nchunks):
            n = plane // Cout
            co = plane % Cout
            o = co % Og
            full[:, :] = 0.0
            for c in range((co // Og) * Cg, (co // Og + 1) * Cg):
                for ky in range(KH):
                    for iy in range(H):
                        row = full[iy * sh + ky * dh]
                        xr = x[n, c, iy]
                        for kx in range(KW):
                            wv = w[c, o, ky, kx]
                            off = kx * dw
                            for ix in range(W):
                                row[ix * sw + off] += xr[ix] * wv
            b = bias[co]
            for oy in range(Ho):
                src = full[oy + ph]
                dst = out[n, co, oy]
                for ox in range(Wo):
                    dst[ox] = src[ox + pw] + b


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1) -> np.ndarray:
    """F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation);
    shapes in the module docstring. stride, padding, output_padding, dilation: int or (h, w)
    (padding is symmetric, as PyTorch's)."""
    x, weight, bias, (sh, sw), (ph, pw), (dh, dw), groups, out_shape = \
        check_conv_transpose_args(x, weight, bias, stride, padding, output_padding, dilation,
                                  groups)
    out = np.empty(out_shape, np.float32)
    # one chunk of planes per thread (get_num_threads inside the kernel would stop Numba
    # from caching it on disk)
    _conv_transpose(x, weight, bias, groups, sh, sw, ph, pw, dh, dw, out,
                    numba.get_num_threads())
    return out
