"""Grouped 2-D convolution with a few channels per group (RegNet, ResNeXt, ShuffleNet V1),
computed directly from the input, without an im2col matrix.

    x        (N, Cin, H, W)                float32, NCHW
    weight   (Cout, Cin // groups, KH, KW) float32, PyTorch's layout
    bias     (Cout,) or None
    residual (N, Cout, Ho, Wo) or None     added AFTER the activation
    out      (N, Cout, Ho, Wo)             out[:, g*Cout/G : (g+1)*Cout/G] sees only
                                           x[:, g*Cin/G : (g+1)*Cin/G]

    out = act(conv(x, weight, groups) + bias) + residual          (conv.conv2d_ref)

conv.py holds the shapes, cost, reference and the dispatch: conv2d(..., variant="grouped")
runs this kernel on any conv, and conv2d runs it by itself for 1 < groups < Cin, k > 1.

Why a kernel of its own
-----------------------
The im2col path (conv_im2col.py) writes a matrix of Cin*KH*KW rows of Ho*Wo (9x the input
for a 3x3) and multiplies each group's slice of it. A RegNet group has 8 to 24 channels, so
each group's product is tiny (16 output rows x 144 columns) and the time goes to writing
and re-reading that matrix (a fresh, page-faulting allocation per call) and to two
parallel launches. Here each thread copies one group's channels into a small zero-padded
buffer (as conv_depthwise.py does for one channel: split by stride phase, so every tap is
one contiguous slice) and multiplies straight out of it:

    buf[c, a, b] (flat, rows of Wq)  = xpad[c, r*sh + a, i*sw + b]       a < sh, b < sw
    tap k = (c, ky, kx) of output f  = buf[c, ky*dh % sh, kx*dw % sw][f + offset(ky, kx)]
    out[co, f] = bias[co] + sum_k w[co, k] * tap_k[f]        f = oy*Wq + ox (flat)

That last line is a matrix product whose K "rows" are shifted views of the buffer: the same
4-output x 8-row register blocking as conv_pointwise's ``_rows4``. Flat positions with
ox >= Wo (Wq - Wo per row) are computed and dropped, like the depthwise kernel's.
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import AFTER_RESIDUAL, act_inplace
from .common import FASTMATH, NO_RES4, epilogue, w8

# Flat output positions per tile: 4 output rows x 512 floats = 8 KB of accumulators in L1.
TILE = 512


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _grouped(x, w, bias, groups, kh, kw, pt, pl, sh, sw, dh, dw, act, res, has_res, out,
             nchunks):
    """x (N, C, H, W)  w (Cout, Cg*KH*KW)  bias (Cout,)  res, out (N, Cout, Ho, Wo).

    One task = 4 output channels of one group of one image; tasks are cut into ``nchunks``
    contiguous runs (one per thread), so a thread refills its buffer only when its run
    crosses into the next group.
    """
    N, C, H, W = x.shape
    Cout, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    Cg = C // groups
    CoG = Cout // groups
    K = Cg * kh * kw
    Hq = (Ho - 1) + (kh - 1) * dh // sh + 1          # buffer rows / columns per phase
    Wq = (Wo - 1) + (kw - 1) * dw // sw + 1
    L = ((Ho * Wq + 15) // 16) * 16                  # flat outputs, whole vectors
    Hb = Hq + (L - Ho * Wq + Wq - 1) // Wq + 1       # slack rows: the last taps stay inside
    # row k = (c, ky, kx) of the product: which buffer plane, and the offset of the tap
    plane = np.empty(K, np.int64)
    offset = np.empty(K, np.int64)
    for c in range(Cg):
        for ky in range(kh):
            for kx in range(kw):
                k = (c * kh + ky) * kw + kx
                plane[k] = (c * sh + (ky * dh) % sh) * sw + (kx * dw) % sw
                offset[k] = ((ky * dh) // sh) * Wq + (kx * dw) // sw
    # per column phase b: buffer columns [col_lo, col_hi) hold input columns, the rest pad
    col_lo = np.empty(sw, np.int64)
    col_hi = np.empty(sw, np.int64)
    for b in range(sw):
        col_lo[b] = min(max(0, (pl - b + sw - 1) // sw), Wq)
        col_hi[b] = max(min(Wq, (W - 1 + pl - b) // sw + 1), col_lo[b])
    nob = (CoG + 3) // 4
    ntasks = N * groups * nob
    nchunks = min(ntasks, nchunks)
    for chunk in numba.prange(nchunks):
        buf = np.zeros((Cg * sh * sw, Hb * Wq), np.float32)   # padding zeroed once
        acc = np.empty((4, L), np.float32)
        loaded = -1
        for task in range(chunk * ntasks // nchunks, (chunk + 1) * ntasks // nchunks):
            ng = task // nob                         # = n * groups + g
            n = ng // groups
            g = ng % groups
            if ng != loaded:
                _fill(x, n, g * Cg, Cg, buf, pt, pl, sh, sw, Hq, Wq, col_lo, col_hi)
                loaded = ng
            co = g * CoG + (task % nob) * 4
            nco = min(4, g * CoG + CoG - co)
            for f0 in range(0, L, TILE):
                f1 = min(f0 + TILE, L)
                if nco == 4:
                    _taps4(buf, plane, offset, w, bias, co, f0, f1, acc)
                else:
                    for j in range(nco):
                        _taps1(buf, plane, offset, w, bias, co + j, f0, f1, acc[j])
            for j in range(nco):
                a = acc[j]
                if act < AFTER_RESIDUAL:             # act(conv) + res: on the whole plane
                    epilogue(a, None, act)
                for oy in range(Ho):                 # keep the Wo valid columns of each row
                    o = out[n, co + j, oy]
                    row = a[oy * Wq:oy * Wq + Wo]
                    if has_res:
                        r = res[n, co + j, oy]
                        for i in range(Wo):
                            o[i] = row[i] + r[i]
                    else:
                        for i in range(Wo):
                            o[i] = row[i]
                    if act >= AFTER_RESIDUAL:        # act(conv + res): per output row
                        act_inplace(o, act - AFTER_RESIDUAL)


@numba.njit(cache=True)
def _fill(x, n, c0, Cg, buf, pt, pl, sh, sw, Hq, Wq, col_lo, col_hi):
    """Copy channels c0 .. c0+Cg-1 of image n into the interior of buf: input (iy, ix) of
    channel c goes to plane (c, (iy+pt) % sh, (ix+pl) % sw), row (iy+pt) // sh, column
    (ix+pl) // sw. Positions in the padding are never written, so they stay zero."""
    H = x.shape[2]
    for c in range(Cg):
        for a in range(sh):
            for ry in range(Hq):
                iy = ry * sh + a - pt
                if iy < 0 or iy >= H:
                    continue
                src_row = x[n, c0 + c, iy]
                for b in range(sw):
                    lo = col_lo[b]
                    k = col_hi[b] - lo
                    dst = buf[(c * sh + a) * sw + b, ry * Wq + lo:ry * Wq + lo + k]
                    src = src_row[lo * sw + b - pl:]
                    if sw == 1:
                        for i in range(k):
                            dst[i] = src[i]
                    else:
                        for i in range(k):
                            dst[i] = src[i * sw]


@numba.njit(fastmath=FASTMATH, cache=True)
def _taps4(buf, plane, offset, w, bias, co, f0, f1, acc):
    """acc[0:4, f0:f1] = bias[co:co+4] + w[co:co+4, :] @ taps[:, f0:f1]"""
    K = plane.shape[0]
    o0 = acc[0, f0:f1]
    o1 = acc[1, f0:f1]
    o2 = acc[2, f0:f1]
    o3 = acc[3, f0:f1]
    n = f1 - f0
    b0, b1, b2, b3 = bias[co], bias[co + 1], bias[co + 2], bias[co + 3]
    for p in range(n):
        o0[p] = b0
        o1[p] = b1
        o2[p] = b2
        o3[p] = b3
    for k in range(0, K, 8):
        # 8 taps; past the end of K the last tap again, with weight 0 (see w8)
        x0, x1 = _tap(buf, plane, offset, k, f0, f1), _tap(buf, plane, offset, k + 1, f0, f1)
        x2, x3 = _tap(buf, plane, offset, k + 2, f0, f1), _tap(buf, plane, offset, k + 3, f0, f1)
        x4, x5 = _tap(buf, plane, offset, k + 4, f0, f1), _tap(buf, plane, offset, k + 5, f0, f1)
        x6, x7 = _tap(buf, plane, offset, k + 6, f0, f1), _tap(buf, plane, offset, k + 7, f0, f1)
        if k + 8 <= K:      # whole 8: plain loads (w8's bound tests cost 30% on 7x7 maps)
            a0, a1, a2, a3, a4, a5, a6, a7 = _w8_full(w, co, k)
            b0, b1, b2, b3, b4, b5, b6, b7 = _w8_full(w, co + 1, k)
            c0, c1, c2, c3, c4, c5, c6, c7 = _w8_full(w, co + 2, k)
            d0, d1, d2, d3, d4, d5, d6, d7 = _w8_full(w, co + 3, k)
        else:
            a0, a1, a2, a3, a4, a5, a6, a7 = w8(w, co, k)
            b0, b1, b2, b3, b4, b5, b6, b7 = w8(w, co + 1, k)
            c0, c1, c2, c3, c4, c5, c6, c7 = w8(w, co + 2, k)
            d0, d1, d2, d3, d4, d5, d6, d7 = w8(w, co + 3, k)
        for p in range(n):
            v0, v1, v2, v3 = x0[p], x1[p], x2[p], x3[p]
            v4, v5, v6, v7 = x4[p], x5[p], x6[p], x7[p]
            o0[p] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4 + a5 * v5 + a6 * v6 + a7 * v7
            o1[p] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3 + b4 * v4 + b5 * v5 + b6 * v6 + b7 * v7
            o2[p] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3 + c4 * v4 + c5 * v5 + c6 * v6 + c7 * v7
            o3[p] += d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3 + d4 * v4 + d5 * v5 + d6 * v6 + d7 * v7


@numba.njit(fastmath=FASTMATH, cache=True)
def _taps1(buf, plane, offset, w, bias, c, f0, f1, acc_row):
    """acc_row[f0:f1] = bias[c] + w[c, :] @ taps[:, f0:f1]: groups with Cout/G % 4 != 0."""
    K = plane.shape[0]
    o = acc_row[f0:f1]
    bc = bias[c]
    for p in range(f1 - f0):
        o[p] = bc
    for k in range(0, K, 8):
        x0, x1 = _tap(buf, plane, offset, k, f0, f1), _tap(buf, plane, offset, k + 1, f0, f1)
        x2, x3 = _tap(buf, plane, offset, k + 2, f0, f1), _tap(buf, plane, offset, k + 3, f0, f1)
        x4, x5 = _tap(buf, plane, offset, k + 4, f0, f1), _tap(buf, plane, offset, k + 5, f0, f1)
        x6, x7 = _tap(buf, plane, offset, k + 6, f0, f1), _tap(buf, plane, offset, k + 7, f0, f1)
        a0, a1, a2, a3, a4, a5, a6, a7 = w8(w, c, k)
        for p in range(f1 - f0):
            o[p] += (a0 * x0[p] + a1 * x1[p] + a2 * x2[p] + a3 * x3[p]
                     + a4 * x4[p] + a5 * x5[p] + a6 * x6[p] + a7 * x7[p])


@numba.njit(inline="always", cache=True)
def _tap(buf, plane, offset, k, f0, f1):
    """Tap k's inputs for flat outputs f0..f1 (the last tap when k is past the end)."""
    k = min(k, plane.shape[0] - 1)
    s = offset[k]
    return buf[plane[k], s + f0:s + f1]


@numba.njit(inline="always", cache=True)
def _w8_full(w, c, k):
    """w[c, k:k+8] when all 8 exist."""
    r = w[c]
    return r[k], r[k + 1], r[k + 2], r[k + 3], r[k + 4], r[k + 5], r[k + 6], r[k + 7]


# ---------------------------------------------------------------------------------------
# Entry point

def grouped_conv2d_into(x, weight, bias, stride, padding, dilation, groups, act, residual,
                        out) -> np.ndarray:
    """The "grouped" variant, for arguments conv.check_conv_args has validated: x, weight,
    bias float32 C-contiguous, stride/dilation (h, w), padding (top, bottom, left, right),
    act an int code, residual None or out's shape, out allocated. Fills and returns ``out``."""
    cout, cin_g, kh, kw = weight.shape
    has_res = residual is not None
    _grouped(x, weight.reshape(cout, cin_g * kh * kw), bias, int(groups), kh, kw,
             padding[0], padding[2], stride[0], stride[1], dilation[0], dilation[1],
             np.int64(act), residual if has_res else NO_RES4, has_res, out,
             numba.get_num_threads())
    return out
