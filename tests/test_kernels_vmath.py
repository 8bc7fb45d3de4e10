"""vmath's exp and erf against float64 references, and the reason they exist: a loop that
calls them compiles to vector code (one that calls math.exp, or divides with Numba's
``/``, does not).

Tolerances: exp within 2e-7 relative (~3 float32 ulp; measured 8.3e-8) over its whole
clamped range; erf within 6e-7 absolute everywhere (A&S 7.1.26's 1.5e-7 plus float32
rounding; measured 4.8e-7) and 1e-6 relative for |x| < 1 (the Taylor branch near 0).
"""
import math
import platform
import re

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyinfer.kernels.activations import GELU, SWISH, act_scalar
from tinyinfer.kernels.common import FASTMATH
from tinyinfer.kernels.vmath import erf_f32, exp_f32


# Compiled with the kernels' own fastmath flags: 'reassoc' must not undo the Cody-Waite
# split of ln2 (the accuracy test below would catch it).
@numba.njit(fastmath=FASTMATH)
def _exp_loop(x, y):
    for i in range(x.shape[0]):
        y[i] = exp_f32(x[i])


@numba.njit(fastmath=FASTMATH)
def _erf_loop(x, y):
    for i in range(x.shape[0]):
        y[i] = erf_f32(x[i])


@numba.njit(fastmath=FASTMATH)
def _swish_loop(x, y):
    for i in range(x.shape[0]):
        y[i] = act_scalar(x[i], SWISH)


@numba.njit(fastmath=FASTMATH)
def _gelu_loop(x, y):
    for i in range(x.shape[0]):
        y[i] = act_scalar(x[i], GELU)


@numba.njit(fastmath=FASTMATH)
def _libm_exp_loop(x, y):
    for i in range(x.shape[0]):
        y[i] = math.exp(x[i])


def _run(loop, x):
    x = np.asarray(x, np.float32)
    y = np.empty_like(x)
    loop(x, y)
    return y


def test_exp_is_accurate_over_its_whole_range():
    x = np.linspace(-87, 88, 1_000_001, dtype=np.float32)
    want = np.exp(x.astype(np.float64))
    rel = np.abs(_run(_exp_loop, x) - want) / want
    assert rel.max() < 2e-7, (x[rel.argmax()], rel.max())


@settings(max_examples=30, deadline=None)
@given(st.floats(-87, 88, width=32))
def test_exp_matches_float64_at_any_float32(v):
    got = _run(_exp_loop, [v])[0]
    assert abs(got - math.exp(v)) <= 2e-7 * math.exp(v)


def test_exp_saturates_to_finite_extremes_and_passes_nan():
    y = _run(_exp_loop, [-100.0, -np.inf, 100.0, np.inf, np.nan])
    assert 0 < y[0] < 2e-38 and 0 < y[1] < 2e-38       # instead of 0: see vmath's docstring
    assert 1e38 < y[2] < np.inf and 1e38 < y[3] < np.inf
    assert np.isnan(y[4])


def test_erf_is_accurate():
    x = np.linspace(-6, 6, 600_001, dtype=np.float32)
    want = np.array([math.erf(v) for v in x.astype(np.float64)[::7]])
    assert np.abs(_run(_erf_loop, x)[::7] - want).max() < 6e-7
    small = np.concatenate([-np.geomspace(1e-30, 1, 500), np.geomspace(1e-30, 1, 500)])
    want = np.array([math.erf(v) for v in small.astype(np.float32).astype(np.float64)])
    got = _run(_erf_loop, small)
    assert (np.abs(got - want) / np.abs(want)).max() < 1e-6
    assert np.isnan(_run(_erf_loop, [np.nan])[0])


def _vector_fmas(loop) -> int:
    """How many packed (vector) single-precision multiply or FMA instructions the loop has."""
    asm = loop.inspect_asm(loop.signatures[0])
    return len(re.findall(r"\bv(?:fn?madd\w*|mul)ps\s[^\n]*[yz]mm", asm))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                    reason="reads x86 assembly: AVX registers ymm/zmm")
def test_loops_over_exp_erf_swish_gelu_compile_to_vector_code():
    """The point of vmath.py: each of these loops uses packed float32 arithmetic on ymm
    or zmm registers. The same loop over math.exp has none (the check itself can fail)."""
    x = np.linspace(-5, 5, 64, dtype=np.float32)
    for loop in (_exp_loop, _erf_loop, _swish_loop, _gelu_loop, _libm_exp_loop):
        _run(loop, x)
    assert _vector_fmas(_libm_exp_loop) == 0
    for loop in (_exp_loop, _erf_loop, _swish_loop, _gelu_loop):
        assert _vector_fmas(loop) >= 4, loop.__name__
