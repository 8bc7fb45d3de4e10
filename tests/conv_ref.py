"""PyTorch's answer for a conv2d call, and the drawn arrays, shared by the conv kernel tests
(test_kernels_conv.py, test_kernels_group.py)."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from tinyinfer.kernels.activations import (GELU, HSIGMOID, HSWISH, NONE, RELU, RELU6, SIGMOID,
                                           SWISH)
from tinyinfer.kernels.conv import conv2d_out_shape

# Tolerances. Inputs are N(0, 1) and weights N(0, 1/K) for a reduction of length K, so every
# output is O(1). Two float32 sums of the same K products, added in different orders (ours
# with FMA and vector lanes, PyTorch's with its own blocking), differ by rounding of about
# eps * sqrt(K) * O(1) with eps = 6e-8; ATOL_PER_SQRT_K * sqrt(K) leaves a ~100x margin, and
# RTOL covers the float32 exp / erf of the activations.
RTOL = 1e-4
ATOL_PER_SQRT_K = 1e-5


def tol(k):
    return dict(rtol=RTOL, atol=ATOL_PER_SQRT_K * math.sqrt(max(k, 1)) + 1e-6)


TORCH_ACT = {
    NONE: lambda t: t,
    RELU: F.relu,
    RELU6: lambda t: F.hardtanh(t, 0.0, 6.0),
    SIGMOID: torch.sigmoid,
    HSIGMOID: F.hardsigmoid,
    HSWISH: F.hardswish,
    SWISH: F.silu,
    GELU: F.gelu,                     # exact (erf) GELU, PyTorch's default
}


def torch_conv(x, w, b, stride, pad4, dilation, groups, act, residual):
    """PyTorch's answer: F.pad for (top, bottom, left, right) padding, then F.conv2d."""
    t, bo, le, ri = pad4
    xt = F.pad(torch.from_numpy(x), (le, ri, t, bo))      # F.pad: (left, right, top, bottom)
    y = F.conv2d(xt, torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                 stride, 0, dilation, groups)
    y = TORCH_ACT[act](y)
    if residual is not None:
        y = y + torch.from_numpy(residual)
    return y.numpy()


def make_arrays(c):
    rng = np.random.default_rng(c["seed"])
    k = c["cin"] // c["groups"] * c["kh"] * c["kw"]
    x = rng.standard_normal((c["n"], c["cin"], c["h"], c["w"]), dtype=np.float32)
    w = (rng.standard_normal((c["cout"], c["cin"] // c["groups"], c["kh"], c["kw"]))
         / math.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(c["cout"], dtype=np.float32) if c["bias"] else None
    out_shape = conv2d_out_shape(x.shape, w.shape, c["stride"], c["pad"], c["dil"])
    res = rng.standard_normal(out_shape, dtype=np.float32) if c["residual"] else None
    return x, w, b, res, k
