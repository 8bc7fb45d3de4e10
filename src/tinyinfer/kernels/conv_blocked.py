"""Pointwise and dense convolutions on the channel-blocked layout (blocked_layout.py), and
the entry for every blocked conv (conv2d_blocked; depthwise: conv_blocked_dw.py).

Why the layout: in NCHW a 1x1 or depthwise conv vectorizes along a row of pixels, and a
7x7 map has rows of 7 (49 pixels per plane: three vectors and a scalar tail). Blocked,
every vector holds CB channels of ONE pixel, so every loop is whole vectors whatever the
map size:

  pointwise   out[:, ob, p, :] += xb[:, ib, p, ci] * w[ob, ib*CB + ci, :]
              (a broadcast pixel value times a vector of CB output channels' weights: the
              input needs no packing, it already is a GEMM panel; MP pixels x NB output
              blocks of accumulators in registers)
  dense       (groups 1, any kernel: SqueezeNet's and ResNet's 3x3 convs) on blocked
              input: the same kernel on an im2col panel in the blocked layout
              (im2col_blocked.py): its taps play the input channels, so the output comes
              out blocked. On NCHW input (a stem): conv_blocked_direct.py, the same tiles
              reading the taps from a padded copy of the input rows, no panel
  depthwise   conv_blocked_dw.py

engine/layout.py keeps runs of such convs in this layout (MobileNetV2 from the stem to the
pool), converting only where a run meets a node that reads NCHW.

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

from ..errors import InputError
from .activations import epilogue_code
from .blocked_layout import (CB, NO_RES5, blocks, from_blocked, pad_bias,  # noqa: F401
                             to_blocked)
from .common import FASTMATH, cached_derived, check_array, check_bias, epilogue, stack_empty
from .conv import normalize_padding
from .conv_blocked_dw import bind_depthwise, pack_depthwise
from .conv_blocked_direct import bind_direct
from .im2col_blocked import panel_from_blocked

# Pointwise tile: MP pixels x NB output blocks of accumulators (14 of 32 zmm registers on
# AVX-512; 10 of 16 ymm on AVX2), plus NB weight vectors and a broadcast.
MP = 7 if CB == 16 else 5
NB = 2
PW_TILE = MP * NB * CB
NO_RES3 = NO_RES5.reshape(1, 1, CB)
PW_PIXELS = 16 * MP                 # pixels per pointwise task at most (a multiple of MP)
TASKS_PER_THREAD = 8


# ---- weights, packed once per weight array ----------------------------------------------
def pack_pointwise(w: np.ndarray) -> np.ndarray:
    """(Cout, Cin, 1, 1) -> (ceil(Cout/CB), ceil(Cin/CB)*CB, CB): for output block ob and
    input channel k, the CB weights w[ob*CB : ob*CB + CB, k] side by side (zeros past Cout
    and Cin; the input's padded channels are zeros too, so they add nothing)."""
    cout, cin = w.shape[:2]
    p = np.zeros((blocks(cout) * CB, blocks(cin) * CB), np.float32)
    p[:cout, :cin] = w[:, :, 0, 0]
    return np.ascontiguousarray(p.reshape(blocks(cout), CB, -1).transpose(0, 2, 1))


# ---- pointwise: 1x1, stride 1, no padding, groups 1 -------------------------------------
@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _pointwise(x3, wp, bias, act, res3, has_res, out3, pps, off):
    """out3[n, off + ob, p*CB + j] = act(bias + sum_k x[n, k, p] * w[ob*CB + j, k]) (+ res)

    x3 (N, Cib, P*CB)  wp (Cob, Cib*CB, CB)  bias (Cob*CB,)  res3 (N, Cob, P*CB)
    out3 (N, off + Cob + ..., P*CB): the output's blocks from ``off`` on (a concat's other
    inputs may fill the rest: engine/layout._join_in_place)
    One task: an image, NB output blocks and ``pps`` pixels (bind_pointwise: up to
    PW_PIXELS, fewer when that would leave fewer than TASKS_PER_THREAD tasks per thread),
    so the NB blocks' weights (K x NB*CB floats) come from cache for every tile but the
    first, and the threads' shares are even (one output block at 112x112 was one task)."""
    N, Cib = x3.shape[0], x3.shape[1]
    P = x3.shape[2] // CB
    Cob = wp.shape[0]
    nob = (Cob + NB - 1) // NB
    nps = (P + pps - 1) // pps
    for t in numba.prange(N * nob * nps):
        n = t // (nob * nps)
        g = t % (nob * nps) // nps
        ps = t % nps * pps
        pe = min(ps + pps, P)
        ob0, ob1 = g * NB, min(g * NB + 1, Cob - 1)
        pw_tiles(x3[n], wp[ob0], wp[ob1], bias[ob0 * CB:], bias[ob1 * CB:], out3[n, off + ob0],
                 out3[n, off + ob1], ps, pe, Cib)
        for ob in range(g * NB, min(g * NB + NB, Cob)):   # once per task (see _depthwise)
            epilogue(out3[n, off + ob, ps * CB:pe * CB],
                     res3[n, ob, ps * CB:pe * CB] if has_res else None, act)


@numba.njit(fastmath=FASTMATH, cache=True)
def pw_tiles(xn, w0, w1, b0, b1, o0, o1, ps, pe, Cib):
    """Pixels ps .. pe-1 of two output blocks: w0, w1 their packed weights (K, CB), b0, b1
    their biases (from their first CB), o0, o1 their output rows (P*CB); a group of one
    block passes it twice (computed twice, written twice alike). MP pixels per tile; the
    last tile's pixels past pe re-read the last valid one and are not written. A call per
    task, not per tile: 1.1-1.2x at K = 16-32 (112x112, 56x56)."""
    acc = stack_empty(PW_TILE)
    for p0 in range(ps, pe, MP):
        mp = min(MP, pe - p0)
        for i in range(MP):
            for j in range(CB):
                acc[i * NB * CB + j] = b0[j]
                acc[(i * NB + 1) * CB + j] = b1[j]
        if MP == 7:      # a compile-time constant: only one of the two loops is compiled
            _pw_k7(xn, w0, w1, p0 * CB, (mp - 1) * CB, Cib, acc)
        else:
            _pw_k5(xn, w0, w1, p0 * CB, (mp - 1) * CB, Cib, acc)
        for b in range(NB):                  # block by block: both blocks' stores in one
            o = (o0 if b == 0 else o1)[p0 * CB:]     # loop made 16->96 @112x112 1.45x slower
            for i in range(MP):              # a constant trip count (see conv_blocked_dw)
                if i < mp:
                    for j in range(CB):
                        o[i * CB + j] = acc[(i * NB + b) * CB + j]


# The k loops, one per MP, each pixel's value a named scalar (as in tiles.py): with a loop
# over the MP pixels LLVM did not unroll it, the accumulators stayed in memory and it
# vectorized the k loop instead, with gathers and scatters (1-4 GFLOP/s). ``last``: the
# offset of the last valid pixel; pixels past it re-read it (their sums are not written).
# Each pixel's CB input values are a view (x0 = xb[o0:o0 + CB]) indexed by ``ci`` alone:
# read as xb[o0 + ci], Numba's negative-index wraparound cost 4 integer instructions per
# broadcast (LLVM cannot tell o0 + ci >= 0; a range's ci it can), 58 instructions per 14
# multiply-adds; with the views 63 per 28, the loop unrolled by two. Per layer on two
# threads 0.74-0.98 of the time, networks 0.96-0.97 (2026-12-04, Zen 4).

@numba.njit(inline="always", cache=True)
def _pw_k7(xn, w0, w1, base, last, Cib, acc):
    o0, o1, o2, o3 = base, base + min(CB, last), base + min(2 * CB, last), \
        base + min(3 * CB, last)
    o4, o5, o6 = base + min(4 * CB, last), base + min(5 * CB, last), base + min(6 * CB, last)
    ncb = w0.shape[1]      # = CB, but a run-time trip count: LLVM then keeps this loop
    for ib in range(Cib):  # rolled (fully unrolled, 16 x the tile: +0.5 s of compile)
        xb = xn[ib]
        x0, x1, x2, x3 = xb[o0:o0 + CB], xb[o1:o1 + CB], xb[o2:o2 + CB], xb[o3:o3 + CB]
        x4, x5, x6 = xb[o4:o4 + CB], xb[o5:o5 + CB], xb[o6:o6 + CB]
        for ci in range(ncb):
            k = ib * CB + ci
            wa = w0[k]
            wb = w1[k]
            a0, a1, a2, a3 = x0[ci], x1[ci], x2[ci], x3[ci]
            a4, a5, a6 = x4[ci], x5[ci], x6[ci]
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
        x0, x1, x2 = xb[o0:o0 + CB], xb[o1:o1 + CB], xb[o2:o2 + CB]
        x3, x4 = xb[o3:o3 + CB], xb[o4:o4 + CB]
        for ci in range(ncb):
            k = ib * CB + ci
            wa = w0[k]
            wb = w1[k]
            a0, a1, a2, a3, a4 = x0[ci], x1[ci], x2[ci], x3[ci], x4[ci]
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


# ---- dense (groups 1, any kernel): the pointwise kernel on an im2col panel ---------------
def pack_dense(w: np.ndarray) -> np.ndarray:
    """(Cout, Cin, KH, KW) -> pack_pointwise's layout with K = Cin*KH*KW taps, in the
    order of a panel made from NCHW input: (ci, ky, kx)."""
    return pack_pointwise(w.reshape(w.shape[0], -1, 1, 1))


def pack_dense_blocked(w: np.ndarray) -> np.ndarray:
    """(Cout, Cin, KH, KW) -> pack_pointwise's layout with K = KH*KW*ceil(Cin/CB)*CB taps,
    in the order of a panel made from blocked input: (ky, kx, ci), zeros past Cin."""
    cout, cin, kh, kw = w.shape
    t = np.zeros((cout, kh, kw, blocks(cin) * CB), np.float32)
    t[..., :cin] = w.transpose(0, 2, 3, 1)
    return pack_pointwise(t.reshape(cout, -1, 1, 1))


# ---- the kernels' callers: conv2d_blocked (the engine's entry) checks the arguments ----
def bind_pointwise(shape, wp, bias_p, cout, act):
    """1x1 conv on blocked inputs of ``shape`` with packed wp (pack_pointwise) and bias_p
    (pad_bias): a function (xb, residual=None, out=None, off=0) -> blocked output of
    ``cout`` channels, its task split worked out once (with numba.get_num_threads, 0.7 us,
    that was half of a small layer's ~3 us of Python per call). ``out``: a C-contiguous
    (N, >= off + blocks(cout), H, W, CB) array, written from block ``off``."""
    N, Cib, H, W, _ = shape
    P = H * W
    oshape = (N, blocks(cout), H, W, CB)
    tiles = N * ((blocks(cout) + NB - 1) // NB) * ((P + MP - 1) // MP)
    per_task = max(1, min(PW_PIXELS // MP, tiles // (TASKS_PER_THREAD * numba.get_num_threads())))
    pps = per_task * MP

    def call(xb, residual=None, out=None, off=0):
        if out is None:
            out = np.empty(oshape, np.float32)
        res = NO_RES3 if residual is None else residual.reshape(N, oshape[1], P * CB)
        _pointwise(xb.reshape(N, Cib, P * CB), wp, bias_p, act, res, residual is not None,
                   out.reshape(N, out.shape[1], P * CB), pps, off)
        return out
    return call


def conv2d_blocked(x, weight, bias, stride, padding, groups, act, residual=None, cache=None,
                   blocked_out=True, act_after_residual=False) -> np.ndarray:
    """A pointwise, depthwise or dense conv (``supports``) on x blocked (5-D) or NCHW
    (4-D, converted as the kernel needs); residual likewise. stride: int or (sh, sw);
    padding, act (a code), act_after_residual: as conv2d's. Packed weight and bias are made
    once into ``cache`` (an engine node's). Blocked output, or NCHW if not ``blocked_out``."""
    run, x, residual = _bind(x, weight, bias, stride, padding, groups, act, residual, cache,
                             blocked_out, act_after_residual)
    return run(x, residual)


def bind_conv2d_blocked(x, weight, bias, stride, padding, groups, act, residual=None,
                        cache=None, blocked_out=True, act_after_residual=False):
    """conv2d_blocked's arguments checked once, for x's and residual's shapes: a function
    run(x, residual) -> y for float32 C-contiguous arrays of those shapes (the engine keeps
    it per node and input shape: the checks and conversions of arguments were ~6 us of a
    conv's ~9 us on a 2x2 map, 0.3 ms of MobileNetV3-Small)."""
    return _bind(x, weight, bias, stride, padding, groups, act, residual, cache, blocked_out,
                 act_after_residual)[0]


def _bind(x, weight, bias, stride, padding, groups, act, residual, cache, blocked_out,
          act_after_residual):
    """(run, x, residual): the bound kernel call and the checked (float32, C-contiguous)
    arrays it was checked on."""
    stride = tuple(stride) if isinstance(stride, (tuple, list)) else (stride, stride)
    padding = normalize_padding(padding)
    x, weight, bias, residual = check_blocked_args(x, weight, bias, stride, padding, groups,
                                                   residual)
    act = epilogue_code(act, residual is not None, act_after_residual)
    cout, cin_g, kh, kw = weight.shape
    dense = groups == 1 and (kh, kw, stride, padding) != (1, 1, (1, 1), (0, 0, 0, 0))
    # a dense conv reads x as it comes: from NCHW x no conversion, and no padded taps (a
    # stem's 3 channels x 3x3 make 27 taps there, 9 blocks of CB blocked)
    direct = dense and x.ndim == 4
    pack, key = ((pack_depthwise, "blocked") if groups > 1 else
                 (pack_dense, "blocked_direct") if direct else
                 (pack_dense_blocked, "blocked_panel") if dense else (pack_pointwise, "blocked"))
    cache = {} if cache is None else cache
    wp = cached_derived(cache, key, weight, pack, 4)
    bp = packed_bias(cache, weight, bias)

    # the kernel's call with its shapes and task split worked out once
    bshape = x.shape if x.ndim == 5 else (x.shape[0], blocks(x.shape[1])) + x.shape[2:] + (CB,)
    (sh, sw), (pt, pb, pl, pr) = stride, padding
    bshape_out = (x.shape[0], blocks(cout), (x.shape[2] + pt + pb - kh) // sh + 1,
                  (x.shape[3] + pl + pr - kw) // sw + 1, CB)
    kernel = (bind_direct(x.shape, wp, bp, (kh, kw), stride, padding, act) if direct else
              bind_depthwise(bshape, wp, bp, stride, padding, act) if groups > 1 else
              None if dense else bind_pointwise(bshape, wp, bp, cout, act))
    # a dense conv on blocked x: the pointwise kernel on one image's im2col panel at a time
    panel_kernel = (bind_pointwise((1, wp.shape[1] // CB) + bshape_out[2:4] + (CB,), wp, bp,
                                   cout, act) if dense and not direct else None)

    def run(x, residual, into=None):
        """``into``: (out or None, off, blocks) for a 1x1 or dense conv on blocked x: write
        the output into blocks off.. of ``out`` (made with ``blocks`` blocks if None), as
        one input of a concat (engine/layout._join_in_place), and return ``out``."""
        if x.ndim == 4 and not direct:
            x = to_blocked(x)
        if residual is not None and residual.ndim == 4:
            residual = to_blocked(residual)
        y, off = None, 0
        if into is not None:
            y, off = into[0], into[1]
            if y is None:
                y = np.empty((x.shape[0], into[2]) + bshape_out[2:], np.float32)
        if kernel is not None:
            y = kernel(x, residual) if into is None else kernel(x, residual, y, off)
        else:                                       # one image's panel at a time, so it
            if y is None:                           # stays in cache for the product
                y = np.empty((x.shape[0], blocks(cout)) + bshape_out[2:], np.float32)
            for n in range(x.shape[0]):
                p = panel_from_blocked(x[n:n + 1], (kh, kw), stride, padding)
                panel_kernel(p, None if residual is None else residual[n:n + 1], y[n:n + 1],
                             off)
        return y if blocked_out else from_blocked(y, cout)
    return run, x, residual


def packed_bias(cache, weight, bias):
    """pad_bias(bias) (zeros for None), kept in ``cache`` as the packed weights are."""
    cout = weight.shape[0]
    return (cached_derived(cache, "blocked_bias", weight, lambda w: pad_bias(0, cout), 4)
            if bias is None else cached_derived(cache, "blocked_bias", bias,
                                               lambda b: pad_bias(b, cout), 1))


def check_blocked_args(x, weight, bias, stride, padding, groups, residual):
    """conv2d_blocked's arguments, or one InputError saying what is wrong."""
    x = check_array(x, "x", (4, 5))
    weight = check_array(weight, "weight", 4)
    cout, cin_g = weight.shape[:2]
    if not supports(weight.shape, groups, stride, padding, (1, 1)):
        raise InputError(f"conv2d_blocked runs convs with groups 1 and depthwise convs "
                         f"(groups = channels, stride 1 or 2), without dilation; got weight "
                         f"{weight.shape}, groups {groups}, stride {stride}: use conv2d")
    cin = cin_g * groups
    if (x.shape[1] != cin if x.ndim == 4 else
            (x.shape[1] != blocks(cin) or x.shape[4] != CB)):
        want = f"(N, {cin}, H, W)" if x.ndim == 4 else f"(N, {blocks(cin)}, H, W, {CB})"
        raise InputError(f"x has shape {x.shape}; weight {weight.shape} with groups {groups} "
                         f"needs {want}")
    bias = None if bias is None else check_bias(bias, cout, "one per output channel")
    (sh, sw), (pt, pb, pl, pr) = stride, padding
    ho = (x.shape[2] + pt + pb - weight.shape[2]) // sh + 1
    wo = (x.shape[3] + pl + pr - weight.shape[3]) // sw + 1
    if ho < 1 or wo < 1:
        raise InputError(f"x has shape {x.shape}: its padded map {x.shape[2] + pt + pb}x"
                         f"{x.shape[3] + pl + pr} is smaller than the kernel "
                         f"{weight.shape[2]}x{weight.shape[3]}")
    if residual is not None:
        residual = check_array(residual, "residual", (4, 5))
        want = ((x.shape[0], cout, ho, wo) if residual.ndim == 4 else
                (x.shape[0], blocks(cout), ho, wo, CB))
        if residual.shape != want:
            raise InputError(f"residual has shape {residual.shape}; the output is {want}")
    return x, weight, bias, residual


def supports(w_shape, groups, stride, padding, dilation) -> bool:
    """Whether conv2d_blocked can run this conv (no dilation): groups 1 (a 1x1 kernel of
    stride 1 without padding is the pointwise kernel, any other a dense conv), or a
    depthwise conv (one input channel per group, multiplier 1) of stride 1 or 2."""
    cout, cin_g, kh, kw = w_shape
    if tuple(dilation) != (1, 1):
        return False
    if groups == 1:
        return True
    return cin_g == 1 and groups == cout and tuple(stride) in ((1, 1), (2, 2), (1, 2), (2, 1))
