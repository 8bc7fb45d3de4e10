"""Fully connected layer: y = act(x @ W^T + b).

    x (..., IN) float32      weight (OUT, IN) float32 (PyTorch's layout)
    bias (OUT,) or None      y (..., OUT) float32

Three kernels. ``_panel_kernel`` (16 rows or more: the token MLPs and projections of the
attention networks, where rows = batch * tokens) runs tiles.py's register-blocked
micro-tile with MR (4 or 5) rows of x against panels of W^T (``pack_weight_panels``).
``_rows_kernel`` (fewer rows: a classifier at batch 1 or 8, where a 16-row panel would be
mostly padding): each task four rows of W against every row of x (against a single row
of x, one row of W at a time: DOT1_MAX_ROWS). ``_dot_kernel`` is the engine's "tiny image"
1x1 convolution: a 1x1 conv on a 7x7 map is a linear layer applied to 49 pixels, once the
map is transposed to (pixels, channels); conv_im2col.py calls it for that. (It ran the
classifier too, until 2026-12-03: with its 4x4 tile it compiled in 2.1-2.4 s,
``_rows_kernel`` in 1.0-1.2 s, at the same speed: 1.00-1.04, 1280 -> 1000 and 960 -> 1280
at batch 1, Zen 4; a cold first run compiles it.)

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
from .common import (FASTMATH, NO_RES2, cached_derived, check_act, check_array, check_bias,
                     epilogue_rows)
from .tiles import FALSE, MR, NMR, NR, TRUE, ZERO, _micro_tile

PANEL_MIN_ROWS = 16    # from here on _panel_kernel (measured: see linear_into)
# Up to this many rows (a classifier at batch 1), _rows_kernel reads one row of w at a time
# (dot1) instead of four (dot4): a thread's weights then stream from memory as one sequence.
# Measured 2026-12-04 (Zen 4, 2 threads, one process, old and new kernel alternating, median
# of the paired ratios dot1 / dot4, weights evicted from cache / in cache): one row 576->1024
# 0.77 / 0.81, 1024->1000 0.81 / 0.77, 1280->1000 0.89 / 0.88, 960->1280 0.72 / 0.75; two
# rows mixed (0.74-1.13 / 0.98-1.15); four and eight rows 1.3-1.5x slower (dot4's one load
# of x per four weights pays there).
DOT1_MAX_ROWS = 1


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
            # Ragged edge of the output (M or O not a multiple of 4): for each row of x, four
            # dot products at once where there are four outputs (dot4), else one at a time
            for mm in range(m, min(m + 4, M)):
                xr = x[g, mm]
                if o + 4 <= O:
                    s0, s1, s2, s3 = dot4(xr, w, o)
                    y[g, o, mm] = s0 + bias[o]
                    y[g, o + 1, mm] = s1 + bias[o + 1]
                    y[g, o + 2, mm] = s2 + bias[o + 2]
                    y[g, o + 3, mm] = s3 + bias[o + 3]
                    continue
                for oo in range(o, min(o + 4, O)):
                    y[g, oo, mm] = dot1(xr, w[oo]) + bias[oo]


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _rows_kernel(x, w, bias, y):
    """y[r, o] = bias[o] + sum_k x[r, k] * w[o, k] for a few rows of x (a classifier).

    x (R, K)   w (O, K)   bias (O,)   y (R, O)      (all C-contiguous)
    One parallel task: four rows of w (a thread streams its share of the weights once),
    dotted with every row of x, four sums at a time (dot4); on DOT1_MAX_ROWS rows or
    fewer, one row of w at a time (dot1)."""
    R = x.shape[0]
    O = w.shape[0]
    for ob in numba.prange((O + 3) // 4):
        o = ob * 4
        if R <= DOT1_MAX_ROWS:
            for oo in range(o, min(o + 4, O)):
                for r in range(R):
                    y[r, oo] = dot1(x[r], w[oo]) + bias[oo]
            continue
        for r in range(R):
            xr = x[r]
            if o + 4 <= O:
                s0, s1, s2, s3 = dot4(xr, w, o)
                y[r, o] = s0 + bias[o]
                y[r, o + 1] = s1 + bias[o + 1]
                y[r, o + 2] = s2 + bias[o + 2]
                y[r, o + 3] = s3 + bias[o + 3]
            else:
                for oo in range(o, O):
                    y[r, oo] = dot1(xr, w[oo]) + bias[oo]


@numba.njit(fastmath=FASTMATH, cache=True)
def dot4(xr, w, o):
    """The dot products of row xr with rows o .. o+3 of w: four independent sums, one load
    of xr for four multiply-adds, vectorized over k. It pays where several rows of x reuse
    the four rows of w (_rows_kernel on 2-15 rows, _dot_kernel's edge); for a single row
    of x one row of w at a time (dot1) streams the weights faster (DOT1_MAX_ROWS: the
    1.2-1.3x for dot4 measured 2026-12-03 did not hold up, paired, 2026-12-04).
    xr (K,)   w (O, K), o + 4 <= O"""
    w0 = w[o]
    w1 = w[o + 1]
    w2 = w[o + 2]
    w3 = w[o + 3]
    z = np.float32(0.0)
    s0 = s1 = s2 = s3 = z
    for k in range(xr.shape[0]):
        a = xr[k]
        s0 += a * w0[k]
        s1 += a * w1[k]
        s2 += a * w2[k]
        s3 += a * w3[k]
    return s0, s1, s2, s3


@numba.njit(fastmath=FASTMATH, cache=True)
def dot1(xr, wr):
    """sum_k xr[k] * wr[k] (vectorized over k), for the outputs dot4 leaves."""
    s = np.float32(0.0)
    for k in range(xr.shape[0]):
        s += xr[k] * wr[k]
    return s


@numba.njit(inline="always", cache=True)
def _put4(row, b, s0, s1, s2, s3):
    row[0] = s0 + b
    row[1] = s1 + b
    row[2] = s2 + b
    row[3] = s3 + b


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _panel_kernel(x, wp, bias, y, n_rchunks):
    """y[r, o] = bias[o] + sum_k x[r, k] * w[o, k]

    x (R, K)   wp (ceil(O / NR), K, NR): w (O, K) transposed into panels of NR outputs,
    zero past O (pack_weight_panels)   bias (O,)   y (R, O)      (all C-contiguous)

    The micro-tile (tiles.py) with the roles of a conv's gemm swapped: MR rows of x (MR
    tokens, each contiguous in k) against one packed panel of W^T, into MR rows x NR
    outputs of y, which are contiguous too, so nothing of the activations is copied or
    transposed. (A first version packed NR rows of x transposed and transposed the result
    back; those scattered copies held EdgeViT's token MLPs to ~130 GFLOP/s.) One task:
    one weight panel x one chunk of rows; the panel index is innermost, so a thread's
    consecutive tasks share their rows of x.
    """
    R, K = x.shape
    O = y.shape[1]
    npan = wp.shape[0]
    rchunk = ((R + n_rchunks - 1) // n_rchunks + MR - 1) // MR * MR
    zeros = np.zeros(MR, np.float32)
    for task in numba.prange(npan * n_rchunks):
        pb = task % npan
        r_lo = (task // npan) * rchunk
        o0 = pb * NR
        no = min(NR, O - o0)
        edge = np.empty((MR, NR), np.float32)
        for r0 in range(r_lo, min(R, r_lo + rchunk), MR):
            # the tile starts from the bias (first=False reads it from the block), in a
            # scratch block: y's rows past R or columns past O do not exist
            for i in range(MR):
                for j in range(no):
                    edge[i, j] = bias[o0 + j]
            _micro_tile(x, r0, ZERO, K, wp[pb], zeros, FALSE, edge, ZERO, ZERO, NMR)
            for i in range(min(MR, R - r0)):
                yr = y[r0 + i]
                for j in range(no):
                    yr[o0 + j] = edge[i, j]


@numba.njit(parallel=True, cache=True)
def _pack_weight_panels(w, wp):
    """wp[pb, k, j] = w[pb * NR + j, k], zero past O: W^T in panels of NR outputs. A
    transpose, so its writes are NR floats apart; done 64 k at a time, the block being
    written stays in L1 (a whole column of a panel at a time: 1.3 ms for a 1536 x 384
    weight, four times the product it was packed for)."""
    O, K = w.shape
    for pb in numba.prange(wp.shape[0]):
        panel = wp[pb]
        for k0 in range(0, K, 64):
            kc = min(64, K - k0)
            for j in range(NR):
                o = pb * NR + j
                if o < O:
                    wo = w[o, k0:k0 + kc]
                    for k in range(kc):
                        panel[k0 + k, j] = wo[k]
                else:
                    for k in range(kc):
                        panel[k0 + k, j] = 0.0


def pack_weight_panels(w: np.ndarray) -> np.ndarray:
    """A linear's weight (O, K), float32 C-contiguous, in the layout _panel_kernel reads:
    (ceil(O / NR), K, NR). The engine packs each weight once (ops.py keeps it on the node);
    a direct call to linear() packs it on every call."""
    O, K = w.shape
    wp = np.empty((-(-O // NR), K, NR), np.float32)
    _pack_weight_panels(w, wp)
    return wp


def cached_weight_panels(cache: dict, key: str, w) -> np.ndarray | None:
    """pack_weight_panels(w), kept in ``cache`` (an engine node's) under ``key`` for as
    long as the same array is the weight (common.cached_derived): packing per call cost up
    to 4x the product at 49 tokens. None if w is not a C-contiguous float32 matrix."""
    return cached_derived(cache, key, w, pack_weight_panels, 2)


def linear_into(x2, w, bias, y2, packed=None) -> None:
    """y2 (R, O) = x2 (R, K) @ w.T + bias, for validated C-contiguous float32 arrays, by the
    kernel that suits R (the module docstring). attention.py's projections call it too.
    packed: pack_weight_panels(w), if the caller keeps it between calls."""
    R, O = y2.shape
    if R >= PANEL_MIN_ROWS:
        wp = pack_weight_panels(w) if packed is None else packed
        threads = numba.get_num_threads()
        # rows split into chunks only when the weight panels alone are too few tasks
        n_rchunks = max(1, min(-(-R // MR), -(-2 * threads // wp.shape[0])))
        _panel_kernel(x2, wp, bias, y2, n_rchunks)
    else:
        _rows_kernel(x2, w, bias, y2)


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
           act=0, packed: np.ndarray | None = None) -> np.ndarray:
    """y = act(x @ weight.T + bias).  x (..., IN), weight (OUT, IN), bias (OUT,) -> y (..., OUT).
    packed: pack_weight_panels(weight) kept by the caller (else packed per call)."""
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
    if packed is not None and packed.shape != (-(-out_f // NR), in_f, NR):
        raise InputError(f"packed has shape {packed.shape}; for weight {weight.shape} it "
                         f"must be pack_weight_panels(weight), {(-(-out_f // NR), in_f, NR)}")
    y = np.empty((rows, out_f), np.float32)
    linear_into(x.reshape(rows, in_f), weight, bias, y, packed)
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
