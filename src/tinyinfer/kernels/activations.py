"""Pointwise activations: ReLU, ReLU6, sigmoid, h-sigmoid, h-swish, swish (SiLU), GELU.

Every activation has a named integer code (RELU, ...) so that conv / linear / add kernels
can apply it in their epilogue (one pass over the output instead of two). ``_relu`` ...
``_gelu`` are the single place where the formulas live for Numba code (``act_scalar`` picks
one by code), ``act_into`` / ``act_inplace`` the
loops that apply one to a row (activation() and every conv / linear epilogue; tensor_ops.add
keeps the same ladder fused into its sum, measured faster); ``activation_ref`` is the NumPy
reference.

h-sigmoid and h-swish are MobileNetV3's definitions (Howard et al. 2019, eq. in sec. 5.2):
    h-sigmoid(x) = ReLU6(x + 3) / 6        h-swish(x) = x * ReLU6(x + 3) / 6
(not Keras' old hard_sigmoid, which used 0.2 * x + 0.5).
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost, numel
from .vmath import FASTMATH, erf_f32, exp_f32

NONE, RELU, RELU6, SIGMOID, HSIGMOID, HSWISH, SWISH, GELU = range(8)

# Added to a code in a conv epilogue that also adds a residual: the activation comes after
# the add, act(conv + bias + residual), as ResNet's blocks end (ReLU(out + identity)),
# instead of act(conv + bias) + residual (MobileNetV2's linear bottleneck, the default).
# Only conv kernels take it (conv.conv2d's act_after_residual); act_code rejects it.
AFTER_RESIDUAL = 16


def epilogue_code(code: int, has_residual: bool, act_after_residual: bool) -> int:
    """The code a conv epilogue runs: ``code`` plus AFTER_RESIDUAL when the activation goes
    after a residual add (only with an activation and a residual does the order matter)."""
    return code + AFTER_RESIDUAL if act_after_residual and has_residual and code else code

ACT_CODES = {
    "none": NONE, "identity": NONE, "relu": RELU, "relu6": RELU6, "sigmoid": SIGMOID,
    "hsigmoid": HSIGMOID, "hard_sigmoid": HSIGMOID, "hswish": HSWISH, "hard_swish": HSWISH,
    "swish": SWISH, "silu": SWISH, "gelu": GELU,
}
ACT_NAMES = {NONE: "none", RELU: "relu", RELU6: "relu6", SIGMOID: "sigmoid",
             HSIGMOID: "hsigmoid", HSWISH: "hswish", SWISH: "swish", GELU: "gelu"}

# FLOPs per element, one per arithmetic op in the formula, 1 per exp/erf:
#   relu max(x,0)=1; relu6 min(max(x,0),6)=2; sigmoid 1/(1+exp(-x)): neg,exp,add,div=4;
#   h-sigmoid min(max(x+3,0),6)/6=4; h-swish x*h-sigmoid=5; swish x*sigmoid=5;
#   gelu 0.5*x*(1+erf(x/sqrt2)): div,erf,add,mul,mul=5.
ACT_FLOPS = {NONE: 0, RELU: 1, RELU6: 2, SIGMOID: 4, HSIGMOID: 4, HSWISH: 5, SWISH: 5, GELU: 5}


def act_code(name_or_code) -> int:
    """'relu6' -> RELU6; integer codes pass through. Unknown names raise ValueError."""
    if isinstance(name_or_code, (int, np.integer)):
        if int(name_or_code) in ACT_NAMES:
            return int(name_or_code)
    elif isinstance(name_or_code, str) and name_or_code.lower() in ACT_CODES:
        return ACT_CODES[name_or_code.lower()]
    raise ValueError(f"unknown activation {name_or_code!r}; "
                     f"known: {', '.join(sorted(ACT_CODES))}")


@numba.njit(inline="always", cache=True)
def _clamp(v, lo, hi):
    # Written with < and > so that NaN passes through (every comparison with NaN is false),
    # as in torch; min()/max() would turn NaN into a bound.
    return lo if v < lo else (hi if v > hi else v)


# One small function per activation, each inlined where it is used. The ladder and the
# fused add call the one they need by name; act_scalar picks one by code (for scalar
# loops, e.g. SE's gate). Inlining act_scalar itself into each of the ladder's seven loops,
# as first written, made Numba deep-copy all seven formulas (with exp and erf) seven times:
# act_inplace alone took 4.8 s to compile, 90% of it in that copying.
# exp and erf are vmath's vectorizable versions and every division is ``np.divide``:
# Numba's ``/`` tests for a zero divisor, and that branch alone kept these loops scalar
# (SiLU cost 3x its 1x1 conv; vmath.py's docstring has the story).

# ReLU and ReLU6 add 0 to the value they let through. Written as a plain select, an in-place
# loop (act_inplace: o[i] = relu(o[i])) stores back the value it loaded wherever v >= 0,
# and LLVM drops that store: the loop vectorizes with masked stores (vmaskmovps), which AMD's
# Zen cores run in microcode. Measured 2026-12-02 on the AMD EPYC Zen 2, 442k floats in L1/
# L2, one core: 0.225 ms plain, 0.045 ms with the add (the store is then unconditional).
# Not folded away: FASTMATH (vmath.py) has no "nsz", and x + 0 differs from x at -0.0. NaN
# still passes through; -0.0 becomes +0.0 (torch keeps -0.0: equal as numbers).

@numba.njit(inline="always", cache=True)
def _relu(v):
    return np.float32(0.0) if v < np.float32(0.0) else v + np.float32(0.0)


@numba.njit(inline="always", cache=True)
def _relu6(v):
    return _clamp(v, np.float32(0.0), np.float32(6.0)) + np.float32(0.0)


@numba.njit(inline="always", cache=True)
def _sigmoid(v):
    return np.divide(np.float32(1.0), np.float32(1.0) + exp_f32(-v))


@numba.njit(inline="always", cache=True)
def _hsigmoid(v):
    return np.divide(_clamp(v + np.float32(3.0), np.float32(0.0), np.float32(6.0)),
                     np.float32(6.0))


@numba.njit(inline="always", cache=True)
def _hswish(v):
    return np.divide(v * _clamp(v + np.float32(3.0), np.float32(0.0), np.float32(6.0)),
                     np.float32(6.0))


@numba.njit(inline="always", cache=True)
def _swish(v):
    return np.divide(v, np.float32(1.0) + exp_f32(-v))


@numba.njit(inline="always", cache=True)
def _gelu(v):
    return np.float32(0.5) * v * (np.float32(1.0) + erf_f32(v * np.float32(0.7071067811865476)))


@numba.njit(inline="always", cache=True)
def act_scalar(v, code):
    """The activation ``code`` of one float32 value, for loops inside other kernels where
    the code is not a constant (with a constant one, call _relu, _swish, ... directly)."""
    if code == NONE:
        return v
    elif code == RELU:
        return _relu(v)
    elif code == RELU6:
        return _relu6(v)
    elif code == SIGMOID:
        return _sigmoid(v)
    elif code == HSIGMOID:
        return _hsigmoid(v)
    elif code == HSWISH:
        return _hswish(v)
    elif code == SWISH:
        return _swish(v)
    else:
        return _gelu(v)


@numba.njit(inline="always", cache=True)
def _ladder(src, dst, code):
    """dst[i] = act(src[i]) for 1-D arrays of one length: the one activation ladder.

    One loop per activation, each calling that activation's function, so the loop has
    no branch and vectorizes. A single loop that tests
    ``code`` per element does not vectorize: ReLU measured 4.5 ms vs 0.08 ms on 800k
    elements (git log d421573).
    """
    n = dst.shape[0]
    if code == RELU:
        for i in range(n):
            dst[i] = _relu(src[i])
    elif code == RELU6:
        for i in range(n):
            dst[i] = _relu6(src[i])
    elif code == SIGMOID:
        for i in range(n):
            dst[i] = _sigmoid(src[i])
    elif code == HSIGMOID:
        for i in range(n):
            dst[i] = _hsigmoid(src[i])
    elif code == HSWISH:
        for i in range(n):
            dst[i] = _hswish(src[i])
    elif code == SWISH:
        for i in range(n):
            dst[i] = _swish(src[i])
    elif code == GELU:
        for i in range(n):
            dst[i] = _gelu(src[i])
    else:
        for i in range(n):
            dst[i] = src[i]


# The ladder is compiled twice, not inlined into every kernel that applies an activation
# (conv, linear and attention epilogues): a call per output row costs nanoseconds, while
# seven vectorized loops inlined into every kernel doubled the first run's compile time
# (mobilenet_v2 cold: 85 s of CPU before vmath.py, 175 s after, 56 s with these calls).
# Twice because of aliasing: compiled for two arrays that may overlap, LLVM vectorizes the
# loop behind a run-time overlap check and runs the scalar loop when ``dst is src``: SiLU
# in place took 4.6 ns per element, not 0.8. In act_inplace the load and the store use the
# same pointer, which needs no check.

@numba.njit(cache=True, fastmath=FASTMATH)
def act_into(src, dst, code):
    """dst[i] = act(src[i]) for two distinct 1-D arrays of one length."""
    _ladder(src, dst, code)


@numba.njit(cache=True, fastmath=FASTMATH)
def act_inplace(o, code):
    """o[i] = act(o[i]) for a 1-D array, in place."""
    _ladder(o, o, code)


# Elements per parallel task of _activation_flat: 16 KB, and 800k elements are 200 tasks.
CHUNK = 4096


@numba.njit(parallel=True, cache=True)
def _activation_flat(x, out, code):
    """out = act(x), both 1-D of one length, a chunk of the ladder per parallel task."""
    n = x.size
    for t in numba.prange((n + CHUNK - 1) // CHUNK):
        lo = t * CHUNK
        hi = min(lo + CHUNK, n)
        act_into(x[lo:hi], out[lo:hi], code)


def activation(x: np.ndarray, code, out: np.ndarray | None = None) -> np.ndarray:
    """y = act(x) elementwise. x: any shape, float32, C-contiguous. ``out`` may be ``x`` (in place)."""
    code = act_code(code)
    if out is None:
        out = np.empty_like(x)
    _activation_flat(x.reshape(-1), out.reshape(-1), np.int64(code))
    return out


def activation_ref(x: np.ndarray, code) -> np.ndarray:
    """NumPy reference for every activation (float64 internally, float32 out)."""
    code = act_code(code)
    v = x.astype(np.float64)
    if code == NONE:
        y = v
    elif code == RELU:
        y = np.maximum(v, 0)
    elif code == RELU6:
        y = np.clip(v, 0, 6)
    elif code == SIGMOID:
        y = 1 / (1 + np.exp(-v))
    elif code == HSIGMOID:
        y = np.clip(v + 3, 0, 6) / 6
    elif code == HSWISH:
        y = v * np.clip(v + 3, 0, 6) / 6
    elif code == SWISH:
        y = v / (1 + np.exp(-v))
    else:
        from math import erf
        y = 0.5 * v * (1 + np.vectorize(erf)(v / np.sqrt(2)))
    return y.astype(np.float32)


def activation_cost(shape, code) -> Cost:
    n = numel(shape)
    return Cost(flops=ACT_FLOPS[act_code(code)] * n, elems_read=n, elems_written=n)
