"""The kernel families a plan runs, and a call that compiles (or loads) each: prewarm.py's menu.

A family is the kernels one call compiles: a blocked conv kind, squeeze-excite, the pool,
the classifier; an NCHW conv variant's path (kernels/conv.py dispatches on shapes: gemm
runs over the input for an unpadded 1x1, over columns gathered panel by panel where
conv_gemm.gemm_path says so, else after im2col; Winograd fused per block of tile rows
or step by step). Its warm-up call has the engine's argument types (C-contiguous float32
arrays, int64 scalars), so the cached signatures are the ones the network asks for
(tests/test_prewarm.py): a tiny call where any shape takes the family's path, else a conv
at the shapes of the plan's first node on that path, on zeros (a ``spec``).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numba
import numpy as np

from ..kernels import conv as C
from ..kernels.conv_gemm import gemm_path
from ..kernels.conv_winograd import fused_rows, tile_grid
from .graph import Graph
from .ops import conv_geometry


def _xb(pixels=5):
    return np.ones((1, 1, pixels, 5, 16), np.float32)     # 8 channels, blocked


def _blocked_conv(x, cout, cin, k, stride, groups, act):
    from ..kernels import conv_blocked as CBK
    f = np.float32
    CBK.conv2d_blocked(x, np.ones((cout, cin, k, k), f), np.ones(cout, f), stride, k // 2,
                       groups, act)


def _direct(act, spec):
    _blocked_conv(np.ones((1, 3, 8, 8), np.float32), 16, 3, 3, 2, 1, act)


def _depthwise(act, spec):
    _blocked_conv(_xb(), 8, 1, 3, 1, 8, act)


def _pointwise(act, spec):
    _blocked_conv(_xb(), 16, 8, 1, 1, 1, act)


def _se(act, spec):
    from ..kernels.se import squeeze_excite_blocked
    f = np.float32
    for pixels in (5, 900):       # the serial kernel, and the pool + FCs + scale above it
        squeeze_excite_blocked(_xb(pixels), np.ones((2, 8), f), np.ones(2, f),
                               np.ones((8, 2), f), np.ones(8, f), act, act)


def _linear(act, spec):
    from ..kernels.linear import linear
    f = np.float32
    linear(np.ones((1, 8), f), np.ones((4, 8), f), np.ones(4, f))


def _pool(act, spec):
    from ..kernels import blocked_layout as BL
    BL.global_avg_pool_blocked(_xb(), 8)


def _convert(act, spec):
    from ..kernels import blocked_layout as BL
    BL.from_blocked(BL.to_blocked(np.ones((1, 8, 3, 3), np.float32)), 8)


def _max_pool(act, spec):
    from ..kernels import blocked_layout as BL
    BL.max_pool2d_blocked(_xb(), 3, 2, 1)


def _panel(act, spec):
    from ..kernels.im2col_blocked import panel_from_blocked    # a dense conv's, blocked
    panel_from_blocked(_xb(), (3, 3), (1, 1), (1, 1, 1, 1))


def _gemm(act, spec):
    f = np.float32
    C.conv2d(np.ones((1, 8, 4, 4), f), np.ones((8, 8, 1, 1), f), np.ones(8, f), act=act,
             variant="gemm")


def _winograd_in(act, spec):
    """The step-by-step Winograd path's weight and input transforms, as
    conv_winograd.winograd_conv2d_into calls them, on a 2x2 map of one channel."""
    from ..kernels import conv_winograd as W
    f = np.float32
    W.weight_transform(np.ones((1, 1, 3, 3), f))
    W._input_transform(np.ones((1, 1, 2, 2), f), 1, 1, 1, 1, np.empty((16, 1, 1), f), 1)


def _winograd_out(act, spec):
    """... and its output transform (with the epilogue), likewise."""
    from ..kernels import conv_winograd as W
    from ..kernels.common import NO_RES4
    f = np.float32
    W._output_transform(np.ones((16, 1, 1), f), np.ones(1, f), 1, 1, np.int64(act), NO_RES4,
                        False, np.empty((1, 1, 2, 2), f), 1)


def _nchw_conv(act, spec):
    """conv2d at a node's shapes (spec: x, w, stride, padding, dilation, groups), on zeros."""
    f = np.float32
    C.conv2d(np.zeros(spec["x"], f), np.zeros(spec["w"], f), np.zeros(spec["w"][0], f),
             tuple(spec["stride"]), tuple(spec["padding"]), tuple(spec["dilation"]),
             spec["groups"], act=act, cache={})


class Family(NamedTuple):
    module: str         # kernels.<module>.<kernel>: its cache entry says the family is cached
    kernel: str
    seconds: float      # to compile on a cold cache, the ladder (below) not counted
    ladder: bool        # calls the activation ladder (activations.act_inplace)
    warm: Callable      # warm(act code, spec): compiles the family


# Compile times: each alone in a fresh process after the ladder (2026-12-03, Zen 4; the
# host's speed swings by 1.5x, a process compiling beside another one is ~1.2x slower).
# Winograd's step-by-step path is three families (its transforms in, its products on gemm's
# kernel, its transforms out), so that the two processes can share its ~29 s; the fused
# path is one kernel (30 s).
FAMILIES = {
    "direct": Family("conv_blocked_direct", "_direct", 4.8, True, _direct),
    "depthwise": Family("conv_blocked_dw", "_depthwise", 4.7, True, _depthwise),
    "pointwise": Family("conv_blocked", "_pointwise", 3.3, True, _pointwise),
    "panel": Family("im2col_blocked", "_from_blocked", 2.0, False, _panel),
    "se": Family("se", "_se_serial", 6.0, True, _se),
    "linear": Family("linear", "_rows_kernel", 1.1, False, _linear),
    "pool": Family("blocked_layout", "_pool_blocked", 1.1, False, _pool),
    "convert": Family("blocked_layout", "_to_blocked", 1.4, False, _convert),
    "max_pool": Family("blocked_layout", "_max_pool_blocked", 3.0, False, _max_pool),
    "gemm": Family("gemm", "gemm_bias_act", 10.3, True, _gemm),
    "implicit": Family("conv_gemm", "implicit_gemm", 9.2, True, _nchw_conv),
    "im2col": Family("conv_im2col", "_im2col", 1.9, False, _nchw_conv),
    "winograd_in": Family("conv_winograd", "_input_transform", 11.1, False, _winograd_in),
    "winograd_out": Family("conv_winograd", "_output_transform", 7.9, True, _winograd_out),
    "winograd_fused": Family("conv_winograd", "_fused", 30.4, True, _nchw_conv),
}


def families(plan: Graph, shapes: dict) -> dict:
    """The FAMILIES ``plan`` (layout.for_shape's, at the input shape ``shapes`` were
    inferred for) runs, in plan order: name -> its warm-up's spec (None: a tiny call)."""
    blocked_out = {n.name: n.attrs.get("blocked_out", False) for n in plan}
    found = {}
    for n in plan:
        a = n.attrs
        if n.kind == "linear":
            found.setdefault("linear", None)
        elif n.kind == "conv2d" and not a.get("blocked"):
            for name in _nchw_paths(n, shapes[n.inputs[0]], shapes[n.name]):
                found.setdefault(name, _spec(n, shapes[n.inputs[0]]))
        if not a.get("blocked"):
            continue
        if n.kind != "global_avgpool" and (not all(blocked_out.get(v) for v in n.inputs)
                                           or not a.get("blocked_out")):
            if not (n.kind == "conv2d" and _reads_image(n, blocked_out)):
                found.setdefault("convert", None)      # an NCHW value in or out
        if n.kind == "conv2d":
            if a["groups"] > 1:
                found.setdefault("depthwise", None)
            elif _reads_image(n, blocked_out):
                found.setdefault("direct", None)
            else:
                kh, kw = n.param_shapes["weight"][2:]
                if (kh, kw, a["stride"]) != (1, 1, (1, 1)):
                    found.setdefault("panel", None)     # a dense conv's im2col panel
                found.setdefault("pointwise", None)     # ... and the product
            if a.get("then_dw") is not None:
                found.setdefault("depthwise", None)
        elif n.kind in ("se", "max_pool2d", "global_avgpool"):
            found.setdefault({"se": "se", "max_pool2d": "max_pool",
                              "global_avgpool": "pool"}[n.kind], None)
    return found


def _reads_image(n, blocked_out) -> bool:
    """A dense conv reading NCHW: conv_blocked's direct kernel (a stem)."""
    kh, kw = n.param_shapes["weight"][2:]
    return (n.attrs["groups"] == 1 and (kh, kw) != (1, 1)
            and not blocked_out.get(n.inputs[0], False))


def _nchw_paths(n, in_shape, out_shape) -> list[str]:
    """The families an NCHW conv runs (kernels/conv.py's dispatch), for gemm and Winograd."""
    w = n.param_shapes["weight"]
    stride, padding, dilation = conv_geometry(n, in_shape)
    padding = C.normalize_padding(padding)
    batch, cout, ho, wo = out_shape
    variant = C.choose_variant(in_shape, w, stride, padding, dilation, n.attrs["groups"])
    threads = numba.get_num_threads()
    if variant == "winograd":
        if fused_rows(batch, in_shape[1], cout, *tile_grid(ho, wo), threads):
            return ["winograd_fused"]
        return ["gemm", "winograd_in", "winograd_out"]
    if variant != "gemm":
        return []
    return {"input": ["gemm"], "implicit": ["implicit"], "im2col": ["gemm", "im2col"]}[
        gemm_path(tuple(w), padding, batch, ho * wo, threads)]


def _spec(n, in_shape) -> dict:
    stride, padding, dilation = conv_geometry(n, in_shape)
    return {"x": list(in_shape), "w": list(n.param_shapes["weight"]), "stride": list(stride),
            "padding": list(C.normalize_padding(padding)), "dilation": list(dilation),
            "groups": n.attrs["groups"]}
