"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 convolution (stride 1, groups 1) with
16 multiplies per 2x2 output pixels and input channel instead of 36.

    x        (N, Cin, H, W)        float32, NCHW
    weight   (Cout, Cin, 3, 3)     float32, PyTorch's layout
    bias     (Cout,)
    residual (N, Cout, Ho, Wo)     added after the activation (or NO_RES4)
    out      (N, Cout, Ho, Wo)

The idea (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016), in one
dimension first: two outputs of a 3-tap filter g over four inputs d,

    y0 = d0 g0 + d1 g1 + d2 g2        (6 multiplies done directly)
    y1 = d1 g0 + d2 g1 + d3 g2

are y0 = m1 + m2 + m3 and y1 = m2 - m3 - m4 with only 4 multiplies

    m1 = (d0 - d2) g0      m2 = (d1 + d2) (g0 + g1 + g2) / 2
    m4 = (d1 - d3) g2      m3 = (d2 - d1) (g0 - g1 + g2) / 2

where the filter's combinations are computed once per weight. In matrix form
y = A^T [(G g) * (B^T d)], and nested in two dimensions, for a 4x4 input tile d and a 2x2
output tile Y:

    U = G g G^T        (4x4, once per filter: weight_transform)
    V = B^T d B        (4x4, per input tile and channel: _input_transform)
    Y = A^T M A        M = sum over input channels of U * V  (elementwise)

The sum over channels is 16 matrix products, one per position s of the 4x4 tile:

    M[s] (Cout, T) = U[s] (Cout, Cin) @ V[s] (Cin, T)      T = N * tiles per image

and those run on gemm.py's register-blocked product (the 16 positions as its batch). The
multiplies: 16 * Cout * Cin * T against 9 * Cout * Cin * 4T directly: 2.25x fewer on maps
of even size (``winograd_macs``). The transforms are additions only (B and A hold 0 and
+-1; G's halves are folded into U once), and read and write each tensor once: 4 floats
per input pixel and channel for V (im2col writes 9), 4 per output pixel for M.

The price is accuracy: products of transformed values, then sums of those, round
differently from the direct sum; with these small transforms the error stays within a few
ulps of the direct conv's (the tests' tolerance, conv_ref.tol, is the same for every
variant). Larger tiles (F(4x4, 3x3): 36 positions for 4x4 outputs, 4x fewer multiplies)
have transforms with entries up to 8 and lose digits: not used here.
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import NONE
from .common import FASTMATH, NO_RES4, epilogue
from .gemm import NO_RES3, gemm_bias_act, gemm_blocks

# G, B^T and A^T of F(2x2, 3x3), as in Lavin & Gray's paper (the kernels below spell the
# products out; these are for weight_transform and the NumPy reference in the tests).
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
BT = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0],
               [0.0, 1.0, 0.0, -1.0]])
AT = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])


def winograd_macs(n: int, cin: int, cout: int, ho: int, wo: int) -> int:
    """Multiply-adds of the 16 products: 16 per (2x2 output tile, input channel, output
    channel); odd maps pay for a whole tile at the edge."""
    tiles = -(-ho // 2) * -(-wo // 2)
    return 16 * n * tiles * cin * cout


def weight_transform(weight: np.ndarray) -> np.ndarray:
    """U (16, Cout, Cin) float32: U[4a + b, o, c] = (G g G^T)[a, b] for g = weight[o, c],
    computed in float64 (it runs once per weight; the engine keeps the result)."""
    u = np.einsum("ai,ocij,bj->aboc", G, weight.astype(np.float64), G, optimize=True)
    return np.ascontiguousarray(u.reshape(16, weight.shape[0], weight.shape[1]),
                                dtype=np.float32)


@numba.njit(inline="always", fastmath=FASTMATH, cache=True)
def _comb(o, a, sa, b, sb, c, sc, add):
    """o[j] = sa a[j] + sb b[j] + sc c[j] + add, over o's length.

    The transforms are written as loops of this one shape, each over one row of tiles,
    and not as one loop that reads 8 rows and writes 16: LLVM vectorizes a loop only if
    it can check at run time that its outputs overlap none of its inputs, and gives up on
    the 128 checks of 8 x 16 rows (the single loop, as first written, ran scalar at
    2 GB/s). The signs are constants where this is inlined: the products fold away."""
    for j in range(o.shape[0]):
        o[j] = sa * a[j] + sb * b[j] + sc * c[j] + add


@numba.njit(inline="always", fastmath=FASTMATH, cache=True)
def _bt(o0, o1, o2, o3, d0, d1, d2, d3):
    """The rows of B^T d for the four rows d0..d3 of a tile (B^T's rows: d0 - d2, d1 + d2,
    d2 - d1, d1 - d3)."""
    _comb(o0, d0, 1.0, d2, -1.0, d2, 0.0, 0.0)
    _comb(o1, d1, 1.0, d2, 1.0, d2, 0.0, 0.0)
    _comb(o2, d2, 1.0, d1, -1.0, d1, 0.0, 0.0)
    _comb(o3, d1, 1.0, d3, -1.0, d3, 0.0, 0.0)


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _input_transform(x, pt, pl, th, tw, v, nchunks):
    """v[4p + q, c, n*th*tw + i*tw + j] = (B^T d B)[p, q] for the 4x4 tile d of the zero-
    padded input whose corner is at row 2i - pt, column 2j - pl.   x (N, C, H, W)

    Each task copies a channel's plane, padded, into planes of its even and of its odd
    columns: a tile's columns 2j, 2j+1, 2j+2, 2j+3 are then even[j], odd[j], even[j+1],
    odd[j+1], contiguous runs over j. Per row of tiles, B^T combines the four plane rows
    (the even and the odd halves alike), then B the columns, into 16 rows of v.
    """
    N, C, H, W = x.shape
    T = th * tw
    rows = 2 * th + 2
    ntasks = N * C
    nchunks = min(nchunks, ntasks)
    for chunk in numba.prange(nchunks):
        ev = np.empty((rows, tw + 1), np.float32)
        od = np.empty((rows, tw + 1), np.float32)
        re = np.empty((4, tw + 1), np.float32)     # rows of B^T d, even columns
        ro = np.empty((4, tw + 1), np.float32)     # and odd columns
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            n = task // C
            c = task % C
            _split_plane(x[n, c], pt, pl, ev, od)
            for i in range(th):
                r = 2 * i
                _bt(re[0], re[1], re[2], re[3], ev[r], ev[r + 1], ev[r + 2], ev[r + 3])
                _bt(ro[0], ro[1], ro[2], ro[3], od[r], od[r + 1], od[r + 2], od[r + 3])
                t0 = n * T + i * tw
                for p in range(4):
                    # columns 2j .. 2j+3 of row p: e[j], o[j], e[j+1], o[j+1]
                    e, o, e1, o1 = re[p, :tw], ro[p, :tw], re[p, 1:], ro[p, 1:]
                    _bt(v[4 * p, c, t0:t0 + tw], v[4 * p + 1, c, t0:t0 + tw],
                        v[4 * p + 2, c, t0:t0 + tw], v[4 * p + 3, c, t0:t0 + tw],
                        e, o, e1, o1)


@numba.njit(inline="always", cache=True)
def _split_plane(xc, pt, pl, ev, od):
    """ev[r, j], od[r, j] = xpad[r, 2j], xpad[r, 2j + 1]: the plane xc (H, W) padded with
    pt rows on top, pl columns on the left and zeros up to ev's size, split by column parity."""
    H, W = xc.shape
    rows, half = ev.shape
    for r in range(rows):
        y = r - pt
        e = ev[r]
        o = od[r]
        if y < 0 or y >= H:
            e[:] = 0.0
            o[:] = 0.0
            continue
        src = xc[y]
        for j in range(half):
            xe = 2 * j - pl
            e[j] = src[xe] if 0 <= xe < W else np.float32(0.0)
            o[j] = src[xe + 1] if 0 <= xe + 1 < W else np.float32(0.0)


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _output_transform(m, bias, th, tw, act, res, has_res, out, nchunks):
    """out[n, o, 2i + a, 2j + b] = act((A^T M A)[a, b] + bias[o]) (+ res), M the 4x4 of
    m[:, o, n*th*tw + i*tw + j].   m (16, Cout, N*T), out (N, Cout, Ho, Wo)

    Per row of tiles: A^T combines M's rows (0 + 1 + 2 and 1 - 2 - 3), then A the
    columns, into the even and the odd pixels of two output rows; those are interleaved
    into a row buffer, cut to Wo and given the activation and the residual."""
    N, Co, Ho, Wo = out.shape
    T = th * tw
    ntasks = N * Co
    nchunks = min(nchunks, ntasks)
    for chunk in numba.prange(nchunks):
        r = np.empty((2, 4, tw), np.float32)       # A^T M, per column of M
        ye = np.empty(tw, np.float32)
        yo = np.empty(tw, np.float32)
        row = np.empty(2 * tw, np.float32)
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            n = task // Co
            o = task % Co
            b = bias[o]
            for i in range(th):
                t0 = n * T + i * tw
                for q in range(4):
                    m0, m1 = m[q, o, t0:t0 + tw], m[4 + q, o, t0:t0 + tw]
                    m2, m3 = m[8 + q, o, t0:t0 + tw], m[12 + q, o, t0:t0 + tw]
                    _comb(r[0, q], m0, 1.0, m1, 1.0, m2, 1.0, 0.0)
                    _comb(r[1, q], m1, 1.0, m2, -1.0, m3, -1.0, 0.0)
                for a in range(2):
                    if 2 * i + a >= Ho:
                        continue
                    _comb(ye, r[a, 0], 1.0, r[a, 1], 1.0, r[a, 2], 1.0, b)
                    _comb(yo, r[a, 1], 1.0, r[a, 2], -1.0, r[a, 3], -1.0, b)
                    for j in range(tw):
                        row[2 * j] = ye[j]
                        row[2 * j + 1] = yo[j]
                    dst = out[n, o, 2 * i + a]
                    dst[:] = row[:Wo]
                    epilogue(dst, res[n, o, 2 * i + a] if has_res else None, act)


# ---------------------------------------------------------------------------------------
# Entry point, for arguments conv.check_conv_args has validated

def winograd_supports(cin, kh, kw, padding, groups, stride, dilation) -> bool:
    """The convs F(2x2, 3x3) computes: 3x3, stride 1, no dilation, no groups."""
    return kh == kw == 3 and groups == 1 and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)


def winograd_conv2d_into(x, weight, bias, stride, padding, dilation, groups, act, residual,
                         out, u) -> np.ndarray:
    """The "winograd" variant (winograd_supports): input transform, 16 products on
    gemm.py's kernel, output transform with bias, activation and residual.
    u = weight_transform(weight) (conv.conv2d keeps it per weight in an engine node)."""
    n, cout, ho, wo = out.shape
    cin = x.shape[1]
    th, tw = -(-ho // 2), -(-wo // 2)
    threads = numba.get_num_threads()
    v = np.empty((16, cin, n * th * tw), np.float32)
    _input_transform(x, padding[0], padding[2], th, tw, v, threads)
    m = np.empty((16, cout, n * th * tw), np.float32)
    nc, mc = gemm_blocks(16, cout, n * th * tw, threads)
    gemm_bias_act(v, u, np.zeros(cout, np.float32), np.int64(NONE), NO_RES3, False, m, nc,
                  mc, threads)
    has_res = residual is not None
    _output_transform(m, bias, th, tw, np.int64(act), residual if has_res else NO_RES4, has_res,
                      out, threads)
    return out
