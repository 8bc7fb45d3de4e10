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
from .common import FASTMATH, NO_RES2, NO_RES4, epilogue
from .gemm import KC, NO_RES3, _task, gemm_bias_act, gemm_blocks
from .tiles import MR, NR

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
    """U (16, Cout, Cin) float32: U[4a + b, o, c] = (G g G^T)[a, b] for g = weight[o, c]
    (run once per weight; the engine keeps the result)."""
    cout, cin = weight.shape[0], weight.shape[1]
    u = np.empty((16, cout, cin), np.float32)
    _weight_transform(np.ascontiguousarray(weight, dtype=np.float32), u)
    return u


@numba.njit(cache=True)
def _g_rows(a0, a1, a2):
    """G applied to three values: (a0, (a0 + a1 + a2) / 2, (a0 - a1 + a2) / 2, a2)."""
    return a0, (a0 + a1 + a2) * 0.5, (a0 - a1 + a2) * 0.5, a2


@numba.njit(cache=True)
def _weight_transform(w, u):
    """u[4a + b, o, c] = (G g G^T)[a, b], g = w[o, c], in float64 then rounded once. G's
    entries spelled out (_g_rows), as the transforms below spell out B and A. For a 512 x
    512 weight (measured 2026-12-02, Zen 2): 17 ms; numpy's einsum / tensordot over the
    4 x 3 matrices took 114 / 50 ms, which a direct conv2d call without a cache pays on
    every call."""
    Co, Ci = w.shape[0], w.shape[1]
    for o in range(Co):
        for c in range(Ci):
            g = w[o, c]
            # G g: each column of g through G, giving the four rows of G g
            c0 = _g_rows(np.float64(g[0, 0]), np.float64(g[1, 0]), np.float64(g[2, 0]))
            c1 = _g_rows(np.float64(g[0, 1]), np.float64(g[1, 1]), np.float64(g[2, 1]))
            c2 = _g_rows(np.float64(g[0, 2]), np.float64(g[1, 2]), np.float64(g[2, 2]))
            for a in range(4):
                # (G g) G^T: row a of G g through G
                r = _g_rows(c0[a], c1[a], c2[a])
                for b in range(4):
                    u[4 * a + b, o, c] = r[b]


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


@numba.njit(inline="always", fastmath=FASTMATH, cache=True)
def _input_rows(xc, pt, pl, i0, i1, tw, ev, od, re, ro, v, c, t0):
    """v[4p + q, c, t0 + (i - i0)*tw + j] = (B^T d B)[p, q] for the tile rows i0 <= i < i1 of
    the channel plane xc (H, W): the 4x4 tile d of the zero-padded plane whose corner is at
    row 2i - pt, column 2j - pl.

    The plane's rows 2*i0 .. 2*i1 + 1, padded, are first split into their even and their odd
    columns (ev, od): a tile's columns 2j, 2j+1, 2j+2, 2j+3 are then ev[j], od[j],
    ev[j+1], od[j+1], contiguous runs over j. Per row of tiles, B^T combines the four
    plane rows (both halves alike), then B the columns, into 16 rows of v."""
    _split_plane(xc, pt - 2 * i0, pl, ev, od, 2 * (i1 - i0) + 2)
    for i in range(i1 - i0):
        r = 2 * i
        _bt(re[0], re[1], re[2], re[3], ev[r], ev[r + 1], ev[r + 2], ev[r + 3])
        _bt(ro[0], ro[1], ro[2], ro[3], od[r], od[r + 1], od[r + 2], od[r + 3])
        t = t0 + i * tw
        for p in range(4):
            # columns 2j .. 2j+3 of row p: e[j], o[j], e[j+1], o[j+1]
            e, o, e1, o1 = re[p, :tw], ro[p, :tw], re[p, 1:], ro[p, 1:]
            _bt(v[4 * p, c, t:t + tw], v[4 * p + 1, c, t:t + tw],
                v[4 * p + 2, c, t:t + tw], v[4 * p + 3, c, t:t + tw], e, o, e1, o1)


@numba.njit(inline="always", cache=True)
def _split_plane(xc, pt, pl, ev, od, rows):
    """ev[r, j], od[r, j] = xpad[r, 2j], xpad[r, 2j + 1] for r < rows: the plane xc (H, W)
    padded with pt rows on top (negative: starting -pt rows in), pl columns on the left and
    zeros past its end, split by column parity."""
    H, W = xc.shape
    half = ev.shape[1]
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


@numba.njit(inline="always", fastmath=FASTMATH, cache=True)
def _output_rows(m, o, t0, i0, i1, tw, b, act, res, has_res, out, r, ye, yo, row):
    """out[2i + a, 2j + b'] = act((A^T M A)[a, b'] + b) (+ res) for the tile rows i0 <= i < i1,
    M the 4x4 of m[:, o, t0 + (i - i0)*tw + j].   out, res (Ho, Wo): one output plane

    Per row of tiles: A^T combines M's rows (0 + 1 + 2 and 1 - 2 - 3), then A the columns,
    into the even and the odd pixels of two output rows; those are interleaved into a row
    buffer, cut to Wo and given the activation and the residual."""
    Ho, Wo = out.shape
    for i in range(i1 - i0):
        t = t0 + i * tw
        for q in range(4):
            m0, m1 = m[q, o, t:t + tw], m[4 + q, o, t:t + tw]
            m2, m3 = m[8 + q, o, t:t + tw], m[12 + q, o, t:t + tw]
            _comb(r[0, q], m0, 1.0, m1, 1.0, m2, 1.0, 0.0)
            _comb(r[1, q], m1, 1.0, m2, -1.0, m3, -1.0, 0.0)
        for a in range(2):
            y = 2 * (i0 + i) + a
            if y >= Ho:
                continue
            _comb(ye, r[a, 0], 1.0, r[a, 1], 1.0, r[a, 2], 1.0, b)
            _comb(yo, r[a, 1], 1.0, r[a, 2], -1.0, r[a, 3], -1.0, b)
            for j in range(tw):
                row[2 * j] = ye[j]
                row[2 * j + 1] = yo[j]
            dst = out[y]
            for j in range(Wo):      # a loop: see gemm._edge_tile on compile time
                dst[j] = row[j]
            epilogue(dst, res[y] if has_res else None, act)


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _input_transform(x, pt, pl, th, tw, v, nchunks):
    """v[:, c, n*th*tw + t] for every image n and channel c (_input_rows, all tile rows):
    one task per (image, channel).   x (N, C, H, W), v (16, C, N*th*tw)"""
    N, C, H, W = x.shape
    ntasks = N * C
    nchunks = min(nchunks, ntasks)
    for chunk in numba.prange(nchunks):
        ev = np.empty((2 * th + 2, tw + 1), np.float32)
        od = np.empty((2 * th + 2, tw + 1), np.float32)
        re = np.empty((4, tw + 1), np.float32)     # rows of B^T d, even columns
        ro = np.empty((4, tw + 1), np.float32)     # and odd columns
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            n = task // C
            c = task % C
            _input_rows(x[n, c], pt, pl, 0, th, tw, ev, od, re, ro, v, c, n * th * tw)


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _output_transform(m, bias, th, tw, act, res, has_res, out, nchunks):
    """out[n, o] from m[:, o, n*th*tw:(n+1)*th*tw] for every image n and output channel o
    (_output_rows, all tile rows): one task per (image, channel).   m (16, Cout, N*th*tw)"""
    N, Co, Ho, Wo = out.shape
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
            _output_rows(m, o, n * th * tw, 0, th, tw, bias[o], act, res[n if has_res else 0, o],
                         has_res, out[n, o], r, ye, yo, row)


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _fused(x, u, bias, pt, pl, th, tw, rpb, act, res, has_res, out, nchunks):
    """The three steps per block of ``rpb`` tile rows of one image, in buffers of the
    thread's own that stay in cache: input transform of every channel, the 16 products
    (gemm._task), output transform of every output channel. One task per (image, block)."""
    N, C, H, W = x.shape
    Co = u.shape[1]
    nblocks = -(-th // rpb)
    ntasks = N * nblocks
    nchunks = min(nchunks, ntasks)
    tb = rpb * tw
    for chunk in numba.prange(nchunks):
        v = np.empty((16, C, tb), np.float32)
        m = np.empty((16, Co, tb), np.float32)
        ev = np.empty((2 * rpb + 2, tw + 1), np.float32)
        od = np.empty((2 * rpb + 2, tw + 1), np.float32)
        re = np.empty((4, tw + 1), np.float32)
        ro = np.empty((4, tw + 1), np.float32)
        xp = np.empty((-(-tb // NR), min(KC, C), NR), np.float32)
        edge = np.empty((MR, NR), np.float32)
        zero = np.zeros(Co, np.float32)
        r = np.empty((2, 4, tw), np.float32)
        ye = np.empty(tw, np.float32)
        yo = np.empty(tw, np.float32)
        row = np.empty(2 * tw, np.float32)
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            n = task // nblocks
            i0 = (task % nblocks) * rpb
            i1 = min(i0 + rpb, th)
            for c in range(C):
                _input_rows(x[n, c], pt, pl, i0, i1, tw, ev, od, re, ro, v, c, 0)
            for s in range(16):
                _task(v[s], u[s], zero, NONE, NO_RES2, False, m[s], xp, edge, 0,
                      (i1 - i0) * tw, 0, Co)
            for o in range(Co):
                _output_rows(m, o, 0, i0, i1, tw, bias[o], act, res[n if has_res else 0, o],
                             has_res, out[n, o], r, ye, yo, row)


# ---------------------------------------------------------------------------------------
# Entry point, for arguments conv.check_conv_args has validated

def winograd_supports(cin, kh, kw, padding, groups, stride, dilation) -> bool:
    """The convs F(2x2, 3x3) computes: 3x3, stride 1, no dilation, no groups."""
    return kh == kw == 3 and groups == 1 and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)


# The fused path's block: the thread's transformed input and products for rpb rows of tiles,
# 16 * (Cin + Cout) * rpb * tw floats, at most BLOCK_BYTES (L2 is 512 KB - 2 MB per core on
# the machines measured, L3 16-32 MB shared). Blocks of fewer than MIN_BLOCK_TILES tiles
# re-read all of U (16 * Cin * Cout floats) too often, so such layers (many channels on
# small maps) run unfused, as do layers with fewer than MIN_TASKS_PER_THREAD blocks per
# thread (the unfused steps split every step over both cores). Measured 2026-12-02 on the
# AMD EPYC Zen 2, 2 threads, ms unfused / fused with 1, 2, 4 MB blocks:
#   64->64 @224 39.4 / 29.4 28.8 30.0;  128->128 @112 30.3 / (unfused) 18.6 19.2;
#   batch 8: 64->64 @56 24.4 / 16.0 16.1 16.3;  128->128 @28 16.5 / (unfused) 12.1 12.3;
#   even: 256->256 @56 19.6 / 18.9 (4 MB);  64->64 @56 batch 1: 1.9 unfused, 2.2-2.5 in
#   4 blocks (hence the minimum of blocks per thread).
BLOCK_BYTES = 2 << 20
MIN_BLOCK_TILES = 64
MIN_TASKS_PER_THREAD = 4


def tile_grid(ho: int, wo: int) -> tuple[int, int]:
    """(tile rows, tile columns): the 2x2 output tiles covering an ho x wo output."""
    return -(-ho // 2), -(-wo // 2)


def fused_rows(n: int, cin: int, cout: int, th: int, tw: int, threads: int) -> int:
    """Tile rows per block of the fused path (blocks of equal size), or 0 to run unfused."""
    most = max(1, BLOCK_BYTES // (16 * (cin + cout) * tw * 4))
    blocks = -(-th // most)
    rpb = -(-th // blocks)
    if rpb * tw < MIN_BLOCK_TILES or n * blocks < MIN_TASKS_PER_THREAD * threads:
        return 0
    return rpb


def winograd_conv2d_into(x, weight, bias, stride, padding, dilation, groups, act, residual,
                         out, u) -> np.ndarray:
    """The "winograd" variant (winograd_supports): input transform, 16 products on
    gemm.py's kernel, output transform with bias, activation and residual; fused per block
    of tile rows where fused_rows says so, else each step over the whole batch.
    u = weight_transform(weight) (conv.conv2d keeps it per weight in an engine node)."""
    n, cout, ho, wo = out.shape
    cin = x.shape[1]
    th, tw = tile_grid(ho, wo)
    threads = numba.get_num_threads()
    has_res = residual is not None
    res = residual if has_res else NO_RES4
    rpb = fused_rows(n, cin, cout, th, tw, threads)
    if rpb:
        _fused(x, u, bias, padding[0], padding[2], th, tw, rpb, np.int64(act), res, has_res,
               out, threads)
        return out
    v = np.empty((16, cin, n * th * tw), np.float32)
    _input_transform(x, padding[0], padding[2], th, tw, v, threads)
    m = np.empty((16, cout, n * th * tw), np.float32)
    nc, mc = gemm_blocks(16, cout, n * th * tw, threads)
    gemm_bias_act(v, u, np.zeros(cout, np.float32), np.int64(NONE), NO_RES3, False, m, nc,
                  mc, threads, False)
    _output_transform(m, bias, th, tw, np.int64(act), res, has_res, out, threads)
    return out
