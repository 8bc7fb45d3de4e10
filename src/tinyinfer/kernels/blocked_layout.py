"""The channel-blocked activation layout (ONNX Runtime's and oneDNN's NCHWc): the channels
cut into blocks of CB = one vector register (16 floats on AVX-512, 8 on AVX2), and the CB
channels of one pixel stored side by side, innermost:

    xb       (N, ceil(C / CB), H, W, CB)    float32
    xb[n, c // CB, h, w, c % CB] = x[n, c, h, w]
    Channels past C: zeros after to_blocked; a conv's output holds act(0) there (0.5 after
    a sigmoid), which no reader sees: packed pointwise weights are zero for them, a
    depthwise conv's padded channels only produce padded channels, and the pooling below
    returns the first C channels.

The kernels on it: conv_blocked.py (pointwise and dense convs, the entry conv2d_blocked),
conv_blocked_dw.py (depthwise), se.py (squeeze-excite); engine/layout.py decides which
nodes run on it.
"""
from __future__ import annotations

import numba
import numpy as np

from ..cpu import VECTOR_FLOATS
from .common import FASTMATH, stack_empty

CB = VECTOR_FLOATS                  # channels per block: one vector register
NO_RES5 = np.zeros((1, 1, 1, 1, CB), np.float32)   # "no residual" for the kernels


def blocks(c: int) -> int:
    """How many blocks of CB channels hold c channels."""
    return (c + CB - 1) // CB


# ---- layout conversion -----------------------------------------------------------------
@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _to_blocked(x, out):
    N, C, H, W = x.shape
    Cb = out.shape[1]
    for t in numba.prange(N * Cb * H):
        n = t // (Cb * H)
        r = t % (Cb * H)
        cb = r // H
        h = r % H
        o = out[n, cb, h]
        for j in range(CB):
            c = cb * CB + j
            if c < C:
                xr = x[n, c, h]
                for w in range(W):
                    o[w, j] = xr[w]
            else:
                for w in range(W):
                    o[w, j] = 0.0


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _from_blocked(xb, out):
    N, C, H, W = out.shape
    for t in numba.prange(N * C * H):
        n = t // (C * H)
        r = t % (C * H)
        c = r // H
        h = r % H
        cb = c // CB
        j = c % CB
        src = xb[n, cb, h]
        o = out[n, c, h]
        for w in range(W):
            o[w] = src[w, j]


def to_blocked(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) float32 -> (N, ceil(C/CB), H, W, CB), zero-filled past channel C."""
    N, C, H, W = x.shape
    out = np.empty((N, blocks(C), H, W, CB), np.float32)
    _to_blocked(np.ascontiguousarray(x), out)
    return out


def from_blocked(xb: np.ndarray, channels: int) -> np.ndarray:
    """(N, Cb, H, W, CB) -> (N, channels, H, W): the first ``channels`` channels."""
    N, _, H, W, _ = xb.shape
    out = np.empty((N, channels, H, W), np.float32)
    _from_blocked(xb, out)
    return out


def pad_bias(bias, c: int) -> np.ndarray:
    """(c,) bias (or a scalar) -> (ceil(c/CB) * CB,), zeros past c."""
    out = np.zeros(blocks(c) * CB, np.float32)
    out[:c] = bias
    return out


# ---- global average pooling: the squeeze of SE, and a network's pool before its classifier
@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _pool_blocked(xb, sums):
    """sums[n*Cb + b, j] = sum_{h,w} xb[n, b, h, w, j]: each row's sum in float32 registers
    (a vector of CB channels; W terms), the rows' sums added in float64 (as pooling.py's
    float64 sums: 12544 float32 terms would lose digits).
    xb (N, Cb, H, W, CB)   sums (N*Cb, CB) float64, zeros, made by the caller (a NumPy array
    constructor inside a kernel compiles for 0.4 s)"""
    N, Cb, H, W, cb_ = xb.shape
    for p in numba.prange(N * Cb):
        xp = xb[p // Cb, p % Cb]
        acc = sums[p]
        row = stack_empty(CB)
        for h in range(H):
            xh = xp[h]
            for j in range(CB):
                row[j] = 0.0
            for w in range(W):
                xw = xh[w]
                for j in range(CB):
                    row[j] += xw[j]
            for j in range(CB):
                acc[j] += row[j]


def global_avg_pool_blocked(xb: np.ndarray, channels: int) -> np.ndarray:
    """(N, Cb, H, W, CB) -> (N, channels): pooling.global_avg_pool of the NCHW tensor."""
    N, Cb, H, W, _ = xb.shape
    sums = np.zeros((N * Cb, CB), np.float64)
    _pool_blocked(xb, sums)
    return (sums.reshape(N, Cb * CB)[:, :channels] / (H * W)).astype(np.float32)
