"""Squeeze-and-excitation (Hu et al. 2018), as in SENet, MnasNet, EfficientNet, MobileNetV3:

    s = mean_hw(x)                          squeeze      (N, C)
    z = act(W_r s + b_r)                    reduce FC    (N, Crd)
    g = gate(W_e z + b_e)                   expand FC    (N, C)
    y = x * g[:, :, None, None]             excite       (N, C, H, W)

One fused kernel: the two FCs are tiny matrix-vector products (Crd is C/4 .. C/16), far
too small for a BLAS call to pay off, and fusing saves writing s, z and g to the graph.
The FC loops parallelize over output features, not over N: inference runs with N = 1.
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost
from ..errors import InputError
from .activations import ACT_FLOPS, RELU, SIGMOID, act_inplace, act_scalar
from . import blocked_layout as BL
from .common import FASTMATH, NO_RES2, check_act, epilogue_rows, float32_array
from .linear import linear_into


# reassoc + contract: lets LLVM vectorize the pooling sum and the FC dot products (SIMD
# lanes, FMA); no 'nnan'/'ninf', so NaN and inf behave as in IEEE arithmetic.
@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _squeeze_excite(x, w_r, b_r, w_e, b_e, act, gate, out):
    # x, out: (N, C, L); w_r: (Crd, C); w_e: (C, Crd).
    N, C, L = x.shape
    Crd = w_r.shape[0]
    s = np.empty((N, C), np.float32)
    z = np.empty((N, Crd), np.float32)
    g = np.empty((N, C), np.float32)
    # squeeze: float64 sum over the plane (see global_avg_pool)
    for p in numba.prange(N * C):
        n = p // C
        c = p % C
        acc = 0.0
        for i in range(L):
            acc += x[n, c, i]
        s[n, c] = acc / L
    # reduce FC: z[n, r] = act(sum_c w_r[r, c] s[n, c] + b_r[r]); rows of w_r contiguous
    for q in numba.prange(N * Crd):
        n = q // Crd
        r = q % Crd
        acc = np.float32(0.0)
        for c in range(C):
            acc += w_r[r, c] * s[n, c]
        z[n, r] = act_scalar(acc + b_r[r], act)
    # expand FC and gate
    for p in numba.prange(N * C):
        n = p // C
        c = p % C
        acc = np.float32(0.0)
        for r in range(Crd):
            acc += w_e[c, r] * z[n, r]
        g[n, c] = act_scalar(acc + b_e[c], gate)
    # excite
    for p in numba.prange(N * C):
        n = p // C
        c = p % C
        gc = g[n, c]
        for i in range(L):
            out[n, c, i] = x[n, c, i] * gc


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _scale_blocked(xb, g, out):
    """out[n, b, i, :] = xb[n, b, i, :] * g[n, b*CB : b*CB + CB]: a vector of gates per pixel."""
    N, Cb, L, cb_ = xb.shape
    for p in numba.prange(N * Cb):
        n = p // Cb
        b = p % Cb
        scale_plane(xb[n, b], g[n, b * cb_:(b + 1) * cb_], out[n, b])


@numba.njit(inline="always", cache=True, fastmath=FASTMATH)
def scale_plane(xp, gb, op):
    """op[i, :] = xp[i, :] * gb for every pixel i.   xp, op (L, CB)   gb (CB,)"""
    for i in range(xp.shape[0]):
        xi = xp[i]
        oi = op[i]
        for j in range(gb.shape[0]):
            oi[j] = xi[j] * gb[j]


def squeeze_excite_blocked(x: np.ndarray, w_reduce, b_reduce, w_expand, b_expand,
                           act=RELU, gate=SIGMOID, blocked_out=True) -> np.ndarray:
    """squeeze_excite on blocked_layout.py's layout: x blocked (N, ceil(C/CB), H, W, CB) or
    NCHW (converted first; C = the rows of w_expand); the output blocked, or NCHW if not
    ``blocked_out`` (as conv_blocked.conv2d_blocked, which the engine's layout.py runs it
    between). The weights are checked as squeeze_excite's."""
    return bind_squeeze_excite_blocked(x, w_reduce, b_reduce, w_expand, b_expand, act, gate,
                                       blocked_out)(x)


def bind_squeeze_excite_blocked(x, w_reduce, b_reduce, w_expand, b_expand, act=RELU,
                                gate=SIGMOID, blocked_out=True):
    """squeeze_excite_blocked's arguments checked once, for x's shape: a function run(x)
    for arrays of that shape (the engine keeps it per node and shape; the checks were 4 of
    an SE's 18-36 us at batch 1).

    Up to SERIAL_SE_FLOATS floats of x, one serial kernel does it all (_se_serial): a
    7x7 or 14x14 SE at batch 1 is a few microseconds of work, and the four steps below
    (each a kernel call, two of them waking the second core) cost 17-36 us. Above it,
    three steps: the pool and the scale parallel, the FCs linear.py's. Not one parallel
    kernel with both FC loops and two activation ladders: it took 9 s to compile on a cold
    cache. Not NumPy's matmul: at batch 8 OpenBLAS's own threads kept spinning after each
    product and starved the next Numba kernel's (one SE layer 58 us -> 11.9 ms; measured
    on the Zen 4)."""
    C = _fc_weight(w_expand, "w_expand", None, None, "(C, Crd)").shape[0]
    x = float32_array(x, "x")
    want = (f"(N, {C}, H, W) or (N, {BL.blocks(C)}, H, W, {BL.CB})")
    nchw = x.ndim == 4 and x.shape[1] == C and x.shape[2] * x.shape[3] > 0
    if not nchw and not (x.ndim == 5 and x.shape[1] == BL.blocks(C) and x.shape[4] == BL.CB
                         and x.shape[2] * x.shape[3]):
        raise InputError(f"squeeze_excite_blocked: x has shape {x.shape}; w_expand {C} "
                         f"channels need {want}, H * W > 0")
    N, H, W, Cb = x.shape[0], x.shape[2], x.shape[3], BL.blocks(C)
    _, w_r, b_r, w_e, b_e, act, gate = _se_args(np.empty((1, C, 1, 1), np.float32), w_reduce,
                                                b_reduce, w_expand, b_expand, act, gate)
    act, gate = np.int64(act), np.int64(gate)
    serial = N * Cb * H * W * BL.CB <= SERIAL_SE_FLOATS

    def run(x):
        xb = BL.to_blocked(x) if nchw else x
        x3 = xb.reshape(N, Cb, H * W, BL.CB)
        out = np.empty_like(xb)
        g = np.zeros((N, Cb * BL.CB), np.float32)           # padded channels: gate 0
        if serial:
            _se_serial(xb, w_r, b_r, w_e, b_e, act, gate, np.zeros((N * Cb, BL.CB)),
                       np.empty((N, C), np.float32), np.empty((N, w_r.shape[0]), np.float32),
                       np.empty((N, C), np.float32), g, out.reshape(x3.shape))
        else:
            z = _fc(BL.global_avg_pool_blocked(xb, C), w_r, b_r, act)
            g[:, :C] = _fc(z, w_e, b_e, gate)
            _scale_blocked(x3, g, out.reshape(x3.shape))
        return out if blocked_out else BL.from_blocked(out, C)
    return run


# Up to this many floats of x (blocked) an SE runs as one serial kernel: MobileNetV3's 14x14
# and 7x7 SEs at batch 1, EfficientNet-B0's from 28x28 on.
SERIAL_SE_FLOATS = 2 ** 16


@numba.njit(cache=True, fastmath=FASTMATH)
def _se_serial(xb, w_r, b_r, w_e, b_e, act, gate, sums, s, z, ge, g, out):
    """The whole blocked SE on the calling thread. xb (N, Cb, H, W, CB), out (N, Cb, H*W,
    CB); scratch made by
    the caller (a NumPy constructor in a kernel compiles for 0.4 s): sums (N*Cb, CB)
    float64 zeros, s (N, C), z (N, Crd), ge (N, C); g (N, Cb*CB) zeros."""
    N, Cb, L, cb_ = out.shape
    C = s.shape[1]
    for p in range(N * Cb):
        BL.pool_plane(xb[p // Cb, p % Cb], sums[p])   # rows of W: (L, 1) took 4x as long
    x3 = xb.reshape(out.shape)
    for n in range(N):
        for c in range(C):
            s[n, c] = sums[n * Cb + c // cb_, c % cb_] / L
    _fc_serial(s, w_r, b_r, act, z)
    _fc_serial(z, w_e, b_e, gate, ge)
    for n in range(N):
        g[n, :C] = ge[n]
        for b in range(Cb):
            scale_plane(x3[n, b], g[n, b * cb_:(b + 1) * cb_], out[n, b])


# Up to this many multiply-adds an FC runs on one core (_fc_serial): MobileNetV3-Small's
# largest SE FC is 576 x 144 = 83k, EfficientNet-B0's 1152 x 48 = 55k at batch 1.
SERIAL_FC_MACS = 2 ** 17


@numba.njit(cache=True, fastmath=FASTMATH)
def _fc_serial(x, w, b, act, y):
    """y[n, o] = act(b[o] + sum_k x[n, k] * w[o, k]) on the calling thread: for an SE's few
    thousand multiply-adds, waking the second core (twice: product, then activation) cost
    more than the work.   x (N, K)   w (O, K)   b (O,)   y (N, O)"""
    N, K = x.shape
    for n in range(N):
        xn = x[n]
        yn = y[n]
        for o in range(w.shape[0]):
            wo = w[o]
            s = np.float32(0.0)
            for k in range(K):
                s += xn[k] * wo[k]
            yn[o] = s + b[o]
        if act:
            act_inplace(yn, act)


def _fc(x2, w, b, act):
    """act(x2 @ w.T + b) for arrays _se_args checked: linear.linear without its own checks
    (5 of the ~8 us of each FC at batch 1; an SE has two)."""
    x2, w = np.ascontiguousarray(x2), np.ascontiguousarray(w)
    y = np.empty((x2.shape[0], w.shape[0]), np.float32)
    if x2.shape[0] * w.size <= SERIAL_FC_MACS:
        _fc_serial(x2, w, b, np.int64(act), y)
        return y
    linear_into(x2, w, b, y)
    if act:
        epilogue_rows(y, NO_RES2, False, np.int64(act))
    return y


def _fc_weight(w, name: str, rows: int | None, cols: int | None, what: str):
    w = float32_array(w, name)
    if w.ndim == 4 and w.shape[2:] == (1, 1):
        w = w.reshape(w.shape[:2])          # a 1x1 conv's weight, as torchvision/timm store it
    if w.ndim != 2 or (rows is not None and w.shape[0] != rows) or \
            (cols is not None and w.shape[1] != cols):
        raise InputError(f"{name} must have shape {what} (or {what[:-1]}, 1, 1) as a 1x1 "
                         f"conv), got {w.shape}")
    return np.ascontiguousarray(w)


def _se_args(x, w_reduce, b_reduce, w_expand, b_expand, act, gate):
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    if H * W == 0:
        raise InputError(f"squeeze_excite: x has an empty spatial size {(H, W)}")
    w_r = _fc_weight(w_reduce, "w_reduce", None, C, "(Crd, C)")
    Crd = w_r.shape[0]
    w_e = _fc_weight(w_expand, "w_expand", C, Crd, "(C, Crd)")
    b_r = np.zeros(Crd, np.float32) if b_reduce is None else float32_array(b_reduce, "b_reduce")
    b_e = np.zeros(C, np.float32) if b_expand is None else float32_array(b_expand, "b_expand")
    if b_r.shape != (Crd,):
        raise InputError(f"b_reduce must have shape ({Crd},), got {b_r.shape}")
    if b_e.shape != (C,):
        raise InputError(f"b_expand must have shape ({C},), got {b_e.shape}")
    return x, w_r, b_r, w_e, b_e, check_act(act, "act"), check_act(gate, "gate")


def squeeze_excite(x: np.ndarray, w_reduce, b_reduce, w_expand, b_expand,
                   act=RELU, gate=SIGMOID) -> np.ndarray:
    """y = x * gate(W_e act(W_r mean_hw(x) + b_r) + b_e), per channel.

    x: (N, C, H, W); w_reduce: (Crd, C) or (Crd, C, 1, 1); b_reduce: (Crd,) or None;
    w_expand: (C, Crd) or (C, Crd, 1, 1); b_expand: (C,) or None. act / gate: activation
    codes or names (EfficientNet: act=SWISH, gate=SIGMOID; MobileNetV3: RELU, HSIGMOID).
    Returns (N, C, H, W) float32."""
    x, w_r, b_r, w_e, b_e, act, gate = _se_args(x, w_reduce, b_reduce, w_expand, b_expand,
                                                act, gate)
    N, C, H, W = x.shape
    out = np.empty_like(x)
    _squeeze_excite(x.reshape(N, C, H * W), w_r, b_r, w_e, b_e, np.int64(act),
                    np.int64(gate), out.reshape(N, C, H * W))
    return out


def squeeze_excite_ref(x, w_reduce, b_reduce, w_expand, b_expand, act=RELU, gate=SIGMOID):
    """NumPy reference (uses BLAS; fine in a reference)."""
    from .activations import activation_ref
    x, w_r, b_r, w_e, b_e, act, gate = _se_args(x, w_reduce, b_reduce, w_expand, b_expand,
                                                act, gate)
    s = x.astype(np.float64).mean(axis=(2, 3))
    z = activation_ref((s @ w_r.T.astype(np.float64) + b_r).astype(np.float32), act)
    g = activation_ref((z.astype(np.float64) @ w_e.T + b_e).astype(np.float32), gate)
    return (x * g[:, :, None, None]).astype(np.float32)


def squeeze_excite_cost(shape, reduced_channels: int, act=RELU, gate=SIGMOID) -> Cost:
    # MACs: two FCs per image, C*Crd each.
    # FLOPs: 2*MACs + squeeze H*W per channel (adds + 1 divide, as global_avg_pool)
    #        + act on N*Crd + gate on N*C + the final scale multiply, one per element.
    #        Bias adds are not counted (costs.py convention).
    # params: both weights and both biases. Reads x and the params; writes y.
    N, C, H, W = shape
    Crd = int(reduced_channels)
    n = N * C * H * W
    macs = N * 2 * C * Crd
    flops = (2 * macs + n + N * Crd * ACT_FLOPS[check_act(act)]
             + N * C * ACT_FLOPS[check_act(gate)] + n)
    params = 2 * C * Crd + Crd + C
    return Cost(macs=macs, flops=flops, params=params, elems_read=n + params,
                elems_written=n)
