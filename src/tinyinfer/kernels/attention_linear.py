"""ReLU linear attention: the global attention of MIT's EfficientViT (Cai et al., "EfficientViT:
Multi-Scale Linear Attention for High-Resolution Dense Prediction", ICCV 2023; timm's
``LiteMLA``).

Softmax attention's similarity exp(q.k) is replaced by ReLU(q).ReLU(k). A dot product
factors where an exponential does not, so the sum over keys can be taken first:

    out_n = sum_m (ReLU(q_n) . ReLU(k_m)) v_m / sum_m ReLU(q_n) . ReLU(k_m)
          = (ReLU(q_n)^T KV) / (ReLU(q_n) . ksum)      KV   = sum_m ReLU(k_m) v_m^T  (D x D)
                                                       ksum = sum_m ReLU(k_m)        (D)

KV and ksum are computed once per head, so the cost is linear in the number of tokens N
(softmax attention builds an N x N score matrix instead):

    MACs  = 2 G N D (D + 1)     per image, G heads of D features: KV with its ksum column
                                (D + 1) and the product of every query with it (D + 1)
    FLOPs = 2 MACs + 2 G N D (ReLU of q and k) + G N (+ eps) + G N D (divide)

timm computes ksum as the last column of KV by padding V with a row of ones
(``F.pad(v, (0, 1), value=1)``), and the denominator as the last column of q @ KV; the
counts above follow it (the "+ 1"), so they equal what torch's FlopCounterMode sees. The
division is ``out / (den + eps)`` with timm's eps = 1e-5: a token whose ReLU(q) is all
zero gets 0, not NaN.

Layout. The input is the NCHW map timm reshapes: channels (G, 3, D), i.e. each head's D
query channels, then its D key channels, then its D value channels, and a channel is one
contiguous row of N = H*W tokens. So no transpose is needed: every inner loop below runs
over tokens, contiguous. The output is NCHW too, channels (G, D), as timm's
``out.transpose(-1, -2).reshape(B, -1, H, W)`` leaves it for the projection conv.

fastmath {'reassoc', 'contract'} (common.FASTMATH): reassociation vectorizes the sums over
tokens; no 'nnan'/'ninf'.
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost
from ..errors import InputError
from .common import FASTMATH, check_int, float32_array

LITEMLA_EPS = 1e-5    # timm's LiteMLA default (and the MIT reference's)


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _relu_linear_attention(x, eps, out):
    # x: (B, G, 3, D, N): per head g, rows of N tokens for q (x[b, g, 0]), k (x[b, g, 1]) and
    # v (x[b, g, 2]); out: (B, G, D, N). One parallel task per (image, head).
    B, G, _, D, N = x.shape
    for task in numba.prange(B * G):
        b = task // G
        g = task % G
        q = x[b, g, 0]
        k = x[b, g, 1]
        v = x[b, g, 2]
        # kv[d, e] = sum_n ReLU(k[d, n]) v[e, n] for e < D; kv[d, D] = sum_n ReLU(k[d, n])
        # (timm's column of ones). One ReLU'd key row at a time, dotted with every v row.
        kv = np.empty((D, D + 1), np.float32)
        row = np.empty(N, np.float32)
        for d in range(D):
            s = np.float32(0.0)
            for n in range(N):
                row[n] = max(k[d, n], np.float32(0.0))
                s += row[n]
            kv[d, D] = s
            for e in range(D):
                a = np.float32(0.0)
                for n in range(N):
                    a += row[n] * v[e, n]
                kv[d, e] = a
        # acc[e, n] = sum_d kv[d, e] ReLU(q[d, n]) for e <= D (row D: the denominator).
        # Each ReLU'd query row is added, scaled, into all D + 1 accumulator rows: every
        # inner loop runs over tokens.
        acc = np.zeros((D + 1, N), np.float32)
        for d in range(D):
            for n in range(N):
                row[n] = max(q[d, n], np.float32(0.0))
            for e in range(D + 1):
                w = kv[d, e]
                for n in range(N):
                    acc[e, n] += w * row[n]
        for e in range(D):
            for n in range(N):
                out[b, g, e, n] = acc[e, n] / (acc[D, n] + eps)


def _check_args(qkv, dim, eps):
    qkv = float32_array(qkv, "qkv", 4, "(B, G*3*dim, H, W)")
    dim = check_int(dim, "dim", 1)
    B, C, H, W = qkv.shape
    if C == 0 or C % (3 * dim):
        raise InputError(f"relu_linear_attention: qkv has {C} channels, which is not a "
                         f"positive multiple of 3*dim = {3 * dim} (each head holds dim query, "
                         f"dim key and dim value channels, in that order)")
    if H * W == 0:
        raise InputError(f"relu_linear_attention needs at least one token, got {qkv.shape}")
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise InputError(f"eps must be a number > 0, got {eps!r}") from None
    if not eps > 0:   # eps = 0 divides by zero wherever ReLU(q) is all zero
        raise InputError(f"eps must be > 0 (timm's LiteMLA uses {LITEMLA_EPS}), got {eps!r}")
    return qkv, dim, np.float32(eps)


def relu_linear_attention(qkv: np.ndarray, dim: int, eps: float = LITEMLA_EPS) -> np.ndarray:
    """EfficientViT's ReLU linear attention over every pixel of an NCHW map.

    qkv: (B, G*3*dim, H, W), channels grouped per head as [q (dim), k (dim), v (dim)], the
    layout of timm's LiteMLA (the qkv conv's output concatenated with its multi-scale
    aggregates); returns (B, G*dim, H, W). See the module docstring for the formula."""
    qkv, dim, eps = _check_args(qkv, dim, eps)
    B, C, H, W = qkv.shape
    G = C // (3 * dim)
    out = np.empty((B, G * dim, H, W), np.float32)
    _relu_linear_attention(qkv.reshape(B, G, 3, dim, H * W), eps,
                           out.reshape(B, G, dim, H * W))
    return out


def relu_linear_attention_ref(qkv, dim, eps=LITEMLA_EPS):
    """NumPy reference in float64, step by step as timm's LiteMLA.forward after its concat:
    reshape to heads, split q/k/v, ReLU, pad v with ones, two matmuls, divide."""
    B, C, H, W = qkv.shape
    x = qkv.astype(np.float64).reshape(B, -1, 3 * dim, H * W).swapaxes(-1, -2)
    q, k, v = x[..., :dim], x[..., dim:2 * dim], x[..., 2 * dim:]
    q, k = np.maximum(q, 0), np.maximum(k, 0)
    v = np.concatenate([v, np.ones(v.shape[:-1] + (1,))], axis=-1)
    o = q @ (k.swapaxes(-1, -2) @ v)
    o = o[..., :-1] / (o[..., -1:] + eps)
    return o.swapaxes(-1, -2).reshape(B, -1, H, W).astype(np.float32)


def relu_linear_attention_cost(shape, dim: int) -> Cost:
    """Counts of one call on a qkv map of ``shape`` (B, G*3*dim, H, W); formula in the
    module docstring: linear in the number of tokens N = H*W."""
    B, C, H, W = (int(s) for s in shape)
    D, N = int(dim), H * W
    G = C // (3 * D)
    macs = 2 * B * G * N * D * (D + 1)
    flops = 2 * macs + 2 * B * G * N * D + B * G * N + B * G * N * D
    return Cost(macs=macs, flops=flops, elems_read=B * C * N, elems_written=B * G * D * N)
