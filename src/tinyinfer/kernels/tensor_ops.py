"""Tensor plumbing: residual add, broadcast multiply, concat, split, channel shuffle, flatten.

These ops do little or no arithmetic; what they cost is memory traffic, so their cost
functions count elements read and written even when FLOPs are 0.

Convention for views: an op that returns a view of its input (``split``, ``flatten`` of a
contiguous array) moves no data, so its Cost is all zeros. The consumer of the view pays
for reading it, in its own Cost, like any other input.
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .activations import (ACT_FLOPS, GELU, HSIGMOID, HSWISH, RELU, RELU6, SIGMOID, SWISH,
                          _gelu, _hsigmoid, _hswish, _relu, _relu6, _sigmoid, _swish,
                          activation_ref)
from .common import check_act, check_axis, check_int, float32_array


# ----------------------------------------------------------------------------------------
# add: residual connections, with the block's trailing activation fused in (one pass)

@numba.njit(parallel=True, cache=True)
def _add_flat(a, b, out, code):
    """out = act(a + b), all 1-D of one length (out may be a or b).

    The activation ladder of act_into, fused into the sum: one loop per activation with a
    constant code, so each vectorizes. Not the sum followed by act_into on the result:
    that second pass measured 0.41-1.25 ms vs 0.24 ms fused (800k elements, ReLU, one
    thread), and a run-time ``code`` inside one loop does not vectorize at all (60x).
    """
    n = a.size
    if code == RELU:
        for i in numba.prange(n):
            out[i] = _relu(a[i] + b[i])
    elif code == RELU6:
        for i in numba.prange(n):
            out[i] = _relu6(a[i] + b[i])
    elif code == SIGMOID:
        for i in numba.prange(n):
            out[i] = _sigmoid(a[i] + b[i])
    elif code == HSIGMOID:
        for i in numba.prange(n):
            out[i] = _hsigmoid(a[i] + b[i])
    elif code == HSWISH:
        for i in numba.prange(n):
            out[i] = _hswish(a[i] + b[i])
    elif code == SWISH:
        for i in numba.prange(n):
            out[i] = _swish(a[i] + b[i])
    elif code == GELU:
        for i in numba.prange(n):
            out[i] = _gelu(a[i] + b[i])
    else:
        for i in numba.prange(n):
            out[i] = a[i] + b[i]


def add(a: np.ndarray, b: np.ndarray, act=0, out: np.ndarray | None = None) -> np.ndarray:
    """out = act(a + b) elementwise.  a, b: same shape (any), float32.

    ``out`` (optional, float32, C-contiguous, same shape) may be ``a`` or ``b`` to add in
    place, which saves an allocation on every residual connection."""
    code = check_act(act)
    a = float32_array(a, "a")
    b = float32_array(b, "b")
    if a.shape != b.shape:
        raise InputError(f"add needs two arrays of the same shape, got {a.shape} and "
                         f"{b.shape}; broadcasting is not supported (use mul for gates)")
    out = _check_out(out, a.shape)
    _add_flat(a.reshape(-1), b.reshape(-1), out.reshape(-1), np.int64(code))
    return out


def _check_out(out, shape):
    if out is None:
        return np.empty(shape, np.float32)
    if (not isinstance(out, np.ndarray) or out.dtype != np.float32
            or not out.flags.c_contiguous or out.shape != tuple(shape)):
        raise InputError(f"out must be a C-contiguous float32 array of shape {tuple(shape)}"
                         f"; pass out=None to have one allocated")
    return out


def add_ref(a, b, act=0):
    return activation_ref((a.astype(np.float64) + b).astype(np.float32), act)


def add_cost(shape, act=0) -> Cost:
    # one add per element, plus the fused activation's FLOPs; reads both inputs.
    n = numel(shape)
    return Cost(flops=(1 + ACT_FLOPS[check_act(act)]) * n, elems_read=2 * n, elems_written=n)


# ----------------------------------------------------------------------------------------
# mul: elementwise, or x (N,C,H,W) scaled by a per-channel gate (N,C,1,1) (SE, attention)

@numba.njit(parallel=True, cache=True)
def _mul_flat(a, b, out):
    for i in numba.prange(a.size):
        out[i] = a[i] * b[i]


@numba.njit(parallel=True, cache=True)
def _mul_gate(x, g, out):
    # x, out: (P, L) planes; g: (P,) one gate per plane (P = N*C, L = H*W).
    P, L = x.shape
    for p in numba.prange(P):
        s = g[p]
        for i in range(L):
            out[p, i] = x[p, i] * s


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out = a * b.  Either the same shape (any), or one of them (N,C,H,W) and the other a
    per-channel gate (N,C,1,1), broadcast over H and W as NumPy would. Returns (N,C,H,W)."""
    a = float32_array(a, "a")
    b = float32_array(b, "b")
    if a.shape == b.shape:
        out = np.empty_like(a)
        _mul_flat(a.reshape(-1), b.reshape(-1), out.reshape(-1))
        return out
    x, g = (a, b) if a.size >= b.size else (b, a)
    if not (x.ndim == 4 and g.ndim == 4 and g.shape == (x.shape[0], x.shape[1], 1, 1)):
        raise InputError(f"mul supports same-shape arrays or (N,C,H,W) * (N,C,1,1), got "
                         f"{a.shape} and {b.shape}; reshape a (N,C) gate to (N,C,1,1)")
    N, C, H, W = x.shape
    out = np.empty_like(x)
    _mul_gate(x.reshape(N * C, H * W), g.reshape(N * C), out.reshape(N * C, H * W))
    return out


def mul_ref(a, b):
    return (a.astype(np.float64) * b).astype(np.float32)


def mul_cost(shape_a, shape_b) -> Cost:
    # one multiply per output element; the gate is read once, not once per pixel.
    n_out = max(numel(shape_a), numel(shape_b))
    return Cost(flops=n_out, elems_read=numel(shape_a) + numel(shape_b), elems_written=n_out)


# ----------------------------------------------------------------------------------------
# concat / split (Inception, ShuffleNetV2, GhostNet). No arithmetic, so no Numba: NumPy's
# copy is a memcpy per contiguous run already.

def concat(xs, axis: int = 1) -> np.ndarray:
    """Join arrays along ``axis``. xs: sequence of float32 arrays, equal in every dim but
    ``axis`` (e.g. (N,C_i,H,W) -> (N,sum C_i,H,W)). Always a new C-contiguous array."""
    if isinstance(xs, np.ndarray) or not hasattr(xs, "__len__") or len(xs) == 0:
        raise InputError("concat needs a non-empty list or tuple of arrays")
    xs = [float32_array(x, f"xs[{i}]") for i, x in enumerate(xs)]
    ndim = xs[0].ndim
    axis = check_axis(axis, ndim)
    for i, x in enumerate(xs):
        if x.ndim != ndim or x.shape[:axis] + x.shape[axis + 1:] != \
                xs[0].shape[:axis] + xs[0].shape[axis + 1:]:
            raise InputError(f"concat along axis {axis}: xs[{i}] has shape {x.shape} but "
                             f"xs[0] has {xs[0].shape}; all dims except {axis} must match")
    return np.concatenate(xs, axis=axis)


def concat_cost(shapes, axis: int = 1) -> Cost:
    # 0 FLOPs; every input element is read once and written once.
    n = sum(numel(s) for s in shapes)
    return Cost(elems_read=n, elems_written=n)


def split(x: np.ndarray, sizes, axis: int = 1) -> list:
    """Cut x along ``axis`` into pieces of the given sizes (a list summing to x.shape[axis]),
    or, as torch.split does with an int, into chunks of that size (the last may be smaller).

    Returns VIEWS of x (basic slicing), no copy. Note a channel slice of an (N,C,H,W) array
    is non-contiguous when N > 1; every kernel here copies such input to C order on entry,
    so the copy is paid (once) by the consumer, or never if N == 1."""
    if not isinstance(x, np.ndarray):
        raise InputError(f"x must be a NumPy array, got {type(x).__name__}")
    axis = check_axis(axis, x.ndim)
    L = x.shape[axis]
    if isinstance(sizes, (int, np.integer)) and not isinstance(sizes, bool):
        step = check_int(sizes, "sizes", 1)
        sizes = [min(step, L - s) for s in range(0, L, step)]
    else:
        sizes = [check_int(s, "sizes[i]", 0) for s in sizes]
        if sum(sizes) != L:
            raise InputError(f"split sizes {sizes} sum to {sum(sizes)} but x.shape[{axis}] "
                             f"is {L}; they must sum to it exactly")
    idx = [slice(None)] * x.ndim
    pieces, start = [], 0
    for s in sizes:
        idx[axis] = slice(start, start + s)
        pieces.append(x[tuple(idx)])
        start += s
    return pieces


def split_cost(shape, sizes, axis: int = 1) -> Cost:
    # views: no data moves (see the module docstring).
    return Cost()


# ----------------------------------------------------------------------------------------
# channel shuffle (ShuffleNet V1/V2)

@numba.njit(parallel=True, cache=True)
def _channel_shuffle(x, out, groups):
    # x, out: (N, C, L). torchvision: view (N, g, C/g, L) -> transpose(1, 2) -> (N, C, L),
    # so output channel j*g + i is input channel i*(C/g) + j, for i < g, j < C/g.
    N, C, L = x.shape
    cpg = C // groups
    for p in numba.prange(N * C):
        n = p // C
        c_out = p % C
        j = c_out // groups
        i = c_out % groups
        c_in = i * cpg + j
        for t in range(L):
            out[n, c_out, t] = x[n, c_in, t]


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """(N,C,H,W) -> (N,C,H,W) with channels interleaved across ``groups`` exactly as
    torchvision's ShuffleNetV2 channel_shuffle. C must be divisible by groups."""
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    groups = check_int(groups, "groups", 1)
    N, C, H, W = x.shape
    if C % groups:
        raise InputError(f"channel_shuffle: C={C} is not divisible by groups={groups}")
    out = np.empty_like(x)
    _channel_shuffle(x.reshape(N, C, H * W), out.reshape(N, C, H * W), np.int64(groups))
    return out


def channel_shuffle_ref(x, groups):
    N, C, H, W = x.shape
    return np.ascontiguousarray(
        x.reshape(N, groups, C // groups, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W))


def channel_shuffle_cost(shape, groups) -> Cost:
    # a permutation: 0 FLOPs, every element read once and written once.
    n = numel(shape)
    return Cost(elems_read=n, elems_written=n)


# ----------------------------------------------------------------------------------------
# flatten (classifier heads)

def flatten(x: np.ndarray, start_dim: int = 1) -> np.ndarray:
    """(N, C, H, W) -> (N, C*H*W) (dims from ``start_dim`` on merged, as torch.flatten).
    A view when x is C-contiguous, otherwise a copy."""
    if not isinstance(x, np.ndarray):
        raise InputError(f"x must be a NumPy array, got {type(x).__name__}")
    if x.ndim == 0:
        raise InputError("flatten needs an array with at least 1 dimension")
    start_dim = check_axis(start_dim, x.ndim, "start_dim")
    return x.reshape(x.shape[:start_dim] + (numel(x.shape[start_dim:]),))


def flatten_cost(shape, start_dim: int = 1) -> Cost:
    # a view of a contiguous array: no data moves (see the module docstring).
    return Cost()
