"""How a node that layout.py marked runs on the channel-blocked layout (attrs["blocked"]).

A marked node's inputs arrive blocked (5-D) when their producer stored its output blocked,
else NCHW; it converts what it needs. Its output stays blocked if attrs["blocked_out"] (every
reader runs blocked), else it converts back to NCHW: so every unmarked node sees NCHW.
ops.py's records call these when a node is marked.
"""
from __future__ import annotations

import numpy as np

from ..kernels import blocked_layout as BL
from ..kernels import conv_blocked as CBK
from ..kernels import conv_blocked_fused as CF
from ..kernels import se as SE
from ..kernels import tensor_ops as T


def conv(node, inputs, geometry):
    """conv_blocked's kernels, their arguments checked and bound once per input shape (and
    for as long as the node keeps the same weight and bias arrays). geometry(node, shape):
    ops.conv_geometry, called only when a new shape binds."""
    if node.attrs.get("fused"):                 # its expansion computed it (layout.py)
        return inputs[0]
    if node.attrs.get("then_dw") is not None:
        return _expand_dw(node, node.attrs["then_dw"], inputs[0], geometry)
    w, b = node.params["weight"], node.params.get("bias")
    into = node.attrs.get("into")       # one input of a concat, written into its output
    res = inputs[1] if len(inputs) > 1 and into is None else None
    key = ("blocked_run", inputs[0].shape, None if res is None else res.shape,
           node.attrs["blocked_out"])
    hit = node.cache.get(key)
    if hit is None or hit[0] is not w or hit[1] is not b:
        stride, padding, _ = geometry(node, inputs[0].shape)
        a = node.attrs
        hit = node.cache[key] = (w, b, CBK.bind_conv2d_blocked(
            inputs[0], w, b, stride, padding, a["groups"], a.get("act", 0), res, node.cache,
            a["blocked_out"], a.get("act_after_residual", False)))
    if into is None:
        return hit[2](inputs[0], res)
    # (layout._join_in_place) the first of the concat's inputs makes its output, each next
    # one reads it as a second input
    return hit[2](inputs[0], None, (inputs[1] if len(inputs) > 1 else None,) + into)


def _expand_dw(node, dw, x, geometry):
    """A 1x1 expansion and its depthwise reader in one kernel (conv_blocked_fused.py),
    bound once per input shape for as long as both nodes keep their weight arrays."""
    params = (node.params["weight"], node.params.get("bias"), dw.params["weight"],
              dw.params.get("bias"))
    key = ("blocked_fused", x.shape, node.attrs["blocked_out"])
    hit = node.cache.get(key)
    if hit is None or any(a is not b for a, b in zip(hit[0], params)):
        n_, c_, h_, w_ = x.shape[0], node.param_shapes["weight"][0], x.shape[2], x.shape[3]
        stride, padding, _ = geometry(dw, (n_, c_, h_, w_))
        side = [dict(weight=w, bias=b, act=n.attrs.get("act", 0), cache=n.cache)
                for n, w, b in ((node, *params[:2]), (dw, *params[2:]))]
        hit = node.cache[key] = (params, CF.bind_expand_dw(
            x, side[0], dict(side[1], stride=stride, padding=padding),
            node.attrs["blocked_out"]))
    return hit[1](x)


def squeeze_excite(node, x, params):
    """se.py's blocked squeeze-excite, bound once per input shape (as ``conv``) for as long
    as the node keeps the same four weight and bias arrays."""
    key = ("blocked_se", x.shape, node.attrs["blocked_out"])
    hit = node.cache.get(key)
    if hit is None or any(a is not b for a, b in zip(hit[0], params)):
        a = node.attrs
        hit = node.cache[key] = (params, SE.bind_squeeze_excite_blocked(
            x, *params, a["act"], a["gate"], a["blocked_out"]))
    return hit[1](x)


def global_avg_pool(node, x):
    """The end of a blocked run: reads blocked, writes (N, C) itself (layout.READ_ONLY)."""
    return BL.global_avg_pool_blocked(x, node.attrs["channels"])


def max_pool(node, x, args):
    """pooling.max_pool2d's arguments ``args`` on blocked x."""
    return _out(node, BL.max_pool2d_blocked(_blocked(x), **args))


def add(node, xs):
    """An elementwise add (+ activation) of two values of one shape, blocked or NCHW."""
    return _out(node, T.add(_blocked(xs[0]), _blocked(xs[1]), act=node.attrs.get("act", 0)))


def move(node, xs):
    """A concat, channel slice or shuffle (with the moves layout.py folded into it): each
    input scattered into the output by its table (attrs["tables"]); inputs of whole blocks
    taken in order are joined (attrs["join"]: SqueezeNet's, GoogLeNet's concats). A node
    folded into its reader does nothing (its reader reads its inputs)."""
    if node.attrs.get("folded"):
        return None
    if node.attrs.get("joined"):        # its inputs wrote into the output: the last one's
        return _out(node, xs[0])
    xs = [_blocked(x) for x in xs]
    if node.attrs.get("join"):
        return _out(node, np.concatenate(xs, axis=1))
    return _out(node, BL.move_channels(xs, node.attrs["tables"], node.attrs["channels"]))


def _out(node, y):
    return y if node.attrs["blocked_out"] else BL.from_blocked(y, node.attrs["channels"])


def _blocked(x):
    return x if x.ndim == 5 else BL.to_blocked(x)
