"""exp and erf written so that LLVM can vectorize the loops that call them.

    exp_f32(v) ~ math.exp(v)      erf_f32(v) ~ math.erf(v)      v: float32 scalar

(Also FASTMATH, the floating-point flags every kernel compiles with: see its comment.)

Why not math.exp? In a Numba loop ``math.exp`` becomes a call to the C library's scalar
``expf``: one element per call, 15-20 cycles each, and the loop around it cannot use vector
registers. Numba only swaps in vector versions when Intel's SVML library is installed, and
this package does not require it. SiLU, sigmoid, GELU and softmax are nothing but an exp
plus a few arithmetic ops, so they ran 10-20x slower than the matmuls around them: in
MobileViT-XXS at 2 threads (2026-12-02, Zen 3) a 1x1 conv with SiLU took 1.47 ms and the
same conv without it 0.45 ms.

How a vector math library computes exp (and so this file), in three steps:
1. Range reduction: v = n ln2 + r with n = round(v / ln2) an integer and |r| <= ln2 / 2.
   ln2 is split into a float32 head and a small tail (Cody & Waite) so that n * ln2 is
   subtracted with ~45 bits of precision instead of 24.
2. exp(r) on that short interval is a polynomial: 1 + r + r^2 P(r) with P of degree 5,
   the minimax coefficients of Cephes' expf (S. Moshier), accurate to float32 rounding.
3. exp(v) = 2^n exp(r), and 2^n is built directly as the bits of a float32: exponent
   field n + 127, mantissa 0. ``_f32_from_bits`` is that bit-cast (one LLVM instruction,
   which vectorizes like any other).
Every step is branch-free, so a loop of them becomes vector code. One trap: Numba's ``a / b``
checks b == 0 to raise ZeroDivisionError as Python does, and that branch alone stops a loop
from vectorizing; ``np.divide(a, b)`` follows NumPy's rules (b == 0 gives inf or NaN, as
float32 division does in torch) and has no branch. Callers use it for the same reason. v is clamped to
[-87, 88] first so that 2^n stays a normal float: exp(-100) gives 1.6e-38 instead of 0
and exp(100) 1.6e38 instead of inf, the same to float32 tolerance wherever they are
added to 1 or normalized (sigmoid, softmax). NaN passes through (the comparisons of
the clamp are false for NaN, and NaN * anything is NaN).

erf uses Abramowitz & Stegun's formula 7.1.26 (absolute error <= 1.5e-7 over the real
line): erf(x) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-x^2), t = 1 / (1 + p x),
for x >= 0, and erf(-x) = -erf(x); below 0.5 a Taylor series (see erf_f32).

The tests (tests/test_kernels_vmath.py) hold both against NumPy's float64 exp and
math.erf on every float32 range that matters.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

# 'contract' lets LLVM fuse a*b+c into one FMA (one rounding instead of two: if anything
# more accurate). 'reassoc' lets it reorder a sum, which vectorizes reductions: results then
# differ from a left-to-right sum by normal float rounding (~1e-7 relative per term).
# Deliberately NOT 'nnan'/'ninf'/'afn': NaN and Inf propagate as IEEE says. (exp and erf
# are this module's own vectorizable versions, accurate to a few float32 ulp whatever the flags.)
FASTMATH = {"contract", "reassoc"}

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)             # ln2's leading bits, exact in float32
_LN2_LO = np.float32(-2.12194440e-4)          # ln2 - _LN2_HI
_LO, _HI = np.float32(-87.0), np.float32(88.0)   # 2^n stays normal: n in [-126, 127]

# A&S 7.1.26
_P = np.float32(0.3275911)
_A1, _A2, _A3 = np.float32(0.254829592), np.float32(-0.284496736), np.float32(1.421413741)
_A4, _A5 = np.float32(-1.453152027), np.float32(1.061405429)
# erf's Taylor series: 2/sqrt(pi) * (1, -1/3, 1/10, -1/42, 1/216), the odd powers' coefficients
_T1, _T3, _T5, _T7, _T9 = (np.float32(c * 1.1283791670955126)
                           for c in (1.0, -1.0 / 3, 1.0 / 10, -1.0 / 42, 1.0 / 216))


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose IEEE-754 bit pattern is the low 32 bits of the integer ``bits``."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        # Numba widens int32 arithmetic to int64; keep the low 32 bits, then reinterpret.
        low = args[0] if bits.bitwidth == 32 else builder.trunc(args[0], ir.IntType(32))
        return builder.bitcast(low, ir.FloatType())

    return types.float32(bits), codegen


@numba.njit(inline="always", cache=True)
def exp_f32(v):
    """exp(v) for a float32 v, to about 2 ulp (see the module docstring)."""
    x = np.float32(v)
    x = _LO if x < _LO else (_HI if x > _HI else x)
    n = np.floor(x * _LOG2E + np.float32(0.5))
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = np.float32(1.9875691500e-4)        # Cephes expf's minimax coefficients
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * (r * r) + r + np.float32(1.0)
    return p * _f32_from_bits((np.int32(n) + 127) << 23)


@numba.njit(inline="always", cache=True)
def erf_f32(v):
    """erf(v) for a float32 v, absolute error <= 1.5e-7 + float32 rounding."""
    x = np.float32(v)
    a = -x if x < np.float32(0.0) else x
    t = np.divide(np.float32(1.0), np.float32(1.0) + _P * a)   # np.divide: see the docstring
    poly = t * (_A1 + t * (_A2 + t * (_A3 + t * (_A4 + t * _A5))))
    y = np.float32(1.0) - poly * exp_f32(-a * a)
    # Near 0 the subtraction above cancels (erf(1e-4) would be off by 0.5%); there the
    # Taylor series 2/sqrt(pi) (x - x^3/3 + x^5/10 - x^7/42 + x^9/216) is exact to float32.
    # Both are computed and one is selected, which keeps the loop branch-free.
    z = a * a
    small = a * (_T1 + z * (_T3 + z * (_T5 + z * (_T7 + z * _T9))))
    y = small if a < np.float32(0.5) else y
    return -y if x < np.float32(0.0) else y
