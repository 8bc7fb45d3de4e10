"""Implicit GEMM: a conv with taps (3x3, a 7x7 stem, any stride) on gemm.py's product,
without ever writing its im2col columns.

    x        (N, Cin, H, W)       float32, NCHW
    w        (Cout, Cin*KH*KW)    float32: the conv weight, reshaped as stored
    bias     (Cout,)
    res, out (N, Cout, Ho*Wo)     the residual (added after the activation) and the result
    geometry (KH, KW, sh, sw, dh, dw, pad_top, pad_left, Wo)

gemm.py packs its X operand panel by panel (KC taps x NR pixels) from the columns
(N, Cin*KH*KW, Ho*Wo) that im2col wrote to memory first: 9x the input for a 3x3 conv, 49/4x
for ResNet's 7x7 stride-2 stem (59 MB at batch 8, written and read back once per run).
Here each task gathers its panels straight from the input image instead (``_gather_tap``:
one tap's run of the task's pixels, output row by output row), so the columns exist only a
panel at a time, in L1. The packing work is the same copy im2col made; what goes is the
round trip through memory, and with it the run-to-run swings that memory traffic has on
this shared host.

Where (implicit_wins): wherever each thread sweeps all of W over pixels of its own. On
small maps gemm.gemm_blocks splits W's rows between the threads instead; then both threads
would gather the same pixels, while packing from written columns is a plain copy (1x128
->128 3x3 stride 2 @28x28: 2.25 ms im2col + gemm, 2.90 implicit). Where the product folds
the images' pixels together (gemm.folds) the columns are written too.

Measured 2026-12-03 on the 2-core AMD EPYC Zen 4 (AVX-512), 2 threads, ms im2col + gemm /
implicit, each layer alone (min of 5, interleaved, in the network's process):
  ResNet-50 batch 8: 7x7 stride-2 stem 85.4 / 20.0 (alone, in a fresh process: 30.0 /
    18.5), 128->128 3x3 s2 @28x28 20.6 / 19.6, 512->512 s2 @7x7 20.5 / 20.6
  EfficientNetV2-S's fused-MBConv 3x3s: batch 8 summed 166.9 / 124.5; batch 1 16.6 /
    15.0 (24->24 @112x112 2.02 / 1.60, 48->192 @56x56 3.7 / 3.4, its stem 0.37 / 0.39)
The copy in _gather_tap is conv_im2col.copy_strided, on slices indexed from 0: indexed as
src[j + off] with a negative off, Numba's wraparound code kept LLVM from vectorizing it
(ResNet's stem's packing alone, batch 1: 1.26 -> 0.91 ms).
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import NONE
from .common import FASTMATH
from .conv_im2col import col_range, copy_strided, im2col
from .conv_pointwise import subsample_1x1
from .gemm import KC, NO_RES3, _deal, _epilogue, _sweep, folds, gemm_bias_act, gemm_blocks
from .tiles import MR, NR


def gemm_conv2d_into(x, weight, bias, stride, padding, dilation, groups, act, residual,
                     out) -> np.ndarray:
    """The "gemm" variant (groups == 1): the register-blocked product with the fused
    epilogue, over the input itself for an unpadded 1x1, else over the conv's columns
    gathered panel by panel (implicit_gemm), or written out by im2col first where the
    product folds the images' pixels together (gemm.folds: small maps, large K)."""
    n, cout, ho, wo = out.shape
    kh, kw = weight.shape[2], weight.shape[3]
    threads = numba.get_num_threads()
    has_res = residual is not None
    res = residual.reshape(n, cout, ho * wo) if has_res else NO_RES3
    path = gemm_path(weight.shape, padding, n, ho * wo, threads)
    if path == "input":
        cols = subsample_1x1(x, stride)
    elif path == "implicit":
        nc, mc = gemm_blocks(n, cout, ho * wo, threads)
        geometry = tuple(int(v) for v in (kh, kw, *stride, *dilation, padding[0],
                                          padding[2], wo))   # one compiled type
        implicit_gemm(x, weight.reshape(cout, -1), bias, np.int64(act), res, has_res,
                      out.reshape(n, cout, ho * wo), geometry, nc, mc, threads)
        return out
    else:
        cols = im2col(x, kh, kw, stride, padding, dilation, ho, wo)
    fold = folds(n, ho * wo, cols.shape[1])
    nc, mc = gemm_blocks(1, cout, n * ho * wo, threads) if fold else \
        gemm_blocks(n, cout, ho * wo, threads)
    gemm_bias_act(cols, weight.reshape(1, cout, -1), bias, np.int64(act), res, has_res,
                  out.reshape(n, cout, ho * wo), nc, mc, threads, fold)
    return out


def gemm_path(w_shape, padding, n: int, p: int, threads: int) -> str:
    """How gemm_conv2d_into runs a conv of weight shape w_shape and padding (top, bottom,
    left, right) on n images of p output pixels: "input" (an unpadded 1x1: the product
    over the input itself), "implicit" (implicit_gemm) or "im2col" (columns first)."""
    cout, cin, kh, kw = w_shape
    if kh == 1 and kw == 1 and not any(padding):
        return "input"
    return "implicit" if implicit_wins(n, cout, p, cin * kh * kw, threads) else "im2col"


def implicit_wins(n: int, m: int, p: int, k: int, threads: int) -> bool:
    """Whether gemm_conv2d_into gathers the columns panel by panel (the module docstring)
    for n images of p output pixels, m output channels and k taps."""
    if folds(n, p, k):
        return False
    return gemm_blocks(n, m, p, threads)[1] >= m


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def implicit_gemm(x, w, bias, act, res, has_res, out, geometry, nc, mc, nchunks):
    """out[n] = act(w @ columns(x[n]) + bias[:, None]) (+ res[n]); shapes in the module
    docstring. Tasks of nc pixels x mc output channels, as gemm.gemm_bias_act's."""
    N = x.shape[0]
    M, K = w.shape
    P = out.shape[2]
    n_pblocks = (P + nc - 1) // nc
    n_mblocks = (M + mc - 1) // mc
    ntasks = N * n_pblocks * n_mblocks
    nchunks = min(nchunks, ntasks)
    for chunk in numba.prange(nchunks):
        xp = np.empty((nc // NR, min(KC, K), NR), np.float32)   # packed X panels
        edge = np.empty((MR, NR), np.float32)
        run = np.empty(nc, np.float32)                          # one tap's pixels
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            mb = task // (N * n_pblocks)
            n = (task // n_pblocks) % N
            p_lo = (task % n_pblocks) * nc
            p_hi = min(p_lo + nc, P)
            m_lo = mb * mc
            m_hi = min(m_lo + mc, M)
            for k0 in range(0, K, KC):
                kc = min(KC, K - k0)
                for k in range(kc):
                    _gather_tap(x[n], k0 + k, geometry, p_lo, p_hi, run)
                    _deal(run[:p_hi - p_lo], xp, k)
                _sweep(w, k0, kc, xp, bias, out[n], edge, p_lo, p_hi, m_lo, m_hi)
            if act != NONE or has_res:
                _epilogue(out[n], m_lo, m_hi, p_lo, p_hi, act, res[n if has_res else 0],
                          has_res)


@numba.njit(inline="always", cache=True)
def _gather_tap(x, k, geometry, p_lo, p_hi, run):
    """run[p - p_lo] = the input under tap k = (c*KH + ky)*KW + kx of output pixel p, for p
    in [p_lo, p_hi) (zero in the padding): one row of im2col's columns, a piece at a time.
    x (C, H, W), one image."""
    kh, kw, sh, sw, dh, dw, pt, pl, wo = geometry
    H, W = x.shape[1], x.shape[2]
    c = k // (kh * kw)
    ky = (k // kw) % kh
    kx = k % kw
    off = kx * dw - pl
    j_lo, j_hi = col_range(off, sw, W, wo)     # the columns with an input column
    p = p_lo
    while p < p_hi:
        i = p // wo
        j0 = p - i * wo
        j1 = min(wo, j0 + p_hi - p)
        dst = run[p - p_lo:p - p_lo + j1 - j0]
        iy = i * sh + ky * dh - pt
        if iy < 0 or iy >= H:
            for j in range(j1 - j0):
                dst[j] = 0.0
        else:
            a = min(max(j0, j_lo), j1)
            b = max(min(j1, j_hi), a)
            for j in range(a - j0):
                dst[j] = 0.0
            for j in range(b - j0, j1 - j0):
                dst[j] = 0.0
            copy_strided(dst[a - j0:b - j0], x[c, iy, a * sw + off:], b - a, sw)
        p += j1 - j0
