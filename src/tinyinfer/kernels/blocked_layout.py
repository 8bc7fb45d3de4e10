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
from .pooling import _pool_geometry

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
    N, Cb = xb.shape[0], xb.shape[1]
    for p in numba.prange(N * Cb):
        pool_plane(xb[p // Cb, p % Cb], sums[p])


@numba.njit(inline="always", cache=True, fastmath=FASTMATH)
def pool_plane(xp, acc):
    """acc[j] += sum_{h,w} xp[h, w, j] (float64 acc, float32 row sums: see _pool_blocked).
    xp (H, W, CB)"""
    row = stack_empty(CB)
    for h in range(xp.shape[0]):
        xh = xp[h]
        for j in range(CB):
            row[j] = 0.0
        for w in range(xp.shape[1]):
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


# ---- max pooling and concatenation (SqueezeNet's and GoogLeNet's blocked runs) ----------
@numba.njit(parallel=True, cache=True)
def _max_pool_blocked(xb, out, kh, kw, sh, sw, ph, pw, dh, dw, rows):
    """out[n, b, oh, ow, :] = max over the window of xb[n, b, ., ., :], NaN winning and the
    padding never selected, as pooling.max_pool2d.
    xb (N, Cb, H, W, CB)   out (N, Cb, OH, OW, CB); a task: ``rows`` output rows of a block.
    Per output row as pooling._max_pool2d: the max down the window's rows into ``col`` (a
    row padded with -inf), then across its taps at stride 1 into ``h``, then every SW-th
    pixel of h out; every loop over whole rows of pixels x CB channels (flat, so they
    vectorize; at the same speed as the NCHW kernel: the NaN-aware max is the cost)."""
    N, Cb, H, W = xb.shape[0], xb.shape[1], xb.shape[2], xb.shape[3]
    OH, OW = out.shape[2], out.shape[3]
    L = (OW - 1) * sw + (kw - 1) * dw + 1       # the padded row the windows read
    nw = min(W, L - pw)                          # input columns inside it
    nh = L - (kw - 1) * dw                       # window starts at stride 1
    nr = (OH + rows - 1) // rows
    for t in numba.prange(N * Cb * nr):
        xp = xb[t // (Cb * nr), t // nr % Cb]
        op = out[t // (Cb * nr), t // nr % Cb]
        col = np.full(L * CB, -np.inf, np.float32)
        h = np.empty(nh * CB, np.float32)
        seg = col[pw * CB:(pw + nw) * CB]
        for oh in range(t % nr * rows, min(t % nr * rows + rows, OH)):
            first = True
            for i in range(kh):
                ih = oh * sh - ph + i * dh
                if ih < 0 or ih >= H:
                    continue
                xr = xp[ih].reshape(-1)
                if first:                        # PyTorch: a window has >= 1 input row
                    for e in range(nw * CB):
                        seg[e] = xr[e]
                    first = False
                else:
                    for e in range(nw * CB):
                        v, m = xr[e], seg[e]
                        seg[e] = v if (v > m) | (v != v) else m
            for e in range(nh * CB):
                h[e] = col[e]
            for k in range(1, kw):
                c = col[k * dw * CB:]
                for e in range(nh * CB):
                    v, m = c[e], h[e]
                    h[e] = v if (v > m) | (v != v) else m
            orow = op[oh]
            for q in range(OW):                  # slices, not offsets: no index wraparound
                o, src = orow[q], h[q * sw * CB:]
                for j in range(CB):
                    o[j] = src[j]


def max_pool2d_blocked(xb: np.ndarray, kernel, stride=None, padding=0, dilation=1,
                       ceil_mode: bool = False) -> np.ndarray:
    """pooling.max_pool2d (same arguments, same output sizes) on blocked xb."""
    N, Cb, H, W, _ = xb.shape
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = _pool_geometry(
        (N, Cb * CB, H, W), kernel, stride, padding, dilation, ceil_mode, "max_pool2d")
    out = np.empty((N, Cb, OH, OW, CB), np.float32)
    rows = max(1, min(OH, OH * N * Cb // 32))   # >= ~32 tasks: even shares for 2-8 threads
    _max_pool_blocked(xb, out, kh, kw, sh, sw, ph, pw, dh, dw, rows)
    return out


# ---- channel moves: concats, slices, shuffles ---------------------------------------------
# Each as one map per source value: source channel s goes to output channel dst_of[s] (-1:
# nowhere). engine/layout.py composes chains of them (ShuffleNetV2's slice -> concat ->
# shuffle) into one move per chain, and keeps the tables scatter_table makes.

def scatter_table(dst_of, src_shape) -> tuple[int, np.ndarray]:
    """(b0, offs) for one source of NCHW shape (N, C, H, W): offs[i, j] is where output
    channel (b0 + i)*CB + j finds its source lane in pixel 0 of the blocked source (flat
    within an image), -1 where this source does not write it."""
    _, C, H, W = src_shape
    dst_of = np.asarray(dst_of, np.int64)
    used = np.nonzero(dst_of >= 0)[0]
    d = dst_of[used]
    b0, b1 = int(d.min()) // CB, int(d.max()) // CB + 1
    offs = np.full((b1 - b0) * CB, -1, np.int64)
    offs[d - b0 * CB] = (used // CB) * (H * W * CB) + used % CB
    return b0, offs.reshape(b1 - b0, CB)


@numba.njit(parallel=True, cache=True)
def _scatter(src, offs, b0, dst):
    """dst[n, b0 + i, p, j] = src[n] (flat) at offs[i, j] + p*CB, where offs[i, j] >= 0.
    src (N, Cib, H, W, CB)   offs (nb, CB) int64   dst (N, Cob, H, W, CB)
    A lane at a time (an indexed load): per element 2-4x NCHW's plane copies, which the
    blocked convs on either side repay on maps up to 28x28 (engine/layout.py)."""
    N, H, W = dst.shape[0], dst.shape[2], dst.shape[3]
    nb = offs.shape[0]
    P = H * W
    for t in numba.prange(N * nb):
        n = t // nb
        i = t % nb
        s = src[n].reshape(-1)
        d = dst[n, b0 + i].reshape(-1)
        o = offs[i]
        for p in range(P):
            dp = d[p * CB:]                   # slices, not offsets: no index wraparound
            sp = s[p * CB:]
            for j in range(CB):
                if o[j] >= 0:
                    dp[j] = sp[o[j]]


def move_channels(xbs, tables, channels: int) -> np.ndarray:
    """The blocked output of ``channels`` channels that the blocked sources xbs fill, each
    by its scatter_table (together they must write every output channel); the padded lanes
    past ``channels`` zeroed."""
    N, _, H, W, _ = xbs[0].shape
    out = np.empty((N, blocks(channels), H, W, CB), np.float32)
    for xb, (b0, offs) in zip(xbs, tables):
        _scatter(xb, offs, b0, out)
    if channels % CB:
        out[:, -1, ..., channels % CB:] = 0.0
    return out
