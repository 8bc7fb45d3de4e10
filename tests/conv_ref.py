"""PyTorch's answer for a conv2d call, the drawn conv problems and their arrays, shared by
the conv kernel tests (test_kernels_conv.py, test_kernels_group.py, test_kernels_variants.py)."""
import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

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


def torch_conv(x, w, b, stride, pad4, dilation, groups, act, residual, after=False):
    """PyTorch's answer: F.pad for (top, bottom, left, right) padding, then F.conv2d;
    after=True: the activation after the residual add (conv2d's act_after_residual)."""
    t, bo, le, ri = pad4
    xt = F.pad(torch.from_numpy(x), (le, ri, t, bo))      # F.pad: (left, right, top, bottom)
    y = F.conv2d(xt, torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                 stride, 0, dilation, groups)
    if after and residual is not None:
        return TORCH_ACT[act](y + torch.from_numpy(residual)).numpy()
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


@st.composite
def conv_cases(draw):
    """A conv problem of one of the kernel families, with every geometry option drawn."""
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise", "depthwise_mult",
                                 "pointwise", "pointwise_grouped"]))
    n = draw(st.integers(1, 3))
    if kind.startswith("pointwise"):
        kh = kw = 1
        dil = (1, 1)
        pad = (0, 0, 0, 0) if draw(st.booleans()) else \
            tuple(draw(st.lists(st.integers(0, 2), min_size=4, max_size=4)))
    else:
        kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
        dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        pad = tuple(draw(st.lists(st.integers(0, 3), min_size=4, max_size=4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if kind in ("dense", "pointwise"):
        groups, cin, cout = 1, draw(st.integers(1, 40)), draw(st.integers(1, 11))
    elif kind in ("grouped", "pointwise_grouped"):
        groups = draw(st.integers(2, 4))
        cin, cout = groups * draw(st.integers(1, 5)), groups * draw(st.integers(1, 5))
    elif kind == "depthwise":
        cin = cout = groups = draw(st.integers(1, 12))
    else:
        cin = groups = draw(st.integers(1, 6))
        cout = cin * draw(st.integers(2, 3))
    # input big enough for at least one output pixel; up to 24 (1x1 convs then see both
    # the small-image (< 128 pixels) and the big-image loops)
    hmin = max(1, dil[0] * (kh - 1) + 1 - pad[0] - pad[1])
    wmin = max(1, dil[1] * (kw - 1) + 1 - pad[2] - pad[3])
    h = hmin + draw(st.integers(0, 24 - hmin if hmin < 24 else 0))
    w = wmin + draw(st.integers(0, 24 - wmin if wmin < 24 else 0))
    act = draw(st.sampled_from(sorted(TORCH_ACT)))
    # padding given the three ways the API accepts, when the drawn values allow it
    pad_arg = pad
    if pad[0] == pad[1] and pad[2] == pad[3]:
        pad_arg = draw(st.sampled_from([pad, (pad[0], pad[2])] + ([pad[0]] if pad[0] == pad[2]
                                                                    else [])))
    return dict(n=n, cin=cin, cout=cout, h=h, w=w, kh=kh, kw=kw, stride=stride, pad=pad,
                pad_arg=pad_arg, dil=dil, groups=groups, act=act,
                bias=draw(st.booleans()), residual=draw(st.booleans()),
                after=draw(st.booleans()), seed=draw(st.integers(0, 2 ** 32 - 1)))
