"""Convolutions in the channel-blocked layout (ONNX Runtime's and oneDNN's NCHWc): the
channels cut into blocks of CB = one vector register (16 floats on AVX-512, 8 on AVX2),
and the CB channels of one pixel stored side by side, innermost:

    xb       (N, ceil(C / CB), H, W, CB)    float32
    xb[n, c // CB, h, w, c % CB] = x[n, c, h, w]
    Channels past C: zeros after to_blocked; a conv's output holds act(0) there (0.5 after
    a sigmoid), which no reader sees: packed pointwise weights are zero for them, and a
    depthwise conv's padded channels only produce padded channels.

Why: in NCHW a 1x1 or depthwise conv vectorizes along a row of pixels, and a 7x7 map has
rows of 7 (49 pixels per plane: three vectors and a scalar tail). Blocked, every vector
holds CB channels of ONE pixel, so every loop is whole vectors whatever the map size:

  depthwise   out[:, cb, oy, ox, :] += xb[:, cb, iy, ix, :] * w[cb, ky, kx, :]
              (CB multiply-adds per vector instruction at every map size; 8 output pixels
              per tile in registers)
  pointwise   out[:, ob, p, :] += xb[:, ib, p, ci] * w[ob, ib*CB + ci, :]
              (a broadcast pixel value times a vector of CB output channels' weights: the
              input needs no packing, it already is a GEMM panel; MP pixels x NB output
              blocks of accumulators in registers)

engine/layout.py keeps runs of such convs in this layout (MobileNetV2's expand ->
depthwise -> project chains), converting only where a run meets a node that reads NCHW.

    weight   PyTorch's (Cout, Cin/groups, KH, KW); packed once per weight (pack_* below)
    bias     (Cout,)
    residual blocked like the output, or None; added after the activation unless ``act``
             carries activations.AFTER_RESIDUAL (as in every conv kernel)

conv.py holds the NCHW conv's shapes, cost and reference; a blocked conv computes exactly
the same numbers (tests/test_kernels_blocked.py checks both against torch).
"""
from __future__ import annotations

import numba
import numpy as np

from ..cpu import VECTOR_FLOATS
from ..errors import InputError
from .activations import epilogue_code
from .common import FASTMATH, cached_derived, check_array, check_bias, epilogue, stack_empty
from .conv import normalize_padding

CB = VECTOR_FLOATS                  # channels per block: one vector register
# Pointwise tile: MP pixels x NB output blocks of accumulators (14 of 32 zmm registers on
# AVX-512; 10 of 16 ymm on AVX2), plus NB weight vectors and a broadcast.
MP = 7 if CB == 16 else 5
NB = 2
PW_TILE = MP * NB * CB
PW_PIXELS = 16 * MP                 # pixels per pointwise task at most (a multiple of MP)
TASKS_PER_THREAD = 8
# Depthwise tile: TW output pixels of one row, one block of CB channels.
TW = 8
DW_TILE = TW * CB


def blocks(c: int) -> int:
    """How many blocks of CB channels hold c channels."""
    return (c + CB - 1) // CB


# ---- layout conversion -----------------------------------------------------------------
@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _to_blocked(x, out):
    N, C, H, W = x.shape
    Cb = out.shape[1]
    for t in numba.prange(N * Cb * H):
        n = t // (Cb * H)
        r = t % (Cb * H)
        cb = r // H
        h = r % H
        o = out[n, cb, h]
        for j in range(CB):
            c = cb * CB + j
            if c < C:
                xr = x[n, c, h]
                for w in range(W):
                    o[w, j] = xr[w]
            else:
                for w in range(W):
                    o[w, j] = 0.0


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _from_blocked(xb, out):
    N, C, H, W = out.shape
    for t in numba.prange(N * C * H):
        n = t // (C * H)
        r = t % (C * H)
        c = r // H
        h = r % H
        cb = c // CB
        j = c % CB
        src = xb[n, cb, h]
        o = out[n, c, h]
        for w in range(W):
            o[w] = src[w, j]


def to_blocked(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) float32 -> (N, ceil(C/CB), H, W, CB), zero-filled past channel C."""
    N, C, H, W = x.shape
    out = np.empty((N, blocks(C), H, W, CB), np.float32)
    _to_blocked(np.ascontiguousarray(x), out)
    return out


def from_blocked(xb: np.ndarray, channels: int) -> np.ndarray:
    """(N, Cb, H, W, CB) -> (N, channels, H, W): the first ``channels`` channels."""
    N, _, H, W, _ = xb.shape
    out = np.empty((N, channels, H, W), np.float32)
    _from_blocked(xb, out)
    return out


# ---- weights, packed once per weight array ----------------------------------------------
def pack_pointwise(w: np.ndarray) -> np.ndarray:
    """(Cout, Cin, 1, 1) -> (ceil(Cout/CB), ceil(Cin/CB)*CB, CB): for output block ob and
    input channel k, the CB weights w[ob*CB : ob*CB + CB, k] side by side (zeros past Cout
    and Cin; the input's padded channels are zeros too, so they add nothing)."""
    cout, cin = w.shape[:2]
    p = np.zeros((blocks(cout) * CB, blocks(cin) * CB), np.float32)
    p[:cout, :cin] = w[:, :, 0, 0]
    return np.ascontiguousarray(p.reshape(blocks(cout), CB, -1).transpose(0, 2, 1))


def pack_depthwise(w: np.ndarray) -> np.ndarray:
    """(C, 1, KH, KW) -> (ceil(C/CB), KH, KW, CB): each tap's CB channel weights together."""
    c, _, kh, kw = w.shape
    p = np.zeros((blocks(c) * CB, kh, kw), np.float32)
    p[:c] = w[:, 0]
    return np.ascontiguousarray(p.reshape(blocks(c), CB, kh, kw).transpose(0, 2, 3, 1))


def pad_bias(bias, c: int) -> np.ndarray:
    """(c,) bias (or a scalar) -> (ceil(c/CB) * CB,), zeros past c."""
    out = np.zeros(blocks(c) * CB, np.float32)
    out[:c] = bias
    return out


# ---- pointwise: 1x1, stride 1, no padding, groups 1 -------------------------------------
@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _pointwise(x3, wp, bias, act, res3, has_res, out3, pps):
    """out3[n, ob, p*CB + j] = act(bias + sum_k x[n, k, p] * w[ob*CB + j, k]) (+ res)

    x3 (N, Cib, P*CB)   wp (Cob, Cib*CB, CB)   bias (Cob*CB,)   res3, out3 (N, Cob, P*CB)
    One task: an image, NB output blocks and ``pps`` pixels (pointwise_blocked: up to
    PW_PIXELS, fewer when that would leave fewer than TASKS_PER_THREAD tasks per thread),
    so the NB blocks' weights (K x NB*CB floats) come from cache for every tile but the
    first, and the threads' shares are even (one output block at 112x112 was one task)."""
    N, Cib = x3.shape[0], x3.shape[1]
    P = x3.shape[2] // CB
    Cob = out3.shape[1]
    nob = (Cob + NB - 1) // NB
    nps = (P + pps - 1) // pps
    for t in numba.prange(N * nob * nps):
        n = t // (nob * nps)
        g = t % (nob * nps) // nps
        ps = t % nps * pps
        pe = min(ps + pps, P)
        for p0 in range(ps, pe, MP):
            _pw_tile(x3, wp, bias, out3, n, g * NB, p0, min(MP, P - p0), Cib)
        for ob in range(g * NB, min(g * NB + NB, Cob)):   # once per task (see _depthwise)
            epilogue(out3[n, ob, ps * CB:pe * CB],
                     res3[n, ob, ps * CB:pe * CB] if has_res else None, act)


@numba.njit(fastmath=FASTMATH, cache=True)
def _pw_tile(x3, wp, bias, out3, n, ob0, p0, mp, Cib):
    """One MP x NB tile: pixels p0 .. p0+mp-1, output blocks ob0, ob0+1. Pixels past mp
    re-read the last valid one and blocks past Cob the last block; neither is written."""
    Cob = out3.shape[1]
    acc = stack_empty(PW_TILE)
    for b in range(NB):
        ob = min(ob0 + b, Cob - 1)
        bb = bias[ob * CB:ob * CB + CB]
        for i in range(MP):
            for j in range(CB):
                acc[(i * NB + b) * CB + j] = bb[j]
    w0 = wp[ob0]
    w1 = wp[min(ob0 + 1, Cob - 1)]
    if MP == 7:          # a compile-time constant: only one of the two loops is compiled
        _pw_k7(x3[n], w0, w1, p0 * CB, (mp - 1) * CB, Cib, acc)
    else:
        _pw_k5(x3[n], w0, w1, p0 * CB, (mp - 1) * CB, Cib, acc)
    for b in range(NB):
        ob = ob0 + b
        if ob < Cob:
            o = out3[n, ob, p0 * CB:(p0 + mp) * CB]
            for i in range(MP):
                if i < mp:
                    for j in range(CB):
                        o[i * CB + j] = acc[(i * NB + b) * CB + j]


# The k loops, one per MP, each pixel's value a named scalar (as in tiles.py): with a loop
# over the MP pixels LLVM did not unroll it, the accumulators stayed in memory and it
# vectorized the k loop instead, with gathers and scatters (1-4 GFLOP/s). ``last``: the
# offset of the last valid pixel; pixels past it re-read it (their sums are not written).

@numba.njit(inline="always", cache=True)
def _pw_k7(xn, w0, w1, base, last, Cib, acc):
    o0, o1, o2, o3 = base, base + min(CB, last), base + min(2 * CB, last), \
        base + min(3 * CB, last)
    o4, o5, o6 = base + min(4 * CB, last), base + min(5 * CB, last), base + min(6 * CB, last)
    ncb = w0.shape[1]      # = CB, but a run-time trip count: LLVM then keeps this loop
    for ib in range(Cib):  # rolled (fully unrolled, 16 x the tile: +0.5 s of compile)
        xb = xn[ib]
        for ci in range(ncb):
            k = ib * CB + ci
            wa = w0[k]
            wb = w1[k]
            a0, a1, a2, a3 = xb[o0 + ci], xb[o1 + ci], xb[o2 + ci], xb[o3 + ci]
            a4, a5, a6 = xb[o4 + ci], xb[o5 + ci], xb[o6 + ci]
            for j in range(CB):
                u = wa[j]
                v = wb[j]
                acc[j] += a0 * u
                acc[CB + j] += a0 * v
                acc[2 * CB + j] += a1 * u
                acc[3 * CB + j] += a1 * v
                acc[4 * CB + j] += a2 * u
                acc[5 * CB + j] += a2 * v
                acc[6 * CB + j] += a3 * u
                acc[7 * CB + j] += a3 * v
                acc[8 * CB + j] += a4 * u
                acc[9 * CB + j] += a4 * v
                acc[10 * CB + j] += a5 * u
                acc[11 * CB + j] += a5 * v
                acc[12 * CB + j] += a6 * u
                acc[13 * CB + j] += a6 * v


@numba.njit(inline="always", cache=True)
def _pw_k5(xn, w0, w1, base, last, Cib, acc):
    o0, o1, o2 = base, base + min(CB, last), base + min(2 * CB, last)
    o3, o4 = base + min(3 * CB, last), base + min(4 * CB, last)
    ncb = w0.shape[1]      # = CB, but a run-time trip count: LLVM then keeps this loop
    for ib in range(Cib):  # rolled (fully unrolled, 16 x the tile: +0.5 s of compile)
        xb = xn[ib]
        for ci in range(ncb):
            k = ib * CB + ci
            wa = w0[k]
            wb = w1[k]
            a0, a1, a2, a3, a4 = xb[o0 + ci], xb[o1 + ci], xb[o2 + ci], xb[o3 + ci], xb[o4 + ci]
            for j in range(CB):
                u = wa[j]
                v = wb[j]
                acc[j] += a0 * u
                acc[CB + j] += a0 * v
                acc[2 * CB + j] += a1 * u
                acc[3 * CB + j] += a1 * v
                acc[4 * CB + j] += a2 * u
                acc[5 * CB + j] += a2 * v
                acc[6 * CB + j] += a3 * u
                acc[7 * CB + j] += a3 * v
                acc[8 * CB + j] += a4 * u
                acc[9 * CB + j] += a4 * v


# ---- depthwise: groups == C == Cout, any kernel, stride and padding, dilation 1 ----------
@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _depthwise(xb, wd, bias, sh, sw, pt, pl, act, resb, has_res, outb, nchunks):
    """outb[n, cb, oy, ox, j] = act(bias + sum_{ky,kx} xpad[n, cb, oy*sh + ky, ox*sw + kx, j]
    * wd[cb, ky, kx, j]) (+ res), xpad: xb with pt rows / pl columns of zeros before.

    xb (N, Cb, H, W, CB)   wd (Cb, KH, KW, CB)   bias (Cb*CB,)   resb, outb (N, Cb, Ho, Wo, CB)
    One task: one block of one image. It first copies its plane into a zero-padded buffer
    (one pass over the input), so that no tap needs a bounds test: at 7x7 and 14x14 maps
    nearly every tile touches a border. One chunk of tasks per thread, so the buffer is
    made and its border zeroed once per thread (per task, that was a third of a 7x7 layer)."""
    N, Cb, H, W = xb.shape[0], xb.shape[1], xb.shape[2], xb.shape[3]
    Ho, Wo = outb.shape[2], outb.shape[3]
    KH, KW = wd.shape[1], wd.shape[2]
    Hp = max(pt + H, (Ho - 1) * sh + KH)            # padded rows / columns the taps reach
    Wp = max(pl + W, ((Wo + TW - 1) // TW * TW - 1) * sw + KW)   # whole tiles: slack
    tasks = N * Cb
    nchunks = min(nchunks, tasks)
    for chunk in numba.prange(nchunks):
        buf = np.zeros((Hp, Wp * CB), np.float32)
        for t in range(chunk * tasks // nchunks, (chunk + 1) * tasks // nchunks):
            n = t // Cb
            cb = t % Cb
            for y in range(H):                      # the plane into the buffer's interior
                src = xb[n, cb, y].reshape(-1)
                row = buf[pt + y, pl * CB:]
                for i in range(W * CB):
                    row[i] = src[i]
            wc = wd[cb]
            bb = bias[cb * CB:cb * CB + CB]
            for oy in range(Ho):
                _dw_row(buf, wc, bb, sh, sw, oy, outb[n, cb, oy].reshape(-1), Wo)
            # the activation and residual once per plane: per 8-pixel tile, the calls into
            # the activation code cost 40% of a 7x7 layer
            epilogue(outb[n, cb].reshape(-1), resb[n, cb].reshape(-1) if has_res else None,
                     act)


@numba.njit(inline="always", cache=True)
def _dw_taps(x0, wv, c, st, acc):
    """acc[i] += x0[c + i*st : +CB] * wv for the TW pixels i; ``st`` a literal at both
    call sites, so every offset is a constant."""
    for j in range(CB):
        u = wv[j]
        acc[j] += x0[c + j] * u
        acc[CB + j] += x0[c + st + j] * u
        acc[2 * CB + j] += x0[c + 2 * st + j] * u
        acc[3 * CB + j] += x0[c + 3 * st + j] * u
        acc[4 * CB + j] += x0[c + 4 * st + j] * u
        acc[5 * CB + j] += x0[c + 5 * st + j] * u
        acc[6 * CB + j] += x0[c + 6 * st + j] * u
        acc[7 * CB + j] += x0[c + 7 * st + j] * u


@numba.njit(fastmath=FASTMATH, cache=True)
def _dw_row(buf, wd, bb, sh, sw, oy, o, Wo):
    """Output row oy (o: its Wo * CB floats) of one block, TW pixels per tile: the tile's
    accumulators in registers, each pixel a named offset (as in the pointwise k loops: a
    loop over pixels stayed in memory). A call per row, not per tile: 1.2-1.9x at stride 1
    (the call and its array arguments cost about as much as a 3x3 tile's 72 multiply-adds)."""
    KH, KW = wd.shape[0], wd.shape[1]
    acc = stack_empty(DW_TILE)
    for ox0 in range(0, Wo, TW):
        for i in range(TW):
            for j in range(CB):
                acc[i * CB + j] = bb[j]
        # One slice per input row, the 8 pixels at constant offsets from it (one loop per
        # stride, see supports): with run-time offsets Numba's negative-index wraparound
        # turned the loads into gathers. The buffer has slack columns, so pixels of a tile
        # past the row's end read zeros (and are not written).
        for ky in range(KH):
            x0 = buf[oy * sh + ky, ox0 * sw * CB:]
            wk = wd[ky]
            if sw == 1:
                for kx in range(KW):
                    _dw_taps(x0, wk[kx], kx * CB, CB, acc)
            else:
                for kx in range(KW):
                    _dw_taps(x0, wk[kx], kx * CB, 2 * CB, acc)
        ot = o[ox0 * CB:]
        tw = min(TW, Wo - ox0)
        for i in range(TW):         # a constant trip count: acc stays in registers (with
            if i < tw:              # range(tw), 3-5x slower: acc went to memory)
                for j in range(CB):
                    ot[i * CB + j] = acc[i * CB + j]


# ---- the kernels' callers: conv2d_blocked (the engine's entry) checks the arguments ----
NO_RES5 = np.zeros((1, 1, 1, 1, CB), np.float32)


def pointwise_blocked(xb, wp, bias_p, cout, act, residual=None):
    """1x1 conv on blocked xb with packed wp (pack_pointwise) and bias_p (pad_bias):
    blocked output of ``cout`` channels."""
    N, _, H, W, _ = xb.shape
    out = np.empty((N, blocks(cout), H, W, CB), np.float32)
    P = H * W
    res = NO_RES5 if residual is None else residual
    tiles = N * ((blocks(cout) + NB - 1) // NB) * ((P + MP - 1) // MP)
    per_task = max(1, min(PW_PIXELS // MP, tiles // (TASKS_PER_THREAD * numba.get_num_threads())))
    _pointwise(xb.reshape(N, xb.shape[1], P * CB), wp, bias_p, act,
               res.reshape(res.shape[0], res.shape[1], -1), residual is not None,
               out.reshape(N, out.shape[1], P * CB), per_task * MP)
    return out


def depthwise_blocked(xb, wd, bias_p, stride, padding, act, residual=None):
    """Depthwise conv on blocked xb with packed wd (pack_depthwise): blocked output.
    padding (top, bottom, left, right)."""
    N, Cb, H, W, _ = xb.shape
    KH, KW = wd.shape[1], wd.shape[2]
    (sh, sw), (pt, pb, pl, pr) = stride, padding
    Ho = (H + pt + pb - KH) // sh + 1
    Wo = (W + pl + pr - KW) // sw + 1
    out = np.empty((N, Cb, Ho, Wo, CB), np.float32)
    _depthwise(xb, wd, bias_p, sh, sw, pt, pl, act,
               NO_RES5 if residual is None else residual, residual is not None, out,
               numba.get_num_threads())
    return out


def conv2d_blocked(x, weight, bias, stride, padding, groups, act, residual=None, cache=None,
                   blocked_out=True, act_after_residual=False) -> np.ndarray:
    """The engine's entry: a pointwise (1x1, stride 1, no padding) or depthwise conv
    (``supports``) on x blocked (5-D) or NCHW (4-D, converted first); residual likewise.
    stride: int or (sh, sw); padding, act (a code), act_after_residual: as conv2d's. Packed
    weight and bias are made once into ``cache`` (an engine node's). Blocked output, or
    NCHW if not ``blocked_out``."""
    stride = tuple(stride) if isinstance(stride, (tuple, list)) else (stride, stride)
    padding = normalize_padding(padding)
    x, weight, bias, residual = _check(x, weight, bias, stride, padding, groups, residual)
    act = epilogue_code(act, residual is not None, act_after_residual)
    cout = weight.shape[0]
    if x.ndim == 4:
        x = to_blocked(x)
    if residual is not None and residual.ndim == 4:
        residual = to_blocked(residual)
    pack = pack_depthwise if groups > 1 else pack_pointwise
    cache = {} if cache is None else cache
    wp = cached_derived(cache, "blocked", weight, pack, 4)
    bp = (cached_derived(cache, "blocked_bias", weight, lambda w: pad_bias(0, cout), 4)
          if bias is None else cached_derived(cache, "blocked_bias", bias,
                                             lambda b: pad_bias(b, cout), 1))
    if groups > 1:
        y = depthwise_blocked(x, wp, bp, stride, padding, act, residual)
    else:
        y = pointwise_blocked(x, wp, bp, cout, act, residual)
    return y if blocked_out else from_blocked(y, cout)


def _check(x, weight, bias, stride, padding, groups, residual):
    """conv2d_blocked's arguments, or one InputError saying what is wrong."""
    x = check_array(x, "x", (4, 5))
    weight = check_array(weight, "weight", 4)
    cout, cin_g = weight.shape[:2]
    if not supports(weight.shape, groups, stride, padding, (1, 1)):
        raise InputError(f"conv2d_blocked runs 1x1 convs (stride 1, no padding, groups 1) and "
                         f"depthwise convs (groups = channels); got weight {weight.shape}, "
                         f"groups {groups}, stride {stride}, padding {padding}: use conv2d")
    cin = cin_g * groups
    if (x.shape[1] != cin if x.ndim == 4 else
            (x.shape[1] != blocks(cin) or x.shape[4] != CB)):
        want = f"(N, {cin}, H, W)" if x.ndim == 4 else f"(N, {blocks(cin)}, H, W, {CB})"
        raise InputError(f"x has shape {x.shape}; weight {weight.shape} with groups {groups} "
                         f"needs {want}")
    bias = None if bias is None else check_bias(bias, cout, "one per output channel")
    if residual is not None:
        residual = check_array(residual, "residual", (4, 5))
        (sh, sw), (pt, pb, pl, pr) = stride, padding
        ho = (x.shape[2] + pt + pb - weight.shape[2]) // sh + 1
        wo = (x.shape[3] + pl + pr - weight.shape[3]) // sw + 1
        want = ((x.shape[0], cout, ho, wo) if residual.ndim == 4 else
                (x.shape[0], blocks(cout), ho, wo, CB))
        if residual.shape != want:
            raise InputError(f"residual has shape {residual.shape}; the output is {want}")
    return x, weight, bias, residual


def supports(w_shape, groups, stride, padding, dilation) -> bool:
    """Whether conv2d_blocked can run this conv: a 1x1 without groups, stride or padding,
    or a depthwise conv (one input channel per group, multiplier 1) without dilation."""
    cout, cin_g, kh, kw = w_shape
    if tuple(dilation) != (1, 1):
        return False
    if groups == 1:
        return kh == kw == 1 and tuple(stride) == (1, 1) and not any(padding)
    return cin_g == 1 and groups == cout and tuple(stride) in ((1, 1), (2, 2), (1, 2), (2, 1))
