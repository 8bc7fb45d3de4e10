"""Pointwise (1x1) convolution as rows: out[co, :] = sum_k w[co, k] * x[k, :], every row a
contiguous run of pixels, so the innermost loop vectorizes 16 floats wide.

    x        (N, Cin, H, W)                float32, NCHW
    weight   (Cout, Cin // groups, 1, 1)   float32, PyTorch's layout
    bias     (Cout,)
    residual (N, Cout, Ho, Wo) or None     added AFTER the activation
    out      (N, Cout, Ho, Wo)

A 1x1 conv needs no im2col: the NCHW input already is the (K = Cin, P = H*W) matrix, and
a stride only subsamples it. The same row kernel runs any other conv on im2col columns
(conv_im2col.py); conv.py holds the shapes, cost, reference and the dispatch.
"""
from __future__ import annotations

import numba
import numpy as np

from .common import FASTMATH, NO_RES4, epilogue, w8

# Pixels per tile of the row kernel: 4 output rows x 512 floats = 8 KB of accumulators stay
# in L1, and the K x 512 input tile mostly in L2. Measured best of 64..512 on this machine.
TILE = 512


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _pointwise_rows(x, w, bias, act, res, has_res, out):
    """out[n, g, co, p] = act(bias[g, co] + sum_k w[g, co, k] * x[n, g, k, p]) (+ res[...])

    x (N, G, K, P)   w (G, CoG, K)   bias (G, CoG)   res, out (N, G, CoG, P)

    A 1x1 conv is this with G=1, K=Cin, P=H*W; a general conv is this on im2col columns.
    The innermost loop runs over contiguous pixels, so LLVM vectorizes it 16 floats wide.
    Each pass updates 4 output rows from 8 input rows: 8 loads + 4 loads/stores for 32
    FMAs per vector. (One row at a time would be 2 loads + 1 store per FMA: memory-bound.)
    """
    N, G, K, P = x.shape
    CoG = w.shape[1]
    nmb = (CoG + 3) // 4
    ntl = (P + TILE - 1) // TILE
    for task in numba.prange(N * G * ntl * nmb):
        # decode (n, g, tile, block); blocks innermost: neighbours share the input tile
        mb = task % nmb
        rest = task // nmb
        t = rest % ntl
        rest = rest // ntl
        g = rest % G
        n = rest // G
        p0 = t * TILE
        p1 = min(p0 + TILE, P)
        xs = x[n, g]
        ws = w[g]
        co = mb * 4
        if co + 4 <= CoG:
            _rows4(xs, ws, bias[g], co, p0, p1, out[n, g])
        else:
            for c in range(co, CoG):
                _rows1(xs, ws, bias[g], c, p0, p1, out[n, g])
        if act != 0 or has_res:
            for c in range(co, min(co + 4, CoG)):   # fused epilogue, while the tile is in L1
                epilogue(out[n, g, c, p0:p1], res[n, g, c, p0:p1] if has_res else None, act)


@numba.njit(fastmath=FASTMATH, cache=True)
def _rows4(x, w, bias, co, p0, p1, out):
    """out[co:co+4, p0:p1] = bias + w[co:co+4, :] @ x[:, p0:p1]   (x (K, P), w (CoG, K))"""
    K = x.shape[0]
    # 1-D slices, indexed from 0: LLVM then knows every index is in range and non-negative
    # (with out[c, p] and p from p0 it must allow for Python's negative-index wraparound,
    # and it does not vectorize at all).
    o0 = out[co, p0:p1]
    o1 = out[co + 1, p0:p1]
    o2 = out[co + 2, p0:p1]
    o3 = out[co + 3, p0:p1]
    L = p1 - p0
    b0, b1, b2, b3 = bias[co], bias[co + 1], bias[co + 2], bias[co + 3]
    for p in range(L):
        o0[p] = b0
        o1[p] = b1
        o2[p] = b2
        o3[p] = b3
    for k in range(0, K, 8):
        # 8 input rows; past the end of K (the stem has K = 3*3*3 = 27) repeat the last row
        # with weight 0: one more full pass is cheaper than up to 7 single-row passes
        x0, x1, x2, x3 = _row(x, k, p0, p1), _row(x, k + 1, p0, p1), \
            _row(x, k + 2, p0, p1), _row(x, k + 3, p0, p1)
        x4, x5, x6, x7 = _row(x, k + 4, p0, p1), _row(x, k + 5, p0, p1), \
            _row(x, k + 6, p0, p1), _row(x, k + 7, p0, p1)
        # 32 weights as scalars: LLVM broadcasts each into a vector once per pass
        a0, a1, a2, a3, a4, a5, a6, a7 = w8(w, co, k)
        b0, b1, b2, b3, b4, b5, b6, b7 = w8(w, co + 1, k)
        c0, c1, c2, c3, c4, c5, c6, c7 = w8(w, co + 2, k)
        d0, d1, d2, d3, d4, d5, d6, d7 = w8(w, co + 3, k)
        for p in range(L):
            v0, v1, v2, v3 = x0[p], x1[p], x2[p], x3[p]
            v4, v5, v6, v7 = x4[p], x5[p], x6[p], x7[p]
            o0[p] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4 + a5 * v5 + a6 * v6 + a7 * v7
            o1[p] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3 + b4 * v4 + b5 * v5 + b6 * v6 + b7 * v7
            o2[p] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3 + c4 * v4 + c5 * v5 + c6 * v6 + c7 * v7
            o3[p] += d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3 + d4 * v4 + d5 * v5 + d6 * v6 + d7 * v7


@numba.njit(fastmath=FASTMATH, cache=True)
def _rows1(x, w, bias, c, p0, p1, out):
    """out[c, p0:p1] = bias[c] + w[c, :] @ x[:, p0:p1]: the last CoG % 4 rows."""
    o = out[c, p0:p1]
    bc = bias[c]
    for p in range(p1 - p0):
        o[p] = bc
    for k in range(0, x.shape[0], 8):
        x0, x1, x2, x3 = _row(x, k, p0, p1), _row(x, k + 1, p0, p1), \
            _row(x, k + 2, p0, p1), _row(x, k + 3, p0, p1)
        x4, x5, x6, x7 = _row(x, k + 4, p0, p1), _row(x, k + 5, p0, p1), \
            _row(x, k + 6, p0, p1), _row(x, k + 7, p0, p1)
        a0, a1, a2, a3, a4, a5, a6, a7 = w8(w, c, k)
        for p in range(p1 - p0):
            o[p] += (a0 * x0[p] + a1 * x1[p] + a2 * x2[p] + a3 * x3[p]
                     + a4 * x4[p] + a5 * x5[p] + a6 * x6[p] + a7 * x7[p])


@numba.njit(inline="always", cache=True)
def _row(x, k, p0, p1):
    """x[k, p0:p1], or the last row when k is past the end (it gets weight 0)."""
    return x[min(k, x.shape[0] - 1), p0:p1]


# ---------------------------------------------------------------------------------------
# Entry points, for arguments conv.check_conv_args has validated

def rows_conv2d_into(cols, weight, bias, groups, act, residual, out) -> np.ndarray:
    """out = act(weight @ cols + bias) + residual, one product per group.

    cols (N, groups * K, P)  weight (Cout, K...) with K = Cin/groups * KH * KW
    out, residual (N, Cout, Ho, Wo) with Ho * Wo = P
    """
    n, cout = out.shape[0], out.shape[1]
    P = out.shape[2] * out.shape[3]
    og = cout // groups
    has_res = residual is not None
    res = residual.reshape(n, groups, og, P) if has_res else NO_RES4
    _pointwise_rows(cols.reshape(n, groups, -1, P), weight.reshape(groups, og, -1),
                    bias.reshape(groups, og), np.int64(act), res, has_res,
                    out.reshape(n, groups, og, P))
    return out


def subsample_1x1(x, stride) -> np.ndarray:
    """A 1x1 unpadded conv's input as its (N, Cin, Ho*Wo) matrix: a stride only drops pixels."""
    sh, sw = stride
    if sh > 1 or sw > 1:
        x = np.ascontiguousarray(x[:, :, ::sh, ::sw])
    n, c, h, w = x.shape
    return x.reshape(n, c, h * w)


def pointwise_conv2d_into(x, weight, bias, stride, padding, dilation, groups, act, residual,
                          out) -> np.ndarray:
    """The "pointwise" variant: a 1x1 kernel without padding, any stride and groups."""
    return rows_conv2d_into(subsample_1x1(x, stride), weight, bias, groups, act, residual, out)
