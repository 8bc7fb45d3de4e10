"""Op records that NAS cells (NASNet-A, PNASNet-5, AmoebaNet) and the other searched or
hand-designed CNNs of the seeds need beyond ops.py's CNN kinds. See ops.py for what a record
holds and how to add a kind. Six kinds:

- ``pad`` (NASNet-A, PNASNet-5), described below;
- ``channel_select``: ``torch.index_select`` over channels by a list the checkpoint holds
  (CondenseNet's learned group convolution, converted for inference);
- ``dyshiftmax``: MicroNet's dynamic Shift-Max mixing step (kernels/shiftmax.py), given the
  map and its squeeze branch's coefficients;
- ``dimwise_conv`` and ``prelu``: DiCENet's height- and width-wise 3x3 convs and its
  per-channel PReLU (kernels/dimwise.py, kernels/prelu.py);
- ``avg_pool2d_same``: TensorFlow's "SAME" average pool, which never counts its padding
  (AmoebaNet's TF reference), described above its record.

``pad``: pad and/or crop the two spatial borders with a constant. The NAS references need it
in three places, each of which PyTorch writes as a pad module:

- the factorized reduction's second path shifts its input by one pixel before the stride-2
  1x1 conv, ``nn.ZeroPad2d((-1, 1, -1, 1))`` (crop one row/column at the top/left, add a zero
  one at the bottom/right), so the two paths sample interleaved pixels;
- pytorchcv's NASNet-A Mobile reproduces TensorFlow's stride-2 "SAME" windows with a zero
  row/column at the top/left before the op and a crop of the first output row/column after
  it (pads (1, 0, 1, 0), then (-1, 0, -1, 0));
- timm's ``pad_type='same'`` pools (stride 2): TensorFlow's "SAME" padding, which depends on
  the input size, with -inf before a max pool and zeros before an average pool (zeros that
  the average then counts: timm's AvgPool2dSame pads explicitly).

attrs: ``pads`` = (top, bottom, left, right), negative to crop, or "same" with ``kernel`` and
``stride`` (TensorFlow's rule: ops.tf_same_padding); ``value``, the constant added.
Pure data movement, so it is NumPy, not a Numba loop: no arithmetic, every output element
read or written once.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..kernels import conv as C
from ..kernels import dimwise as DW
from ..kernels import pooling as P
from ..kernels import prelu as PR
from ..kernels import shiftmax as SM
from .costs import Cost, RefOp, numel
from .op_record import PER_CHANNEL, POOL, WHOLE, Op, copy, lowers_to, same_shape


def pad_amounts(node, in_shape) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a pad node for an input of ``in_shape`` (N, C, H, W)."""
    pads = node.attrs["pads"]
    if pads == "same":
        k, s = node.attrs["kernel"], node.attrs["stride"]
        return C.same_padding(in_shape[2], k, s, 1) + C.same_padding(in_shape[3], k, s, 1)
    return tuple(int(p) for p in pads)


def _pad_shape(node, in_shapes):
    n, c, h, w = in_shapes[0]
    top, bottom, left, right = pad_amounts(node, in_shapes[0])
    out = (n, c, h + top + bottom, w + left + right)
    # crops come first (as in torch's F.pad), so a crop may not take the whole input even
    # where padding on the other side would leave something
    kept = (h + min(top, 0) + min(bottom, 0), w + min(left, 0) + min(right, 0))
    if min(out[2:] + kept) <= 0:
        raise InputError(f"{node.name}: cropping {(top, bottom, left, right)} leaves nothing "
                         f"of a {h}x{w} input; use a larger image")
    return out


def pad(x: np.ndarray, top: int, bottom: int, left: int, right: int, value: float = 0.0):
    """x: (N, C, H, W) float32 -> (N, C, H + top + bottom, W + left + right); a negative
    amount crops that many rows/columns, a positive one adds them filled with ``value``."""
    h, w = x.shape[2:]
    kept = x[:, :, max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
    added = ((0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0)))
    return np.pad(kept, added, constant_values=np.float32(value)).astype(np.float32, copy=False)


def _pad_run(node, inputs):
    return pad(inputs[0], *pad_amounts(node, inputs[0].shape), node.attrs["value"])


def _pad_cost(node, in_shapes, out_shape):
    # no arithmetic; each kept input element is read once, every output element written once
    n, c, h, w = out_shape
    top, bottom, left, right = pad_amounts(node, in_shapes[0])
    kept_h = h - max(top, 0) - max(bottom, 0)
    kept_w = w - max(left, 0) - max(right, 0)
    return Cost(elems_read=n * c * kept_h * kept_w, elems_written=numel(out_shape))


# ``channel_select``: CondenseNet's converted learned group convolution (and its classifier)
# gathers input channels by a fixed list, ``torch.index_select(x, 1, index)``. The list is a
# buffer of the checkpoint ("<node>.index", integers stored as float32: exact below 2**24);
# it may repeat or skip channels. Data movement only, like pad: NumPy, no Numba loop.
def channel_select(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """x: (N, C, ...) float32, index: (K,) integers in [0, C) -> (N, K, ...): out[:, k] =
    x[:, index[k]]. Anything else in ``index`` raises InputError (never a silent wrap)."""
    idx = np.asarray(index)
    as_int = idx.astype(np.intp)
    if idx.ndim != 1 or not np.array_equal(as_int, idx) or (as_int < 0).any() \
            or (as_int >= x.shape[1]).any():
        raise InputError(f"channel index must be whole numbers in [0, {x.shape[1]}), got "
                         f"{np.unique(idx)[:8]}...; load the checkpoint's own index buffer")
    return np.ascontiguousarray(np.take(x, as_int, axis=1))


def _select_shape(node, in_shapes):
    shape = in_shapes[0]
    return (shape[0], node.param_shapes["index"][0], *shape[2:])


def _select_cost(node, in_shapes, out_shape):
    # each output element is one read and one write; the index is read once per channel
    return Cost(elems_read=numel(out_shape) + out_shape[1], elems_written=numel(out_shape))


# ``dyshiftmax``: MicroNet's dynamic Shift-Max mixing step (kernels/shiftmax.py). Inputs: the
# map x (N, C, H, W) and the h-sigmoid output of its squeeze branch (N, J*C), J = 4 or 2 (gap,
# linear + ReLU, linear + h-sigmoid: existing kinds). attrs: ``groups`` (shift_index's), the
# coefficients' range ``act_max`` (the authors' self.act_max), ``init_a``, ``init_b``.
def _shiftmax_run(node, inputs):
    x, y = inputs
    n, c = x.shape[:2]
    a = node.attrs
    return SM.shiftmax(x, y.reshape(n, -1, c), SM.shift_index(c, a["groups"]), a["act_max"],
                       a["init_a"], a["init_b"])


def _shiftmax_shape(node, in_shapes):
    x, y = in_shapes
    if len(y) != 2 or y[0] != x[0] or y[1] not in (2 * x[1], 4 * x[1]):
        raise InputError(f"{node.name}: Shift-Max coefficients must be (N, 4*C) or (N, 2*C) "
                         f"for a map of {x[1]} channels, got {tuple(y)}")
    return tuple(x)


def _shiftmax_mixes(in_shapes):
    return in_shapes[1][1] // (2 * in_shapes[0][1])


def _shiftmax_cost(node, in_shapes, out_shape):
    return SM.shiftmax_cost(in_shapes[0], _shiftmax_mixes(in_shapes))


def _shiftmax_lower(node, in_shapes, out_shape, calls):
    # the authors' forward: (y - 0.5) * act_max, + init per part, x[:, index], then per mix
    # x * a + x2 * b, and torch.max(z1, z2): an element-wise binary op that no counting tool
    # has a rule for, lowered as one like add
    n, n_coef, mixes = numel(out_shape), numel(in_shapes[1]), _shiftmax_mixes(in_shapes)
    ops = [RefOp("add", n_in=n_coef, n_out=n_coef, call="operator"),
           RefOp("mul", n_in=n_coef, n_out=n_coef, call="operator"),
           RefOp("add", n_in=n_coef, n_out=n_coef, call="operator"),
           RefOp("copy", n_in=n, n_out=n, call="operator")]
    ops += [RefOp(op, n_in=n, n_out=n, call="operator") for op in ("mul", "mul", "add")] * mixes
    return ops + ([RefOp("add", n_in=n, n_out=n, call="operator")] if mixes == 2 else [])


# ``dimwise_conv``: DiCENet's 3x3 conv along the height (attrs ``axis`` 2) or the width (3),
# weight (S, 1, 3, 3): one kernel per row / column of the size S the network was built for;
# a map of another size is resized to S and back (kernels/dimwise.py).
def _dimwise_cost(node, in_shapes, out_shape):
    return DW.dimwise_conv_cost(in_shapes[0], node.param_shapes["weight"][0], node.attrs["axis"])


def _dimwise_lower(node, in_shapes, out_shape, calls):
    # the reference: [resize to S], transpose + contiguous, depthwise Conv2d, transpose back,
    # [resize back]. Shrinking is F.adaptive_avg_pool2d; enlarging is F.interpolate
    # (bilinear), for which the conventions have no rule: lowered as data movement, as
    # MobileViT's resize is.
    axis, size = node.attrs["axis"], node.param_shapes["weight"][0]
    shape = list(in_shapes[0])
    real, shape[axis] = shape[axis], size
    n_in, n = numel(in_shapes[0]), numel(shape)

    def resize(n_from, n_to, shrink):
        op = "adaptive_avg_pool" if shrink else "copy"
        return [RefOp(op, n_in=n_from, n_out=n_to, call="functional")]
    ops = resize(n_in, n, real > size) if real != size else []
    ops += [RefOp("copy", n_in=n, n_out=n, call="method"),
            RefOp("conv", macs=9 * n, n_in=n, n_out=n),
            RefOp("copy", n_in=n, n_out=n, call="method")]
    return ops + (resize(n, n_in, size > real) if real != size else [])


# ``avg_pool2d_same``: TensorFlow's "SAME" average pool (tf.nn.avg_pool; AmoebaNet's TF
# reference). TF divides by the real pixels of each window, never the padding (timm's
# AvgPool2dSame pads zeros and counts them: a "pad" node, then avg_pool2d). TF pads
# total // 2 before and the rest after, so the after side has at most one pixel more, and
# avg_pool2d takes the same windows and divisors with padding = the before side, ceil_mode
# (the extra pixel after is ceil mode's last window reaching past the input, which it never
# counts) and count_include_pad=False, for any odd kernel or any stride >= 2 (ceil mode adds
# no window at stride 1). attrs: kernel, stride (ints).
def tf_avg_pool_args(node, in_shape) -> dict:
    """The avg_pool2d arguments equal to the node's TF pool on an input of ``in_shape``."""
    k, s = node.attrs["kernel"], node.attrs["stride"]
    if s == 1 and k % 2 == 0:
        raise InputError(f"{node.name}: TF's SAME average pool with an even kernel at stride 1 "
                         f"pads one pixel more after than before, which avg_pool2d cannot "
                         f"take; use an odd kernel")
    top, left = C.same_padding(in_shape[2], k, s)[0], C.same_padding(in_shape[3], k, s)[0]
    return dict(kernel=k, stride=s, padding=(top, left), ceil_mode=True,
                count_include_pad=False)


def _tf_avg_pool_shape(node, in_shapes):
    n, c, h, w = in_shapes[0]
    tf_avg_pool_args(node, in_shapes[0])        # refuses what the kernel cannot run
    s = node.attrs["stride"]
    return (n, c, -(-h // s), -(-w // s))       # TF's rule for SAME: ceil(size / stride)


RECORDS: list[Op] = [
    Op("pad", _pad_run, _pad_shape, _pad_cost, copy, "other", "Pad", PER_CHANNEL),
    Op("channel_select", lambda node, x: channel_select(x[0], node.params["index"]),
       _select_shape, _select_cost, copy, "other", "Channel select", WHOLE,
       buffers=("index",)),
    Op("dyshiftmax", _shiftmax_run, _shiftmax_shape, _shiftmax_cost, _shiftmax_lower,
       "activation", "Dynamic Shift-Max", WHOLE),
    Op("dimwise_conv",
       lambda node, x: DW.dimwise_conv(x[0], node.params["weight"], node.attrs["axis"]),
       same_shape, _dimwise_cost, _dimwise_lower, "conv",
       lambda node: f"Conv {DW.AXES[node.attrs['axis']]}-wise 3x3", WHOLE),
    Op("prelu", lambda node, x: PR.prelu(x[0], node.params["weight"]), same_shape,
       lambda node, s, o: PR.prelu_cost(s[0]),
       lambda node, s, o, calls: [RefOp("prelu", n_in=numel(o), n_out=numel(o))],
       "activation", "PReLU", PER_CHANNEL),
    Op("avg_pool2d_same",
       lambda node, x: P.avg_pool2d(x[0], **tf_avg_pool_args(node, x[0].shape)),
       _tf_avg_pool_shape,
       lambda node, s, o: P.avg_pool2d_cost(s[0], **tf_avg_pool_args(node, s[0])),
       lowers_to("avg_pool"), "pool", "Pool", POOL),
]
