"""Dynamic Shift-Max (MicroNet, Li et al. ICCV 2021): the activation that mixes each channel
with its "shifted" partner channel, with coefficients computed from the input itself.

    y = hsigmoid(fc2(relu(fc1(mean_hw(x)))))      (N, J*C), J = 4 (or 2 without the max)
    a1, b1, a2, b2 = (y - 0.5) * act_max + (init_a1, init_b1, init_a2, init_b2)  (N, C) each
    x2[:, c] = x[:, index[c]]                      the shifted partner (shift_index below)
    out = max(a1 * x + b1 * x2, a2 * x + b2 * x2)  (J = 4)
    out = a1 * x + b1 * x2                         (J = 2)

The squeeze branch (pool, two FCs, h-sigmoid) is an SE branch the engine already has; this
kernel is the mixing step after it: it takes the h-sigmoid output as ``coef`` (N, J, C).
The shift is a channel permutation, so the kernel gathers x[index[c]] while it reads x[c]:
no shuffled copy of x is written.
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost
from ..errors import InputError
from .common import FASTMATH, float32_array


def shift_index(channels: int, groups: int) -> np.ndarray:
    """index[c] = the channel that channel c is mixed with, as the authors' DYShiftMax builds it:
    channels viewed as (groups, channels // groups); the partner of (g, i) is
    ((g + 1) % groups, (i + 1) % (channels // groups)): one group over and one channel along.
    groups = 1 gives a shift by one channel within the whole tensor."""
    if groups < 1 or channels % groups:
        raise InputError(f"shift_index: {channels} channels do not split into {groups} groups; "
                         f"groups must divide the channel count")
    per_group = channels // groups
    g, i = np.divmod(np.arange(channels), per_group)
    return ((g + 1) % groups * per_group + (i + 1) % per_group).astype(np.int64)


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _shiftmax(x, coef, index, act_max, init, out):
    # x, out: (N, C, L); coef: (N, J, C) h-sigmoid outputs; index: (C,); init: (J,) offsets
    # ordered as coef's rows (a1, b1, a2, b2).
    N, C, L = x.shape
    J = coef.shape[1]
    for p in numba.prange(N * C):
        n = p // C
        c = p % C
        partner = index[c]
        a1 = (coef[n, 0, c] - np.float32(0.5)) * act_max + init[0]
        b1 = (coef[n, 1, c] - np.float32(0.5)) * act_max + init[1]
        if J == 4:
            a2 = (coef[n, 2, c] - np.float32(0.5)) * act_max + init[2]
            b2 = (coef[n, 3, c] - np.float32(0.5)) * act_max + init[3]
            for i in range(L):
                v = x[n, c, i]
                w = x[n, partner, i]
                out[n, c, i] = max(v * a1 + w * b1, v * a2 + w * b2)
        else:
            for i in range(L):
                out[n, c, i] = x[n, c, i] * a1 + x[n, partner, i] * b1


def _args(x, coef, index, act_max, init_a, init_b):
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    coef = float32_array(coef, "coef", 3, "(N, J, C)")
    if coef.shape[0] != N or coef.shape[1] not in (2, 4) or coef.shape[2] != C:
        raise InputError(f"shiftmax: coef must have shape ({N}, 4 or 2, {C}) for x of shape "
                         f"{x.shape}, got {coef.shape}")
    index = np.asarray(index)
    if index.shape != (C,) or index.dtype.kind not in "iu" or \
            (C and (index.min() < 0 or index.max() >= C)):
        raise InputError(f"shiftmax: index must be {C} integers in [0, {C}) (shift_index "
                         f"builds it), got shape {index.shape} dtype {index.dtype}")
    J = coef.shape[1]
    # rows of coef are (a1, b1, a2, b2): their offsets interleave init_a and init_b
    init = np.array([init_a[0], init_b[0], init_a[1], init_b[1]][:J], np.float32)
    return x, coef, index.astype(np.int64), np.float32(act_max), init


def shiftmax(x: np.ndarray, coef, index, act_max: float, init_a=(1.0, 0.0),
             init_b=(0.0, 0.0)) -> np.ndarray:
    """Dynamic Shift-Max's mixing step. x: (N, C, H, W); coef: (N, J, C), J = 4 (two linear
    mixes and their max) or 2 (one mix), the h-sigmoid outputs of the squeeze branch in the
    order (a1, b1, a2, b2); index: (C,) the partner channels (shift_index); act_max: the
    coefficients' range (the authors' ``self.act_max``, i.e. twice their act_max argument);
    init_a, init_b: offsets of (a1, a2) and (b1, b2). Returns (N, C, H, W) float32."""
    x, coef, index, act_max, init = _args(x, coef, index, act_max, init_a, init_b)
    N, C, H, W = x.shape
    out = np.empty_like(x)
    _shiftmax(x.reshape(N, C, H * W), coef, index, act_max, init, out.reshape(N, C, H * W))
    return out


def shiftmax_ref(x, coef, index, act_max, init_a=(1.0, 0.0), init_b=(0.0, 0.0)):
    """NumPy reference: the equations of the module docstring, whole arrays at a time."""
    x, coef, index, act_max, init = _args(x, coef, index, act_max, init_a, init_b)
    k = ((coef - np.float32(0.5)) * act_max + init[None, :, None])[..., None, None]
    x2 = x[:, index]
    z1 = x * k[:, 0] + x2 * k[:, 1]
    if coef.shape[1] == 2:
        return z1.astype(np.float32)
    return np.maximum(z1, x * k[:, 2] + x2 * k[:, 3]).astype(np.float32)


def shiftmax_cost(shape, mixes: int = 2) -> Cost:
    # mixes: 2 (J = 4) or 1 (J = 2). MACs: none (element-wise, like an activation: the
    # repository's rule counts only conv, linear and attention products as MACs).
    # FLOPs: per coefficient (N*J*C) a subtract, a multiply and an add; per output element
    #        and mix two multiplies and an add, plus one max per element when mixes = 2.
    # params: none (the FCs are their own nodes). Reads x and coef; writes out.
    N, C, H, W = shape
    n = N * C * H * W
    n_coef = N * 2 * mixes * C
    flops = 3 * n_coef + 3 * mixes * n + (n if mixes == 2 else 0)
    return Cost(macs=0, flops=flops, params=0, elems_read=n + n_coef, elems_written=n)
