"""Depthwise convolution on the channel-blocked layout (blocked_layout.py): every vector
instruction does CB channels' multiply-adds of one pixel, whatever the map size

    out[:, cb, oy, ox, :] += xb[:, cb, oy*sh + ky, ox*sw + kx, :] * w[cb, ky, kx, :]

with TW = 8 output pixels of one row per tile, their accumulators in registers. In NCHW
the same conv vectorizes along a row of pixels, and a 7x7 map has rows of 7.

    xb       (N, ceil(C/CB), H, W, CB)      wd   (ceil(C/CB), KH, KW, CB)  (pack_depthwise)
    bias     (ceil(C/CB)*CB,)  (pad_bias)   out, residual like xb at the output's size
conv.py holds the conv's shapes, cost and reference; conv_blocked.conv2d_blocked is the
entry that checks arguments and packs weights.
"""
from __future__ import annotations

import numba
import numpy as np

from .blocked_layout import CB, NO_RES5, blocks
from .common import FASTMATH, epilogue, stack_empty

TW = 8                               # output pixels per tile, one block of CB channels
DW_TILE = TW * CB
# Row bands where one image's blocks leave threads idle: one process, per call paired,
# one task per plane / banded (2026-12-03, Zen 4, 2 threads, batch 1): 16 ch @112 s1 0.55-
# 0.59 (2-8 bands), s2 0.66-0.74; 40 ch 5x5 @28 0.78-0.84 (2 bands; 3 bands, 5:4 tasks,
# 0.90); 72 ch s2 @56 0.86-0.89; 2 or 4 blocks on 2 threads: 0.99-1.04 with bands, so none.
MAX_IDLE = 0.1


def pack_depthwise(w: np.ndarray) -> np.ndarray:
    """(C, 1, KH, KW) -> (ceil(C/CB), KH, KW, CB): each tap's CB channel weights together."""
    c, _, kh, kw = w.shape
    p = np.zeros((blocks(c) * CB, kh, kw), np.float32)
    p[:c] = w[:, 0]
    return np.ascontiguousarray(p.reshape(blocks(c), CB, kh, kw).transpose(0, 2, 3, 1))


# ---- depthwise: groups == C == Cout, any kernel, stride and padding, dilation 1 ----------
@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _depthwise(xb, wd, bias, sh, sw, pt, pl, act, resb, has_res, outb, nchunks, bands):
    """outb[n, cb, oy, ox, j] = act(bias + sum_{ky,kx} xpad[n, cb, oy*sh + ky, ox*sw + kx, j]
    * wd[cb, ky, kx, j]) (+ res), xpad: xb with pt rows / pl columns of zeros before.

    xb (N, Cb, H, W, CB)   wd (Cb, KH, KW, CB)   bias (Cb*CB,)   resb, outb (N, Cb, Ho, Wo, CB)
    One task: one band of output rows (``bands`` per plane, row_bands) of one block of one
    image. It first copies the input rows it reads into a zero-padded buffer (one pass over
    the input), so that no tap needs a bounds test: at 7x7 and 14x14 maps nearly every tile
    touches a border. One chunk of tasks per thread, so the buffer is made and its border
    zeroed once per thread (per task, that was a third of a 7x7 layer)."""
    N, Cb, H, W = xb.shape[0], xb.shape[1], xb.shape[2], xb.shape[3]
    Ho, Wo = outb.shape[2], outb.shape[3]
    Hp, Wp = padded_plane(H, W, Ho, Wo, wd.shape[1], wd.shape[2], sh, sw, pt, pl)
    tasks = N * Cb * bands
    nchunks = min(nchunks, tasks)
    for chunk in numba.prange(nchunks):
        buf = np.zeros((Hp, Wp * CB), np.float32)
        for t in range(chunk * tasks // nchunks, (chunk + 1) * tasks // nchunks):
            n = t // (Cb * bands)
            cb = t // bands % Cb
            band = t % bands
            oy0, oy1 = band * Ho // bands, (band + 1) * Ho // bands
            dw_rows(xb[n, cb], wd[cb], bias[cb * CB:cb * CB + CB], sh, sw, pt, pl, buf,
                    outb[n, cb], oy0, oy1)
            # the activation and residual once per band: per 8-pixel tile, the calls into
            # the activation code cost 40% of a 7x7 layer
            lo, hi = oy0 * Wo * CB, oy1 * Wo * CB     # (1-D slices stay contiguous)
            epilogue(outb[n, cb].reshape(-1)[lo:hi],
                     resb[n, cb].reshape(-1)[lo:hi] if has_res else None, act)


@numba.njit(inline="always", cache=True)
def padded_plane(H, W, Ho, Wo, KH, KW, sh, sw, pt, pl):
    """(rows, columns) of the zero-padded copy of a plane that the taps of whole tiles reach
    (a tile's pixels past Wo read zeros: slack columns)."""
    return (max(pt + H, (Ho - 1) * sh + KH),
            max(pl + W, ((Wo + TW - 1) // TW * TW - 1) * sw + KW))


@numba.njit(inline="always", cache=True)
def dw_rows(xp, wc, bb, sh, sw, pt, pl, buf, op, oy0, oy1):
    """Output rows oy0 .. oy1-1 of one block's plane op (Ho, Wo, CB), before any activation.
    First the padded rows they read, oy0*sh .. (oy1-1)*sh + KH - 1, go into buf's rows from
    0: xp's rows (H, W, CB) into the interior, zeros for a row of padding (buf's columns of
    padding are zeros and never written)."""
    H, W = xp.shape[0], xp.shape[1]
    for i in range((oy1 - 1 - oy0) * sh + wc.shape[0]):
        y = oy0 * sh + i - pt
        row = buf[i, pl * CB:(pl + W) * CB]
        if 0 <= y < H:
            src = xp[y].reshape(-1)
            for j in range(W * CB):
                row[j] = src[j]
        else:
            for j in range(W * CB):
                row[j] = 0.0
    _dw_rows(buf, wc, bb, sh, sw, oy1 - oy0, op[oy0:oy1].reshape(-1), op.shape[1])


@numba.njit(inline="always", cache=True)
def _dw_taps(x0, wv, c, st, acc):
    """acc[i] += x0[c + i*st : +CB] * wv for the TW pixels i; ``st`` a literal at both
    call sites, so every offset is a constant."""
    for j in range(CB):
        u = wv[j]
        acc[j] += x0[c + j] * u
        acc[CB + j] += x0[c + st + j] * u
        acc[2 * CB + j] += x0[c + 2 * st + j] * u
        acc[3 * CB + j] += x0[c + 3 * st + j] * u
        acc[4 * CB + j] += x0[c + 4 * st + j] * u
        acc[5 * CB + j] += x0[c + 5 * st + j] * u
        acc[6 * CB + j] += x0[c + 6 * st + j] * u
        acc[7 * CB + j] += x0[c + 7 * st + j] * u


@numba.njit(fastmath=FASTMATH, cache=True)
def _dw_rows(buf, wd, bb, sh, sw, nrows, o, Wo):
    """Output rows 0 .. nrows-1 (o: their nrows * Wo * CB floats) of one block, from buf's
    rows from 0, TW pixels per tile: the tile's accumulators in registers, each pixel a
    named offset (as in the pointwise k loops: a loop over pixels stayed in memory). One
    call per band of rows: per tile, the call and its array arguments cost about as much
    as a 3x3 tile's 72 multiply-adds (a call per row was 1.2-1.9x faster than per tile at
    stride 1, and per band 1.03-1.28x faster than per row: 384 ch @14 0.82, 960 @7 0.78,
    144 @56 0.93, 672 5x5 @14 0.92; one process, paired per call, 2026-12-03, Zen 4)."""
    KH, KW = wd.shape[0], wd.shape[1]
    acc = stack_empty(DW_TILE)
    for oy in range(nrows):
        orow = o[oy * Wo * CB:(oy + 1) * Wo * CB]
        for ox0 in range(0, Wo, TW):
            for i in range(TW):
                for j in range(CB):
                    acc[i * CB + j] = bb[j]
            # One slice per input row, the 8 pixels at constant offsets from it (one loop
            # per stride, see supports): with run-time offsets Numba's negative-index
            # wraparound turned the loads into gathers. The buffer has slack columns, so
            # pixels of a tile past the row's end read zeros (and are not written).
            for ky in range(KH):
                x0 = buf[oy * sh + ky, ox0 * sw * CB:]
                wk = wd[ky]
                if sw == 1:
                    for kx in range(KW):
                        _dw_taps(x0, wk[kx], kx * CB, CB, acc)
                else:
                    for kx in range(KW):
                        _dw_taps(x0, wk[kx], kx * CB, 2 * CB, acc)
            ot = orow[ox0 * CB:]
            tw = min(TW, Wo - ox0)
            for i in range(TW):         # a constant trip count: acc stays in registers
                if i < tw:              # (with range(tw), 3-5x slower: acc went to memory)
                    for j in range(CB):
                        ot[i * CB + j] = acc[i * CB + j]


def row_bands(planes: int, Ho: int, threads: int) -> int:
    """Bands of output rows per plane (a task is one band of one image's block): the fewest
    with which no thread idles more than MAX_IDLE of the time waiting for the others (at
    batch 1, MobileNetV3's 16-channel layers are 1 plane for 2 threads, 40 channels 3)."""
    for bands in range(1, Ho):
        tasks = planes * bands
        if -(-tasks // threads) * threads <= (1 + MAX_IDLE) * tasks:
            return bands
    return Ho


def bind_depthwise(shape, wd, bias_p, stride, padding, act):
    """Depthwise conv on blocked inputs of ``shape`` with packed wd (pack_depthwise) and
    bias_p (pad_bias); padding (top, bottom, left, right): a function (xb, residual=None)
    -> blocked output, its shape and task split (row_bands) worked out once."""
    N, Cb, H, W, _ = shape
    KH, KW = wd.shape[1], wd.shape[2]
    (sh, sw), (pt, pb, pl, pr) = stride, padding
    Ho = (H + pt + pb - KH) // sh + 1
    Wo = (W + pl + pr - KW) // sw + 1
    threads = numba.get_num_threads()
    bands = row_bands(N * Cb, Ho, threads)

    def call(xb, residual=None):
        out = np.empty((N, Cb, Ho, Wo, CB), np.float32)
        _depthwise(xb, wd, bias_p, sh, sw, pt, pl, act,
                   NO_RES5 if residual is None else residual, residual is not None, out,
                   threads, bands)
        return out
    return call
