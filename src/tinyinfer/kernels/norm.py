"""Normalization: batch norm (inference) and its folding into convs, layer norm over the
last dim and over channels of NCHW, group norm, and a numerically stable softmax.

Batch norm at inference is an affine map per channel,
    y = gamma * (x - mean) / sqrt(var + eps) + beta  =  scale * x + shift,
so when it follows a conv (or linear) it can be merged into that layer's weights once, at
load time (``fold_batchnorm``): the network then has no BN nodes and BN costs nothing. The
``batch_norm`` kernel is for the rare BN that does not follow a conv (e.g. after a concat).

Statistics (means, variances, softmax sums) are accumulated in float64: the rows are up
to a few thousand long, and float32 running sums drift by ~1e-5 relative per thousand
terms. The reductions are compiled with fastmath "reassoc" (and "contract" for FMA) only:
that lets LLVM split a sum across SIMD lanes, which a strict left-to-right sum forbids,
while NaN and inf keep their IEEE meaning (no "nnan"/"ninf").
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .common import FASTMATH, check_axis, check_int, float32_array
from .vmath import exp_f32


def _vector(v, name: str, C: int, allow_none: bool = False):
    if v is None and allow_none:
        return None
    v = float32_array(v, name)
    if v.shape != (C,):
        raise InputError(f"{name} must have shape ({C},) (one value per channel), got "
                         f"{v.shape}")
    return v


def _eps(eps) -> float:
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise InputError(f"eps must be a number, got {eps!r}") from None
    if not eps >= 0.0:
        raise InputError(f"eps must be >= 0, got {eps}")
    return eps


def _bn_scale_shift(gamma, beta, mean, var, eps, C):
    """scale = gamma / sqrt(var + eps), shift = beta - mean * scale, in float64."""
    gamma, beta, mean, var = (_vector(v, n, C) for v, n in
                              ((gamma, "gamma"), (beta, "beta"), (mean, "mean"), (var, "var")))
    denom = var.astype(np.float64) + eps
    if not np.all(denom > 0):
        raise InputError("batch norm: var + eps must be > 0 for every channel (a negative "
                         "or NaN running variance means a corrupt checkpoint)")
    scale = gamma.astype(np.float64) / np.sqrt(denom)
    shift = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return scale, shift


# ----------------------------------------------------------------------------------------
# batch norm (inference)

@numba.njit(parallel=True, cache=True)
def _scale_shift(x, scale, shift, out):
    # x, out: (N, C, L); one (scale, shift) pair per channel.
    N, C, L = x.shape
    for p in numba.prange(N * C):
        n = p // C
        c = p % C
        a = scale[c]
        b = shift[c]
        for i in range(L):
            out[n, c, i] = x[n, c, i] * a + b


def batch_norm(x: np.ndarray, gamma, beta, mean, var, eps: float = 1e-5) -> np.ndarray:
    """Inference batch norm with running statistics.  x: (N, C, *spatial) (e.g. NCHW, or
    (N, C) after a flatten); gamma, beta, mean, var: (C,). Returns x's shape, float32."""
    x = float32_array(x, "x")
    if x.ndim < 2:
        raise InputError(f"batch_norm needs x of shape (N, C, ...), got {x.shape}")
    N, C = x.shape[:2]
    scale, shift = _bn_scale_shift(gamma, beta, mean, var, _eps(eps), C)
    L = numel(x.shape[2:])
    out = np.empty_like(x)
    _scale_shift(x.reshape(N, C, L), scale.astype(np.float32), shift.astype(np.float32),
                 out.reshape(N, C, L))
    return out


def batch_norm_ref(x, gamma, beta, mean, var, eps=1e-5):
    sh = (1, -1) + (1,) * (x.ndim - 2)
    v = x.astype(np.float64)
    y = (v - mean.reshape(sh)) / np.sqrt(var.reshape(sh).astype(np.float64) + eps)
    return (y * gamma.reshape(sh) + beta.reshape(sh)).astype(np.float32)


def batch_norm_cost(shape) -> Cost:
    # 2 FLOPs per element (x * scale + shift; scale and shift are per-channel constants
    # computed once). A BN folded into the preceding conv is not a node and costs nothing.
    n, C = numel(shape), shape[1]
    return Cost(flops=2 * n, params=4 * C, elems_read=n + 4 * C, elems_written=n)


def fold_batchnorm(conv_weight, conv_bias, gamma, beta, mean, var, eps: float = 1e-5):
    """Weights equivalent to conv (or linear) followed by inference BN:
        s = gamma / sqrt(var + eps),   w' = w * s (per output channel),   b' = (b - mean) * s + beta
    conv_weight: (O, ...) with output channels first (conv (O, I/g, KH, KW), linear (O, I);
    NOT ConvTranspose, whose weight is (I, O/g, KH, KW)); conv_bias: (O,) or None.
    Computed in float64, returned as float32 (weight of the same shape, bias (O,))."""
    w = float32_array(conv_weight, "conv_weight")
    if w.ndim < 2:
        raise InputError(f"conv_weight must be (O, ...) with output channels first, got "
                         f"shape {w.shape}")
    O = w.shape[0]
    b = _vector(conv_bias, "conv_bias", O, allow_none=True)
    scale, shift = _bn_scale_shift(gamma, beta, mean, var, _eps(eps), O)
    w64 = w.astype(np.float64) * scale.reshape((O,) + (1,) * (w.ndim - 1))
    # b' = (b - mean) * s + beta = b * s + (beta - mean * s) = b * s + shift
    b64 = shift if b is None else b.astype(np.float64) * scale + shift
    return w64.astype(np.float32), b64.astype(np.float32)


# ----------------------------------------------------------------------------------------
# layer norm

@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _layer_norm_rows(x, gamma, beta, out, eps):
    # x, out: (R, C), normalize each row. Two passes (mean, then mean of squared deviations)
    # rather than E[x^2] - E[x]^2, which cancels catastrophically when |mean| >> std.
    R, C = x.shape
    for r in numba.prange(R):
        s = 0.0
        for c in range(C):
            s += x[r, c]
        mean = s / C
        v = 0.0
        for c in range(C):
            d = x[r, c] - mean
            v += d * d
        rstd = 1.0 / math.sqrt(v / C + eps)
        for c in range(C):
            out[r, c] = (x[r, c] - mean) * rstd * gamma[c] + beta[c]


_LN2D_BLOCK = 64   # pixels per task: a few cache lines per channel row, many tasks


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _layer_norm_channels(x, gamma, beta, out, eps):
    # x, out: (N, C, L); normalize over C at each of the L pixels. Channel values of one
    # pixel are L apart in memory, so work on a block of pixels at once and sweep c in the
    # outer loop: the inner loop is then contiguous.
    N, C, L = x.shape
    nblk = (L + _LN2D_BLOCK - 1) // _LN2D_BLOCK
    for task in numba.prange(N * nblk):
        n = task // nblk
        l0 = (task % nblk) * _LN2D_BLOCK
        l1 = min(l0 + _LN2D_BLOCK, L)
        mean = np.zeros(l1 - l0)
        var = np.zeros(l1 - l0)
        for c in range(C):
            for i in range(l0, l1):
                mean[i - l0] += x[n, c, i]
        for i in range(l1 - l0):
            mean[i] /= C
        for c in range(C):
            for i in range(l0, l1):
                d = x[n, c, i] - mean[i - l0]
                var[i - l0] += d * d
        for i in range(l1 - l0):
            var[i] = 1.0 / math.sqrt(var[i] / C + eps)      # now rstd
        for c in range(C):
            g = gamma[c]
            b = beta[c]
            for i in range(l0, l1):
                out[n, c, i] = (x[n, c, i] - mean[i - l0]) * var[i - l0] * g + b


def _ln_affine(gamma, beta, C):
    gamma = _vector(gamma, "gamma", C, allow_none=True)
    beta = _vector(beta, "beta", C, allow_none=True)
    if gamma is None:
        gamma = np.ones(C, np.float32)
    if beta is None:
        beta = np.zeros(C, np.float32)
    return gamma, beta


def layer_norm(x: np.ndarray, gamma=None, beta=None, eps: float = 1e-5) -> np.ndarray:
    """Layer norm over the last dim, as F.layer_norm(x, (C,), gamma, beta, eps).
    x: (..., C), e.g. tokens (B, T, C); gamma, beta: (C,) or None (no affine)."""
    x = float32_array(x, "x")
    if x.ndim < 1 or x.shape[-1] == 0:
        raise InputError(f"layer_norm needs x of shape (..., C) with C >= 1, got {x.shape}")
    C = x.shape[-1]
    gamma, beta = _ln_affine(gamma, beta, C)
    out = np.empty_like(x)
    _layer_norm_rows(x.reshape(-1, C), gamma, beta, out.reshape(-1, C), _eps(eps))
    return out


def layer_norm_ref(x, gamma=None, beta=None, eps=1e-5):
    v = x.astype(np.float64)
    y = (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y.astype(np.float32)


def layer_norm_2d(x: np.ndarray, gamma=None, beta=None, eps: float = 1e-6) -> np.ndarray:
    """Layer norm over the channels of NCHW, as timm's LayerNorm2d (which permutes to NHWC,
    runs F.layer_norm over C and permutes back). x: (N, C, H, W); gamma, beta: (C,) or None.
    eps defaults to 1e-6, timm's LayerNorm2d default (layer_norm's 1e-5 is torch's)."""
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    if C == 0:
        raise InputError(f"layer_norm_2d needs at least one channel, got shape {x.shape}")
    gamma, beta = _ln_affine(gamma, beta, C)
    out = np.empty_like(x)
    _layer_norm_channels(x.reshape(N, C, H * W), gamma, beta, out.reshape(N, C, H * W),
                         _eps(eps))
    return out


def layer_norm_2d_ref(x, gamma=None, beta=None, eps=1e-6):
    return np.ascontiguousarray(
        layer_norm_ref(x.transpose(0, 2, 3, 1), gamma, beta, eps).transpose(0, 3, 1, 2))


def layer_norm_cost(shape, affine: bool = True) -> Cost:
    # Per element: mean 1 (add), variance 3 (sub, square, add), normalize 2 (sub mean,
    # mul rstd), affine 2 (mul gamma, add beta)  ->  8 (6 without affine).
    # Per row of C: 5 (mean divide, variance divide, + eps, sqrt, reciprocal).
    # Normalizes over the last dim; rows = numel / C.
    n, C = numel(shape), shape[-1]
    rows = n // C if C else 0
    per_elem = 8 if affine else 6
    params = 2 * C if affine else 0
    return Cost(flops=per_elem * n + 5 * rows, params=params, elems_read=n + params,
                elems_written=n)


def layer_norm_2d_cost(shape, affine: bool = True) -> Cost:
    # The same count as layer_norm, with rows = N*H*W pixels of C channels each.
    N, C, H, W = shape
    return layer_norm_cost((N, H, W, C), affine)


# ----------------------------------------------------------------------------------------
# group norm (MobileViTV2's "layer norm" is GroupNorm(1, C): one mean and variance over all
# of a sample's C x H x W values)

_GN_CHUNKS = 16   # partial sums per group: GroupNorm(1) at batch 1 has one group to reduce


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _group_stats(x, eps, mean, rstd):
    # x: (R, M), one row per (sample, group); mean, rstd: (R,) float64 out. Each row is
    # reduced in _GN_CHUNKS parallel pieces (a row can be all the work there is); two passes,
    # mean and then squared deviations, as in _layer_norm_rows.
    R, M = x.shape
    K = _GN_CHUNKS
    step = (M + K - 1) // K
    part = np.zeros((R, K))
    for t in numba.prange(R * K):
        r = t // K
        s = 0.0
        for i in range((t % K) * step, min(M, (t % K + 1) * step)):
            s += x[r, i]
        part[r, t % K] = s
    for r in range(R):
        mean[r] = part[r].sum() / M
    for t in numba.prange(R * K):
        r = t // K
        m = mean[r]
        v = 0.0
        for i in range((t % K) * step, min(M, (t % K + 1) * step)):
            d = x[r, i] - m
            v += d * d
        part[r, t % K] = v
    for r in range(R):
        rstd[r] = 1.0 / math.sqrt(part[r].sum() / M + eps)


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _group_apply(x, mean, rstd, gamma, beta, out):
    # x, out: (N, C, L); channel c is in group c // (C / G); mean, rstd: (N * G,). Normalize
    # and affine in one multiply-add per element: a = rstd * gamma, b = beta - mean * a.
    N, C, L = x.shape
    G = mean.shape[0] // N
    per_group = C // G
    for p in numba.prange(N * C):
        n = p // C
        c = p % C
        r = n * G + c // per_group
        a = rstd[r] * gamma[c]
        a32 = np.float32(a)
        b32 = np.float32(beta[c] - mean[r] * a)
        for i in range(L):
            out[n, c, i] = x[n, c, i] * a32 + b32


def group_norm(x: np.ndarray, num_groups: int, gamma=None, beta=None,
               eps: float = 1e-5) -> np.ndarray:
    """F.group_norm(x, num_groups, gamma, beta, eps): each sample's channels split into
    num_groups groups, each group normalized over its channels and all positions.
    x: (N, C, *spatial); gamma, beta: (C,) or None. Returns x's shape, float32."""
    x = float32_array(x, "x")
    if x.ndim < 2 or x.shape[1] == 0:
        raise InputError(f"group_norm needs x of shape (N, C, ...) with C >= 1, got {x.shape}")
    N, C = x.shape[:2]
    G = check_int(num_groups, "num_groups", 1)
    if C % G:
        raise InputError(f"group_norm: num_groups={G} must divide the {C} channels")
    gamma, beta = _ln_affine(gamma, beta, C)
    L = numel(x.shape[2:])
    mean = np.empty(N * G)
    rstd = np.empty(N * G)
    _group_stats(x.reshape(N * G, C // G * L), _eps(eps), mean, rstd)
    out = np.empty_like(x)
    _group_apply(x.reshape(N, C, L), mean, rstd, gamma, beta, out.reshape(N, C, L))
    return out


def group_norm_ref(x, num_groups, gamma=None, beta=None, eps=1e-5):
    N, C = x.shape[:2]
    v = x.astype(np.float64).reshape(N, num_groups, -1)
    y = ((v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + eps))
    y = y.reshape(x.shape)
    sh = (1, C) + (1,) * (x.ndim - 2)
    if gamma is not None:
        y = y * gamma.reshape(sh)
    if beta is not None:
        y = y + beta.reshape(sh)
    return y.astype(np.float32)


def group_norm_cost(shape, num_groups: int, affine: bool = True) -> Cost:
    # The layer norm count (8 FLOPs per element with the affine, 5 per normalized row),
    # with one row per (sample, group) of C / G x H x W elements.
    n = numel(shape)
    rows = shape[0] * num_groups
    C = shape[1]
    params = 2 * C if affine else 0
    return Cost(flops=(8 if affine else 6) * n + 5 * rows, params=params,
                elems_read=n + params, elems_written=n)


# ----------------------------------------------------------------------------------------
# softmax

@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _softmax_rows(x, out):
    # Subtracting the row max makes every exponent <= 0, so exp cannot overflow and the
    # largest term is exactly 1 (the sum is >= 1, never 0). A row of all -inf gives NaN,
    # as in PyTorch.
    R, C = x.shape
    for r in numba.prange(R):
        m = np.float32(-np.inf)
        for c in range(C):
            if x[r, c] > m:
                m = x[r, c]
        s = 0.0
        for c in range(C):
            e = exp_f32(x[r, c] - m)
            out[r, c] = e
            s += e
        for c in range(C):
            out[r, c] = out[r, c] / s


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along ``axis``; same shape as x, float32."""
    x = float32_array(x, "x")
    if x.ndim == 0:
        raise InputError("softmax needs an array with at least 1 dimension")
    axis = check_axis(axis, x.ndim)
    if x.shape[axis] == 0:
        raise InputError(f"softmax over an empty axis {axis} of shape {x.shape}")
    last = axis == x.ndim - 1
    xm = x if last else np.ascontiguousarray(np.moveaxis(x, axis, -1))
    out = np.empty_like(xm)
    C = xm.shape[-1]
    _softmax_rows(xm.reshape(-1, C), out.reshape(-1, C))
    return out if last else np.ascontiguousarray(np.moveaxis(out, -1, axis))


def softmax_ref(x, axis=-1):
    v = x.astype(np.float64)
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def softmax_cost(shape, axis: int = -1) -> Cost:
    # 5 FLOPs per element: max compare 1, subtract 1, exp 1, sum add 1, divide 1.
    n = numel(shape)
    return Cost(flops=5 * n, elems_read=n, elems_written=n)
