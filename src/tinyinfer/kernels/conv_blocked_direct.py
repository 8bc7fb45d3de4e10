"""A dense conv (groups 1, any kernel) from NCHW input straight to blocked output: a
network's stem, whose input is the image (3 channels) and whose output starts the blocked
run (engine/layout.py)

    out[n, ob, oy, ox, :] = bias + sum_{ci,ky,kx} xpad[n, ci, oy*sh + ky, ox*sw + kx]
                                                  * w[ob*CB : ob*CB + CB, ci, ky, kx]

    x    (N, C, H, W)            NCHW, xpad: x with pt rows / pl columns of zeros before
    wp   (Cob, Kb*CB, CB)        conv_blocked.pack_dense: tap k = (ci*KH + ky)*KW + kx
    out  (N, Cob, Ho, Wo, CB)    residual likewise (or NO_RES5)

Each task: one output row of one image, for every output block. Its input rows (C*KH of
them) are first copied into a zero-padded buffer (a few KB, per thread), so that no tap
needs a test and every tap of every tile is one entry of a fixed offset table. Each tile:
MP2 pixels x 2 output blocks (MP1 pixels x 1 block for an odd last block), accumulators
in registers; per tap one buffer value per pixel, broadcast, and the tap's weight vectors.

Before this kernel the stem wrote an im2col panel in the blocked layout (27 taps of 3x3x3
= 2 blocks per pixel, stored a lane at a time) and ran the pointwise kernel on it. In the
network, one process, panel / direct (2026-12-03, Zen 4): MobileNetV3-Small's 3->16 stem
0.55 -> 0.25 ms at batch 1 and 4.7 -> 1.8 at batch 8, MobileNetV2's 3->32 0.55 -> 0.35 and
5.2 -> 2.3. (An earlier direct kernel, without the buffer and with signed offsets, had been
no faster than the panel.)

The offsets are unsigned: with signed run-time offsets Numba emits negative-index
wraparound code per load, which took longer than the multiply-adds in a first version.
"""
from __future__ import annotations

import numba
import numpy as np

from .blocked_layout import CB, NO_RES5
from .common import FASTMATH, epilogue, stack_empty

MP2 = 5                 # pixels per 2-block tile: 10 accumulators, 2 weight vectors and a
MP1 = 2 * MP2           # broadcast (of 16 registers on AVX2, 32 on AVX-512); 1-block: 10 + 2
TILE = 10 * CB
U = np.uint64


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _direct(x, wp, bias, KH, KW, sh, sw, pt, pl, act, resb, has_res, out, offs, bufs):
    """out = act(conv(x) + bias) (+ resb) as in the module docstring; offs[k] (uint64) the
    buffer offset of tap k = (ci*KH + ky)*KW + kx: (ci*KH + ky)*Wp + kx. bufs (chunks,
    C*KH*Wp): a buffer per chunk of rows (one chunk per thread), made by the caller (a
    NumPy constructor in the kernel compiled for 0.4 s of a cold start)."""
    N, C, H, W = x.shape
    Cob, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    Wp = bufs.shape[1] // (C * KH)
    tasks = N * Ho
    nchunks = bufs.shape[0]
    for chunk in numba.prange(nchunks):
        buf = bufs[chunk]
        for t in range(chunk * tasks // nchunks, (chunk + 1) * tasks // nchunks):
            n = t // Ho
            oy = t % Ho
            for r in range(C * KH):                 # input rows ci, oy*sh + ky - pt
                iy = oy * sh + r % KH - pt
                row = buf[r * Wp:(r + 1) * Wp]
                if 0 <= iy < H:
                    xr = x[n, r // KH, iy]
                    rr = row[pl:]
                    for i in range(W):
                        rr[i] = xr[i]
                    for i in range(pl):
                        row[i] = 0.0
                    for i in range(pl + W, Wp):
                        row[i] = 0.0
                else:
                    for i in range(Wp):
                        row[i] = 0.0
            on = out[n]
            for ob in range(0, Cob - 1, 2):
                _tiles2(buf, offs, wp[ob], wp[ob + 1], bias[ob * CB:], bias[(ob + 1) * CB:],
                        U(sw), on[ob, oy].reshape(-1), on[ob + 1, oy].reshape(-1))
            if Cob % 2 == 1:
                _tiles1(buf, offs, wp[Cob - 1], bias[(Cob - 1) * CB:], U(sw),
                        on[Cob - 1, oy].reshape(-1))
            for ob in range(Cob):
                epilogue(on[ob, oy].reshape(-1),
                         resb[n, ob, oy].reshape(-1) if has_res else None, act)


@numba.njit(fastmath=FASTMATH, cache=True)
def _tiles2(buf, offs, w0, w1, b0, b1, sw, o0, o1):
    """One output row of two blocks (o0, o1: Wo*CB floats each), MP2 pixels per tile; a
    last tile's pixels past Wo read the buffer's slack and are not written."""
    Wo = o0.shape[0] // CB
    acc = stack_empty(TILE)
    s1, s2, s3, s4 = sw, U(2) * sw, U(3) * sw, U(4) * sw
    for p0 in range(0, Wo, MP2):
        _start(acc, 0, b0, MP2)
        _start(acc, MP2 * CB, b1, MP2)
        base = U(p0) * sw
        for k in range(offs.shape[0]):
            o = offs[k] + base
            a0, a1, a2, a3, a4 = buf[o], buf[o + s1], buf[o + s2], buf[o + s3], buf[o + s4]
            wa = w0[k]
            wb = w1[k]
            for j in range(CB):
                u = wa[j]
                v = wb[j]
                acc[j] += a0 * u
                acc[CB + j] += a1 * u
                acc[2 * CB + j] += a2 * u
                acc[3 * CB + j] += a3 * u
                acc[4 * CB + j] += a4 * u
                acc[5 * CB + j] += a0 * v
                acc[6 * CB + j] += a1 * v
                acc[7 * CB + j] += a2 * v
                acc[8 * CB + j] += a3 * v
                acc[9 * CB + j] += a4 * v
        _store(acc, 0, o0[p0 * CB:], min(MP2, Wo - p0), MP2)
        _store(acc, MP2 * CB, o1[p0 * CB:], min(MP2, Wo - p0), MP2)


@numba.njit(fastmath=FASTMATH, cache=True)
def _tiles1(buf, offs, w0, b0, sw, o0):
    """_tiles2 for one block, MP1 pixels per tile."""
    Wo = o0.shape[0] // CB
    acc = stack_empty(TILE)
    s1, s2, s3, s4, s5 = sw, U(2) * sw, U(3) * sw, U(4) * sw, U(5) * sw
    s6, s7, s8, s9 = U(6) * sw, U(7) * sw, U(8) * sw, U(9) * sw
    for p0 in range(0, Wo, MP1):
        _start(acc, 0, b0, MP2)         # as two halves: as one of MP1 pixels LLVM kept
        _start(acc, MP2 * CB, b0, MP2)  # acc in memory (a float at a time)
        base = U(p0) * sw
        for k in range(offs.shape[0]):
            o = offs[k] + base
            a0, a1, a2, a3, a4 = buf[o], buf[o + s1], buf[o + s2], buf[o + s3], buf[o + s4]
            a5, a6, a7, a8, a9 = buf[o + s5], buf[o + s6], buf[o + s7], buf[o + s8], buf[o + s9]
            wa = w0[k]
            for j in range(CB):
                u = wa[j]
                acc[j] += a0 * u
                acc[CB + j] += a1 * u
                acc[2 * CB + j] += a2 * u
                acc[3 * CB + j] += a3 * u
                acc[4 * CB + j] += a4 * u
                acc[5 * CB + j] += a5 * u
                acc[6 * CB + j] += a6 * u
                acc[7 * CB + j] += a7 * u
                acc[8 * CB + j] += a8 * u
                acc[9 * CB + j] += a9 * u
        mp = min(MP1, Wo - p0)
        _store(acc, 0, o0[p0 * CB:], min(MP2, mp), MP2)
        _store(acc, MP2 * CB, o0[(p0 + MP2) * CB:], mp - MP2, MP2)


@numba.njit(inline="always", cache=True)
def _start(acc, a0, b, npx):
    """acc[a0:a0 + npx*CB] = the bias b, npx pixels of one block (npx a constant)."""
    for i in range(npx):
        for j in range(CB):
            acc[a0 + i * CB + j] = b[j]


@numba.njit(inline="always", cache=True)
def _store(acc, a0, t, mp, npx):
    """t[:mp*CB] = acc[a0:a0 + mp*CB], mp <= npx pixels of one block, as a loop over the
    npx (a constant) pixels that tests each: LLVM keeps acc in registers and stores a
    vector per pixel. (Written as one flat loop over mp*CB floats, or with the bias copied
    in from a second stack tile, it moved a float at a time: the stem 1.5x slower, 3->32
    @224 one thread 427 -> 281 us; one process, 2026-12-03, Zen 4.)"""
    for i in range(npx):
        if i < mp:
            for j in range(CB):
                t[i * CB + j] = acc[a0 + i * CB + j]


def bind_direct(shape, wp, bias_p, kernel, stride, padding, act):
    """The conv for NCHW x of ``shape`` (N, C, H, W) with packed wp (pack_dense) and bias_p
    (pad_bias); kernel (KH, KW), stride (sh, sw), padding (top, bottom, left, right): a
    function (x, residual=None) -> blocked output (N, wp.shape[0], Ho, Wo, CB), its tap
    table and task split worked out once."""
    (N, C, H, W), (KH, KW), (sh, sw), (pt, pb, pl, pr) = shape, kernel, stride, padding
    Ho, Wo = (H + pt + pb - KH) // sh + 1, (W + pl + pr - KW) // sw + 1
    # buffer columns: the padded row, and the slack the last tile's extra pixels read
    Wp = max(pl + W, ((Wo + MP1 - 1) // MP1 * MP1 - 1) * sw + KW)
    offs = np.array([(r * Wp + kx) for r in range(C * KH) for kx in range(KW)], np.uint64)
    bufs_shape = (min(numba.get_num_threads(), N * Ho), C * KH * Wp)

    def call(x, residual=None):
        out = np.empty((N, wp.shape[0], Ho, Wo, CB), np.float32)
        _direct(x, wp, bias_p, KH, KW, sh, sw, pt, pl, act,
                NO_RES5 if residual is None else residual, residual is not None, out, offs,
                np.empty(bufs_shape, np.float32))
        return out
    return call
