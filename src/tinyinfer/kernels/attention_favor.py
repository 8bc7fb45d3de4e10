"""FAVOR+ (Performer): softmax attention approximated with positive random features, in time
linear in the number of tokens. Choromanski et al., "Rethinking Attention with Performers"
(ICLR 2021); the reference is performer-pytorch's ``FastAttention``.

Exact attention softmax(q k^T / sqrt(D)) v needs the T x T score matrix. FAVOR+ writes the
similarity exp(q.k / sqrt(D)) as an average over M random directions w_j (the rows of an
(M, D) projection matrix) of phi(q) . phi(k), with positive features

    phi(x)_j = ratio * (exp(w_j . x' - |x'|^2 / 2 - stab) + eps),    j = 1 .. M
    x' = x / D**(1/4)  (so x'.y' = x.y / sqrt(D)),   ratio = 1/sqrt(M),   eps = 1e-4

A dot product factors where an exponential does not, so the sums over keys come first:

    out_i = phi(q_i) . C / (phi(q_i) . s),    C = sum_n phi(k_n) v_n^T   (M x Dv)
                                              s = sum_n phi(k_n)          (M)

which is O(T M (D + Dv)) work per head and never forms a T x T matrix. Causal (token i
attends to tokens n <= i): C and s are prefix sums over n <= i, and the denominator is
phi(q_i) . (s_i + 1e-6).

The stabilizer ``stab`` is performer-pytorch's: a query subtracts the largest of its own M
projections w_j . x', keys subtract the largest over all T x M projections of the head
(even when causal, so a causal output depends on later keys through it). In out_i it is a
common factor of numerator and denominator except for the eps terms, which it changes: to
equal FastAttention the kernel takes the same maxima.

The kernel is parallel over batch * heads, one head per task; within a head the T x M
feature matrices are made _ROWS tokens at a time and never stored whole.
  non-causal  one pass over the keys builds C and s. The key max is only known after the
              last key, so the exp parts of C and s are kept relative to the max so far and
              rescaled when it grows (as flash attention does for softmax); the eps parts do
              not scale and are added at the end: C = ratio (S + eps sum_n v_n),
              s = ratio (E + T eps). Then one pass over the queries.
  causal      first the key max (one more projection of the keys, T M D MACs), then block
              by block: the tokens of earlier blocks through C and s, the block's own
              tokens through the R x R matrix phi(q) phi(k)^T masked to n <= i; then the
              block's keys are added to C and s.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .attention import _mhsa_args
from .linear import linear_into
from .common import FASTMATH, check_int, float32_array
from .vmath import exp_f32

FEATURE_EPS = 1e-4    # performer-pytorch's softmax_kernel eps: every feature stays > 0
CAUSAL_EPS = 1e-6     # its causal_linear_attention eps, added to the key prefix sums
_ROWS = 32            # tokens per block of the T x M feature matrices
# float32 copies for the jitted loops (a Python float would make them compute in float64)
_EPS32, _CAUSAL_EPS32 = np.float32(FEATURE_EPS), np.float32(CAUSAL_EPS)


@numba.njit(cache=True, fastmath=FASTMATH)
def _row_dots(a, a0, R, b, out):
    # out[r, j] = a[a0 + r, :] . b[j, :]  for r < R, j < J;  a: (T, K), b: (J, K),
    # out: (>= R, J). Four rows of a share each load of a row of b. Every product here is
    # one of these: projections (x' P^T), phi(q) C (with C stored as C^T) and phi(q) phi(k)^T.
    J, K = b.shape
    for r in range(0, R - 3, 4):
        i = a0 + r
        for j in range(J):
            s0 = np.float32(0.0)
            s1 = np.float32(0.0)
            s2 = np.float32(0.0)
            s3 = np.float32(0.0)
            for c in range(K):
                bc = b[j, c]
                s0 += a[i, c] * bc
                s1 += a[i + 1, c] * bc
                s2 += a[i + 2, c] * bc
                s3 += a[i + 3, c] * bc
            out[r, j] = s0
            out[r + 1, j] = s1
            out[r + 2, j] = s2
            out[r + 3, j] = s3
    for r in range(R - R % 4, R):
        for j in range(J):
            s = np.float32(0.0)
            for c in range(K):
                s += a[a0 + r, c] * b[j, c]
            out[r, j] = s


@numba.njit(cache=True, fastmath=FASTMATH)
def _project(x, r0, R, p, dn, feat, diag):
    # feat[r, :] = x'_(r0+r) . p_j for every feature j and diag[r] = |x'|^2 / 2, x' = dn x;
    # p: (M, D) is the projection already multiplied by dn, so feat = p x = w . x'.
    _row_dots(x, r0, R, p, feat)
    for r in range(R):
        s = np.float32(0.0)
        for d in range(x.shape[1]):
            s += x[r0 + r, d] * x[r0 + r, d]
        diag[r] = s * (dn * dn * np.float32(0.5))


@numba.njit(cache=True, fastmath=FASTMATH)
def _query_features(q, r0, R, p, dn, ratio, qf, diag):
    # qf[:R] = phi(q) of tokens r0 .. r0+R-1, each stabilized by its own max
    _project(q, r0, R, p, dn, qf, diag)
    M = p.shape[0]
    for r in range(R):
        m = qf[r, 0]
        for j in range(M):
            m = max(m, qf[r, j])
        for j in range(M):
            qf[r, j] = ratio * (exp_f32(qf[r, j] - diag[r] - m) + _EPS32)


@numba.njit(cache=True, fastmath=FASTMATH)
def _favor_head(q, k, v, p, dn, ratio, out):
    # one head, non-causal. q: (Tq, D), k: (T, D), v: (T, Dv), p: (M, D), out: (Tq, Dv)
    T, Dv, M = k.shape[0], v.shape[1], p.shape[0]
    f = np.empty((_ROWS, M), np.float32)
    diag = np.empty(_ROWS, np.float32)
    E = np.zeros(M, np.float32)              # sum_n exp(...) of every feature
    St = np.zeros((Dv, M), np.float32)       # sum_n exp(...) v_n, transposed (C^T's exp part)
    vsum = np.zeros(Dv, np.float32)
    mk = np.float32(-np.inf)                 # the key max so far
    for r0 in range(0, T, _ROWS):
        R = min(_ROWS, T - r0)
        _project(k, r0, R, p, dn, f, diag)
        bm = f[0, 0]
        for r in range(R):
            for j in range(M):
                bm = max(bm, f[r, j])
        if bm > mk:                          # rescale what was summed to the new max
            c = exp_f32(mk - bm)
            E *= c
            St *= c
            mk = bm
        for r in range(R):
            for j in range(M):
                f[r, j] = exp_f32(f[r, j] - diag[r] - mk)
                E[j] += f[r, j]
        for e in range(Dv):                  # row e of S^T stays in L1 over the block
            for r in range(R):
                a = v[r0 + r, e]
                vsum[e] += a
                for j in range(M):
                    St[e, j] += a * f[r, j]
    # the finished sums: C^T = ratio (S^T + eps vsum), s = ratio (E + T eps)
    for e in range(Dv):
        for j in range(M):
            St[e, j] = ratio * (St[e, j] + _EPS32 * vsum[e])
    for j in range(M):
        E[j] = ratio * (E[j] + np.float32(T) * _EPS32)
    o = np.empty((_ROWS, Dv), np.float32)
    for r0 in range(0, q.shape[0], _ROWS):
        R = min(_ROWS, q.shape[0] - r0)
        _query_features(q, r0, R, p, dn, ratio, f, diag)
        _row_dots(f, 0, R, St, o)            # phi(q) C
        for r in range(R):
            den = np.float32(0.0)
            for j in range(M):
                den += f[r, j] * E[j]
            for e in range(Dv):
                out[r0 + r, e] = o[r, e] / den


@numba.njit(cache=True, fastmath=FASTMATH)
def _favor_causal_head(q, k, v, p, dn, ratio, out):
    # one head, causal. q, k: (T, D), v: (T, Dv), p: (M, D), out: (T, Dv)
    T, Dv, M = k.shape[0], v.shape[1], p.shape[0]
    qf = np.empty((_ROWS, M), np.float32)
    kf = np.empty((_ROWS, M), np.float32)
    diag = np.empty(_ROWS, np.float32)
    mk = np.float32(-np.inf)                 # the key max over the whole head, first
    for r0 in range(0, T, _ROWS):
        R = min(_ROWS, T - r0)
        _project(k, r0, R, p, dn, kf, diag)
        for r in range(R):
            for j in range(M):
                mk = max(mk, kf[r, j])
    Ct = np.zeros((Dv, M), np.float32)       # C^T over the blocks before this one
    s = np.full(M, _CAUSAL_EPS32, np.float32)   # s + 1e-6 over the blocks before this one
    o = np.empty((_ROWS, Dv), np.float32)
    A = np.empty((_ROWS, _ROWS), np.float32)
    den = np.empty(_ROWS, np.float32)
    for r0 in range(0, T, _ROWS):
        R = min(_ROWS, T - r0)
        _project(k, r0, R, p, dn, kf, diag)
        for r in range(R):
            for j in range(M):
                kf[r, j] = ratio * (exp_f32(kf[r, j] - diag[r] - mk) + _EPS32)
        _query_features(q, r0, R, p, dn, ratio, qf, diag)
        _row_dots(qf, 0, R, Ct, o)           # earlier blocks: phi(q) C
        for r in range(R):
            d = np.float32(0.0)
            for j in range(M):
                d += qf[r, j] * s[j]
            den[r] = d
        _row_dots(qf, 0, R, kf[:R], A)       # this block: phi(q_i) . phi(k_n), n <= i
        for r in range(R):
            for n in range(r + 1):
                den[r] += A[r, n]
                for e in range(Dv):
                    o[r, e] += A[r, n] * v[r0 + n, e]
            for e in range(Dv):
                out[r0 + r, e] = o[r, e] / den[r]
        for r in range(R):                   # then this block's keys join C and s
            for j in range(M):
                s[j] += kf[r, j]
        for e in range(Dv):
            for r in range(R):
                a = v[r0 + r, e]
                for j in range(M):
                    Ct[e, j] += a * kf[r, j]


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _favor(q, k, v, p, dn, ratio, causal, out):
    # q: (G, Tq, D), k: (G, T, D), v: (G, T, Dv), p: (M, D) = projection * dn,
    # out: (G, Tq, Dv); G = batch * heads, one head per parallel task
    for g in numba.prange(q.shape[0]):
        if causal:
            _favor_causal_head(q[g], k[g], v[g], p, dn, ratio, out[g])
        else:
            _favor_head(q[g], k[g], v[g], p, dn, ratio, out[g])


def _favor_args(q, k, v, projection, causal):
    q = float32_array(q, "q")
    k = float32_array(k, "k")
    v = float32_array(v, "v")
    projection = float32_array(projection, "projection", 2, "(M features, D)")
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise InputError(f"q, k, v must all be (..., T, D) with the same number of dims, "
                         f"e.g. (B, H, T, D); got {q.shape}, {k.shape}, {v.shape}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise InputError(f"q, k, v must agree in their leading (batch, head) dims (no "
                         f"broadcasting); got {q.shape}, {k.shape}, {v.shape}")
    if not q.shape[-1] == k.shape[-1] == projection.shape[1]:
        raise InputError(f"q, k and the projection's columns must have the same head dim D, "
                         f"got q {q.shape}, k {k.shape}, projection {projection.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise InputError(f"k and v must have the same number of tokens, got {k.shape[-2]} "
                         f"and {v.shape[-2]}")
    if min(q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1], projection.shape[0]) == 0:
        raise InputError(f"FAVOR+ needs T >= 1, D >= 1 and M >= 1 features; got q {q.shape}, "
                         f"k {k.shape}, v {v.shape}, projection {projection.shape}")
    if not isinstance(causal, (bool, np.bool_)):
        raise InputError(f"causal must be True or False, got {causal!r}")
    if causal and q.shape[-2] != k.shape[-2]:
        raise InputError(f"causal attention needs as many queries as keys, got "
                         f"{q.shape[-2]} and {k.shape[-2]}")
    return q, k, v, projection, bool(causal)


def favor_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, projection: np.ndarray,
                    causal: bool = False) -> np.ndarray:
    """FAVOR+ attention, equal to performer-pytorch's ``FastAttention(dim_heads=D,
    nb_features=M, causal=causal)`` with ``projection`` as its ``projection_matrix``.

    q: (B, H, Tq, D), k: (B, H, T, D), v: (B, H, T, Dv), projection: (M, D)
    -> (B, H, Tq, Dv). Any number of leading dims works if q, k, v agree in them; causal
    needs Tq = T."""
    q, k, v, projection, causal = _favor_args(q, k, v, projection, causal)
    lead, (Tq, D), (T, Dv) = q.shape[:-2], q.shape[-2:], v.shape[-2:]
    G = numel(lead)
    dn = np.float32(D ** -0.25)
    ratio = np.float32(projection.shape[0] ** -0.5)
    out = np.empty(lead + (Tq, Dv), np.float32)
    _favor(q.reshape(G, Tq, D), k.reshape(G, T, D), v.reshape(G, T, Dv),
           np.ascontiguousarray(projection * dn), dn, ratio, causal, out.reshape(G, Tq, Dv))
    return out


def favor_features_ref(x, projection, is_query):
    """phi(x) in float64, as performer-pytorch's softmax_kernel: x (..., T, D) -> (..., T, M)."""
    dn = x.shape[-1] ** -0.25
    proj = (dn * x) @ projection.T
    diag = (x ** 2).sum(-1, keepdims=True) / 2 * dn ** 2
    stab = proj.max(-1, keepdims=True) if is_query else proj.max((-1, -2), keepdims=True)
    return projection.shape[0] ** -0.5 * (np.exp(proj - diag - stab) + FEATURE_EPS)


def favor_attention_ref(q, k, v, projection, causal=False):
    """NumPy reference in float64 (BLAS; fine in a reference), written as performer-pytorch's
    linear_attention and its causal_linear_attention_noncuda (which stores the T x M x Dv
    prefix sums whole)."""
    q, k, v, projection = (np.asarray(a, np.float64) for a in (q, k, v, projection))
    qf = favor_features_ref(q, projection, True)
    kf = favor_features_ref(k, projection, False)
    if not causal:
        den = qf @ kf.sum(-2)[..., None]
        return ((qf @ (np.swapaxes(kf, -1, -2) @ v)) / den).astype(np.float32)
    s = np.cumsum(kf, -2) + CAUSAL_EPS
    C = np.cumsum(kf[..., :, :, None] * v[..., :, None, :], -3)      # (..., T, M, Dv)
    num = np.einsum("...tm,...tme->...te", qf, C)
    return (num / (qf * s).sum(-1, keepdims=True)).astype(np.float32)


def favor_attention_cost(q_shape, k_shape, v_shape, projection_shape) -> Cost:
    # G heads (product of the leading dims), Tq queries, T keys, M features:
    # MACs   projections of queries and keys G (Tq + T) M D, C = phi(k)^T v G T M Dv,
    #        phi(q) C G Tq M Dv, denominators phi(q) . s G Tq M. The same formula causal
    #        (the causal kernel also projects the keys twice and spends R^2 (M + Dv) per
    #        block of R tokens on the block's own tokens: work beyond the formula).
    # FLOPs  2 MACs + per feature (G (Tq + T) M of them): max, - diag, - max, exp, + eps,
    #        * ratio = 6; per token G (Tq + T) D: x * dn, x^2, sum = 3; s = sum of key
    #        features G T M; the normalisation G Tq (1 + Dv): a reciprocal, Dv multiplies.
    *lead, Tq, D = q_shape
    T, Dv = v_shape[-2], v_shape[-1]
    M = projection_shape[0]
    G = numel(lead)
    macs = G * ((Tq + T) * M * D + T * M * Dv + Tq * M * Dv + Tq * M)
    flops = 2 * macs + G * (6 * (Tq + T) * M + 3 * (Tq + T) * D + T * M + Tq * (1 + Dv))
    return Cost(macs=macs, flops=flops,
                elems_read=numel(q_shape) + numel(k_shape) + numel(v_shape) + M * D,
                elems_written=G * Tq * Dv)


def gaussian_orthogonal_projection(features: int, dim: int, seed: int = 0,
                                   scaling: int = 0) -> np.ndarray:
    """An (M, D) = (features, dim) projection drawn as performer-pytorch's
    ``gaussian_orthogonal_random_matrix``: blocks of D orthonormal rows (the Q of a QR of a
    Gaussian D x D matrix), as many blocks as M needs (the last one cut), then each row
    scaled to the length of a Gaussian D-vector (scaling=0: so each row is distributed as a
    Gaussian one, as the estimator needs) or to sqrt(D) (scaling=1). Orthogonal rows make
    the estimate's variance smaller than independent ones (the paper's "ORF").
    NumPy's generator: the same seed does not give the matrix torch's RNG would draw."""
    M, D = check_int(features, "features", 1), check_int(dim, "dim", 1)
    if scaling not in (0, 1):
        raise InputError(f"scaling must be 0 (Gaussian row norms) or 1 (sqrt(dim)), got "
                         f"{scaling!r}")
    rng = np.random.default_rng(seed)
    blocks = [np.linalg.qr(rng.standard_normal((D, D)))[0].T for _ in range(-(-M // D))]
    rows = np.concatenate(blocks)[:M]
    norms = (np.linalg.norm(rng.standard_normal((M, D)), axis=1) if scaling == 0
             else np.full(M, math.sqrt(D)))
    return (norms[:, None] * rows).astype(np.float32)


# ----------------------------------------------------------------------------------------
# multi-head self-attention with FAVOR+ inside

def favor_self_attention(x: np.ndarray, w_qkv, b_qkv, w_proj, b_proj, num_heads: int,
                         projection: np.ndarray, causal: bool = False) -> np.ndarray:
    """attention.multi_head_self_attention (timm's ``Attention``: one fused qkv linear, heads
    of D = C/num_heads, an output linear) with FAVOR+ in place of softmax attention, as a
    Performer swaps performer-pytorch's ``FastAttention`` in.

    x: (B, T, C); w_qkv: (3C, C), rows q then k then v; b_qkv: (3C,) or None; w_proj:
    (C, C); b_proj: (C,) or None; projection: (M, D), shared by all heads as FastAttention
    shares its buffer. Returns (B, T, C)."""
    x, w_qkv, b_qkv, w_proj, b_proj, H = _mhsa_args(x, w_qkv, b_qkv, w_proj, b_proj,
                                                    num_heads)
    B, T, C = x.shape
    qkv = np.empty((B * T, 3 * C), np.float32)
    linear_into(x.reshape(B * T, C), w_qkv, b_qkv, qkv)
    q, k, v = qkv.reshape(B, T, 3, H, C // H).transpose(2, 0, 3, 1, 4)   # views (B, H, T, D)
    o = favor_attention(q, k, v, projection, causal)                      # (B, H, T, D)
    o = np.ascontiguousarray(o.transpose(0, 2, 1, 3)).reshape(B * T, C)  # merge the heads
    out = np.empty((B, T, C), np.float32)
    linear_into(o, w_proj, b_proj, out.reshape(B * T, C))
    return out


def favor_self_attention_ref(x, w_qkv, b_qkv, w_proj, b_proj, num_heads, projection,
                             causal=False):
    """NumPy reference: the projections in float64 around favor_attention_ref."""
    B, T, C = x.shape
    H = num_heads
    b_qkv = np.zeros(3 * C) if b_qkv is None else b_qkv
    b_proj = np.zeros(C) if b_proj is None else b_proj
    qkv = x.astype(np.float64) @ w_qkv.T.astype(np.float64) + b_qkv
    q, k, v = qkv.reshape(B, T, 3, H, C // H).transpose(2, 0, 3, 1, 4)
    o = favor_attention_ref(q, k, v, projection, causal).astype(np.float64)
    o = o.transpose(0, 2, 1, 3).reshape(B, T, C)
    return (o @ w_proj.T.astype(np.float64) + b_proj).astype(np.float32)


def favor_self_attention_cost(shape, num_heads: int, features: int, qkv_bias: bool = True,
                              proj_bias: bool = True) -> Cost:
    # x: (B, T, C), H heads of D = C/H, M features. The two linears (B T C 3C and B T C C
    # MACs) around favor_attention_cost's count on (B, H, T, D). params: the linears'; the
    # projection is read (M D) but not a parameter (PyTorch keeps it as a buffer).
    B, T, C = shape
    H = int(num_heads)
    D = C // H
    linear_macs = B * T * C * 4 * C
    heads = (B, H, T, D)
    attn = favor_attention_cost(heads, heads, heads, (features, D))
    params = 4 * C * C + (3 * C if qkv_bias else 0) + (C if proj_bias else 0)
    return Cost(macs=linear_macs + attn.macs, flops=2 * linear_macs + attn.flops,
                params=params, elems_read=B * T * C + params + features * D,
                elems_written=B * T * C)
