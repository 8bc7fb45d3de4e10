"""2-D convolution: pointwise (1x1), depthwise, and general (any kernel, stride, padding,
dilation, groups), with bias, activation and a residual add fused into the epilogue.

    x        (N, Cin, H, W)              float32, NCHW
    weight   (Cout, Cin // groups, KH, KW)  float32, PyTorch's layout
    bias     (Cout,) or None
    residual (N, Cout, Ho, Wo) or None   added AFTER the activation (MobileNetV2's skip)
    out      (N, Cout, Ho, Wo)           Ho = (H + pt + pb - dh*(KH-1) - 1) // sh + 1

    out = act(conv(x, weight) + bias) + residual

``conv2d`` validates in Python, then picks one of four loops (all Numba, no BLAS):

    groups == Cin (Cout = m*Cin), k > 1 or stride > 1  -> _depthwise (plane by plane)
    1 < groups < Cin, k > 1                            -> conv_group._grouped (direct)
    1x1, no padding, >= 128 output pixels per image    -> _pointwise_rows (out row += w*x row)
    groups = 1, < 128 output pixels (7x7 maps)         -> [_im2col,] linear._dot_kernel on
                                                          the (pixels, K) transpose
    anything else                                       -> _im2col, then _pointwise_rows
(a 1x1 conv with stride s just runs on x[:, :, ::s, ::s]).

``conv2d_ref`` is the plain-NumPy definition that the tests compare all of them against.
"""
from __future__ import annotations

import numba
import numpy as np

from ..costs import Cost, numel
from ..errors import InputError
from .activations import ACT_FLOPS, act_code, activation_ref
from .linear import (FASTMATH, NO_RES2, NO_RES4, _dot_kernel, check_act, check_array, epilogue,
                     epilogue_rows)

# Pixels per tile of the row kernel: 4 output rows x 512 floats = 8 KB of accumulators stay
# in L1, and the K x 512 input tile mostly in L2. Measured best of 64..512 on this machine.
TILE = 512
# Below this many pixels per image, rows are too short to vectorize well (a 7x7 map is 49
# floats: 3 vectors and a scalar tail), so 1x1 convs switch to the dot-product kernel.
SMALL_IMAGE = 128


# ---------------------------------------------------------------------------------------
# Shapes and costs

def _pair(v, name: str, minimum: int):
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or not all(isinstance(e, (int, np.integer)) and e >= minimum for e in v)):
        raise InputError(f"{name} must be an int >= {minimum} or a pair of them (h, w), got {v!r}")
    return int(v[0]), int(v[1])


def normalize_padding(padding) -> tuple:
    """int p -> (p, p, p, p); (ph, pw) -> (ph, ph, pw, pw); (top, bottom, left, right) as is."""
    if isinstance(padding, (int, np.integer)):
        padding = (int(padding),) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        padding = (padding[0], padding[0], padding[1], padding[1])
    if (not isinstance(padding, (tuple, list)) or len(padding) != 4
            or not all(isinstance(p, (int, np.integer)) and p >= 0 for p in padding)):
        raise InputError(f"padding must be an int >= 0, (ph, pw) or (top, bottom, left, right), "
                         f"got {padding!r}")
    return tuple(int(p) for p in padding)


def same_padding(in_size: int, k: int, stride: int = 1, dilation: int = 1) -> tuple:
    """TensorFlow's "same" padding along one axis: (before, after); the odd pixel goes after."""
    total = max((-(-in_size // stride) - 1) * stride + (k - 1) * dilation + 1 - in_size, 0)
    return total // 2, total - total // 2


def conv2d_out_shape(x_shape, w_shape, stride=1, padding=0, dilation=1) -> tuple:
    """(N, Cout, Ho, Wo) for input (N, Cin, H, W) and weight (Cout, Cin/groups, KH, KW)."""
    n, _, h, w = (int(d) for d in x_shape)
    cout, _, kh, kw = (int(d) for d in w_shape)
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    pt, pb, pl, pr = normalize_padding(padding)
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return (n, cout, ho, wo)


def conv2d_cost(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, act=0,
                has_bias=True, residual=False) -> Cost:
    """MACs = N*Cout*Ho*Wo * (Cin/groups)*KH*KW; FLOPs = 2 MACs + activation (+ residual add)."""
    out = conv2d_out_shape(x_shape, w_shape, stride, padding, dilation)
    cout, cin_g, kh, kw = (int(d) for d in w_shape)
    out_elems = numel(out)
    macs = out_elems * cin_g * kh * kw
    flops = 2 * macs + ACT_FLOPS[act_code(act)] * out_elems + (out_elems if residual else 0)
    params = cout * cin_g * kh * kw + (cout if has_bias else 0)
    read = numel(x_shape) + params + (out_elems if residual else 0)
    return Cost(macs=macs, flops=flops, params=params, elems_read=read, elems_written=out_elems)


# ---------------------------------------------------------------------------------------
# Reference: the definition, in NumPy (float64, BLAS allowed, speed irrelevant)

def conv2d_ref(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, act=0,
               residual=None) -> np.ndarray:
    """out[n, o, i, j] = sum over c, ky, kx of
           w[o, c, ky, kx] * xpad[n, g*Cg + c, i*sh + ky*dh, j*sw + kx*dw]
    with g = o // (Cout/groups) the group of output channel o and Cg = Cin/groups."""
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    pt, pb, pl, pr = normalize_padding(padding)
    n, cout, ho, wo = conv2d_out_shape(x.shape, weight.shape, (sh, sw), (pt, pb, pl, pr), (dh, dw))
    _, cg, kh, kw = weight.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    w64 = weight.astype(np.float64)
    og = cout // groups
    out = np.zeros((n, cout, ho, wo))
    for g in range(groups):
        for ky in range(kh):
            for kx in range(kw):
                # every output pixel's (ky, kx) tap, for all channels of group g at once
                patch = xp[:, g * cg:(g + 1) * cg,
                           ky * dh: ky * dh + sh * (ho - 1) + 1: sh,
                           kx * dw: kx * dw + sw * (wo - 1) + 1: sw]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch,
                                                         w64[g * og:(g + 1) * og, :, ky, kx])
    if bias is not None:
        out += bias.astype(np.float64)[None, :, None, None]
    y = activation_ref(out.astype(np.float32), act)
    if residual is not None:
        y = y + residual
    return y.astype(np.float32)


# ---------------------------------------------------------------------------------------
# Kernel 1: rows. out[co, :] = sum_k w[co, k] * x[k, :] over contiguous pixel rows.

@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _pointwise_rows(x, w, bias, act, res, has_res, out):
    """out[n, g, co, p] = act(bias[g, co] + sum_k w[g, co, k] * x[n, g, k, p]) (+ res[...])

    x (N, G, K, P)   w (G, CoG, K)   bias (G, CoG)   res, out (N, G, CoG, P)

    A 1x1 conv is this with G=1, K=Cin, P=H*W; a general conv is this on im2col columns.
    The innermost loop runs over contiguous pixels, so LLVM vectorizes it 16 floats wide.
    Each pass updates 4 output rows from 8 input rows: 8 loads + 4 loads/stores for 32
    FMAs per vector. (One row at a time would be 2 loads + 1 store per FMA: memory-bound.)
    """
    N, G, K, P = x.shape
    CoG = w.shape[1]
    nmb = (CoG + 3) // 4
    ntl = (P + TILE - 1) // TILE
    for task in numba.prange(N * G * ntl * nmb):
        # decode (n, g, tile, block); blocks innermost: neighbours share the input tile
        mb = task % nmb
        rest = task // nmb
        t = rest % ntl
        rest = rest // ntl
        g = rest % G
        n = rest // G
        p0 = t * TILE
        p1 = min(p0 + TILE, P)
        xs = x[n, g]
        ws = w[g]
        co = mb * 4
        if co + 4 <= CoG:
            _rows4(xs, ws, bias[g], co, p0, p1, out[n, g])
        else:
            for c in range(co, CoG):
                _rows1(xs, ws, bias[g], c, p0, p1, out[n, g])
        if act != 0 or has_res:
            for c in range(co, min(co + 4, CoG)):   # fused epilogue, while the tile is in L1
                epilogue(out[n, g, c, p0:p1], res[n, g, c, p0:p1] if has_res else None, act)


@numba.njit(fastmath=FASTMATH, cache=True)
def _rows4(x, w, bias, co, p0, p1, out):
    """out[co:co+4, p0:p1] = bias + w[co:co+4, :] @ x[:, p0:p1]   (x (K, P), w (CoG, K))"""
    K = x.shape[0]
    # 1-D slices, indexed from 0: LLVM then knows every index is in range and non-negative
    # (with out[c, p] and p from p0 it must allow for Python's negative-index wraparound,
    # and it does not vectorize at all).
    o0 = out[co, p0:p1]
    o1 = out[co + 1, p0:p1]
    o2 = out[co + 2, p0:p1]
    o3 = out[co + 3, p0:p1]
    L = p1 - p0
    b0, b1, b2, b3 = bias[co], bias[co + 1], bias[co + 2], bias[co + 3]
    for p in range(L):
        o0[p] = b0
        o1[p] = b1
        o2[p] = b2
        o3[p] = b3
    for k in range(0, K, 8):
        # 8 input rows; past the end of K (the stem has K = 3*3*3 = 27) repeat the last row
        # with weight 0: one more full pass is cheaper than up to 7 single-row passes
        x0, x1, x2, x3 = _row(x, k, p0, p1), _row(x, k + 1, p0, p1), \
            _row(x, k + 2, p0, p1), _row(x, k + 3, p0, p1)
        x4, x5, x6, x7 = _row(x, k + 4, p0, p1), _row(x, k + 5, p0, p1), \
            _row(x, k + 6, p0, p1), _row(x, k + 7, p0, p1)
        # 32 weights as scalars: LLVM broadcasts each into a vector once per pass
        a0, a1, a2, a3, a4, a5, a6, a7 = _w8(w, co, k)
        b0, b1, b2, b3, b4, b5, b6, b7 = _w8(w, co + 1, k)
        c0, c1, c2, c3, c4, c5, c6, c7 = _w8(w, co + 2, k)
        d0, d1, d2, d3, d4, d5, d6, d7 = _w8(w, co + 3, k)
        for p in range(L):
            v0, v1, v2, v3 = x0[p], x1[p], x2[p], x3[p]
            v4, v5, v6, v7 = x4[p], x5[p], x6[p], x7[p]
            o0[p] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4 + a5 * v5 + a6 * v6 + a7 * v7
            o1[p] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3 + b4 * v4 + b5 * v5 + b6 * v6 + b7 * v7
            o2[p] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3 + c4 * v4 + c5 * v5 + c6 * v6 + c7 * v7
            o3[p] += d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3 + d4 * v4 + d5 * v5 + d6 * v6 + d7 * v7


@numba.njit(fastmath=FASTMATH, cache=True)
def _rows1(x, w, bias, c, p0, p1, out):
    """out[c, p0:p1] = bias[c] + w[c, :] @ x[:, p0:p1]: the last CoG % 4 rows."""
    o = out[c, p0:p1]
    bc = bias[c]
    for p in range(p1 - p0):
        o[p] = bc
    for k in range(0, x.shape[0], 8):
        x0, x1, x2, x3 = _row(x, k, p0, p1), _row(x, k + 1, p0, p1), \
            _row(x, k + 2, p0, p1), _row(x, k + 3, p0, p1)
        x4, x5, x6, x7 = _row(x, k + 4, p0, p1), _row(x, k + 5, p0, p1), \
            _row(x, k + 6, p0, p1), _row(x, k + 7, p0, p1)
        a0, a1, a2, a3, a4, a5, a6, a7 = _w8(w, c, k)
        for p in range(p1 - p0):
            o[p] += (a0 * x0[p] + a1 * x1[p] + a2 * x2[p] + a3 * x3[p]
                     + a4 * x4[p] + a5 * x5[p] + a6 * x6[p] + a7 * x7[p])


@numba.njit(inline="always", cache=True)
def _row(x, k, p0, p1):
    """x[k, p0:p1], or the last row when k is past the end (it gets weight 0)."""
    return x[min(k, x.shape[0] - 1), p0:p1]


@numba.njit(inline="always", cache=True)
def _w8(w, c, k):
    """w[c, k:k+8], zero-filled past the end of the row."""
    K = w.shape[1]
    z = np.float32(0.0)
    return (w[c, k] if k < K else z, w[c, k + 1] if k + 1 < K else z,
            w[c, k + 2] if k + 2 < K else z, w[c, k + 3] if k + 3 < K else z,
            w[c, k + 4] if k + 4 < K else z, w[c, k + 5] if k + 5 < K else z,
            w[c, k + 6] if k + 6 < K else z, w[c, k + 7] if k + 7 < K else z)


# ---------------------------------------------------------------------------------------
# Kernel 2: im2col, so any conv becomes kernel 1 (a GEMM) over K = Cin/groups * KH * KW rows.

@numba.njit(parallel=True, cache=True)
def _im2col(x, kh, kw, pt, pl, sh, sw, dh, dw, ho, wo, cols):
    """cols[n, c*KH*KW + ky*KW + kx, i*Wo + j] = xpad[n, c, i*sh + ky*dh, j*sw + kx*dw]

    x (N, C, H, W) -> cols (N, C*KH*KW, Ho*Wo), zeros where the tap falls in the padding.
    """
    N, C, H, W = x.shape
    for task in numba.prange(N * C * kh):
        ky = task % kh
        c = (task // kh) % C
        n = task // (kh * C)
        for kx in range(kw):
            row = cols[n, (c * kh + ky) * kw + kx]
            # output columns j whose tap column j*sw + kx*dw - pl lands inside 0..W-1
            off = kx * dw - pl
            j_lo = min(max(0, (-off + sw - 1) // sw), wo)
            j_hi = max(min(wo, (W - 1 - off) // sw + 1), j_lo)
            for i in range(ho):
                iy = i * sh + ky * dh - pt
                dst = row[i * wo:(i + 1) * wo]
                if iy < 0 or iy >= H:
                    dst[:] = 0.0
                    continue
                dst[:j_lo] = 0.0
                dst[j_hi:] = 0.0
                d = dst[j_lo:j_hi]
                src = x[n, c, iy, j_lo * sw + off:]
                if sw == 1:                       # a memcpy, vectorized
                    for j in range(j_hi - j_lo):
                        d[j] = src[j]
                elif sw == 2:                     # a stride LLVM knows, so it can shuffle
                    for j in range(j_hi - j_lo):
                        d[j] = src[2 * j]
                else:
                    for j in range(j_hi - j_lo):
                        d[j] = src[j * sw]


# ---------------------------------------------------------------------------------------
# Kernel 3: depthwise. One channel plane at a time; each output is KH*KW taps of one plane.

@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _depthwise(x, w, bias, pt, pl, sh, sw, dh, dw, act, res, has_res, out, nchunks):
    """out[n, c*m + j] = act(bias + conv(xpad[n, c], w[c*m + j])) (+ res), j < m (multiplier)

    x (N, C, H, W)   w (C*m, KH, KW)   bias (C*m,)   res, out (N, C*m, Ho, Wo)

    The trick that makes every loop contiguous, for any stride and dilation: copy the plane
    into a zero-padded buffer split by stride phase,
        buf[a, b, r, i] = xpad[r*sh + a, i*sw + b]          (a < sh, b < sw),
    so the tap (ky, kx) of output (oy, ox), xpad[oy*sh + ky*dh, ox*sw + kx*dw], is
        buf[ky*dh % sh, kx*dw % sw, oy + ky*dh // sh, ox + kx*dw // sw].
    Read each phase as one flat array with rows of Wq floats: output (oy, ox) is then flat
    index f = oy*Wq + ox, and every tap is  plane[f + constant]. One loop over all
    Ho*Wq flat positions does the whole plane (the Wq - Wo columns at the end of each row
    are computed and thrown away): a 7x7 or 14x14 map vectorizes as one long run instead
    of 7 or 14 short rows. The padding in buf is zeroed once and never written again.
    """
    N, C, H, W = x.shape
    Cout, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    KH, KW = w.shape[1], w.shape[2]
    m = Cout // C
    Hq = (Ho - 1) + (KH - 1) * dh // sh + 1      # buffer rows / columns per phase
    Wq = (Wo - 1) + (KW - 1) * dw // sw + 1
    L = ((Ho * Wq + 15) // 16) * 16              # flat outputs, rounded up to whole vectors
    # the furthest tap reads L - 1 + its offset: slack rows so that stays inside the buffer
    Hb = Hq + (L - Ho * Wq + Wq - 1) // Wq + 1
    # per column phase b: the buffer columns [col_lo, col_hi) that hold input columns
    # (i*sw + b - pl inside 0..W-1); the rest is padding
    col_lo = np.empty(sw, np.int64)
    col_hi = np.empty(sw, np.int64)
    for b in range(sw):
        col_lo[b] = min(max(0, (pl - b + sw - 1) // sw), Wq)
        col_hi[b] = max(min(Wq, (W - 1 + pl - b) // sw + 1), col_lo[b])
    planes = N * C
    nchunks = min(planes, nchunks)
    for chunk in numba.prange(nchunks):           # one chunk per thread: buffers made once
        buf = np.zeros((sh, sw, Hb * Wq), np.float32)
        acc = np.empty(L, np.float32)
        for plane in range(chunk * planes // nchunks, (chunk + 1) * planes // nchunks):
            n = plane // C
            c = plane % C
            # copy the plane into the interior of buf: input (iy, ix) goes to phase
            # (a, b) = ((iy + pt) % sh, (ix + pl) % sw), row (iy + pt) // sh, col (ix + pl) // sw
            for a in range(sh):
                for ry in range(Hq):
                    iy = ry * sh + a - pt
                    if iy < 0 or iy >= H:
                        continue                     # a padding row: stays zero
                    if sw == 2:
                        _split_row_s2(x[n, c, iy], buf[a, 0, ry * Wq:(ry + 1) * Wq],
                                      buf[a, 1, ry * Wq:(ry + 1) * Wq], pl)
                        continue
                    for b in range(sw):
                        lo = col_lo[b]
                        k = col_hi[b] - lo
                        dst = buf[a, b, ry * Wq + lo:ry * Wq + lo + k]
                        src = x[n, c, iy, lo * sw + b - pl:]
                        if sw == 1:                  # contiguous: a vectorized memcpy
                            for i in range(k):
                                dst[i] = src[i]
                        else:
                            for i in range(k):
                                dst[i] = src[i * sw]
            for co in range(c * m, c * m + m):
                wk = w[co]
                bb = bias[co]
                if KH == 3 and KW == 3:
                    # the common case in one pass: 9 taps per output, one store
                    t0 = _tap(buf, 0, 0, sh, sw, dh, dw, Wq, L)
                    t1 = _tap(buf, 0, 1, sh, sw, dh, dw, Wq, L)
                    t2 = _tap(buf, 0, 2, sh, sw, dh, dw, Wq, L)
                    t3 = _tap(buf, 1, 0, sh, sw, dh, dw, Wq, L)
                    t4 = _tap(buf, 1, 1, sh, sw, dh, dw, Wq, L)
                    t5 = _tap(buf, 1, 2, sh, sw, dh, dw, Wq, L)
                    t6 = _tap(buf, 2, 0, sh, sw, dh, dw, Wq, L)
                    t7 = _tap(buf, 2, 1, sh, sw, dh, dw, Wq, L)
                    t8 = _tap(buf, 2, 2, sh, sw, dh, dw, Wq, L)
                    w0, w1, w2 = wk[0, 0], wk[0, 1], wk[0, 2]
                    w3, w4, w5 = wk[1, 0], wk[1, 1], wk[1, 2]
                    w6, w7, w8 = wk[2, 0], wk[2, 1], wk[2, 2]
                    for f in range(L):
                        acc[f] = (bb + w0 * t0[f] + w1 * t1[f] + w2 * t2[f]
                                  + w3 * t3[f] + w4 * t4[f] + w5 * t5[f]
                                  + w6 * t6[f] + w7 * t7[f] + w8 * t8[f])
                else:
                    # any other kernel: one pass over the plane per tap
                    for f in range(L):
                        acc[f] = bb
                    for ky in range(KH):
                        for kx in range(KW):
                            t = _tap(buf, ky, kx, sh, sw, dh, dw, Wq, L)
                            wv = wk[ky, kx]
                            for f in range(L):
                                acc[f] += wv * t[f]
                epilogue(acc, None, act)
                for oy in range(Ho):                 # keep the Wo valid columns of each row
                    o = out[n, co, oy]
                    a_row = acc[oy * Wq:oy * Wq + Wo]
                    if has_res:
                        rr = res[n, co, oy]
                        for j in range(Wo):
                            o[j] = a_row[j] + rr[j]
                    else:
                        for j in range(Wo):
                            o[j] = a_row[j]


@numba.njit(inline="always", cache=True)
def _split_row_s2(src, d0, d1, pl):
    """Stride 2: input column ix goes to phase (ix + pl) % 2, column (ix + pl) // 2.

    Walking the row in pairs (even phase, odd phase) reads it contiguously and fills both
    phases in one loop: 3x faster than two strided passes, one per phase.
    """
    W, Wq = src.shape[0], d0.shape[0]
    ix0 = pl % 2                          # first input column that lands in phase 0
    j0 = (ix0 + pl) // 2
    npairs = max(min((W - ix0) // 2, Wq - j0), 0)
    s = src[ix0:]
    e0 = d0[j0:]
    e1 = d1[j0:]
    for i in range(npairs):
        e0[i] = s[2 * i]
        e1[i] = s[2 * i + 1]
    if ix0 == 1 and pl // 2 < Wq:        # column 0 alone in phase 1
        d1[pl // 2] = src[0]
    last = ix0 + 2 * npairs                # a last unpaired column, if the buffer has room
    if last < W and (last + pl) // 2 < Wq and (last + pl) % 2 == 0:
        d0[(last + pl) // 2] = src[last]


@numba.njit(inline="always", cache=True)
def _tap(buf, ky, kx, sh, sw, dh, dw, Wq, L):
    """The L flat inputs that tap (ky, kx) multiplies, as one contiguous slice of buf."""
    start = ((ky * dh) // sh) * Wq + (kx * dw) // sw
    return buf[(ky * dh) % sh, (kx * dw) % sw, start:start + L]


# ---------------------------------------------------------------------------------------
# The dispatcher

def check_conv_args(x, weight, bias, stride, padding, dilation, groups, act, residual):
    """Validate conv2d's arguments (every conv entry point shares this); returns
    (x, weight, bias, (sh, sw), (top, bottom, left, right), (dh, dw), groups, act code,
    residual, out_shape) with arrays float32 C-contiguous and bias zeros when None."""
    x = check_array(x, "x", 4)
    weight = check_array(weight, "weight", 4)
    code = check_act(act)
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    pt, pb, pl, pr = normalize_padding(padding)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise InputError(f"groups must be an int >= 1, got {groups!r}")
    groups = int(groups)
    n, cin, h, w_in = x.shape
    cout, cin_g, kh, kw = weight.shape
    if min(cout, cin_g, kh, kw) < 1:
        raise InputError(f"weight must have no zero-sized dimension, got shape {weight.shape}")
    if cin % groups:
        raise InputError(f"input channels ({cin}) must be divisible by groups ({groups})")
    if cin_g * groups != cin:
        raise InputError(f"x has {cin} channels but weight {weight.shape} with groups={groups} "
                         f"expects {cin_g * groups} (= weight.shape[1] * groups); check the "
                         f"layout is NCHW and the weight (Cout, Cin/groups, KH, KW)")
    if cout % groups:
        raise InputError(f"output channels ({cout}) must be divisible by groups ({groups})")
    out_shape = conv2d_out_shape(x.shape, weight.shape, (sh, sw), (pt, pb, pl, pr), (dh, dw))
    ho, wo = out_shape[2], out_shape[3]
    if ho < 1 or wo < 1:
        raise InputError(f"output size would be {ho}x{wo}: input {h}x{w_in} with padding "
                         f"{(pt, pb, pl, pr)} is smaller than the dilated kernel "
                         f"{dh * (kh - 1) + 1}x{dw * (kw - 1) + 1}; pad more or use a larger input")
    if bias is None:
        bias = np.zeros(cout, np.float32)
    else:
        bias = check_array(bias, "bias", 1)
        if bias.shape != (cout,):
            raise InputError(f"bias must have shape ({cout},), one per output channel, "
                             f"got {bias.shape}")
    has_res = residual is not None
    if has_res:
        residual = check_array(residual, "residual", 4)
        if residual.shape != out_shape:
            raise InputError(f"residual must have the output's shape {out_shape}, "
                             f"got {residual.shape}")
    return (x, weight, bias, (sh, sw), (pt, pb, pl, pr), (dh, dw), groups, code, residual,
            out_shape)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, act=0,
           residual=None) -> np.ndarray:
    """out = act(conv2d(x, weight) + bias) + residual; shapes in the module docstring.

    stride, dilation: int or (h, w). padding: int, (ph, pw) or (top, bottom, left, right).
    act: an activation code or name (see activations.py).
    """
    (x, weight, bias, (sh, sw), (pt, pb, pl, pr), (dh, dw), groups, code, residual,
     out_shape) = check_conv_args(x, weight, bias, stride, padding, dilation, groups, act,
                                  residual)
    n, cin, h, w_in = x.shape
    cout, cin_g, kh, kw = weight.shape
    ho, wo = out_shape[2], out_shape[3]
    has_res = residual is not None
    out = np.empty(out_shape, np.float32)
    if out.size == 0:
        return out
    code = np.int64(code)

    if groups == cin and cout % cin == 0 and (kh > 1 or kw > 1 or sh > 1 or sw > 1):
        res = residual if has_res else NO_RES4
        # one chunk of planes per thread (get_num_threads inside the kernel would stop
        # Numba from caching it on disk)
        _depthwise(x, weight.reshape(cout, kh, kw), bias, pt, pl, sh, sw, dh, dw, code, res,
                   has_res, out, numba.get_num_threads())
        return out

    if 1 < groups < cin and kh * kw > 1:
        # grouped 3x3 etc. (RegNet, ResNeXt): a direct kernel beats im2col per group
        from .conv_group import grouped_conv2d_into   # conv_group imports this module
        return grouped_conv2d_into(x, weight, bias, (sh, sw), (pt, pb, pl, pr), (dh, dw),
                                   groups, code, residual, out)

    P = ho * wo
    if kh == 1 and kw == 1 and pt == pb == pl == pr == 0:
        # 1x1 without padding: stride only subsamples the input
        if sh > 1 or sw > 1:
            x = np.ascontiguousarray(x[:, :, ::sh, ::sw])
        cols = x.reshape(n, cin, P)
    else:
        cols = np.empty((n, cin * kh * kw, P), np.float32)
        _im2col(x, kh, kw, pt, pl, sh, sw, dh, dw, ho, wo, cols)
    if groups == 1 and P < SMALL_IMAGE:
        # small image (7x7, 14x14 at stride 2...): rows of P pixels are too short to
        # vectorize, so run it as a linear layer over pixels on the (pixels, K) transpose
        xt = np.ascontiguousarray(cols.transpose(0, 2, 1))
        _dot_kernel(xt, weight.reshape(cout, -1), bias, out.reshape(n, cout, P))
        if code or has_res:
            epilogue_rows(out.reshape(n * cout, P),
                          residual.reshape(n * cout, P) if has_res else NO_RES2, has_res, code)
        return out
    cols = cols.reshape(n, groups, cin_g * kh * kw, P)
    og = cout // groups
    res = residual.reshape(n, groups, og, ho * wo) if has_res else NO_RES4
    _pointwise_rows(cols, weight.reshape(groups, og, -1), bias.reshape(groups, og), code, res,
                    has_res, out.reshape(n, groups, og, ho * wo))
    return out

