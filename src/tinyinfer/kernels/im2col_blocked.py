"""im2col panels in the channel-blocked layout: a dense conv (groups 1, any kernel) on
blocked input becomes the blocked pointwise kernel (conv_blocked.py) with its taps playing
the input channels

    panel    (N, KH*KW*Cib, Ho, Wo, CB)    block kb = (ky*KW + kx)*Cib + ib holds input
                                           block ib shifted by the tap

so its output comes out blocked and no GEMM kernel is needed: whole CB-channel vectors
copied per pixel, zeros where the tap falls in the padding (conv_blocked.pack_dense_blocked
packs the weights in that order). The panel is KH*KW times the input (at most a few MB for
the networks here); conv_im2col.py makes the same trade for the NCHW GEMM. A dense conv on
NCHW input (a stem) needs no panel: conv_blocked_direct.py.
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


def panel_from_blocked(xb, kernel, stride, padding) -> np.ndarray:
    """Blocked xb (N, Cib, H, W, CB) -> its panel, blocks in (ky, kx, ib) order."""
    (N, Cib, H, W, _), (KH, KW), (sh, sw), (pt, pb, pl, pr) = xb.shape, kernel, stride, padding
    panel = np.empty((N, KH * KW * Cib, _out_size(H, KH, sh, pt, pb),
                      _out_size(W, KW, sw, pl, pr), CB), np.float32)
    _from_blocked(xb, KH, KW, sh, sw, pt, pl, panel)
    return panel
