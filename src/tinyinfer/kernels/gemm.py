"""A register-blocked matrix product for 1x1 convs and im2col columns: out = act(W @ X + b) + r.

    x        (N, K, P)      float32: an NCHW input viewed as (Cin, H*W), or im2col columns
    w        (S, M, K)      float32: the conv weight as (1, Cout, Cin*KH*KW), as stored; or
                            one weight per image n (S = N: conv_winograd.py's 16 products)
    bias     (M,)
    res, out (N, M, P)      the residual (added after the activation) and the result

How it is fast (BLIS's structure, cut down; measured facts in kernel-speed-facts.md):

* The micro-kernel (tiles.py, shared with linear.py and attention.py) computes one
  MR x NR tile of ``out`` (4 x 64 on AVX-512, 5 x 16 on AVX2: output channels x pixels)
  over a block of KC
  reduction steps, its accumulators in registers; tiles.py says why and how.
* X is copied ("packed") block by block into a buffer laid out [pixel panel, k, NR]: each
  step of the micro-kernel then reads NR contiguous floats, the panel (KC x NR floats =
  16 KB on AVX2, 64 KB on AVX-512) stays in L1/L2 while every row block of W passes over
  it, and pixels past P are
  zeros, so the micro-kernel has no edge case. The weights need no packing: a tile reads
  MR rows of W, each contiguous in k.
* Bias is the accumulators' starting value; the activation and the residual are applied
  once a task's block is finished (still in L2), row by row over its pixels, and only the
  valid columns are ever written.

Where it runs (engine/conv_variant.gemm_wins has the numbers and the rule): every conv
without groups whose columns are at least 24 (AVX-512) or 64 (AVX2) long, from 32 (AVX-512)
or 16 (AVX2) output pixels up, whatever the map size; and conv_winograd.py's 16 products.
Elsewhere the rows kernel (conv_pointwise.py) or the dot kernel wins: with few input
channels its tiles are short in k.
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import NONE
from .common import FASTMATH, epilogue
from .conv_im2col import im2col
from .conv_pointwise import subsample_1x1
from .tiles import MR, NR, ZERO, _micro_tile

# the "no residual" stand-in for the (N, M, P) residual (see common.NO_RES4)
NO_RES3 = np.zeros((1, 1, 1), np.float32)

# reduction steps per block: the packed X panel is KC x NR x 4 B = 16 or 64 KB
# (with NR = 64, KC = 128 and 512 measured the same as 256)
KC = 256


@numba.njit(inline="always", cache=True)
def _edge_tile(w, m0, k0, kc, xp, bias, first, out, p0, np_, edge):
    """_micro_tile for a tile that sticks out of out in pixels (fewer than NR left): computed
    in the (MR, NR) scratch block ``edge``, its valid part copied back.

    The copies are element loops, not ``edge[i, :n] = out[...]``: a slice-to-slice
    assignment compiles Numba's shape-mismatch error path (a formatted message with the
    shapes, ~2 s on a cold cache, once per process), the loops compile to the same copy."""
    mr = min(MR, out.shape[0] - m0)
    if not first:
        for i in range(mr):
            for j in range(np_):
                edge[i, j] = out[m0 + i, p0 + j]
    _micro_tile(w, m0, k0, kc, xp, bias, first, edge, ZERO, ZERO, mr)
    for i in range(mr):
        for j in range(np_):
            out[m0 + i, p0 + j] = edge[i, j]


@numba.njit(inline="always", cache=True)
def _epilogue(out, m_lo, m_hi, p_lo, p_hi, act, res, has_res):
    """common.epilogue (activation and residual add) on a task's finished block (still in
    L2). Row by row over the task's pixels, not tile by tile: act_inplace is a call, and on
    16-pixel tile rows its ~10 ns per call cost as much as the product when K is small
    (24->144 @56x56 with ReLU: 0.30 ms without the activation, 0.61 with it per tile)."""
    for m in range(m_lo, m_hi):
        epilogue(out[m, p_lo:p_hi], res[m, p_lo:p_hi] if has_res else None, act)


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def gemm_bias_act(x, w, bias, act, res, has_res, out, nc, mc, nchunks):
    """out[n] = act(w[n % S] @ x[n] + bias[:, None]) (+ res[n]) for every n; shapes in the
    module docstring. The work is split into tasks of nc pixels (a multiple of NR) x mc output
    channels (a multiple of MR), and the tasks into ``nchunks`` runs of consecutive tasks,
    one per thread, so that each thread allocates its packing buffer once (a fresh 256 KB
    buffer per task cost more than the product on small layers: page faults)."""
    N, K, P = x.shape
    S, M = w.shape[0], w.shape[1]
    n_pblocks = (P + nc - 1) // nc
    n_mblocks = (M + mc - 1) // mc
    ntasks = N * n_pblocks * n_mblocks
    nchunks = min(nchunks, ntasks)
    for chunk in numba.prange(nchunks):
        xp = np.empty((nc // NR, min(KC, K), NR), np.float32)   # packed X panels
        edge = np.empty((MR, NR), np.float32)
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            # output-channel block outermost: when gemm_blocks splits W's rows, it splits
            # them into one slice per thread, and each thread's run of tasks is one slice
            mb = task // (N * n_pblocks)
            n = (task // n_pblocks) % N
            pb = task % n_pblocks
            _task(x[n], w[n % S], bias, act, res[n if has_res else 0], has_res, out[n], xp,
                  edge, pb * nc, min(pb * nc + nc, P), mb * mc, min(mb * mc + mc, M))


@numba.njit(fastmath=FASTMATH, cache=True)
def _task(x, w, bias, act, res, has_res, out, xp, edge, p_lo, p_hi, m_lo, m_hi):
    """out[m_lo:m_hi, p_lo:p_hi] for one image: x (K, P), res and out (M, P)."""
    K = x.shape[0]
    M = w.shape[0]
    for k0 in range(0, K, KC):
        kc = min(KC, K - k0)
        first = k0 == 0
        _pack(x, k0, kc, p_lo, p_hi, xp)
        for jb in range((p_hi - p_lo + NR - 1) // NR):
            p0 = p_lo + jb * NR
            np_ = min(NR, p_hi - p0)
            for m0 in range(m_lo, m_hi, MR):
                if np_ == NR:
                    _micro_tile(w, m0, k0, kc, xp[jb], bias, first, out, m0, p0,
                                min(MR, M - m0))
                else:
                    _edge_tile(w, m0, k0, kc, xp[jb], bias, first, out, p0, np_, edge)
    if act != NONE or has_res:
        _epilogue(out, m_lo, min(m_hi, M), p_lo, p_hi, act, res, has_res)


@numba.njit(inline="always", cache=True)
def _pack(x, k0, kc, p_lo, p_hi, xp):
    """xp[jb, k, j] = x[k0 + k, p_lo + jb*NR + j], zeros past p_hi.   x (K, P)

    Row by row of x: each row's run of the task's pixels is read once, front to back,
    and dealt out to the panels. Panel by panel, as first written, each panel read 16
    floats from each of K rows far apart (a 3x3 conv's im2col columns: 576 rows 12 KB
    apart), a fresh cache line and page per read, which no prefetcher follows. Measured
    2026-12-02 on the AMD EPYC Zen 2, 2 threads, same process, GFLOP/s panel-wise /
    row-wise, in the processes where memory was slow (this host has fast and slow ones,
    up to 2x apart): K576 M64 P3136 76 / 108 (another run 64 / 80), K128 M256 P8100 69 /
    89 (60 / 69), K288 M96 P1024 73 / 96; in a fast process all within +-5% (K576 M64
    P3136 127 / 123, K128 M256 P8100 129 / 142); small maps even (K4608 M512 P49 92 / 92).
    """
    n = p_hi - p_lo
    for k in range(kc):
        src = x[k0 + k, p_lo:p_hi]
        for jb in range((n + NR - 1) // NR):
            dst = xp[jb, k]
            base = jb * NR
            n_valid = min(NR, n - base)
            for j in range(n_valid):
                dst[j] = src[base + j]
            for j in range(n_valid, NR):
                dst[j] = 0.0


# ---------------------------------------------------------------------------------------
# Entry point, for arguments conv.check_conv_args has validated

PANELS_PER_TASK = 256 // NR   # NR-pixel panels per task at most: 256 pixels, as on AVX2 before


def gemm_blocks(n: int, m: int, p: int, threads: int) -> tuple:
    """(nc, mc): pixels and output channels per task. Large maps split by pixels only
    (each task packs its X once and sweeps all of W), in tasks of whole panels, small
    enough that each thread gets at least two (784 pixels as 4 + 4 + 4 + 1 panels left one
    thread with 8 of 13). Small maps (fewer than 4 tasks per thread) split W's rows into
    one slice per thread instead, so both threads do the same work."""
    panels = -(-p // NR)
    per = max(1, min(PANELS_PER_TASK, n * panels // (2 * threads)))
    nc = per * NR
    tasks = n * -(-panels // per)
    mc = -(-m // MR) * MR
    if tasks < 4 * threads and threads > 1:
        per_thread = -(-m // threads)
        mc = max(MR, -(-per_thread // MR) * MR)
    return nc, mc


def gemm_conv2d_into(x, weight, bias, stride, padding, dilation, groups, act, residual,
                     out) -> np.ndarray:
    """The "gemm" variant (groups == 1): the conv's (Cin*KH*KW, Ho*Wo) columns (the input
    itself for an unpadded 1x1), then the register-blocked product with the fused epilogue."""
    n, cout, ho, wo = out.shape
    kh, kw = weight.shape[2], weight.shape[3]
    if kh == 1 and kw == 1 and not any(padding):
        cols = subsample_1x1(x, stride)
    else:
        cols = im2col(x, kh, kw, stride, padding, dilation, ho, wo)
    threads = numba.get_num_threads()
    nc, mc = gemm_blocks(n, cout, ho * wo, threads)
    has_res = residual is not None
    res = residual.reshape(n, cout, ho * wo) if has_res else NO_RES3
    gemm_bias_act(cols, weight.reshape(1, cout, -1), bias, np.int64(act), res, has_res,
                  out.reshape(n, cout, ho * wo), nc, mc, threads)
    return out
