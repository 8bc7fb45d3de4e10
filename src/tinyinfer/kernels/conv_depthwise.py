"""Depthwise convolution (groups == Cin, Cout = m * Cin): one channel plane at a time, each
output KH*KW taps of one plane (MobileNet's 3x3, EfficientNet's 5x5, any stride/dilation).

    x        (N, C, H, W)                  float32, NCHW
    weight   (C*m, 1, KH, KW)              float32, PyTorch's layout (m: channel multiplier)
    bias     (C*m,)
    residual (N, C*m, Ho, Wo) or None      added AFTER the activation
    out      (N, C*m, Ho, Wo)              out[:, c*m + j] sees only x[:, c]

conv.py holds the shapes, cost, reference and the dispatch.
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import AFTER_RESIDUAL, act_inplace
from .common import FASTMATH, NO_RES4, epilogue


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _depthwise(x, w, bias, pt, pl, sh, sw, dh, dw, act, res, has_res, out, nchunks):
    """out[n, c*m + j] = act(bias + conv(xpad[n, c], w[c*m + j])) (+ res), j < m (multiplier)

    x (N, C, H, W)   w (C*m, KH, KW)   bias (C*m,)   res, out (N, C*m, Ho, Wo)

    The trick that makes every loop contiguous, for any stride and dilation: copy the plane
    into a zero-padded buffer split by stride phase,
        buf[a, b, r, i] = xpad[r*sh + a, i*sw + b]          (a < sh, b < sw),
    so the tap (ky, kx) of output (oy, ox), xpad[oy*sh + ky*dh, ox*sw + kx*dw], is
        buf[ky*dh % sh, kx*dw % sw, oy + ky*dh // sh, ox + kx*dw // sw].
    Read each phase as one flat array with rows of Wq floats: output (oy, ox) is then flat
    index f = oy*Wq + ox, and every tap is  plane[f + constant]. One loop over all
    Ho*Wq flat positions does the whole plane (the Wq - Wo columns at the end of each row
    are computed and thrown away): a 7x7 or 14x14 map vectorizes as one long run instead
    of 7 or 14 short rows. The padding in buf is zeroed once and never written again.
    """
    # The parallel loop only hands out chunks; the work is in _depthwise_planes, a plain
    # function. Inside the prange body, Numba's parfor passes and the gufunc it builds
    # went over the whole body: 4.5 s to compile; as a call, the body compiles once.
    planes = x.shape[0] * x.shape[1]
    nchunks = min(planes, nchunks)
    for chunk in numba.prange(nchunks):           # one chunk per thread: buffers made once
        _depthwise_planes(x, w, bias, pt, pl, sh, sw, dh, dw, act, res, has_res, out,
                          chunk * planes // nchunks, (chunk + 1) * planes // nchunks)


@numba.njit(fastmath=FASTMATH, cache=True)
def _depthwise_planes(x, w, bias, pt, pl, sh, sw, dh, dw, act, res, has_res, out, p_lo, p_hi):
    """_depthwise for planes (n, c) = divmod(plane, C), plane in [p_lo, p_hi)."""
    N, C, H, W = x.shape
    Cout, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    KH, KW = w.shape[1], w.shape[2]
    m = Cout // C
    Hq = (Ho - 1) + (KH - 1) * dh // sh + 1      # buffer rows / columns per phase
    Wq = (Wo - 1) + (KW - 1) * dw // sw + 1
    L = ((Ho * Wq + 15) // 16) * 16              # flat outputs, rounded up to whole vectors
    # the furthest tap reads L - 1 + its offset: slack rows so that stays inside the buffer
    Hb = Hq + (L - Ho * Wq + Wq - 1) // Wq + 1
    # per column phase b: the buffer columns [col_lo, col_hi) that hold input columns
    # (i*sw + b - pl inside 0..W-1); the rest is padding
    col_lo = np.empty(sw, np.int64)
    col_hi = np.empty(sw, np.int64)
    for b in range(sw):
        col_lo[b] = min(max(0, (pl - b + sw - 1) // sw), Wq)
        col_hi[b] = max(min(Wq, (W - 1 + pl - b) // sw + 1), col_lo[b])
    buf = np.zeros((sh, sw, Hb * Wq), np.float32)
    acc = np.empty(L, np.float32)
    for plane in range(p_lo, p_hi):
        n = plane // C
        c = plane % C
        # copy the plane into the interior of buf: input (iy, ix) goes to phase
        # (a, b) = ((iy + pt) % sh, (ix + pl) % sw), row (iy + pt) // sh, col (ix + pl) // sw
        for a in range(sh):
            for ry in range(Hq):
                iy = ry * sh + a - pt
                if iy < 0 or iy >= H:
                    continue                     # a padding row: stays zero
                if sw == 2:
                    _split_row_s2(x[n, c, iy], buf[a, 0, ry * Wq:(ry + 1) * Wq],
                                  buf[a, 1, ry * Wq:(ry + 1) * Wq], pl)
                    continue
                for b in range(sw):
                    lo = col_lo[b]
                    k = col_hi[b] - lo
                    dst = buf[a, b, ry * Wq + lo:ry * Wq + lo + k]
                    src = x[n, c, iy, lo * sw + b - pl:]
                    if sw == 1:                  # contiguous: a vectorized memcpy
                        for i in range(k):
                            dst[i] = src[i]
                    else:
                        for i in range(k):
                            dst[i] = src[i * sw]
        for co in range(c * m, c * m + m):
            wk = w[co]
            bb = bias[co]
            if KH == 3 and KW == 3:
                # the common case in one pass: 9 taps per output, one store
                t0 = _tap(buf, 0, 0, sh, sw, dh, dw, Wq, L)
                t1 = _tap(buf, 0, 1, sh, sw, dh, dw, Wq, L)
                t2 = _tap(buf, 0, 2, sh, sw, dh, dw, Wq, L)
                t3 = _tap(buf, 1, 0, sh, sw, dh, dw, Wq, L)
                t4 = _tap(buf, 1, 1, sh, sw, dh, dw, Wq, L)
                t5 = _tap(buf, 1, 2, sh, sw, dh, dw, Wq, L)
                t6 = _tap(buf, 2, 0, sh, sw, dh, dw, Wq, L)
                t7 = _tap(buf, 2, 1, sh, sw, dh, dw, Wq, L)
                t8 = _tap(buf, 2, 2, sh, sw, dh, dw, Wq, L)
                w0, w1, w2 = wk[0, 0], wk[0, 1], wk[0, 2]
                w3, w4, w5 = wk[1, 0], wk[1, 1], wk[1, 2]
                w6, w7, w8 = wk[2, 0], wk[2, 1], wk[2, 2]
                for f in range(L):
                    acc[f] = (bb + w0 * t0[f] + w1 * t1[f] + w2 * t2[f]
                              + w3 * t3[f] + w4 * t4[f] + w5 * t5[f]
                              + w6 * t6[f] + w7 * t7[f] + w8 * t8[f])
            else:
                # any other kernel: one pass over the plane per tap
                for f in range(L):
                    acc[f] = bb
                for ky in range(KH):
                    for kx in range(KW):
                        t = _tap(buf, ky, kx, sh, sw, dh, dw, Wq, L)
                        wv = wk[ky, kx]
                        for f in range(L):
                            acc[f] += wv * t[f]
            if act < AFTER_RESIDUAL:             # act(conv) + res: on the whole plane
                epilogue(acc, None, act)
            for oy in range(Ho):                 # keep the Wo valid columns of each row
                o = out[n, co, oy]
                a_row = acc[oy * Wq:oy * Wq + Wo]
                if has_res:
                    rr = res[n, co, oy]
                    for j in range(Wo):
                        o[j] = a_row[j] + rr[j]
                else:
                    for j in range(Wo):
                        o[j] = a_row[j]
                if act >= AFTER_RESIDUAL:        # act(conv + res): per output row
                    act_inplace(o, act - AFTER_RESIDUAL)


@numba.njit(inline="always", cache=True)
def _split_row_s2(src, d0, d1, pl):
    """Stride 2: input column ix goes to phase (ix + pl) % 2, column (ix + pl) // 2.

    Walking the row in pairs (even phase, odd phase) reads it contiguously and fills both
    phases in one loop: 3x faster than two strided passes, one per phase.
    """
    W, Wq = src.shape[0], d0.shape[0]
    ix0 = pl % 2                          # first input column that lands in phase 0
    j0 = (ix0 + pl) // 2
    npairs = max(min((W - ix0) // 2, Wq - j0), 0)
    s = src[ix0:]
    e0 = d0[j0:]
    e1 = d1[j0:]
    for i in range(npairs):
        e0[i] = s[2 * i]
        e1[i] = s[2 * i + 1]
    if ix0 == 1 and pl // 2 < Wq:        # column 0 alone in phase 1
        d1[pl // 2] = src[0]
    last = ix0 + 2 * npairs                # a last unpaired column, if the buffer has room
    if last < W and (last + pl) // 2 < Wq and (last + pl) % 2 == 0:
        d0[(last + pl) // 2] = src[last]


@numba.njit(inline="always", cache=True)
def _tap(buf, ky, kx, sh, sw, dh, dw, Wq, L):
    """The L flat inputs that tap (ky, kx) multiplies, as one contiguous slice of buf."""
    start = ((ky * dh) // sh) * Wq + (kx * dw) // sw
    return buf[(ky * dh) % sh, (kx * dw) % sw, start:start + L]


def depthwise_conv2d_into(x, weight, bias, stride, padding, dilation, groups, act, residual,
                          out) -> np.ndarray:
    """The "depthwise" variant, for arguments conv.check_conv_args has validated (groups ==
    Cin): fills and returns ``out``."""
    cout, _, kh, kw = weight.shape
    has_res = residual is not None
    # one chunk of planes per thread (get_num_threads inside the kernel would stop Numba
    # from caching it on disk)
    _depthwise(x, weight.reshape(cout, kh, kw), bias, padding[0], padding[2], stride[0],
               stride[1], dilation[0], dilation[1], np.int64(act),
               residual if has_res else NO_RES4, has_res, out, numba.get_num_threads())
    return out
