"""Separable self-attention (MobileViTV2: Mehta & Rastegari 2022, "Separable Self-attention
for Mobile Vision Transformers", arXiv:2206.02680; timm's LinearSelfAttention).

Tokens are the pixels of a feature map cut into patches of ph x pw pixels: pixel (h, w) is
token n = (h // ph, w // pw) of patch position p = (h % ph, w % pw), and attention runs
over the N = H W / (ph pw) tokens that share a patch position p (timm unfolds the map to
(B, C, P, N) to get this layout; a pixel's p and n are all the layout says, so this kernel
reads the NCHW map in place instead of unfolding and folding it). For each p:

    [q; k; v] = W_qkv x + b_qkv        1x1 conv: 1 query channel, C key, C value channels
    s     = softmax over the N tokens of q          (one score per token, not N x N)
    ctx_c = sum_n s_n k_{c,n}                       (the context vector: C numbers)
    y     = W_out (ReLU(v) * ctx) + b_out           1x1 conv

Multi-head attention compares every token with every other (an N x N score matrix per
head); here each token gets one score against a learned query, so the cost is linear in
the number of tokens T = H W:

    MACs = B T (C (2C + 1)   qkv projection
                + C          context vector: sum of scores x keys
                + C C)       output projection
         = B T (3 C^2 + 2 C)            vs multi-head attention's B T 4 C^2 + 2 B T^2 C

The projections are 1x1 convs (conv2d's pointwise kernel; in a network, conv nodes of their
own, named as timm's qkv_proj and out_proj); the part in between (softmax, context vectors,
ReLU(v) * ctx) is ``separable_context_mix``, one Numba function.
"""
from __future__ import annotations


import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .common import FASTMATH, check_array, check_int
from .conv import conv2d
from .vmath import exp_f32


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _context_mix(qkv, ph, pw, out):
    """qkv: (B, 1 + 2C, H, W), channel 0 the query, 1..C the keys, C+1..2C the values;
    out: (B, C, H, W) = ReLU(v) * ctx. H % ph == 0 and W % pw == 0."""
    B, _, H, W = qkv.shape
    C = out.shape[1]
    # softmax of the query over each patch position's tokens: max, exp, sum per (b, p)
    scores = np.empty((B, H, W), np.float32)
    for b in numba.prange(B):
        for i in range(ph):
            for j in range(pw):
                m = np.float32(-np.inf)
                for h in range(i, H, ph):
                    for w in range(j, W, pw):
                        m = max(m, qkv[b, 0, h, w])
                total = 0.0                               # float64: N terms
                for h in range(i, H, ph):
                    for w in range(j, W, pw):
                        e = exp_f32(qkv[b, 0, h, w] - m)
                        scores[b, h, w] = e
                        total += e
                inv = np.float32(1.0 / total)
                for h in range(i, H, ph):
                    for w in range(j, W, pw):
                        scores[b, h, w] *= inv
    # one task per (b, channel): its context vector (ph x pw numbers), then its output
    # plane. Both run down whole rows (contiguous, vectorized): the context through one
    # running row of score x key products per patch row i, summed by column phase at the
    # end; the output against that row's context spread over the row (crow). Written with
    # strided column loops and a w % pw per pixel, this part ran at ~3.5 GFLOP/s.
    for task in numba.prange(B * C):
        b = task // C
        c = task % C
        acc = np.zeros((ph, W), np.float32)
        for h in range(H):
            arow = acc[h % ph]
            srow = scores[b, h]
            krow = qkv[b, 1 + c, h]
            for w in range(W):
                arow[w] += srow[w] * krow[w]
        crow = np.empty((ph, W), np.float32)
        for i in range(ph):
            for j in range(pw):
                a = np.float32(0.0)
                for w in range(j, W, pw):
                    a += acc[i, w]
                for w in range(j, W, pw):
                    crow[i, w] = a
        for h in range(H):
            vrow = qkv[b, 1 + C + c, h]
            orow = out[b, c, h]
            cr = crow[h % ph]
            for w in range(W):
                v = vrow[w]
                orow[w] = (v if v > 0 else np.float32(0.0)) * cr[w]


def _patch(patch) -> tuple[int, int]:
    if isinstance(patch, (int, np.integer)) and not isinstance(patch, bool):
        patch = (patch, patch)
    if not isinstance(patch, (tuple, list)) or len(patch) != 2:
        raise InputError(f"patch must be an int or a pair (ph, pw), got {patch!r}")
    return check_int(patch[0], "patch height", 1), check_int(patch[1], "patch width", 1)


def check_patch_grid(shape, patch, what: str = "separable self-attention") -> tuple[int, int]:
    """The patch size, after checking that it tiles an (N, C, H, W) map exactly."""
    ph, pw = _patch(patch)
    H, W = shape[2], shape[3]
    if H % ph or W % pw:
        raise InputError(f"{what}: a {H}x{W} map does not split into {ph}x{pw} patches; "
                         f"the map's height and width must be multiples of the patch size "
                         f"(for a whole network: choose an input resolution whose feature "
                         f"maps stay even, e.g. the native one)")
    return ph, pw


def separable_context_mix(qkv: np.ndarray, patch=(2, 2)) -> np.ndarray:
    """The attention between the two projections: qkv (B, 1 + 2C, H, W), the qkv
    projection's output (query, C keys, C values); returns ReLU(v) * ctx, (B, C, H, W)."""
    qkv = check_array(qkv, "qkv", 4)
    if qkv.shape[1] < 3 or qkv.shape[1] % 2 == 0:
        raise InputError(f"separable attention needs 1 + 2C channels (one query, C keys, C "
                         f"values), got {qkv.shape[1]}")
    ph, pw = check_patch_grid(qkv.shape, patch)
    B, C2, H, W = qkv.shape
    out = np.empty((B, (C2 - 1) // 2, H, W), np.float32)
    _context_mix(qkv, ph, pw, out)
    return out


def separable_self_attention(x: np.ndarray, w_qkv, b_qkv, w_out, b_out,
                             patch=(2, 2)) -> np.ndarray:
    """timm's LinearSelfAttention on the unfolded map, computed on the map itself: qkv 1x1
    conv, separable_context_mix, output 1x1 conv (the network runs the three as three nodes).

    x: (B, C, H, W) float32, H and W multiples of the patch (ph, pw); w_qkv: (1 + 2C, C, 1, 1)
    (timm's qkv_proj.weight), b_qkv: (1 + 2C,) or None; w_out: (C, C, 1, 1), b_out: (C,) or
    None. Returns (B, C, H, W)."""
    x = check_array(x, "x", 4)
    C = x.shape[1]
    for w, name, rows in ((w_qkv, "w_qkv", 1 + 2 * C), (w_out, "w_out", C)):
        check_array(w, name, 4)
        if w.shape != (rows, C, 1, 1):
            raise InputError(f"{name} must have shape {(rows, C, 1, 1)} for an input of {C} "
                             f"channels, got {w.shape}")
    check_patch_grid(x.shape, patch)
    return conv2d(separable_context_mix(conv2d(x, w_qkv, b_qkv), patch), w_out, b_out)


def _unfold_ref(x, ph, pw):
    """timm's unfold: (B, C, H, W) -> (B, C, P, N), P = ph pw patch positions, N tokens."""
    B, C, H, W = x.shape
    t = x.astype(np.float64).reshape(B, C, H // ph, ph, W // pw, pw).transpose(0, 1, 3, 5, 2, 4)
    return t.reshape(B, C, ph * pw, (H // ph) * (W // pw))


def separable_context_mix_ref(qkv, patch=(2, 2)):
    """NumPy reference in float64, on timm's unfolded layout as LinearSelfAttention does it."""
    ph, pw = _patch(patch)
    B, C2, H, W = qkv.shape
    C = (C2 - 1) // 2
    t = _unfold_ref(qkv, ph, pw)
    q, k, v = t[:, :1], t[:, 1:1 + C], t[:, 1 + C:]
    s = np.exp(q - q.max(-1, keepdims=True))
    s = s / s.sum(-1, keepdims=True)                    # softmax over the N tokens
    ctx = (k * s).sum(-1, keepdims=True)                # (B, C, P, 1)
    y = np.maximum(v, 0) * ctx
    y = y.reshape(B, C, ph, pw, H // ph, W // pw).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(B, C, H, W).astype(np.float32)


def separable_self_attention_ref(x, w_qkv, b_qkv, w_out, b_out, patch=(2, 2)):
    """NumPy reference in float64 of the whole layer (projections as matrix products)."""
    C = x.shape[1]
    b_qkv = np.zeros(1 + 2 * C) if b_qkv is None else b_qkv
    b_out = np.zeros(C) if b_out is None else b_out
    qkv = np.einsum("oc,bchw->bohw", w_qkv[:, :, 0, 0], x.astype(np.float64))
    mixed = separable_context_mix_ref(qkv + b_qkv[None, :, None, None], patch)
    y = np.einsum("oc,bchw->bohw", w_out[:, :, 0, 0], mixed.astype(np.float64))
    return (y + b_out[None, :, None, None]).astype(np.float32)


def separable_context_mix_cost(qkv_shape) -> Cost:
    # qkv: (B, 1 + 2C, H, W), T = H W tokens (all patch positions together).
    # MACs: the context vectors, B T C (each token's score times its C keys).
    # FLOPs: 2 x MACs + softmax 5 per token (max, subtract, exp, sum, divide)
    #        + ReLU and the multiply by the context, 2 per output element.
    B, C2, H, W = qkv_shape
    C, T = (C2 - 1) // 2, H * W
    macs = B * T * C
    return Cost(macs=macs, flops=2 * macs + 5 * B * T + 2 * B * T * C,
                elems_read=numel(qkv_shape), elems_written=B * C * T)


def separable_self_attention_cost(shape, has_bias: bool = True) -> Cost:
    # x: (B, C, H, W): the two 1x1 projections (B T C (2C + 1) and B T C C MACs) and the
    # context mix, B T (3 C^2 + 2 C) MACs in all (module docstring). Traffic: x, the weights
    # and the output; q/k/v are intermediates of the layer.
    B, C, H, W = shape
    T = H * W
    proj = B * T * (C * (1 + 2 * C) + C * C)
    mix = separable_context_mix_cost((B, 1 + 2 * C, H, W))
    params = C * (1 + 2 * C) + C * C + ((1 + 2 * C) + C if has_bias else 0)
    n = numel(shape)
    return Cost(macs=proj + mix.macs, flops=2 * proj + mix.flops, params=params,
                elems_read=n + params, elems_written=n)
