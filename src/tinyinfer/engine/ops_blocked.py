"""How a node that layout.py marked runs on the channel-blocked layout (attrs["blocked"]).

A marked node's inputs arrive blocked (5-D) when their producer stored its output blocked,
else NCHW; it converts what it needs. Its output stays blocked if attrs["blocked_out"] (every
reader runs blocked), else it converts back to NCHW: so every unmarked node sees NCHW.
ops.py's records call these when a node is marked.
"""
from __future__ import annotations

from ..kernels import blocked_layout as BL
from ..kernels import conv_blocked as CBK


def conv(node, inputs, geometry):
    """conv_blocked's kernels, their arguments checked and bound once per input shape (and
    for as long as the node keeps the same weight and bias arrays). geometry(node, shape):
    ops.conv_geometry, called only when a new shape binds."""
    w, b = node.params["weight"], node.params.get("bias")
    res = inputs[1] if len(inputs) > 1 else None
    key = ("blocked_run", inputs[0].shape, None if res is None else res.shape,
           node.attrs["blocked_out"])
    hit = node.cache.get(key)
    if hit is None or hit[0] is not w or hit[1] is not b:
        stride, padding, _ = geometry(node, inputs[0].shape)
        a = node.attrs
        hit = node.cache[key] = (w, b, CBK.bind_conv2d_blocked(
            inputs[0], w, b, stride, padding, a["groups"], a.get("act", 0), res, node.cache,
            a["blocked_out"], a.get("act_after_residual", False)))
    return hit[2](inputs[0], res)


def global_avg_pool(node, x):
    """The end of a blocked run: reads blocked, writes (N, C) itself (layout.READ_ONLY)."""
    return BL.global_avg_pool_blocked(x, node.attrs["channels"])


def max_pool(node, x, args):
    """pooling.max_pool2d's arguments ``args`` on blocked x."""
    return _out(node, BL.max_pool2d_blocked(_blocked(x), **args))


def concat(node, xs):
    """Whole blocks are joined; partial ones (ShuffleNetV2's 58 + 58 channels) gathered."""
    return _out(node, BL.concat_blocked([_blocked(x) for x in xs], node.attrs["in_channels"]))


def channel_move(node, x, src_channels):
    """A slice or channel shuffle: output channel c is x's channel src_channels(c); the
    gather's table is kept per node and input shape."""
    x = _blocked(x)
    key = ("blocked_gather", x.shape)
    hit = node.cache.get(key)
    if hit is None:
        src = src_channels()
        hit = node.cache[key] = (src, BL.gather_offsets(src, x.shape))
    return _out(node, BL.gather_channels(x, *hit))


def _out(node, y):
    return y if node.attrs["blocked_out"] else BL.from_blocked(y, node.attrs["channels"])


def _blocked(x):
    return x if x.ndim == 5 else BL.to_blocked(x)
