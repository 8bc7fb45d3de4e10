"""What the kernels share: the fastmath flags, the fused epilogue, the "no residual"
stand-ins, a weight-row loader, a scratch array on the stack, and the input checks every
public kernel function runs before an array reaches Numba (a Numba typing error names no
argument and suggests no fix, so nothing unchecked may reach a jitted function).

Two array checks, two policies, both on purpose:
    check_array     float32 or an InputError saying how to convert: conv2d and linear,
                    whose weights a silent cast would copy on every call
    float32_array   any floating dtype, cast to float32: pooling, norm, se, attention,
                    tensor_ops (activations between layers, where a cast is cheap and rare)
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..errors import InputError
from .activations import AFTER_RESIDUAL, NONE, act_code, act_inplace
from .vmath import FASTMATH   # noqa: F401  (kernels import it from here)


# A 1-element stand-in passed when there is no residual, so the kernels see one type
# (Numba compiles a new version for every distinct argument type, None included).
NO_RES2 = np.zeros((1, 1), np.float32)
NO_RES4 = np.zeros((1, 1, 1, 1), np.float32)


# ---------------------------------------------------------------------------------------
# Numba building blocks

@numba.njit(inline="always", cache=True)
def epilogue(o, r, act):
    """o[:] = act(o) (+ r): the activation, then the residual add, on one row (in place);
    o[:] = act(o + r) if act carries activations.AFTER_RESIDUAL."""
    if act >= AFTER_RESIDUAL:
        if r is not None:
            for i in range(o.shape[0]):
                o[i] += r[i]
        act_inplace(o, act - AFTER_RESIDUAL)
    else:
        if act != NONE:
            act_inplace(o, act)
        if r is not None:
            for i in range(o.shape[0]):
                o[i] += r[i]


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def epilogue_rows(y, res, has_res, act):
    """y[i, :] = act(y[i, :]) (+ res[i, :]) for every row i.   y, res (R, C)"""
    for i in numba.prange(y.shape[0]):
        epilogue(y[i], res[i] if has_res else None, act)


@numba.njit(inline="always", cache=True)
def w8(w, c, k):
    """w[c, k:k+8] as 8 scalars, zero-filled past the end of the row: the weights of one
    8-row pass of the register-blocked products (conv_pointwise, conv_group)."""
    K = w.shape[1]
    z = np.float32(0.0)
    return (w[c, k] if k < K else z, w[c, k + 1] if k + 1 < K else z,
            w[c, k + 2] if k + 2 < K else z, w[c, k + 3] if k + 3 < K else z,
            w[c, k + 4] if k + 4 < K else z, w[c, k + 5] if k + 5 < K else z,
            w[c, k + 6] if k + 6 < K else z, w[c, k + 7] if k + 7 < K else z)


# ---------------------------------------------------------------------------------------
# A float32 scratch array on the stack, for register-blocked micro-kernels (gemm.py,
# conv_depthwise.py):   acc = stack_empty(TILE)   with TILE a module constant.
#
# A micro-kernel keeps its tile of accumulators in vector registers only if LLVM can prove
# nothing else touches that memory. A heap array (np.empty) might alias the output, so
# LLVM stores and reloads it every iteration; memory from ``alloca`` in the function's
# entry block is provably private and is promoted to registers. The array has no owner
# (no reference count), lives until the calling function returns, starts uninitialised
# like np.empty, and should stay small (it is on the thread's stack).

_F32_1D = types.Array(types.float32, 1, "C")


@intrinsic
def stack_empty(typingctx, size):
    """A 1-D float32 array of ``size`` elements (a compile-time constant) on the stack."""
    if not isinstance(size, types.IntegerLiteral):
        return None          # Numba then reports "no matching definition"
    n = size.literal_value

    def codegen(context, builder, signature, args):
        # alloca in the entry block (cgutils does that), 64-byte aligned: one zmm per line
        ptr = cgutils.alloca_once(builder, ir.ArrayType(ir.FloatType(), n))
        ptr.align = 64
        data = builder.bitcast(ptr, ir.PointerType(ir.FloatType()))
        ary = context.make_array(_F32_1D)(context, builder)
        intp = context.get_value_type(types.intp)
        context.populate_array(ary, data=data, shape=[ir.Constant(intp, n)],
                               strides=[ir.Constant(intp, 4)],
                               itemsize=ir.Constant(intp, 4), meminfo=None)
        return ary._getvalue()

    return _F32_1D(size), codegen


# ---------------------------------------------------------------------------------------
# A weight's derived form (packed panels, a Winograd transform), made once per weight array

def cached_derived(cache: dict, key: str, w, make, ndim: int):
    """make(w), kept in ``cache`` (an engine node's) under ``key`` for as long as the same
    array is the weight. The weight becomes read-only, so an in-place edit raises instead
    of leaving a stale derived copy; a new array is derived anew. None if w is not a
    C-contiguous float32 array of ``ndim`` dims (the kernel's own checks then say what is
    wrong)."""
    hit = cache.get(key)
    if hit is not None and hit[0] is w:
        return hit[1]
    if not (isinstance(w, np.ndarray) and w.dtype == np.float32 and w.ndim == ndim
            and w.flags.c_contiguous):
        return None
    w.flags.writeable = False
    cache[key] = (w, make(w))
    return cache[key][1]


# ---------------------------------------------------------------------------------------
# Input checks: every bad input becomes one InputError that says what to do

def check_array(a, name: str, ndim=None) -> np.ndarray:
    """a must be a float32 ndarray (of ``ndim`` dims if given); returns it C-contiguous."""
    if not isinstance(a, np.ndarray):
        raise InputError(f"{name} must be a NumPy array, got {type(a).__name__}; "
                         f"convert with np.asarray({name}, dtype=np.float32)")
    if ndim is not None and a.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        want = " or ".join(str(d) for d in (ndim if isinstance(ndim, tuple) else (ndim,)))
        raise InputError(f"{name} must have {want} dimensions, got shape {a.shape}")
    if a.dtype != np.float32:
        raise InputError(f"{name} must be float32, got {a.dtype}; "
                         f"convert with {name}.astype(np.float32)")
    return np.ascontiguousarray(a)



def check_bias(bias, n: int, why: str) -> np.ndarray:
    """The per-output-channel bias of a conv or linear layer: ``n`` float32 values, or zeros
    when None (so every kernel's epilogue adds one). ``why`` says what fixes n, for the error."""
    if bias is None:
        return np.zeros(n, np.float32)
    bias = check_array(bias, "bias", 1)
    if bias.shape != (n,):
        raise InputError(f"bias must have shape ({n},), {why}, got {bias.shape}")
    return bias

def float32_array(x, name: str, ndim: int | None = None, layout: str = "") -> np.ndarray:
    """Check that ``x`` is a floating NumPy array (of ``ndim`` dims if given) and return it
    as a C-contiguous float32 array. Copies only when ``x`` is non-contiguous or not
    float32: the kernels index flat memory, so they need C order."""
    if not isinstance(x, np.ndarray):
        raise InputError(f"{name} must be a NumPy array, got {type(x).__name__}; "
                         f"convert it with np.asarray({name}, dtype=np.float32)")
    if x.dtype.kind != "f":
        raise InputError(f"{name} must be a floating-point array, got dtype {x.dtype}; "
                         f"cast it with {name}.astype(np.float32)")
    if ndim is not None and x.ndim != ndim:
        lay = f" {layout}" if layout else ""
        raise InputError(f"{name} must be a {ndim}-D array{lay}, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def check_act(act, name: str = "act") -> int:
    """activations.act_code, but raising InputError (with the list of known names)."""
    try:
        return act_code(act)
    except ValueError as e:
        raise InputError(f"{name}: {e}") from None


def check_int(v, name: str, minimum: int | None = None) -> int:
    """A Python int (numpy integers accepted, bools and floats not) >= minimum."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {v!r}")
    v = int(v)
    if minimum is not None and v < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {v}")
    return v


def check_axis(axis, ndim: int, name: str = "axis") -> int:
    """An axis of an ndim-D array, negative counting from the end; returns it >= 0."""
    axis = check_int(axis, name)
    if not -ndim <= axis < ndim:
        raise InputError(f"{name}={axis} is out of range for a {ndim}-D array "
                         f"(valid: {-ndim}..{ndim - 1})")
    return axis % ndim
