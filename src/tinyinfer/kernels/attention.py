"""Attention: scaled dot-product attention and multi-head self-attention (MobileViT, ViT).

    attn(Q, K, V) = softmax(Q K^T * scale) V,   scale = 1/sqrt(D) by default

written as plain loops (no BLAS), a block of 16 query rows at a time: scores for the
block, a stable softmax (subtract the row max), then the weighted sum of V rows. The T x T
score matrix is never stored whole, only 16 rows of it per thread: memory is O(T) per
thread instead of O(T^2) per head.

Parallel over (batch*head, block of query rows): batch*head alone can be smaller than the
core count (MobileViT-XXS has 4 heads), while the row blocks keep every core busy.

fastmath here is only {'reassoc', 'contract'}: reassociation lets LLVM vectorize the dot
products (a strict left-to-right sum cannot use SIMD) and contract allows FMA. No 'nnan' or
'ninf', so a -inf or NaN still behaves as in IEEE arithmetic.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .common import FASTMATH, check_int, float32_array
from .vmath import exp_f32

_ROWS = 16     # query rows per parallel task


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _sdpa(q, kt, vt, scale, out, bias=None):
    # q: (G, Tq, D); kt: (G, D, Tk) and vt: (G, Dv, Tk), K and V TRANSPOSED so that every
    # inner loop below runs over keys, contiguous and long (Tk = 64..1024) rather than over
    # the short head dim (D = 16..64); out: (G, Tq, Dv). G = batch * heads.
    # bias: None, or (Gb, Tq, Tk) added to the scores before the softmax, group g using
    # bias[g % Gb] (Gb = 1: one bias for all; Gb = heads: per head, shared over the batch),
    # e.g. EfficientViT's relative-position biases (attention_cascaded.py).
    G, Tq, D = q.shape
    Tk = kt.shape[2]
    Dv = vt.shape[1]
    nblk = (Tq + _ROWS - 1) // _ROWS
    for task in numba.prange(G * nblk):
        g = task // nblk
        i0 = (task % nblk) * _ROWS
        R = min(i0 + _ROWS, Tq) - i0
        # scores S = (q * scale) K^T for this block of R query rows: one row of K^T at a
        # time, added into all R score rows while it is in L1. Scaling q (R*D multiplies)
        # is cheaper than scaling S (R*Tk).
        s = np.zeros((R, Tk), np.float32)
        for d in range(D):
            for r in range(R):
                a = q[g, i0 + r, d] * scale
                for j in range(Tk):
                    s[r, j] += a * kt[g, d, j]
        if bias is not None:
            gb = g % bias.shape[0]
            for r in range(R):
                for j in range(Tk):
                    s[r, j] += bias[gb, i0 + r, j]
        # softmax numerators in place; subtracting the row max keeps exp <= 1
        tot = np.empty(R, np.float32)
        for r in range(R):
            m = np.float32(-np.inf)
            for j in range(Tk):
                m = max(m, s[r, j])
            t = np.float32(0.0)
            for j in range(Tk):
                e = exp_f32(s[r, j] - m)
                s[r, j] = e
                t += e
            tot[r] = t
        # out = P V: a dot product over keys per output; dividing the Dv outputs by the
        # row sum replaces Tk divides of the probabilities (same result, fewer divides)
        for r in range(R):
            for d in range(Dv):
                a = np.float32(0.0)
                for j in range(Tk):
                    a += s[r, j] * vt[g, d, j]
                out[g, i0 + r, d] = a / tot[r]


def _sdpa_args(q, k, v, scale):
    q = float32_array(q, "q")
    k = float32_array(k, "k")
    v = float32_array(v, "v")
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise InputError(f"q, k, v must all be (..., T, D) with the same number of dims, "
                         f"e.g. (B, H, T, D); got {q.shape}, {k.shape}, {v.shape}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise InputError(f"q, k, v must agree in their leading (batch, head) dims (no "
                         f"broadcasting); got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise InputError(f"q and k must have the same head dim D, got {q.shape[-1]} and "
                         f"{k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise InputError(f"k and v must have the same number of tokens, got {k.shape[-2]} "
                         f"and {v.shape[-2]}")
    if k.shape[-2] == 0 or q.shape[-1] == 0:
        raise InputError(f"attention needs at least one key token and D >= 1, got k of "
                         f"shape {k.shape}")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    else:
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise InputError(f"scale must be a number or None, got {scale!r}") from None
    return q, k, v, np.float32(scale)


def scaled_dot_product_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                                 scale=None, bias=None) -> np.ndarray:
    """softmax(q k^T * scale + bias) v, as F.scaled_dot_product_attention with a float
    attn_mask ``bias`` (no dropout).

    q: (B, H, Tq, D), k: (B, H, Tk, D), v: (B, H, Tk, Dv) -> (B, H, Tq, Dv). Any number of
    leading dims works, as long as q, k, v agree in them. scale defaults to 1/sqrt(D).
    bias: None or (..., Tq, Tk) whose leading dims are trailing leading dims of q, e.g.
    (Tq, Tk) for all, (H, Tq, Tk) per head."""
    q, k, v, scale = _sdpa_args(q, k, v, scale)
    lead = q.shape[:-2]
    G = numel(lead)
    Tq, D = q.shape[-2:]
    Tk, Dv = v.shape[-2:]
    out = np.empty(lead + (Tq, Dv), np.float32)
    kt = np.ascontiguousarray(k.reshape(G, Tk, D).transpose(0, 2, 1))     # (G, D, Tk)
    vt = np.ascontiguousarray(v.reshape(G, Tk, Dv).transpose(0, 2, 1))    # (G, Dv, Tk)
    if bias is None:
        _sdpa(q.reshape(G, Tq, D), kt, vt, scale, out.reshape(G, Tq, Dv))
        return out
    bias = float32_array(bias, "bias")
    n = bias.ndim - 2
    if n < 0 or n > len(lead) or bias.shape != lead[len(lead) - n:] + (Tq, Tk):
        raise InputError(f"bias must have shape (..., Tq, Tk) = (..., {Tq}, {Tk}) with "
                         f"leading dims ending those of q {lead}, got {bias.shape}")
    _sdpa(q.reshape(G, Tq, D), kt, vt, scale, out.reshape(G, Tq, Dv),
          bias.reshape(-1, Tq, Tk))
    return out


def scaled_dot_product_attention_ref(q, k, v, scale=None, bias=None):
    """NumPy reference in float64 (uses BLAS; fine in a reference)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64)) * scale
    s = s if bias is None else s + bias
    s = np.exp(s - s.max(-1, keepdims=True))
    return ((s / s.sum(-1, keepdims=True)) @ v.astype(np.float64)).astype(np.float32)


def scaled_dot_product_attention_cost(q_shape, k_shape, v_shape) -> Cost:
    # MACs: scores G*Tq*Tk*D + weighted sum G*Tq*Tk*Dv (G = product of leading dims).
    # FLOPs: 2*MACs + the scale multiply on q, G*Tq*D + softmax 5 per score, 5*G*Tq*Tk
    #        (max 1, sub 1, exp 1, sum 1, divide 1; counted per score as the formula has
    #        it, although the kernel divides the Dv outputs instead).
    # The score matrix lives in a per-thread buffer, so it is not counted as traffic.
    *lead, Tq, D = q_shape
    Tk, Dv = v_shape[-2], v_shape[-1]
    G = numel(lead)
    macs = G * Tq * Tk * (D + Dv)
    flops = 2 * macs + G * Tq * D + 5 * G * Tq * Tk
    return Cost(macs=macs, flops=flops,
                elems_read=numel(q_shape) + numel(k_shape) + numel(v_shape),
                elems_written=G * Tq * Dv)


# ----------------------------------------------------------------------------------------
# multi-head self-attention

@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _linear(x, w, b, out):
    # out[r, o] = sum_c x[r, c] w[o, c] + b[o];  x: (R, C), w: (O, C), out: (R, O).
    # Four rows of x share each load of a weight row: the weight matrix (4*C*C*3 bytes,
    # ~0.7 MB at C = 240) is then streamed R/4 times instead of R times.
    R, C = x.shape
    O = w.shape[0]
    nblk = (R + 3) // 4
    for blk in numba.prange(nblk):
        r0 = blk * 4
        if r0 + 4 <= R:
            for o in range(O):
                a0 = np.float32(0.0)
                a1 = np.float32(0.0)
                a2 = np.float32(0.0)
                a3 = np.float32(0.0)
                for c in range(C):
                    wc = w[o, c]
                    a0 += x[r0, c] * wc
                    a1 += x[r0 + 1, c] * wc
                    a2 += x[r0 + 2, c] * wc
                    a3 += x[r0 + 3, c] * wc
                out[r0, o] = a0 + b[o]
                out[r0 + 1, o] = a1 + b[o]
                out[r0 + 2, o] = a2 + b[o]
                out[r0 + 3, o] = a3 + b[o]
        else:
            for r in range(r0, R):
                for o in range(O):
                    a = np.float32(0.0)
                    for c in range(C):
                        a += x[r, c] * w[o, c]
                    out[r, o] = a + b[o]


def _mhsa_args(x, w_qkv, b_qkv, w_proj, b_proj, num_heads):
    x = float32_array(x, "x", 3, "(B, T, C)")
    B, T, C = x.shape
    H = check_int(num_heads, "num_heads", 1)
    if C % H:
        raise InputError(f"num_heads={H} must divide the embedding dim C={C}")
    if T == 0 or C == 0:
        raise InputError(f"multi_head_self_attention needs T >= 1 and C >= 1, got {x.shape}")

    def mat(w, name, shape):
        w = float32_array(w, name)
        if w.shape != shape:
            raise InputError(f"{name} must have shape {shape}, got {w.shape}")
        return w

    w_qkv = mat(w_qkv, "w_qkv", (3 * C, C))
    b_qkv = np.zeros(3 * C, np.float32) if b_qkv is None else mat(b_qkv, "b_qkv", (3 * C,))
    if w_proj is None:          # no output projection (EdgeViT's delegate attention)
        if b_proj is not None:
            raise InputError("b_proj given without w_proj: pass both, or neither for "
                             "attention without an output projection")
        return x, w_qkv, b_qkv, None, None, H
    w_proj = mat(w_proj, "w_proj", (C, C))
    b_proj = np.zeros(C, np.float32) if b_proj is None else mat(b_proj, "b_proj", (C,))
    return x, w_qkv, b_qkv, w_proj, b_proj, H


def multi_head_self_attention(x: np.ndarray, w_qkv, b_qkv, w_proj, b_proj,
                              num_heads: int) -> np.ndarray:
    """Self-attention of timm's ``Attention`` / torch's ``nn.MultiheadAttention``.

    x: (B, T, C); w_qkv: (3C, C), rows q then k then v (timm's qkv.weight, torch's
    in_proj_weight), each C rows split into num_heads heads of D = C/num_heads;
    b_qkv: (3C,) or None; w_proj: (C, C); b_proj: (C,) or None. Returns (B, T, C).
    scale = 1/sqrt(D), as both timm and torch use. w_proj = b_proj = None: the merged heads
    without the output projection (EdgeViT projects after its local propagation)."""
    x, w_qkv, b_qkv, w_proj, b_proj, H = _mhsa_args(x, w_qkv, b_qkv, w_proj, b_proj,
                                                    num_heads)
    B, T, C = x.shape
    D = C // H
    qkv = np.empty((B * T, 3 * C), np.float32)
    _linear(x.reshape(B * T, C), w_qkv, b_qkv, qkv)
    # split heads as timm does, (B, T, 3, H, D) -> q (B, H, T, D), with k and v transposed
    # to (B, H, D, T) as _sdpa wants them: one copy of 3*B*T*C elements in all
    qkv = qkv.reshape(B, T, 3, H, D)
    q = np.ascontiguousarray(qkv[:, :, 0].transpose(0, 2, 1, 3)).reshape(B * H, T, D)
    kt = np.ascontiguousarray(qkv[:, :, 1].transpose(0, 2, 3, 1)).reshape(B * H, D, T)
    vt = np.ascontiguousarray(qkv[:, :, 2].transpose(0, 2, 3, 1)).reshape(B * H, D, T)
    o = np.empty((B * H, T, D), np.float32)
    _sdpa(q, kt, vt, np.float32(1.0 / math.sqrt(D)), o)
    # merge heads: (B, H, T, D) -> (B, T, H*D)
    o = np.ascontiguousarray(o.reshape(B, H, T, D).transpose(0, 2, 1, 3)).reshape(B * T, C)
    if w_proj is None:
        return o.reshape(B, T, C)
    out = np.empty((B, T, C), np.float32)
    _linear(o, w_proj, b_proj, out.reshape(B * T, C))
    return out


def multi_head_self_attention_ref(x, w_qkv, b_qkv, w_proj, b_proj, num_heads):
    """NumPy reference in float64, written as timm's Attention.forward."""
    B, T, C = x.shape
    H, D = num_heads, C // num_heads
    b_qkv = np.zeros(3 * C) if b_qkv is None else b_qkv
    b_proj = np.zeros(C) if b_proj is None else b_proj
    qkv = x.astype(np.float64) @ w_qkv.T.astype(np.float64) + b_qkv
    q, k, v = qkv.reshape(B, T, 3, H, D).transpose(2, 0, 3, 1, 4)
    s = (q @ k.swapaxes(-1, -2)) / math.sqrt(D)
    s = np.exp(s - s.max(-1, keepdims=True))
    o = (s / s.sum(-1, keepdims=True)) @ v
    o = o.transpose(0, 2, 1, 3).reshape(B, T, C)
    if w_proj is None:
        return o.astype(np.float32)
    return (o @ w_proj.T.astype(np.float64) + b_proj).astype(np.float32)


def multi_head_self_attention_cost(shape, num_heads: int, qkv_bias: bool = True,
                                   proj_bias: bool = True, proj: bool = True) -> Cost:
    # x: (B, T, C), H heads of D = C/H.
    # MACs: qkv projection B*T*C*3C + scores B*H*T*T*D + weighted sum B*H*T*T*D
    #       + output projection B*T*C*C (none when proj=False; nor its parameters).
    # FLOPs: 2*MACs + scale on q B*T*C + softmax 5*B*H*T*T (see the sdpa cost).
    # Traffic counts x, the weights and the output; q/k/v and the merged heads are
    # intermediates of this one op (written and read once each, not counted).
    B, T, C = shape
    H = int(num_heads)
    D = C // H
    macs = B * T * C * 3 * C + 2 * B * H * T * T * D + B * T * C * C
    flops = 2 * macs + B * T * C + 5 * B * H * T * T
    params = 4 * C * C + (3 * C if qkv_bias else 0) + (C if proj_bias else 0)
    if not proj:
        macs, flops, params = macs - B * T * C * C, flops - 2 * B * T * C * C, params - C * C
    return Cost(macs=macs, flops=flops, params=params, elems_read=B * T * C + params,
                elems_written=B * T * C)
