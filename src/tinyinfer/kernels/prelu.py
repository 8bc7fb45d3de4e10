"""PReLU (He et al., "Delving Deep into Rectifiers", 2015), DiCENet's activation after nearly
every conv: out = x if x > 0 else a[c] * x, with a learned slope a per channel
(torch.nn.PReLU(num_parameters=C)).

Not in activations.py: the activations there are codes that conv / linear epilogues apply
(no weights), and common.py imports activations.py, so activations.py cannot use common's
argument checks without an import cycle. PReLU has a weight and runs as its own node.
"""
from __future__ import annotations

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .common import FASTMATH, float32_array


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _prelu(x, slope, out):
    # x, out: (N, C, L); slope: (C,)
    N, C, L = x.shape
    for p in numba.prange(N * C):
        a = slope[p % C]
        row, dst = x[p // C, p % C], out[p // C, p % C]
        for i in range(L):
            v = row[i]
            dst[i] = v if v > 0 else a * v


def _prelu_args(x, weight):
    x = float32_array(x, "x")
    weight = float32_array(weight, "weight", 1, "(C,)")
    if x.ndim < 2 or weight.shape != (x.shape[1],):
        raise InputError(f"PReLU weight must hold one slope per channel of x (N, C, ...), "
                         f"x has shape {x.shape}, weight {weight.shape}")
    return x, weight


def prelu(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x: (N, C, ...) -> same shape: x where x > 0, else weight[c] * x. weight: (C,)."""
    x, weight = _prelu_args(x, weight)
    out = np.empty_like(x)
    N, C = x.shape[:2]
    _prelu(x.reshape(N, C, -1), weight, out.reshape(N, C, -1))
    return out


def prelu_ref(x, weight):
    x, weight = _prelu_args(x, weight)
    a = weight.reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x > 0, x, a * x).astype(np.float32)


def prelu_cost(shape) -> Cost:
    # FLOPs: a compare and a multiply per element (2, as ACT_FLOPS counts relu6's min and
    # max); params: C slopes (a weight of the node, counted as PyTorch counts it).
    n = numel(shape)
    return Cost(flops=2 * n, params=shape[1], elems_read=n + shape[1], elems_written=n)
