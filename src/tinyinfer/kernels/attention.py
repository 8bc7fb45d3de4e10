"""Attention: scaled dot-product attention and multi-head self-attention (MobileViT, ViT).

    attn(Q, K, V) = softmax(Q K^T * scale) V,   scale = 1/sqrt(D) by default

written as plain loops (no BLAS), a block of NR (tiles.py: 16 or 64) query rows at a
time: scores for the block, a stable softmax (subtract the row max), then the weighted sum
of V rows. The T x T score matrix is never stored whole, only NR rows of it per thread:
memory is O(T) per thread instead of O(T^2) per head.

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
from .common import FASTMATH, check_int, float32_array, stack_empty
from .linear import linear_into
from .tiles import FALSE, MR, NMR, NR, TRUE, ZERO, _micro_tile
from .vmath import exp_f32

_ROWS = NR     # query rows per parallel task: one packed panel of the micro-tile
assert _ROWS == NR


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _sdpa(q, k, vt, scale, out, bias=None):
    # q: (G, Tq, D), k: (G, Tk, D), vt: (G, Dv, Tk) (V TRANSPOSED); out: (G, Tq, Dv).
    # G = batch * heads. bias: None, or (Gb, Tq, Tk) added to the scores before the
    # softmax, group g using bias[g % Gb] (Gb = 1: one bias for all; Gb = heads: per head,
    # shared over the batch), e.g. EfficientViT's relative-position biases
    # (attention_cascaded.py).
    #
    # Both products run on tiles.py's register-blocked micro-tile (MR = 4 or 5 rows of a
    # matrix against a packed panel of NR = 16 or 64 columns, accumulators in registers), with
    # the NR query rows of a task as the panel's columns. Everything is computed TRANSPOSED:
    #   scores  sT (Tk, NR) = K (Tk, D) @ (scale * q_block)^T (D, NR)
    #   output  oT (Dv, NR) = V^T (Dv, Tk) @ P^T (Tk, NR)
    # so the probabilities P^T that the first product leaves are already the packed panel
    # the second one reads, and the softmax over keys (down a column of sT) is a vector
    # operation across the NR queries. Written as plain loops over keys, the same
    # products were L1-bound (2 loads and a store per multiply-add) at 30-45 GFLOP/s.
    G, Tq, D = q.shape
    Tk = k.shape[1]
    Dv = vt.shape[1]
    nblk = (Tq + _ROWS - 1) // _ROWS
    zeros = np.zeros(max(Tk, Dv), np.float32)       # the micro-tile's bias: none
    for task in numba.prange(G * nblk):
        g = task // nblk
        i0 = (task % nblk) * _ROWS
        R = min(i0 + _ROWS, Tq) - i0
        qp = np.zeros((D, _ROWS), np.float32)       # the packed, scaled query block
        for r in range(R):
            for d in range(D):
                qp[d, r] = q[g, i0 + r, d] * scale
        # rows past Tk (up to a multiple of MR) are computed from a repeated key, unused
        st = np.empty(((Tk + MR - 1) // MR * MR, _ROWS), np.float32)
        kg = k[g]
        for j0 in range(0, Tk, MR):
            _micro_tile(kg, j0, ZERO, D, qp, zeros, TRUE, st, j0, ZERO, NMR)
        if bias is not None:
            gb = g % bias.shape[0]
            for r in range(R):
                for j in range(Tk):
                    st[j, r] += bias[gb, i0 + r, j]
        # softmax numerators in place, column by column; subtracting the column max
        # keeps exp <= 1. The normalisation waits for the output (Dv divides, not Tk).
        m = stack_empty(_ROWS)
        tot = stack_empty(_ROWS)
        for r in range(_ROWS):
            m[r] = st[0, r]
            tot[r] = 0.0
        for j in range(1, Tk):
            for r in range(_ROWS):
                m[r] = max(m[r], st[j, r])
        for j in range(Tk):
            for r in range(_ROWS):
                e = exp_f32(st[j, r] - m[r])
                st[j, r] = e
                tot[r] += e
        ot = np.empty(((Dv + MR - 1) // MR * MR, _ROWS), np.float32)
        vg = vt[g]
        for d0 in range(0, Dv, MR):
            _micro_tile(vg, d0, ZERO, Tk, st, zeros, TRUE, ot, d0, ZERO, NMR)
        for r in range(R):
            inv = np.float32(1.0) / tot[r]
            for d in range(Dv):
                out[g, i0 + r, d] = ot[d, r] * inv


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
    k = np.ascontiguousarray(k).reshape(G, Tk, D)
    vt = np.ascontiguousarray(v.reshape(G, Tk, Dv).transpose(0, 2, 1))    # (G, Dv, Tk)
    if bias is None:
        _sdpa(np.ascontiguousarray(q).reshape(G, Tq, D), k, vt, scale, out.reshape(G, Tq, Dv))
        return out
    bias = float32_array(bias, "bias")
    n = bias.ndim - 2
    if n < 0 or n > len(lead) or bias.shape != lead[len(lead) - n:] + (Tq, Tk):
        raise InputError(f"bias must have shape (..., Tq, Tk) = (..., {Tq}, {Tk}) with "
                         f"leading dims ending those of q {lead}, got {bias.shape}")
    _sdpa(np.ascontiguousarray(q).reshape(G, Tq, D), k, vt, scale, out.reshape(G, Tq, Dv),
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
                              num_heads: int, packed=(None, None)) -> np.ndarray:
    """Self-attention of timm's ``Attention`` / torch's ``nn.MultiheadAttention``.

    x: (B, T, C); w_qkv: (3C, C), rows q then k then v (timm's qkv.weight, torch's
    in_proj_weight), each C rows split into num_heads heads of D = C/num_heads;
    b_qkv: (3C,) or None; w_proj: (C, C); b_proj: (C,) or None. Returns (B, T, C).
    scale = 1/sqrt(D), as both timm and torch use. w_proj = b_proj = None: the merged heads
    without the output projection (EdgeViT projects after its local propagation).
    packed: linear.pack_weight_panels of w_qkv and w_proj, if the caller keeps them (the
    engine does), else None each."""
    x, w_qkv, b_qkv, w_proj, b_proj, H = _mhsa_args(x, w_qkv, b_qkv, w_proj, b_proj,
                                                    num_heads)
    B, T, C = x.shape
    D = C // H
    qkv = np.empty((B * T, 3 * C), np.float32)
    linear_into(x.reshape(B * T, C), w_qkv, b_qkv, qkv, _packed_for(packed[0], w_qkv))
    # split heads as timm does, (B, T, 3, H, D) -> q and k (B, H, T, D), with v transposed
    # to (B, H, D, T) as _sdpa wants it: one copy of 3*B*T*C elements in all
    qkv = qkv.reshape(B, T, 3, H, D)
    q = np.ascontiguousarray(qkv[:, :, 0].transpose(0, 2, 1, 3)).reshape(B * H, T, D)
    k = np.ascontiguousarray(qkv[:, :, 1].transpose(0, 2, 1, 3)).reshape(B * H, T, D)
    vt = np.ascontiguousarray(qkv[:, :, 2].transpose(0, 2, 3, 1)).reshape(B * H, D, T)
    o = np.empty((B * H, T, D), np.float32)
    _sdpa(q, k, vt, np.float32(1.0 / math.sqrt(D)), o)
    # merge heads: (B, H, T, D) -> (B, T, H*D)
    o = np.ascontiguousarray(o.reshape(B, H, T, D).transpose(0, 2, 1, 3)).reshape(B * T, C)
    if w_proj is None:
        return o.reshape(B, T, C)
    out = np.empty((B, T, C), np.float32)
    linear_into(o, w_proj, b_proj, out.reshape(B * T, C), _packed_for(packed[1], w_proj))
    return out


def _packed_for(wp, w):
    """A caller's packed weight if it is one of w (its shape says so), else None: pack per
    call. (_mhsa_args may have copied w into float32; the pack was made from the node's.)"""
    if wp is not None and wp.shape[1] == w.shape[1] and wp.shape[0] == -(-w.shape[0] // NR):
        return wp
    return None


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
