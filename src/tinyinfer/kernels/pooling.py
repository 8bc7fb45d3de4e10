"""Pooling: average, max, global average and adaptive average, all on NCHW float32.

Output sizes follow PyTorch exactly (aten/src/ATen/native/Pool.h, pooling_output_shape):

    out = floor((in + 2*pad - dilation*(k - 1) - 1 + (stride - 1 if ceil_mode else 0)) / stride) + 1
    if ceil_mode and (out - 1)*stride >= in + pad:  out -= 1

The second line is ceil_mode's rule that the last window must START inside the input or
the left padding; a window that would start in the right padding is dropped. SqueezeNet
and GoogLeNet use ceil-mode max pooling, so getting this wrong shifts every later shape.
PyTorch also requires pad <= kernel // 2 (so no window lies wholly in padding) and out >= 1;
we raise InputError where it raises.

Every kernel is parallel over the N*C planes: each plane is contiguous in NCHW and planes
are independent, so threads never share a cache line they write.
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .common import check_int, float32_array


def _pair(v, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise InputError(f"{name} must be an int or a pair (h, w), got {v!r}")
        return check_int(v[0], name, minimum), check_int(v[1], name, minimum)
    v = check_int(v, name, minimum)
    return v, v


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape for one spatial dim (see the module docstring)."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(x_shape, kernel, stride, padding, dilation, ceil_mode, op):
    """Parse and check pooling arguments; returns (kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)."""
    kh, kw = _pair(kernel, "kernel", 1)
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    dh, dw = _pair(dilation, "dilation", 1)
    if ph > kh // 2 or pw > kw // 2:
        raise InputError(f"{op}: padding ({ph}, {pw}) must be at most half the kernel size "
                         f"({kh}, {kw}) (PyTorch's rule); reduce the padding")
    N, C, H, W = x_shape
    OH = pool_output_size(H, kh, sh, ph, dh, bool(ceil_mode))
    OW = pool_output_size(W, kw, sw, pw, dw, bool(ceil_mode))
    if OH < 1 or OW < 1:
        raise InputError(f"{op}: input of spatial size ({H}, {W}) is too small for kernel "
                         f"({kh}, {kw}), dilation ({dh}, {dw}), padding ({ph}, {pw}): the "
                         f"output would be ({OH}, {OW})")
    return kh, kw, sh, sw, ph, pw, dh, dw, OH, OW


# ----------------------------------------------------------------------------------------
# average pooling

@numba.njit(parallel=True, cache=True)
def _avg_pool2d(x, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    # x: (P, H, W) with P = N*C; out: (P, OH, OW).
    P, H, W = x.shape
    OH, OW = out.shape[1], out.shape[2]
    for p in numba.prange(P):
        for oh in range(OH):
            # PyTorch's divisor: the window clipped to the PADDED input (so in ceil mode the
            # part hanging past the right padding is not counted), or, without
            # count_include_pad, clipped to the real input.
            h0 = oh * sh - ph
            h1 = min(h0 + kh, H + ph)
            hsize = h1 - h0
            h0 = max(h0, 0)
            h1 = min(h1, H)
            for ow in range(OW):
                w0 = ow * sw - pw
                w1 = min(w0 + kw, W + pw)
                wsize = w1 - w0
                w0 = max(w0, 0)
                w1 = min(w1, W)
                acc = np.float32(0.0)
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        acc += x[p, ih, iw]
                if count_include_pad:
                    div = hsize * wsize
                else:
                    div = (h1 - h0) * (w1 - w0)
                out[p, oh, ow] = acc / np.float32(div) if div > 0 else np.float32(0.0)


def avg_pool2d(x: np.ndarray, kernel, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> np.ndarray:
    """(N,C,H,W) -> (N,C,OH,OW), the mean over each window, as F.avg_pool2d.

    kernel, stride, padding: int or (h, w); stride defaults to kernel (as in PyTorch).
    Padding counts as zeros in the divisor when count_include_pad (the default)."""
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    kh, kw, sh, sw, ph, pw, _, _, OH, OW = _pool_geometry(
        x.shape, kernel, stride, padding, 1, ceil_mode, "avg_pool2d")
    N, C, H, W = x.shape
    out = np.empty((N, C, OH, OW), np.float32)
    _avg_pool2d(x.reshape(N * C, H, W), out.reshape(N * C, OH, OW),
                kh, kw, sh, sw, ph, pw, bool(count_include_pad))
    return out


def avg_pool2d_ref(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Slow NumPy reference written from the same PyTorch rules (float64 sums)."""
    kh, kw, sh, sw, ph, pw, _, _, OH, OW = _pool_geometry(
        x.shape, kernel, stride, padding, 1, ceil_mode, "avg_pool2d")
    N, C, H, W = x.shape
    out = np.zeros((N, C, OH, OW), np.float64)
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
            full = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            win = x[:, :, h0:h1, w0:w1].astype(np.float64)
            div = full if count_include_pad else (h1 - h0) * (w1 - w0)
            out[:, :, oh, ow] = win.sum(axis=(2, 3)) / div
    return out.astype(np.float32)


def avg_pool2d_cost(shape, kernel, stride=None, padding=0, ceil_mode=False,
                    count_include_pad=True) -> Cost:
    # KH*KW FLOPs per output: KH*KW - 1 adds + 1 divide. Windows clipped by padding do
    # fewer adds; we count the full window anyway (shape-only, and what papers do).
    kh, kw, _, _, _, _, _, _, OH, OW = _pool_geometry(
        shape, kernel, stride, padding, 1, ceil_mode, "avg_pool2d")
    n_out = shape[0] * shape[1] * OH * OW
    return Cost(flops=kh * kw * n_out, elems_read=numel(shape), elems_written=n_out)


# ----------------------------------------------------------------------------------------
# max pooling

@numba.njit(inline="always", cache=True)
def _max_into(row, src):
    """row[q] = max(row[q], src[q]) for q < len(row), NaN winning as in PyTorch."""
    for q in range(row.shape[0]):
        v, m = src[q], row[q]
        row[q] = v if (v > m) | (v != v) else m    # `v != v`: NaN; no short circuit


@numba.njit(parallel=True, cache=True)
def _max_pool2d(x, out, kh, kw, sh, sw, ph, pw, dh, dw):
    # x: (P, H, W) with P = N*C; out: (P, OH, OW). Separable, one output row at a time:
    # first the max down the window's KH input rows into `col`, a row padded with -inf
    # (contiguous, vectorizes), then the max across KW taps of `col` at stride 1 into
    # `hrow`, and last every SW-th element of hrow into the output. Only that last copy
    # reads with a stride; the first version (KH*KW strided passes per output row) ran
    # SqueezeNet's three pools 3x slower.
    P, H, W = x.shape
    OH, OW = out.shape[1], out.shape[2]
    L = (OW - 1) * sw + (kw - 1) * dw + 1      # the padded row the windows read
    n = L - (kw - 1) * dw                       # window starts at stride 1
    for p in numba.prange(P):
        col = np.full(L, -np.inf, np.float32)   # padding stays -inf (never selected)
        hrow = np.empty(L, np.float32)
        seg = col[pw:pw + min(W, L - pw)]       # the input's columns inside col
        for oh in range(OH):
            first = True
            for i in range(kh):
                ih = oh * sh - ph + i * dh
                if ih < 0 or ih >= H:
                    continue
                if first:                       # PyTorch: a window has >= 1 input row
                    seg[:] = x[p, ih, :seg.shape[0]]
                    first = False
                else:
                    _max_into(seg, x[p, ih])
            h = hrow[:n]
            h[:] = col[:n]
            for j in range(1, kw):
                _max_into(h, col[j * dw:])
            if sw == 2:     # a constant step: with a variable one LLVM gathers one by one
                for q in range(OW):
                    out[p, oh, q] = h[2 * q]
            else:
                for q in range(OW):
                    out[p, oh, q] = h[q * sw]


def max_pool2d(x: np.ndarray, kernel, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False) -> np.ndarray:
    """(N,C,H,W) -> (N,C,OH,OW), the max over each window, as F.max_pool2d.

    kernel, stride, padding, dilation: int or (h, w); stride defaults to kernel. Padding
    acts as -inf (never selected); NaN in a window gives NaN, as in PyTorch."""
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = _pool_geometry(
        x.shape, kernel, stride, padding, dilation, ceil_mode, "max_pool2d")
    N, C, H, W = x.shape
    out = np.empty((N, C, OH, OW), np.float32)
    _max_pool2d(x.reshape(N * C, H, W), out.reshape(N * C, OH, OW),
                kh, kw, sh, sw, ph, pw, dh, dw)
    return out


def max_pool2d_ref(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    """NumPy reference: pad with -inf, gather the KH*KW dilated taps, take the max."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = _pool_geometry(
        x.shape, kernel, stride, padding, dilation, ceil_mode, "max_pool2d")
    N, C, H, W = x.shape
    # enough right padding for ceil mode's last window, which may hang past the padding
    xp = np.full((N, C, H + 2 * ph + kh * dh + sh, W + 2 * pw + kw * dw + sw), -np.inf,
                 np.float32)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    taps = [xp[:, :, i * dh:i * dh + sh * OH:sh, j * dw:j * dw + sw * OW:sw]
            for i in range(kh) for j in range(kw)]
    return np.max(np.stack(taps), axis=0)


def max_pool2d_cost(shape, kernel, stride=None, padding=0, dilation=1,
                    ceil_mode=False) -> Cost:
    # KH*KW - 1 compares per output (a running max over the window).
    kh, kw, _, _, _, _, _, _, OH, OW = _pool_geometry(
        shape, kernel, stride, padding, dilation, ceil_mode, "max_pool2d")
    n_out = shape[0] * shape[1] * OH * OW
    return Cost(flops=(kh * kw - 1) * n_out, elems_read=numel(shape), elems_written=n_out)


# ----------------------------------------------------------------------------------------
# global average pooling (the head of nearly every CNN here)

@numba.njit(parallel=True, cache=True, fastmath={"reassoc"})
def _global_avg_pool(x, out):
    # x: (P, L) planes; out: (P,). Sum in float64: L can be thousands (e.g. 56*56), and a
    # float32 running sum would lose digits the network's logits can feel. fastmath
    # "reassoc" (only that: NaN/inf keep IEEE meaning) lets LLVM split the sum into SIMD
    # lanes; a strict left-to-right sum is one add per 4 cycles (measured 14x slower).
    P, L = x.shape
    for p in numba.prange(P):
        acc = 0.0
        for i in range(L):
            acc += x[p, i]
        out[p] = acc / L


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """(N,C,H,W) -> (N,C), the mean over H and W of every channel."""
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    if H * W == 0:
        raise InputError(f"global_avg_pool: x has an empty spatial size {(H, W)}")
    out = np.empty((N, C), np.float32)
    _global_avg_pool(x.reshape(N * C, H * W), out.reshape(N * C))
    return out


def global_avg_pool_ref(x):
    return x.astype(np.float64).mean(axis=(2, 3)).astype(np.float32)


def global_avg_pool_cost(shape) -> Cost:
    # H*W FLOPs per channel: H*W - 1 adds + 1 divide.
    N, C, H, W = shape
    return Cost(flops=N * C * H * W, elems_read=N * C * H * W, elems_written=N * C)


# ----------------------------------------------------------------------------------------
# adaptive average pooling

def _adaptive_bounds(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    # PyTorch: window i covers [floor(i*size/out), ceil((i+1)*size/out)). Windows may
    # overlap when size is not a multiple of out, and never miss an input row.
    i = np.arange(out, dtype=np.int64)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)      # ceil division in integers
    return start, end


@numba.njit(parallel=True, cache=True)
def _adaptive_avg_pool2d(x, out, hs, he, ws, we):
    P = x.shape[0]
    OH, OW = out.shape[1], out.shape[2]
    for p in numba.prange(P):
        for oh in range(OH):
            for ow in range(OW):
                acc = np.float32(0.0)
                for ih in range(hs[oh], he[oh]):
                    for iw in range(ws[ow], we[ow]):
                        acc += x[p, ih, iw]
                out[p, oh, ow] = acc / np.float32((he[oh] - hs[oh]) * (we[ow] - ws[ow]))


def _adaptive_out(shape, out_hw):
    if isinstance(out_hw, (tuple, list)):
        if len(out_hw) != 2:
            raise InputError(f"out_hw must be an int or a pair (oh, ow), got {out_hw!r}")
        oh, ow = out_hw
    else:
        oh = ow = out_hw
    # None keeps that input dim, as PyTorch allows.
    oh = shape[2] if oh is None else check_int(oh, "out_hw", 1)
    ow = shape[3] if ow is None else check_int(ow, "out_hw", 1)
    if shape[2] == 0 or shape[3] == 0:
        raise InputError(f"adaptive_avg_pool2d: x has an empty spatial size {shape[2:]}")
    return oh, ow


def adaptive_avg_pool2d(x: np.ndarray, out_hw) -> np.ndarray:
    """(N,C,H,W) -> (N,C,OH,OW) with out_hw = OH (square) or (OH, OW), as
    F.adaptive_avg_pool2d. Output may be larger than the input (windows then repeat)."""
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    OH, OW = _adaptive_out(x.shape, out_hw)
    N, C, H, W = x.shape
    hs, he = _adaptive_bounds(H, OH)
    ws, we = _adaptive_bounds(W, OW)
    out = np.empty((N, C, OH, OW), np.float32)
    _adaptive_avg_pool2d(x.reshape(N * C, H, W), out.reshape(N * C, OH, OW), hs, he, ws, we)
    return out


def adaptive_avg_pool2d_ref(x, out_hw):
    OH, OW = _adaptive_out(x.shape, out_hw)
    N, C, H, W = x.shape
    out = np.empty((N, C, OH, OW), np.float64)
    for i in range(OH):
        h0, h1 = (i * H) // OH, -(-((i + 1) * H) // OH)
        for j in range(OW):
            w0, w1 = (j * W) // OW, -(-((j + 1) * W) // OW)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].astype(np.float64).mean(axis=(2, 3))
    return out.astype(np.float32)


def adaptive_avg_pool2d_cost(shape, out_hw) -> Cost:
    # Exact: each output does (its window size) FLOPs (adds + 1 divide), and the total
    # window area is (sum of row-window lengths) * (sum of column-window lengths).
    OH, OW = _adaptive_out(shape, out_hw)
    N, C, H, W = shape
    hs, he = _adaptive_bounds(H, OH)
    ws, we = _adaptive_bounds(W, OW)
    area = int((he - hs).sum()) * int((we - ws).sum())
    return Cost(flops=N * C * area, elems_read=N * C * H * W, elems_written=N * C * OH * OW)
