"""im2col panels in the channel-blocked layout: a dense conv (groups 1, any kernel) becomes
the blocked pointwise kernel (conv_blocked.py) with its taps playing the input channels

    panel    (N, ceil(K / CB), Ho, Wo, CB)    K taps per output pixel, CB side by side

so its output comes out blocked and no GEMM kernel is needed. Two tap orders, one per
input layout (conv_blocked packs the weights to match):

    from NCHW x      tap k = (ci*KH + ky)*KW + kx, K = Cin*KH*KW (a stem's 27 taps make
                     2 blocks; the other order would make 9)
    from blocked xb  block kb = (ky*KW + kx)*Cib + ib holds input block ib shifted by the
                     tap: whole CB-channel vectors copied per pixel (K = KH*KW*Cib*CB)

Both zero the taps that fall in the padding. The panel is KH*KW times the input (at most a
few MB for the networks here); conv_im2col.py makes the same trade for the NCHW GEMM.
"""
from __future__ import annotations

import numba
import numpy as np

from .blocked_layout import CB, blocks
from .common import FASTMATH
from .conv_im2col import col_range


def _out_size(size, k, s, before, after):
    return (size + before + after - k) // s + 1


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _from_nchw(x, KH, KW, sh, sw, pt, pl, panel):
    """panel[n, k // CB, oy, ox, k % CB] = xpad[n, ci, oy*sh + ky, ox*sw + kx] for tap
    k = (ci*KH + ky)*KW + kx (zeros past K and in the padding).
    x (N, C, H, W)   panel (N, ceil(C*KH*KW / CB), Ho, Wo, CB)
    Per tap, the output columns whose input column lies inside the row are copied without a
    test, the rest zeroed (a test per element: 0.26 ms for MobileNetV3's 112x112 stem)."""
    N, C, H, W = x.shape
    Kb, Ho, Wo = panel.shape[1], panel.shape[2], panel.shape[3]
    K = C * KH * KW
    for t in numba.prange(N * Ho):
        n = t // Ho
        oy = t % Ho
        for kb in range(Kb):
            row = panel[n, kb, oy].reshape(-1)
            for j in range(CB):
                k = kb * CB + j
                iy = oy * sh + k // KW % KH - pt
                lo, hi = 0, 0                      # output columns with an input column
                if k < K and 0 <= iy < H:
                    kx = k % KW - pl               # ix = ox*sw + kx
                    lo, hi = col_range(kx, sw, W, Wo)
                    xr = x[n, k // (KH * KW), iy, kx + lo * sw:]
                    rj = row[lo * CB + j:]      # slices, not offsets: no index wraparound
                    for ox in range(hi - lo):
                        rj[ox * CB] = xr[ox * sw]
                rj = row[j:]
                for ox in range(lo):
                    rj[ox * CB] = 0.0
                for ox in range(hi, Wo):
                    rj[ox * CB] = 0.0


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _from_blocked(xb, KH, KW, sh, sw, pt, pl, panel):
    """panel[n, (ky*KW + kx)*Cib + ib, oy, ox, :] = xpad[n, ib, oy*sh + ky, ox*sw + kx, :]
    xb (N, Cib, H, W, CB)   panel (N, KH*KW*Cib, Ho, Wo, CB)"""
    N, Cib, H, W = xb.shape[0], xb.shape[1], xb.shape[2], xb.shape[3]
    Kb, Ho, Wo = panel.shape[1], panel.shape[2], panel.shape[3]
    for t in numba.prange(N * Ho):
        n = t // Ho
        oy = t % Ho
        for kb in range(Kb):
            tap = kb // Cib
            iy = oy * sh + tap // KW - pt
            kx = tap % KW - pl
            row = panel[n, kb, oy]
            lo, hi = 0, 0
            if 0 <= iy < H:
                lo, hi = col_range(kx, sw, W, Wo)
                xr = xb[n, kb % Cib, iy]
                for ox in range(lo, hi):
                    src = xr[ox * sw + kx]
                    dst = row[ox]
                    for j in range(CB):
                        dst[j] = src[j]
            for ox in range(lo):
                for j in range(CB):
                    row[ox, j] = 0.0
            for ox in range(hi, Wo):
                for j in range(CB):
                    row[ox, j] = 0.0


def panel_from_nchw(x, kernel, stride, padding) -> np.ndarray:
    """NCHW x (N, C, H, W) -> its panel, taps in (ci, ky, kx) order. kernel (KH, KW);
    stride (sh, sw); padding (top, bottom, left, right)."""
    (N, C, H, W), (KH, KW), (sh, sw), (pt, pb, pl, pr) = x.shape, kernel, stride, padding
    panel = np.empty((N, blocks(C * KH * KW), _out_size(H, KH, sh, pt, pb),
                      _out_size(W, KW, sw, pl, pr), CB), np.float32)
    _from_nchw(np.ascontiguousarray(x), KH, KW, sh, sw, pt, pl, panel)
    return panel


def panel_from_blocked(xb, kernel, stride, padding) -> np.ndarray:
    """Blocked xb (N, Cib, H, W, CB) -> its panel, blocks in (ky, kx, ib) order."""
    (N, Cib, H, W, _), (KH, KW), (sh, sw), (pt, pb, pl, pr) = xb.shape, kernel, stride, padding
    panel = np.empty((N, KH * KW * Cib, _out_size(H, KH, sh, pt, pb),
                      _out_size(W, KW, sw, pl, pr), CB), np.float32)
    _from_blocked(xb, KH, KW, sh, sw, pt, pl, panel)
    return panel
