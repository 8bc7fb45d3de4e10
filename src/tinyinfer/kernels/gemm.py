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
or 16 (AVX2) output pixels up, whatever the map size (conv_gemm.py's entry; its implicit
path packs its own panels and shares ``_sweep``); and conv_winograd.py's 16 products.
Elsewhere the rows kernel (conv_pointwise.py) or the dot kernel wins: with few input
channels its tiles are short in k.
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import NONE
from .common import FASTMATH, epilogue
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
def gemm_bias_act(x, w, bias, act, res, has_res, out, nc, mc, nchunks, fold):
    """out[n] = act(w[n % S] @ x[n] + bias[:, None]) (+ res[n]) for every n; shapes in the
    module docstring. The work is split into tasks of nc pixels (a multiple of NR) x mc output
    channels (a multiple of MR), and the tasks into ``nchunks`` runs of consecutive tasks,
    one per thread, so that each thread allocates its packing buffer once (a fresh 256 KB
    buffer per task cost more than the product on small layers: page faults).

    fold (S = 1 only): the images' pixels as one row of N*P, so panels run on across
    image boundaries (_task_folded). A 7x7 map is 49 pixels: per image, 4 panels of 16
    with 15 columns of the last computed for nothing (31% more work); folded, 8 images
    are 392 pixels in 25 panels."""
    N, K, P = x.shape
    S, M = w.shape[0], w.shape[1]
    n_pblocks = ((N * P if fold else P) + nc - 1) // nc
    n_mblocks = (M + mc - 1) // mc
    n_img = 1 if fold else N
    ntasks = n_img * n_pblocks * n_mblocks
    nchunks = min(nchunks, ntasks)
    for chunk in numba.prange(nchunks):
        xp = np.empty((nc // NR, min(KC, K), NR), np.float32)   # packed X panels
        edge = np.empty((MR, NR), np.float32)
        run = np.empty(nc if fold else 0, np.float32)
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            # output-channel block outermost: when gemm_blocks splits W's rows, it splits
            # them into one slice per thread, and each thread's run of tasks is one slice
            mb = task // (n_img * n_pblocks)
            n = (task // n_pblocks) % n_img
            pb = task % n_pblocks
            if fold:
                _task_folded(x, w[0], bias, act, res, has_res, out, xp, run, edge, pb * nc,
                             min(pb * nc + nc, N * P), mb * mc, min(mb * mc + mc, M))
            else:
                _task(x[n], w[n % S], bias, act, res[n if has_res else 0], has_res, out[n],
                      xp, edge, pb * nc, min(pb * nc + nc, P), mb * mc, min(mb * mc + mc, M))


@numba.njit(fastmath=FASTMATH, cache=True)
def _task(x, w, bias, act, res, has_res, out, xp, edge, p_lo, p_hi, m_lo, m_hi):
    """out[m_lo:m_hi, p_lo:p_hi] for one image: x (K, P), res and out (M, P)."""
    K = x.shape[0]
    for k0 in range(0, K, KC):
        kc = min(KC, K - k0)
        _pack(x, k0, kc, p_lo, p_hi, xp)
        _sweep(w, k0, kc, xp, bias, out, edge, p_lo, p_hi, m_lo, m_hi)
    if act != NONE or has_res:
        _epilogue(out, m_lo, min(m_hi, w.shape[0]), p_lo, p_hi, act, res, has_res)


@numba.njit(inline="always", cache=True)
def _sweep(w, k0, kc, xp, bias, out, edge, p_lo, p_hi, m_lo, m_hi):
    """Reduction steps k0 .. k0+kc of out[m_lo:m_hi, p_lo:p_hi] (out (M, P), one image):
    every row block of W over the packed panels xp (the bias is the start when k0 == 0)."""
    M = w.shape[0]
    first = k0 == 0
    for jb in range((p_hi - p_lo + NR - 1) // NR):
        p0 = p_lo + jb * NR
        np_ = min(NR, p_hi - p0)
        for m0 in range(m_lo, m_hi, MR):
            if np_ == NR:
                _micro_tile(w, m0, k0, kc, xp[jb], bias, first, out, m0, p0,
                            min(MR, M - m0))
            else:
                _edge_tile(w, m0, k0, kc, xp[jb], bias, first, out, p0, np_, edge)


@numba.njit(fastmath=FASTMATH, cache=True)
def _task_folded(x, w, bias, act, res, has_res, out, xp, run, edge, g_lo, g_hi, m_lo, m_hi):
    """_task over the folded pixels g = n*P + p in [g_lo, g_hi) of all images: x (N, K, P),
    res and out (N, M, P). Panels inside one image run as in _task; a panel across an
    image boundary goes through the scratch block ``edge`` (_folded_tile)."""
    N, K, P = x.shape
    M = w.shape[0]
    for k0 in range(0, K, KC):
        kc = min(KC, K - k0)
        first = k0 == 0
        for k in range(kc):      # gather the task's run of row k0 + k, then deal it out
            q = 0
            for n in range(g_lo // P, (g_hi - 1) // P + 1):
                pa = max(g_lo - n * P, 0)
                pb = min(g_hi - n * P, P)
                src = x[n, k0 + k, pa:pb]
                dst = run[q:q + pb - pa]
                for j in range(pb - pa):
                    dst[j] = src[j]
                q += pb - pa
            _deal(run[:g_hi - g_lo], xp, k)
        for jb in range((g_hi - g_lo + NR - 1) // NR):
            g0 = g_lo + jb * NR
            np_ = min(NR, g_hi - g0)
            n0 = g0 // P
            p0 = g0 - n0 * P
            for m0 in range(m_lo, m_hi, MR):
                if np_ == NR and p0 + NR <= P:
                    _micro_tile(w, m0, k0, kc, xp[jb], bias, first, out[n0], m0, p0,
                                min(MR, M - m0))
                else:
                    _folded_tile(w, m0, k0, kc, xp[jb], bias, first, out, n0, p0, np_, edge)
    if act != NONE or has_res:
        for n in range(g_lo // P, (g_hi - 1) // P + 1):
            _epilogue(out[n], m_lo, min(m_hi, M), max(g_lo - n * P, 0),
                      min(g_hi - n * P, P), act, res[n if has_res else 0], has_res)


@numba.njit(inline="always", cache=True)
def _folded_tile(w, m0, k0, kc, xp, bias, first, out, n0, p0, np_, edge):
    """_edge_tile for a panel of folded pixels: np_ pixels from (image n0, pixel p0) on,
    into the next image(s), copied between ``edge`` and ``out`` one image's run at a time."""
    P = out.shape[2]
    mr = min(MR, out.shape[1] - m0)
    if not first:
        n, p, j = n0, p0, 0
        while j < np_:
            run = min(P - p, np_ - j)
            for i in range(mr):
                src = out[n, m0 + i, p:p + run]
                dst = edge[i, j:j + run]
                for t in range(run):
                    dst[t] = src[t]
            n, p, j = n + 1, 0, j + run
    _micro_tile(w, m0, k0, kc, xp, bias, first, edge, ZERO, ZERO, mr)
    n, p, j = n0, p0, 0
    while j < np_:
        run = min(P - p, np_ - j)
        for i in range(mr):
            src = edge[i, j:j + run]
            dst = out[n, m0 + i, p:p + run]
            for t in range(run):
                dst[t] = src[t]
        n, p, j = n + 1, 0, j + run


@numba.njit(inline="always", cache=True)
def _deal(src, xp, k):
    """xp[jb, k, j] = src[jb*NR + j], zeros past the end of src: one row of the panels."""
    n = src.shape[0]
    for jb in range((n + NR - 1) // NR):
        dst = xp[jb, k]
        base = jb * NR
        n_valid = min(NR, n - base)
        for j in range(n_valid):
            dst[j] = src[base + j]
        for j in range(n_valid, NR):
            dst[j] = 0.0


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
    for k in range(kc):
        _deal(x[k0 + k, p_lo:p_hi], xp, k)


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


# Where folding pays (folds), per vector width. With 16-pixel panels (AVX2) on batches of
# 4+ images of 2+ panels each, with K >= 256 (measured 2026-12-02 on the AMD EPYC Zen 2,
# 2 threads, one process, 1x1 convs, time per image / folded, and / the same pixels as one
# image, the bound: batch 8 on 7x7 maps 288->576 1.05 (1.18), 576->288 1.06 (1.23),
# 768->288 1.08 (1.20), 2048->512 1.10 (1.16), 512->2048 1.13 (1.16), 1024->2048 1.20
# (1.23), 160->960 1.05 (1.12); losses: batch 2 288->576 0.84, batch 4 576->160 0.95,
# batch 8 on 5x5 96->576 0.85; 14x14 (196 pixels in 13 panels) is under the 10%: 192->384
# 1.04 as one image, 384->192 0.96). With 64-pixel panels (AVX-512) a 7x7 map is one
# panel 23% used, and folding wins from 2 images and any K the gemm variant gets (measured
# 2026-12-03 on the AMD EPYC Zen 4, same method, folded / per image: batch 8 @7x7
# 512->2048 0.88, 2048->512 0.93, 1024->2048 stride 2 0.80, 512->512 3x3 stride 2 0.84,
# 320->1280 0.79, 288->576 0.90, 576->288 0.96, 64->384 0.92, 32->192 0.90; @5x5 128->128
# 0.86; @14x14 256->1024 0.88, 1024->256 0.90, 64->64 0.96; batch 2-4 @7x7 512->2048
# 0.94, 576->288 0.97, 160->960 0.98, 96->576 1.01; 3 x 512->512 3x3 0.96).
FOLD_MIN_IMAGES = 2 if NR == 64 else 4
FOLD_MIN_PANELS = 0 if NR == 64 else 2
FOLD_MIN_K = 0 if NR == 64 else 256


def folds(n: int, p: int, k: int) -> bool:
    """Fold the images' pixels into one row (gemm_bias_act's ``fold``) when whole panels
    per image would compute over 10% more columns than there are pixels, on batches of
    FOLD_MIN_IMAGES+ images of at least FOLD_MIN_PANELS panels' pixels, with K >=
    FOLD_MIN_K. Folding gathers each task's run of every row of x across images (a fixed
    cost per k) and runs the panels across image boundaries through a scratch block; with
    16-pixel panels it paid only with K large and boundaries few (the numbers above)."""
    return (n >= FOLD_MIN_IMAGES and p >= FOLD_MIN_PANELS * NR and k >= FOLD_MIN_K
            and -(-p // NR) * NR > 1.1 * p)
