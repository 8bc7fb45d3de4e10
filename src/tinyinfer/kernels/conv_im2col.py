"""Any convolution as a matrix product over im2col columns, and the small-image 1x1 path.

    x        (N, Cin, H, W)                float32, NCHW
    weight   (Cout, Cin // groups, KH, KW) float32, PyTorch's layout
    bias     (Cout,)
    residual (N, Cout, Ho, Wo) or None     added AFTER the activation
    out      (N, Cout, Ho, Wo)

im2col copies every tap of every output pixel into a column matrix
    cols (N, Cin*KH*KW, Ho*Wo),  cols[n, c*KH*KW + ky*KW + kx, i*Wo + j] = xpad[n, c, ...]
so that the conv is a product with the (Cout, Cin/groups*KH*KW) weight. Two products:

    "im2col"  conv_pointwise's row kernel on the columns (any shape, any groups)
    "dot"     linear's dot-product kernel on the (pixels, K) transpose (groups == 1):
              on a 7x7 map a row is 49 floats, too short to vectorize well, while a
              linear layer over 49 pixels blocks 4x4 outputs at once

conv.py holds the shapes, cost, reference and the dispatch.
"""
from __future__ import annotations

import numba
import numpy as np

from .common import NO_RES2, epilogue_rows
from .conv_pointwise import rows_conv2d_into, subsample_1x1
from .linear import _dot_kernel


@numba.njit(parallel=True, cache=True)
def _im2col(x, kh, kw, pt, pl, sh, sw, dh, dw, ho, wo, cols):
    """cols[n, c*KH*KW + ky*KW + kx, i*Wo + j] = xpad[n, c, i*sh + ky*dh, j*sw + kx*dw]

    x (N, C, H, W) -> cols (N, C*KH*KW, Ho*Wo), zeros where the tap falls in the padding.
    """
    N, C, H, W = x.shape
    for task in numba.prange(N * C * kh):
        ky = task % kh
        c = (task // kh) % C
        n = task // (kh * C)
        for kx in range(kw):
            row = cols[n, (c * kh + ky) * kw + kx]
            off = kx * dw - pl
            j_lo, j_hi = col_range(off, sw, W, wo)
            for i in range(ho):
                iy = i * sh + ky * dh - pt
                dst = row[i * wo:(i + 1) * wo]
                if iy < 0 or iy >= H:
                    dst[:] = 0.0
                    continue
                dst[:j_lo] = 0.0
                dst[j_hi:] = 0.0
                copy_strided(dst[j_lo:j_hi], x[n, c, iy, j_lo * sw + off:], j_hi - j_lo, sw)


@numba.njit(inline="always", cache=True)
def col_range(off, sw, W, Wo):
    """The output columns j in [lo, hi) whose input column j*sw + off lies in [0, W) (the
    rest of a tap's row falls in the padding)."""
    lo = min(max(0, (-off + sw - 1) // sw), Wo)
    return lo, max(min(Wo, (W - 1 - off) // sw + 1), lo)


@numba.njit(inline="always", cache=True)
def copy_strided(dst, src, n, step):
    """dst[j] = src[j * step] for j < n. Both are slices indexed from 0 up (so Numba emits
    no negative-index wraparound), and steps 1 and 2 are loops of their own, so that LLVM
    vectorizes them: a memcpy, and a stride it knows how to shuffle."""
    if step == 1:
        for j in range(n):
            dst[j] = src[j]
    elif step == 2:
        for j in range(n):
            dst[j] = src[2 * j]
    else:
        for j in range(n):
            dst[j] = src[j * step]


def im2col(x, kh, kw, stride, padding, dilation, ho, wo) -> np.ndarray:
    """The columns (N, Cin*KH*KW, Ho*Wo) of x for a KHxKW conv with Ho x Wo outputs."""
    n, cin = x.shape[0], x.shape[1]
    cols = np.empty((n, cin * kh * kw, ho * wo), np.float32)
    _im2col(x, kh, kw, padding[0], padding[2], stride[0], stride[1], dilation[0], dilation[1],
            ho, wo, cols)
    return cols


# ---------------------------------------------------------------------------------------
# Entry points, for arguments conv.check_conv_args has validated

def im2col_conv2d_into(x, weight, bias, stride, padding, dilation, groups, act, residual,
                       out) -> np.ndarray:
    """The "im2col" variant: columns, then the row kernel (any shape)."""
    cols = im2col(x, weight.shape[2], weight.shape[3], stride, padding, dilation,
                  out.shape[2], out.shape[3])
    return rows_conv2d_into(cols, weight, bias, groups, act, residual, out)


def dot_conv2d_into(x, weight, bias, stride, padding, dilation, groups, act, residual,
                    out) -> np.ndarray:
    """The "dot" variant (groups == 1): a linear layer over the output pixels, on the
    (pixels, K) transpose of the columns (no im2col for an unpadded 1x1)."""
    n, cout, ho, wo = out.shape
    P = ho * wo
    kh, kw = weight.shape[2], weight.shape[3]
    if kh == 1 and kw == 1 and not any(padding):
        cols = subsample_1x1(x, stride)
    else:
        cols = im2col(x, kh, kw, stride, padding, dilation, ho, wo)
    xt = np.ascontiguousarray(cols.transpose(0, 2, 1))
    _dot_kernel(xt, weight.reshape(cout, -1), bias, out.reshape(n, cout, P))
    has_res = residual is not None
    if act or has_res:
        epilogue_rows(out.reshape(n * cout, P),
                      residual.reshape(n * cout, P) if has_res else NO_RES2, has_res,
                      np.int64(act))
    return out
