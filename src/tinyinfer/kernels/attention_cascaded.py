"""Cascaded group attention (EfficientViT-M, Liu et al. CVPR 2023), in local windows.

The block input x (B, C, H, W) is cut into ``heads`` channel groups of Cg = C / heads. Head h
sees its own group PLUS the previous head's output (the cascade: later heads refine what
earlier ones found, and no head recomputes q, k, v from all C channels):

    feat_0 = x_0,   feat_h = x_h + out_{h-1}
    q, k, v = BN(conv1x1(feat_h))                 key_dim, key_dim, Dv = Cg channels
    q = BN(depthwise_conv_kxk(q))                 k per head (timm's ``kernels``)
    out_h = v softmax(q^T k * key_dim^-0.5 + bias_h)^T
    output = concat(out_0, ..., out_{heads-1})    (B, C, H, W); act applied to it

All of it happens inside ``window`` x ``window`` windows (timm's LocalWindowAttention): the map
is zero-padded at the bottom/right to whole windows and every window is attended on its own.
The padding tokens are real tokens there: their q, k, v are the BNs' shifts (conv of 0 is 0)
and they take part as keys; the depthwise conv pads with zeros at each window's border, not
the map's. The output keeps only the H x W real pixels.

bias_h is the relative-position bias: one learned value per head and per offset
(|dy|, |dx|) between query and key pixel, stored as timm's ``attention_biases`` (heads,
window^2) and gathered through ``bias_index`` (timm's ``attention_bias_idxs``).

Why the windows are inside the kernel and not ops of their own: the 1x1 conv, the
depthwise conv and the attention all work per window, so partitioning before and merging
after would be two more copies of the map and two more nodes per block; here the kernel
reads x through window coordinates (zero outside the map) and writes the merged, cropped
output once. Each head's softmax attention is kernels/attention.py's ``_sdpa`` (with its
bias argument); the per-head projection and the merge are the two Numba kernels below.
BN is applied as its per-channel affine map (scale = gamma / sqrt(var + eps), shift =
beta - mean * scale, as norm.fold_batchnorm folds it) in the projection's epilogue, so the
node keeps timm's parameters and names and no weights are rewritten.
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .activations import ACT_FLOPS, ACT_NAMES
from .attention import _sdpa
from .common import FASTMATH, check_act, check_int, epilogue, float32_array
from .tiles import MR, NR, TRUE, ZERO, _micro_tile


@functools.lru_cache(maxsize=None)
def bias_index(window: int) -> np.ndarray:
    """(T, T) int64, T = window^2: the column of ``attention_biases`` for query token i and
    key token j (tokens row-major in the window). timm numbers the offsets (|dy|, |dx|) in
    the order it first meets them, scanning from token 0, whose offsets to token
    (dy, dx) are (dy, dx) itself: so offset (a, b) has number a * window + b."""
    y, x = np.divmod(np.arange(window * window), window)
    idx = np.abs(y[:, None] - y[None, :]) * window + np.abs(x[:, None] - x[None, :])
    idx.setflags(write=False)
    return idx


def windows(h: int, w: int, window: int) -> tuple[int, int]:
    """How many windows cover an h x w map, down and across (the last ones zero-padded)."""
    return -(-h // window), -(-w // window)


@numba.njit(cache=True)
def _bn_affine(bn, eps):
    """bn: (4, O) rows gamma, beta, mean, var -> (scale, shift), each (O,) float32."""
    scale = bn[0].astype(np.float64) / np.sqrt(bn[3].astype(np.float64) + eps)
    shift = bn[1].astype(np.float64) - bn[2].astype(np.float64) * scale
    return scale.astype(np.float32), shift.astype(np.float32)


OUT_CHUNK = 16     # q/k/v output channels per parallel task of _head_qkv (a multiple of MR)
WINDOWS_PER_THREAD = 2  # ... unless there are this many windows per thread: then all of them


@numba.njit(inline="always", cache=True)
def _window_features(x, c0, prev, has_prev, b, y0, x0, window, g, feat):
    """feat (panels, Cg, NR): this head's channels of x in the window at (y0, x0), zero
    outside the map, plus the previous head's output there (the cascade), laid out as
    gemm.py's packed panels: token t of channel c at feat[t // NR, c, t % NR], zeros past
    the window's T tokens (the caller zeroes feat). So the 1x1 conv after it is
    tiles._micro_tile over whole panels."""
    H, W = x.shape[2], x.shape[3]
    Cg = feat.shape[1]
    nx = max(0, min(window, W - x0))
    ny = max(0, min(window, H - y0))
    for c in range(Cg):
        for i in range(ny):
            src = x[b, c0 + c, y0 + i, x0:x0 + nx]
            for j in range(nx):
                t = i * window + j
                feat[t // NR, c, t % NR] = src[j]
        if has_prev:
            for t in range(window * window):
                feat[t // NR, c, t % NR] += prev[g, t, c]


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _head_qkv(x, c0, prev, has_prev, w, bn_qkv, w_dw, bn_dw, eps, window, nw, zero, chunk,
              q, k, vt):
    # One head's q, k, v in every window, laid out as kernels/attention._sdpa reads them.
    #   x      (B, C, H, W)  the block input; this head's group is channels c0 : c0 + Cg
    #   prev   (G, T, Cg)    the previous head's output (read only if has_prev)
    #   w      (O, Cg)       1x1 conv weight, O = 2 * D + Dv (rows q, k, v); bn_qkv (4, O)
    #   zero   (O,)          zeros: the product's bias (the BN's shift comes after its scale)
    #   chunk  output channels per task (a multiple of MR, or O)
    #   w_dw   (D, K, K)     depthwise conv on q; bn_dw (4, D)
    #   q      (G, T, D) out: q after its depthwise conv and BN
    #   k      (G, T, D), vt (G, Dv, T) out: k, and v transposed (keys last)
    # G = B * windows, T = window^2; window g is image g // (nh * nw), row (g // nw) % nh,
    # column g % nw. One task per (window, chunk of OUT_CHUNK output channels): at batch 1
    # EfficientViT-M's later stages have ONE window, and chunks keep both cores busy. A
    # task first gathers its window's features into packed panels (a few KB, gathered
    # again by each chunk: cheap next to the chunk's products), so the 1x1 conv is the
    # register-blocked micro-tile gemm.py runs; a q channel's depthwise conv needs only
    # that channel. (Gathering through window coordinates inside the product ran it at 1-2
    # GFLOP/s: 17 of EfficientViT-M5's 30 ms; then a loop over tokens per output channel
    # with its sums in a heap array, 27 GFLOP/s: _head_qkv took 11.2 of EfficientViT-M5's
    # 74.6 ms at batch 8.) One parallel pass does all of it: each pass is a thread
    # synchronisation, which costs more than these small products when cores are busy.
    B, C, H, W = x.shape
    G, T, D = q.shape
    O, Cg = w.shape
    K = w_dw.shape[1]
    pad = K // 2
    nh = G // (B * nw)
    s_qkv, t_qkv = _bn_affine(bn_qkv, eps)
    s_dw, t_dw = _bn_affine(bn_dw, eps)
    nchunk = (O + chunk - 1) // chunk
    npan = (T + NR - 1) // NR
    for task in numba.prange(G * nchunk):
        g = task // nchunk
        o_lo = (task % nchunk) * chunk
        o_hi = min(O, o_lo + chunk)
        b = g // (nh * nw)
        feat = np.zeros((npan, Cg, NR), np.float32)
        _window_features(x, c0, prev, has_prev, b, ((g // nw) % nh) * window,
                         (g % nw) * window, window, g, feat)
        prod = np.empty((chunk, npan * NR), np.float32)   # the 1x1 conv's rows
        for jb in range(npan):
            for m0 in range(o_lo, o_hi, MR):
                _micro_tile(w, m0, ZERO, Cg, feat[jb], zero, TRUE, prod, m0 - o_lo,
                            jb * NR, min(MR, o_hi - m0))
        for o in range(o_lo, o_hi):
            acc = prod[o - o_lo, :T]
            for t in range(T):
                acc[t] = acc[t] * s_qkv[o] + t_qkv[o]
            if o >= 2 * D:
                vt[g, o - 2 * D] = acc
            elif o >= D:
                k[g, :, o - D] = acc
            else:                         # q: depthwise KxK conv inside the window, BN
                for i in range(window):
                    for j in range(window):
                        a = np.float32(0.0)
                        for ky in range(K):
                            iy = i + ky - pad
                            if 0 <= iy < window:
                                for kx in range(K):
                                    ix = j + kx - pad
                                    if 0 <= ix < window:
                                        a += w_dw[o, ky, kx] * acc[iy * window + ix]
                        q[g, i * window + j, o] = a * s_dw[o] + t_dw[o]


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _merge_windows(outs, window, nw, act, y):
    # outs (heads, G, T, Dv): every head's output per window -> y (B, heads * Dv, H, W), the
    # windows put back in place, the padding dropped, then act.
    B, C, H, W = y.shape
    Dv = outs.shape[3]
    nh = outs.shape[1] // (B * nw)
    for task in numba.prange(B * C * H):
        b = task // (C * H)
        c = (task // H) % C
        i = task % H
        h = c // Dv
        d = c % Dv
        g_row = b * nh * nw + (i // window) * nw
        t_row = (i % window) * window
        row = y[b, c, i]
        for j in range(W):
            row[j] = outs[h, g_row + j // window, t_row + j % window, d]
        epilogue(row, None, act)


def _checked(x, qkv_weights, qkv_norms, dw_weights, dw_norms, attention_biases, key_dim,
             window, eps, act):
    x = float32_array(x, "x", 4, "(B, C, H, W)")
    heads = len(qkv_weights)
    if heads == 0 or not (len(qkv_norms) == len(dw_weights) == len(dw_norms) == heads):
        raise InputError(f"one qkv weight, qkv norm, dw weight and dw norm per head, got "
                         f"{len(qkv_weights)}, {len(qkv_norms)}, {len(dw_weights)}, "
                         f"{len(dw_norms)}")
    D = check_int(key_dim, "key_dim", 1)
    ws = check_int(window, "window", 1)
    C = x.shape[1]
    if C % heads:
        raise InputError(f"{heads} heads must divide the {C} input channels")
    Cg = C // heads     # the cascade adds out_{h-1} (Dv channels) to x_h: Dv = Cg
    if min(x.shape) == 0:
        raise InputError(f"x must not be empty, got shape {x.shape}")

    def arr(a, name, shape):
        a = float32_array(a, name)
        if a.shape != shape:
            raise InputError(f"{name} must have shape {shape}, got {a.shape}")
        return a

    def bn(norm, name, n):
        if len(norm) != 4:
            raise InputError(f"{name} must be (gamma, beta, mean, var), got {len(norm)} items")
        return np.stack([arr(v, name, (n,)) for v in norm])

    w = [arr(a, f"qkv_weights[{h}]", (2 * D + Cg, Cg, 1, 1)).reshape(2 * D + Cg, Cg)
         for h, a in enumerate(qkv_weights)]
    w_dw = []
    for h, a in enumerate(dw_weights):
        a = float32_array(a, f"dw_weights[{h}]")
        k = a.shape[-1] if a.ndim == 4 else 0
        if a.shape != (D, 1, k, k) or k % 2 == 0:
            raise InputError(f"dw_weights[{h}] must be ({D}, 1, k, k) with k odd (a depthwise "
                             f"conv on the {D} q channels), got {a.shape}")
        w_dw.append(a.reshape(D, k, k))
    bn_qkv = [bn(n, f"qkv_norms[{h}]", 2 * D + Cg) for h, n in enumerate(qkv_norms)]
    bn_dw = [bn(n, f"dw_norms[{h}]", D) for h, n in enumerate(dw_norms)]
    biases = arr(attention_biases, "attention_biases", (heads, ws * ws))
    if not eps > 0:
        raise InputError(f"eps must be > 0, got {eps!r}")
    return x, w, bn_qkv, w_dw, bn_dw, biases, D, ws, check_act(act)


def cascaded_group_attention(x: np.ndarray, qkv_weights, qkv_norms, dw_weights, dw_norms,
                             attention_biases, key_dim: int, window: int, eps: float = 1e-5,
                             act=0) -> np.ndarray:
    """timm's LocalWindowAttention up to (not including) its output projection, then act.

    x: (B, C, H, W); per head h (lists of ``heads`` items): qkv_weights[h] (2*key_dim + Cg,
    Cg, 1, 1), qkv_norms[h] = (gamma, beta, mean, var) of its BN, dw_weights[h] (key_dim, 1,
    k, k), dw_norms[h] likewise; attention_biases: (heads, window^2). Cg = C / heads is also
    each head's value dim. window: the effective window (timm's ``attn.resolution``).
    Returns (B, C, H, W)."""
    x, w, bn_qkv, w_dw, bn_dw, biases, D, ws, act = _checked(
        x, qkv_weights, qkv_norms, dw_weights, dw_norms, attention_biases, key_dim, window,
        eps, act)
    B, C, H, W = x.shape
    heads = len(w)
    Dv = C // heads
    nh, nw = windows(H, W, ws)
    G, T = B * nh * nw, ws * ws
    table = biases[:, bias_index(ws)]                  # (heads, T, T)
    q = np.empty((G, T, D), np.float32)
    k = np.empty((G, T, D), np.float32)
    vt = np.empty((G, Dv, T), np.float32)
    outs = np.empty((heads, G, T, Dv), np.float32)
    scale = np.float32(D ** -0.5)
    zero = np.zeros(2 * D + Dv, np.float32)
    # Per window all q, k, v channels in one task, where there are windows enough to share
    # out; else (batch 1's later stages: one window) chunks of them
    chunk = 2 * D + Dv if G >= WINDOWS_PER_THREAD * numba.get_num_threads() else OUT_CHUNK
    for h in range(heads):
        _head_qkv(x, h * Dv, outs[h - 1], h > 0, w[h], bn_qkv[h], w_dw[h], bn_dw[h],
                  float(eps), ws, nw, zero, chunk, q, k, vt)
        _sdpa(q, k, vt, scale, outs[h], table[h:h + 1])
    y = np.empty((B, C, H, W), np.float32)
    _merge_windows(outs, ws, nw, act, y)
    return y


def cascaded_group_attention_ref(x, qkv_weights, qkv_norms, dw_weights, dw_norms,
                                 attention_biases, key_dim, window, eps=1e-5, act=0):
    """NumPy reference in float64, written as timm's LocalWindowAttention.forward (pad,
    partition, CascadedGroupAttention.forward per window batch, reverse, crop)."""
    x = x.astype(np.float64)
    B, C, H, W = x.shape
    heads, ws, D = len(qkv_weights), window, key_dim
    Dv = C // heads
    nh, nw = windows(H, W, ws)
    xp = np.zeros((B, C, nh * ws, nw * ws))
    xp[:, :, :H, :W] = x
    xw = xp.reshape(B, C, nh, ws, nw, ws).transpose(0, 2, 4, 1, 3, 5).reshape(-1, C, ws, ws)

    def bn(y, norm):
        g, b, m, v = (np.asarray(a, np.float64).reshape(1, -1, 1, 1) for a in norm)
        return (y - m) / np.sqrt(v + eps) * g + b

    table = np.asarray(attention_biases, np.float64)[:, bias_index(ws)]
    outs, feat = [], None
    for h in range(heads):
        xh = xw[:, h * Dv:(h + 1) * Dv]
        feat = xh if h == 0 else feat + xh
        qkv = bn(np.einsum("oc,gcij->goij", qkv_weights[h][:, :, 0, 0].astype(np.float64),
                           feat), qkv_norms[h])
        q, k, v = qkv[:, :D], qkv[:, D:2 * D], qkv[:, 2 * D:]
        kw = dw_weights[h].shape[-1]
        qp = np.pad(q, ((0, 0), (0, 0), (kw // 2,) * 2, (kw // 2,) * 2))
        q = sum(dw_weights[h][:, 0, a, b].reshape(1, -1, 1, 1) * qp[:, :, a:a + ws, b:b + ws]
                for a in range(kw) for b in range(kw))
        q, k, v = (bn(q, dw_norms[h]).reshape(-1, D, ws * ws), k.reshape(-1, D, ws * ws),
                   v.reshape(-1, Dv, ws * ws))
        s = np.einsum("gdi,gdj->gij", q * D ** -0.5, k) + table[h]
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        feat = np.einsum("gcj,gij->gci", v, s).reshape(-1, Dv, ws, ws)
        outs.append(feat)
    y = np.concatenate(outs, 1).reshape(B, nh, nw, C, ws, ws).transpose(0, 3, 1, 4, 2, 5)
    y = y.reshape(B, C, nh * ws, nw * ws)[:, :, :H, :W]
    name = ACT_NAMES[check_act(act)]
    if name == "relu":
        y = np.maximum(y, 0.0)
    elif name != "none":
        raise InputError(f"the reference implements act relu or none, got {name!r}")
    return y.astype(np.float32)


def cascaded_group_attention_cost(x_shape, key_dim: int, window: int, kernels,
                                  act=0) -> Cost:
    """x: (B, C, H, W); kernels: each head's depthwise kernel size (len = heads).

    Over the G = B * windows padded windows of T = window^2 tokens, per head (Cg = Dv = C /
    heads, O = 2 * key_dim + Dv):
      MACs   1x1 conv G*T*Cg*O + depthwise G*T*key_dim*k^2 + scores G*T*T*key_dim
             + weighted sum G*T*T*Dv (padding tokens included: the reference computes them)
      FLOPs  2 * MACs + both BNs 2 per output element + the cascade's add G*T*Cg (heads
             after the first) + scale on q G*T*key_dim + bias add G*T*T + softmax 5*G*T*T
             (see attention.scaled_dot_product_attention_cost) + act on the output
      params per head O*Cg + 4*O + key_dim*k^2 + 4*key_dim, + attention_biases heads*T
    """
    B, C, H, W = (int(d) for d in x_shape)
    heads, D, ws = len(kernels), int(key_dim), int(window)
    Dv = C // heads
    O = 2 * D + Dv
    nh, nw = windows(H, W, ws)
    G, T = B * nh * nw, ws * ws
    macs = flops = params = 0
    for h, k in enumerate(kernels):
        m = G * T * Dv * O + G * T * D * k * k + G * T * T * (D + Dv)
        macs += m
        flops += 2 * m + 2 * G * T * (O + D) + (G * T * Dv if h else 0) + G * T * D \
            + 6 * G * T * T
        params += O * Dv + 4 * O + D * k * k + 4 * D
    params += heads * T
    n_out = B * C * H * W
    flops += ACT_FLOPS[check_act(act)] * n_out
    return Cost(macs=macs, flops=flops, params=params,
                elems_read=numel(x_shape) + params, elems_written=n_out)
