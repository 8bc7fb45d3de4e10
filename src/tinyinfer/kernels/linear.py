"""Fully connected layer: y = act(x @ W^T + b).

    x (..., IN) float32      weight (OUT, IN) float32 (PyTorch's layout)
    bias (OUT,) or None      y (..., OUT) float32

Two kernels. ``_panel_kernel`` (16 rows or more: the token MLPs and projections of the
attention networks, where rows = batch * tokens) packs NR rows of x (tiles.py: 16 or 32) transposed into a panel
and runs tiles.py's register-blocked micro-tile over it, 4 weight rows at a time.
``_dot_kernel`` (fewer rows: a classifier at batch 1, where a 16-row panel would be mostly
padding) is also the engine's "tiny image" 1x1 convolution: a 1x1 conv on a 7x7 map is a
linear layer applied to 49 pixels, once the map is transposed to (pixels, channels).
conv_im2col.py calls it for that.

Why _dot_kernel's loops look the way they do
---------------------------------------------
Every output is a dot product of two contiguous rows, x[m, :] and W[o, :]. Computing one
dot product at a time reads 2 numbers per multiply-add, so the loop is bound by loads, not
by arithmetic. Computing a 4x4 block of outputs at once (4 rows of x against 4 rows of W)
reads 8 numbers per 16 multiply-adds: each loaded value is used 4 times, from a register.
The 16 running sums are plain scalars; with ``reassoc`` LLVM turns each into a 16-lane
AVX-512 register and the k loop into vector loads + FMAs (it may add in a different order
than a scalar loop would, which is why the fastmath flag is needed: float addition is not
associative). 16 accumulators + 8 loaded vectors fit in the 32 vector registers.
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .activations import ACT_FLOPS, act_code, activation_ref
from .common import FASTMATH, NO_RES2, check_act, check_array, check_bias, epilogue_rows
from .tiles import MR, NR, _micro_tile

PANEL_MIN_ROWS = 16    # from here on _panel_kernel (measured: see linear_into)


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _dot_kernel(x, w, bias, y):
    """y[g, o, m] = bias[o] + sum_k x[g, m, k] * w[o, k]

    x (G, M, K)   w (O, K)   bias (O,)   y (G, O, M)      (all C-contiguous)

    The output is stored transposed, (O, M): for conv_im2col.py that is NCHW directly (g = image,
    o = channel, m = pixel); linear() transposes its (OUT, rows) result back, which costs
    nothing at batch 1. The activation and residual are a second pass, ``epilogue_rows``:
    inlined here, 16 times over, they made this function take 30 s to compile.
    """
    G, M, K = x.shape
    O = w.shape[0]
    nob = (O + 3) // 4
    nmb = (M + 3) // 4
    # One parallel task = one 4x4 block of y. Blocks of the same 4 weight rows are
    # consecutive (m innermost), so a thread keeps those rows in L1 while it sweeps x.
    for task in numba.prange(G * nob * nmb):
        mb = task % nmb
        rest = task // nmb
        o = (rest % nob) * 4
        g = rest // nob
        m = mb * 4
        if o + 4 <= O and m + 4 <= M:
            w0 = w[o]
            w1 = w[o + 1]
            w2 = w[o + 2]
            w3 = w[o + 3]
            x0 = x[g, m]
            x1 = x[g, m + 1]
            x2 = x[g, m + 2]
            x3 = x[g, m + 3]
            z = np.float32(0.0)
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = z
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = z
            for k in range(K):
                a0 = x0[k]
                a1 = x1[k]
                a2 = x2[k]
                a3 = x3[k]
                b0 = w0[k]
                b1 = w1[k]
                b2 = w2[k]
                b3 = w3[k]
                s00 += a0 * b0
                s01 += a0 * b1
                s02 += a0 * b2
                s03 += a0 * b3
                s10 += a1 * b0
                s11 += a1 * b1
                s12 += a1 * b2
                s13 += a1 * b3
                s20 += a2 * b0
                s21 += a2 * b1
                s22 += a2 * b2
                s23 += a2 * b3
                s30 += a3 * b0
                s31 += a3 * b1
                s32 += a3 * b2
                s33 += a3 * b3
            # s_ij is (m + i, o + j): output row o + j gets s_0j .. s_3j
            _put4(y[g, o, m:m + 4], bias[o], s00, s10, s20, s30)
            _put4(y[g, o + 1, m:m + 4], bias[o + 1], s01, s11, s21, s31)
            _put4(y[g, o + 2, m:m + 4], bias[o + 2], s02, s12, s22, s32)
            _put4(y[g, o + 3, m:m + 4], bias[o + 3], s03, s13, s23, s33)
        else:
            # Ragged edge of the output (M or O not a multiple of 4, e.g. batch 1): one dot
            # product at a time. Still vectorized over k, just with less reuse.
            for mm in range(m, min(m + 4, M)):
                xr = x[g, mm]
                for oo in range(o, min(o + 4, O)):
                    wr = w[oo]
                    s = np.float32(0.0)
                    for k in range(K):
                        s += xr[k] * wr[k]
                    y[g, oo, mm] = s + bias[oo]


@numba.njit(inline="always", cache=True)
def _put4(row, b, s0, s1, s2, s3):
    row[0] = s0 + b
    row[1] = s1 + b
    row[2] = s2 + b
    row[3] = s3 + b


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _panel_kernel(x, w, bias, y, n_ochunks):
    """y[r, o] = bias[o] + sum_k x[r, k] * w[o, k]

    x (R, K)   w (O, K)   bias (O,)   y (R, O)      (all C-contiguous)

    One task: NR rows of x, packed transposed into a (K, NR) panel, against one chunk of
    the weight rows, 4 at a time (tiles.py); the (O, NR) result block is transposed on
    its way out. Both copies are 1/O and 1/K of the multiply-adds. With few row blocks
    the weight rows are split into ``n_ochunks`` chunks as well (one per thread), and the
    chunk is the outer index, so each thread's run of tasks is one chunk over all the
    rows: 196 tokens are 4 row blocks of 64 on AVX-512, and split by rows alone one
    thread got 128 rows and the other 68.
    """
    R, K = x.shape
    O = w.shape[0]
    nblk = (R + NR - 1) // NR
    chunk = ((O + n_ochunks - 1) // n_ochunks + MR - 1) // MR * MR
    for task in numba.prange(nblk * n_ochunks):
        r0 = (task % nblk) * NR
        o_lo = (task // nblk) * chunk
        o_hi = min(O, o_lo + chunk)
        n = min(NR, R - r0)
        xp = np.zeros((K, NR), np.float32)
        for r in range(n):
            xr = x[r0 + r]
            for k in range(K):
                xp[k, r] = xr[k]
        yt = np.empty((chunk, NR), np.float32)
        for o0 in range(o_lo, o_hi, MR):
            _micro_tile(w, o0, 0, K, xp, bias, True, yt, o0 - o_lo, 0)
        for r in range(n):
            yr = y[r0 + r]
            for o in range(o_lo, o_hi):
                yr[o] = yt[o - o_lo, r]


def linear_into(x2, w, bias, y2) -> None:
    """y2 (R, O) = x2 (R, K) @ w.T + bias, for validated C-contiguous float32 arrays, by the
    kernel that suits R (the module docstring). attention.py's projections call it too."""
    R, O = y2.shape
    if R >= PANEL_MIN_ROWS:
        blocks = -(-R // NR)
        threads = numba.get_num_threads()
        # split the outputs among the threads when there are too few row blocks, or when
        # the outputs outnumber the inputs: each chunk packs its rows again (K x NR
        # scattered writes), which pays only when the chunk has many outputs. Measured on
        # the 2-core Xeon (ms, 1 chunk / 2): 196 x 960 -> 240 0.62 / 0.74, 784 x 384 -> 96
        # 0.50 / 0.74; 784 x 96 -> 384 0.35 / 0.26, 3136 x 64 -> 256 0.68 / 0.53,
        # 49 x 384 -> 1536 0.60 / 0.31, 256 x 128 -> 384 0.119 / 0.102.
        split = blocks < threads or O >= 2 * w.shape[1]
        _panel_kernel(x2, w, bias, y2, max(1, min(O // (4 * MR), threads if split else 1)))
    else:
        yt = np.empty((1, O, R), np.float32)       # _dot_kernel writes y transposed
        _dot_kernel(x2.reshape(1, R, -1), w, bias, yt)
        y2[...] = yt[0].T


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
           act=0) -> np.ndarray:
    """y = act(x @ weight.T + bias).  x (..., IN), weight (OUT, IN), bias (OUT,) -> y (..., OUT)."""
    x = check_array(x, "x")
    weight = check_array(weight, "weight", 2)
    code = check_act(act)
    if x.ndim < 1:
        raise InputError("x must have at least 1 dimension (..., IN), got a scalar")
    out_f, in_f = weight.shape
    if x.shape[-1] != in_f:
        raise InputError(f"x has {x.shape[-1]} features in its last dimension but weight "
                         f"{weight.shape} expects {in_f} (weight is (OUT, IN), PyTorch's layout)")
    bias = check_bias(bias, out_f, f"to match weight {weight.shape}")
    lead = x.shape[:-1]
    rows = numel(lead)
    if rows == 0 or out_f == 0:
        return np.zeros(lead + (out_f,), np.float32)
    y = np.empty((rows, out_f), np.float32)
    linear_into(x.reshape(rows, in_f), weight, bias, y)
    if code:
        epilogue_rows(y, NO_RES2, False, np.int64(code))
    return y.reshape(lead + (out_f,))


def linear_ref(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
               act=0) -> np.ndarray:
    """Plain NumPy reference (float64 matmul, BLAS allowed here)."""
    y = x.astype(np.float64) @ weight.astype(np.float64).T
    if bias is not None:
        y = y + bias
    return activation_ref(y.astype(np.float32), act)


def linear_cost(x_shape, w_shape, has_bias: bool = True, act=0) -> Cost:
    """MACs = rows * IN * OUT; FLOPs = 2 MACs + activation; params = weight (+ bias)."""
    out_f, in_f = (int(d) for d in w_shape)
    rows = numel(x_shape[:-1])
    macs = rows * in_f * out_f
    out_elems = rows * out_f
    params = out_f * in_f + (out_f if has_bias else 0)
    return Cost(macs=macs, flops=2 * macs + ACT_FLOPS[act_code(act)] * out_elems,
                params=params, elems_read=numel(x_shape) + params, elems_written=out_elems)
