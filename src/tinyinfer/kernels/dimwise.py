"""DiCENet's kernels (Mehta et al., "DiCENet: Dimension-wise Convolutions for Efficient
Networks", TPAMI 2020): the dimension-wise convolution and the resize around it (its
PReLU is in prelu.py).

A DiCE unit convolves a (N, C, H, W) map along each of its three dimensions. Along C it is
an ordinary 3x3 depthwise conv (conv.py). Along H the reference transposes C and H, so the
H rows become the channels, and runs a 3x3 depthwise conv with zero padding 1 over the
(C, W) plane: one 3x3 kernel per row h, sliding over channels and columns. Along W it
transposes C and W (the map becomes (N, W, H, C)) and slides one kernel per column w over
(H, C). Without the transposes, for weight (S, 1, 3, 3):

    along H:  out[n, c, h, w] = sum_{i,j} weight[h, 0, i, j] * x[n, c+i-1, h,     w+j-1]
    along W:  out[n, c, h, w] = sum_{i,j} weight[w, 0, i, j] * x[n, c+j-1, h+i-1, w    ]

(terms outside the map are zero). The kernel reads x where it lies: no transposed copy.

The weights are sized for S rows (columns), the size the network was built for. A map of
another size is resized along that dimension to S, convolved, and resized back, with the
reference's rule: enlarging is bilinear with align_corners=True, shrinking is an adaptive
average pool (F.interpolate / F.adaptive_avg_pool2d along one axis; the other axis keeps
its size, where both are exactly the identity). Both are a short weighted sum of input
rows per output row (``resize_taps``), applied by one loop.
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .common import FASTMATH, float32_array

AXES = {2: "height", 3: "width"}


# ---------------------------------------------------------------------------------------
# resize along one axis

def resize_taps(n_in: int, n_out: int):
    """The resize of an axis of n_in to n_out as out[o] = sum_k taps[o, k] * x[start[o] + k]
    for k < count[o]. Enlarging: bilinear with align_corners (source o * (n_in - 1) /
    (n_out - 1), in float32 as PyTorch computes it; two taps). Shrinking: adaptive average
    (the window floor(o n_in / n_out) .. ceil((o + 1) n_in / n_out), equal weights).
    Returns start (n_out,) int64, count (n_out,) int64, taps (n_out, K) float32."""
    if n_in < 1 or n_out < 1:
        raise InputError(f"resize: sizes must be >= 1, got {n_in} -> {n_out}")
    o = np.arange(n_out)
    if n_out >= n_in:
        scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
        src = scale * o.astype(np.float32)
        start = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        second = np.clip(src - start, 0, 1).astype(np.float32)
        count = np.where(start < n_in - 1, 2, 1)
        taps = np.stack([np.float32(1) - second, second], axis=1)
        taps[count == 1] = (1, 0)
    else:
        start = o * n_in // n_out
        count = -(-(o + 1) * n_in // n_out) - start
        taps = np.zeros((n_out, int(count.max())), np.float32)
        for row, c in enumerate(count):
            taps[row, :c] = np.float32(1) / np.float32(c)
    return start.astype(np.int64), count.astype(np.int64), taps.astype(np.float32)


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _resize_rows(x, start, count, taps, out):
    # x: (A, L_in, B) -> out: (A, L_out, B); out[a, o, b] = sum_k taps[o, k] x[a, start + k, b]
    A, _, B = x.shape
    L_out = out.shape[1]
    for a in numba.prange(A):
        for o in range(L_out):
            for b in range(B):
                acc = np.float32(0.0)
                for k in range(count[o]):
                    acc += taps[o, k] * x[a, start[o] + k, b]
                out[a, o, b] = acc


def _check_axis(axis) -> int:
    if axis not in AXES:
        raise InputError(f"axis must be 2 (height) or 3 (width) of an (N, C, H, W) map, "
                         f"got {axis!r}")
    return axis


def resize_axis(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    """x: (N, C, H, W) -> the same with axis 2 (H) or 3 (W) resized to ``size`` by the rule
    of the module docstring (bilinear with align_corners up, adaptive average down)."""
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    _check_axis(axis)
    n_in = x.shape[axis]
    if n_in == size:
        return x
    start, count, taps = resize_taps(n_in, size)
    N, C, H, W = x.shape
    # as (A, L, B): rows of the resized axis between everything before and after it
    A, B = (N * C, W) if axis == 2 else (N * C * H, 1)
    out_shape = (N, C, size, W) if axis == 2 else (N, C, H, size)
    out = np.empty(out_shape, np.float32)
    _resize_rows(x.reshape(A, n_in, B), start, count, taps, out.reshape(A, size, B))
    return out


def resize_axis_ref(x, axis, size):
    """NumPy reference: the resize as a dense (size, n_in) matrix, in float64."""
    n_in = x.shape[axis]
    if n_in == size:
        return x.astype(np.float32)
    start, count, taps = resize_taps(n_in, size)
    m = np.zeros((size, n_in))
    for o in range(size):
        m[o, start[o]:start[o] + count[o]] = taps[o, :count[o]]
    y = np.moveaxis(np.moveaxis(x.astype(np.float64), axis, -1) @ m.T, -1, axis)
    return y.astype(np.float32)


def resize_axis_cost(shape, axis: int, size: int) -> Cost:
    # FLOPs: one multiply and one add per tap of every output element (as the loop does).
    # params: none. Reads x and the taps; writes the output.
    n_in = shape[axis]
    if n_in == size:
        return Cost()
    _, count, taps = resize_taps(n_in, size)
    out_shape = tuple(size if d == axis else s for d, s in enumerate(shape))
    lines = numel(out_shape) // size                   # output elements per output row o
    return Cost(flops=2 * int(count.sum()) * lines,
                elems_read=numel(shape) + taps.size, elems_written=numel(out_shape))


# ---------------------------------------------------------------------------------------
# dimension-wise convolution

@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _dimwise_conv(x, weight, along_width, out):
    # x, out: (N, C, H, W); weight: (S, 3, 3) with S = H (along height) or W (along width)
    N, C, H, W = x.shape
    for p in numba.prange(N * C):
        n = p // C
        c = p % C
        for h in range(H):
            for w in range(W):
                kernel = weight[w] if along_width else weight[h]
                acc = np.float32(0.0)
                for i in range(3):
                    for j in range(3):
                        # tap (i, j) of the transposed map's 3x3 window, in x's own indices
                        if along_width:
                            cc, hh, ww = c + j - 1, h + i - 1, w
                        else:
                            cc, hh, ww = c + i - 1, h, w + j - 1
                        if 0 <= cc < C and 0 <= hh < H and 0 <= ww < W:
                            acc += kernel[i, j] * x[n, cc, hh, ww]
                out[n, c, h, w] = acc


def _dimwise_args(x, weight, axis):
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    weight = float32_array(weight, "weight", 4, "(S, 1, 3, 3)")
    _check_axis(axis)
    if weight.shape[1:] != (1, 3, 3):
        raise InputError(f"dimension-wise conv weight must be (S, 1, 3, 3): one 3x3 kernel "
                         f"per {AXES[axis]} position, got {weight.shape}")
    return x, weight


def dimwise_conv(x: np.ndarray, weight: np.ndarray, axis: int) -> np.ndarray:
    """x: (N, C, H, W); weight: (S, 1, 3, 3), one 3x3 kernel per row (axis 2) or column
    (axis 3); returns (N, C, H, W). A map whose size along ``axis`` is not S is resized to S
    and back (resize_axis), as DiCENet's reference does."""
    x, weight = _dimwise_args(x, weight, axis)
    size, real = weight.shape[0], x.shape[axis]
    y = resize_axis(x, axis, size)
    out = np.empty_like(y)
    _dimwise_conv(y, weight.reshape(size, 3, 3), axis == 3, out)
    return resize_axis(out, axis, real)


def dimwise_conv_ref(x, weight, axis):
    """NumPy reference: the reference's own steps (resize, transpose so that the axis is the
    channel axis, zero-pad, depthwise 3x3 as nine shifted products, transpose back, resize
    back), in float64."""
    x, weight = _dimwise_args(x, weight, axis)
    size, real = weight.shape[0], x.shape[axis]
    t = np.swapaxes(resize_axis_ref(x, axis, size).astype(np.float64), 1, axis)
    padded = np.pad(t, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros_like(t)
    for i in range(3):
        for j in range(3):
            out += weight[None, :, 0, i, j, None, None] * \
                padded[:, :, i:i + t.shape[2], j:j + t.shape[3]]
    return resize_axis_ref(np.swapaxes(out, 1, axis), axis, real).astype(np.float32)


def dimwise_conv_cost(shape, size: int, axis: int) -> Cost:
    # The conv runs on the map resized to ``size`` along ``axis``: 9 MACs per element of it
    # (a depthwise 3x3), 2 FLOPs each; params S x 9 (no bias: DiCENet's have none); reads
    # the resized map and the weights, writes its output. Plus both resizes when the input
    # is not ``size`` along the axis (resize_axis_cost).
    _check_axis(axis)
    conv_shape = tuple(size if d == axis else s for d, s in enumerate(shape))
    n = numel(conv_shape)
    cost = Cost(macs=9 * n, flops=18 * n, params=9 * size, elems_read=n + 9 * size,
                elems_written=n)
    return resize_axis_cost(shape, axis, size) + cost + resize_axis_cost(conv_shape, axis,
                                                                         shape[axis])
