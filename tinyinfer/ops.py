"""The one table that maps a node kind to its kernel, its shape rule and its cost model.

Each entry is an ``Op(shape, cost, run)``:
    shape(node, in_shapes)            -> output shape
    cost(node, in_shapes, out_shape)  -> Cost         (from shapes alone; never runs anything)
    run(node, inputs)                 -> output array (calls the Numba kernel)

A node kind missing here is an error everywhere (building a report, running): no node can
silently count as zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .costs import Cost, numel
from .errors import InputError
from .graph import Graph, Node
from .kernels import activations as A
from .kernels import conv as C
from .kernels import linear as L
from .kernels import norm as N
from .kernels import pooling as P
from .kernels import se as S
from .kernels import tensor_ops as T


@dataclass(frozen=True)
class Op:
    shape: Callable
    cost: Callable
    run: Callable


# ---- convolution (standard, group, depthwise, pointwise: the kernel dispatches) --------
def _conv_geometry(node, in_shape=None):
    a = node.attrs
    padding = a["padding"]
    if padding == "same":
        padding = tf_same_padding(in_shape, node.param_shapes["weight"], a["stride"],
                                  a["dilation"])
    return a["stride"], padding, a["dilation"]


def tf_same_padding(in_shape, w_shape, stride, dilation) -> tuple:
    """TensorFlow's "SAME" padding as (top, bottom, left, right): the output is
    ceil(input / stride) and the odd pixel of padding goes after (bottom / right). Unlike
    PyTorch's symmetric padding it depends on the input size, so a conv node may carry
    padding="same" and have it resolved here, whenever shapes are known."""
    (sh, sw), (dh, dw) = stride, dilation
    kh, kw = w_shape[2], w_shape[3]
    return C.same_padding(in_shape[2], kh, sh, dh) + C.same_padding(in_shape[3], kw, sw, dw)


def _conv_shape(node, in_shapes):
    stride, padding, dilation = _conv_geometry(node, in_shapes[0])
    return C.conv2d_out_shape(in_shapes[0], node.param_shapes["weight"], stride, padding, dilation)


def _conv_cost(node, in_shapes, out_shape):
    stride, padding, dilation = _conv_geometry(node, in_shapes[0])
    return C.conv2d_cost(in_shapes[0], node.param_shapes["weight"], stride, padding, dilation,
                         node.attrs["groups"], act=node.attrs.get("act", 0),
                         has_bias="bias" in node.param_shapes, residual=len(in_shapes) > 1)


def _conv_run(node, inputs):
    stride, padding, dilation = _conv_geometry(node, inputs[0].shape)
    return C.conv2d(inputs[0], node.params["weight"], node.params.get("bias"), stride, padding,
                    dilation, node.attrs["groups"], act=node.attrs.get("act", 0),
                    residual=inputs[1] if len(inputs) > 1 else None)


# ---- linear -------------------------------------------------------------------------------
def _linear_shape(node, in_shapes):
    return tuple(in_shapes[0][:-1]) + (node.param_shapes["weight"][0],)


def _linear_cost(node, in_shapes, out_shape):
    return L.linear_cost(in_shapes[0], node.param_shapes["weight"],
                         has_bias="bias" in node.param_shapes, act=node.attrs.get("act", 0))


def _linear_run(node, inputs):
    return L.linear(inputs[0], node.params["weight"], node.params.get("bias"),
                    act=node.attrs.get("act", 0))


# ---- batch norm (only runs when it could not be folded into a conv) -----------------------
def _bn_run(node, inputs):
    p = node.params
    return N.batch_norm(inputs[0], p["weight"], p["bias"], p["running_mean"], p["running_var"],
                        node.attrs["eps"])


# ---- elementwise ---------------------------------------------------------------------------
def _same_shape(node, in_shapes):
    return tuple(in_shapes[0])


def _add_shape(node, in_shapes):
    if tuple(in_shapes[0]) != tuple(in_shapes[1]):
        raise InputError(f"{node.name}: cannot add shapes {in_shapes[0]} and {in_shapes[1]}")
    return tuple(in_shapes[0])


def _add_cost(node, in_shapes, out_shape):
    return T.add_cost(out_shape, act=node.attrs.get("act", 0))


# ---- pooling -------------------------------------------------------------------------------
def _gap_shape(node, in_shapes):
    return tuple(in_shapes[0][:2])


def _pool_args(node):
    a = node.attrs
    args = dict(kernel=a["kernel"], stride=a["stride"], padding=a["padding"],
                ceil_mode=a.get("ceil_mode", False))
    if node.kind == "max_pool2d":
        args["dilation"] = a.get("dilation", 1)
    else:
        args["count_include_pad"] = a.get("count_include_pad", True)
    return args


def _pool_shape(node, in_shapes):
    a = _pool_args(node)
    n, c, h, w = in_shapes[0]
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    stride = a["kernel"] if a["stride"] is None else a["stride"]   # PyTorch's default
    (kh, kw), (sh, sw), (ph, pw) = pair(a["kernel"]), pair(stride), pair(a["padding"])
    dh, dw = pair(a.get("dilation", 1))
    return (n, c, P.pool_output_size(h, kh, sh, ph, dh, a["ceil_mode"]),
            P.pool_output_size(w, kw, sw, pw, dw, a["ceil_mode"]))


def _pool_cost(node, in_shapes, out_shape):
    fn = P.max_pool2d_cost if node.kind == "max_pool2d" else P.avg_pool2d_cost
    return fn(in_shapes[0], **_pool_args(node))


def _pool_run(node, inputs):
    fn = P.max_pool2d if node.kind == "max_pool2d" else P.avg_pool2d
    return fn(inputs[0], **_pool_args(node))


def _concat_shape(node, in_shapes):
    first = tuple(in_shapes[0])
    for s in in_shapes[1:]:
        if tuple(s[:1]) + tuple(s[2:]) != first[:1] + first[2:]:
            raise InputError(f"{node.name}: cannot concatenate {in_shapes} along channels")
    return (first[0], sum(s[1] for s in in_shapes)) + first[2:]


def _flatten_shape(node, in_shapes):
    return (in_shapes[0][0], numel(in_shapes[0][1:]))


# ---- squeeze-excite, gating, channel plumbing ----------------------------------------------
# An SE node's weights are named as its reference names its two 1x1 convs, e.g. timm's
# "conv_reduce"/"conv_expand", torchvision's "fc1"/"fc2": attrs["reduce"], attrs["expand"].
def _se_params(node):
    a, p = node.attrs, node.params
    return (p[a["reduce"] + ".weight"], p.get(a["reduce"] + ".bias"),
            p[a["expand"] + ".weight"], p.get(a["expand"] + ".bias"))


def _se_cost(node, in_shapes, out_shape):
    reduced = node.param_shapes[node.attrs["reduce"] + ".weight"][0]
    return S.squeeze_excite_cost(in_shapes[0], reduced, node.attrs["act"], node.attrs["gate"])


def _se_run(node, inputs):
    return S.squeeze_excite(inputs[0], *_se_params(node), act=node.attrs["act"],
                            gate=node.attrs["gate"])


def _slice_shape(node, in_shapes):
    n, c = in_shapes[0][:2]
    start, stop = node.attrs["start"], node.attrs["stop"]
    if not 0 <= start < stop <= c:
        raise InputError(f"{node.name}: channel slice {start}:{stop} of {c} channels")
    return (n, stop - start) + tuple(in_shapes[0][2:])


def _adaptive_shape(node, in_shapes):
    oh, ow = node.attrs["out_hw"]
    return tuple(in_shapes[0][:2]) + (oh, ow)


OPS: dict[str, Op] = {
    "conv2d": Op(_conv_shape, _conv_cost, _conv_run),
    "linear": Op(_linear_shape, _linear_cost, _linear_run),
    "batchnorm": Op(_same_shape, lambda node, s, o: N.batch_norm_cost(s[0]), _bn_run),
    "act": Op(_same_shape,
              lambda node, s, o: A.activation_cost(o, node.attrs["act"]),
              lambda node, x: A.activation(x[0], node.attrs["act"])),
    "add": Op(_add_shape, _add_cost,
              lambda node, x: T.add(x[0], x[1], act=node.attrs.get("act", 0))),
    "global_avgpool": Op(_gap_shape,
                         lambda node, s, o: P.global_avg_pool_cost(s[0]),
                         lambda node, x: P.global_avg_pool(x[0])),
    "avg_pool2d": Op(_pool_shape, _pool_cost, _pool_run),
    "max_pool2d": Op(_pool_shape, _pool_cost, _pool_run),
    "concat": Op(_concat_shape,
                 lambda node, s, o: T.concat_cost(s, axis=1),
                 lambda node, x: T.concat(x, axis=1)),
    "se": Op(_same_shape, _se_cost, _se_run),
    "mul": Op(lambda node, s: tuple(s[0]),
              lambda node, s, o: T.mul_cost(s[0], s[1]),
              lambda node, x: T.mul(x[0], x[1])),
    "channel_shuffle": Op(_same_shape,
                          lambda node, s, o: T.channel_shuffle_cost(s[0], node.attrs["groups"]),
                          lambda node, x: T.channel_shuffle(x[0], node.attrs["groups"])),
    # A view (no copy, no work); the reader copies it if it needs contiguous input.
    "slice": Op(_slice_shape,
                lambda node, s, o: Cost(),
                lambda node, x: x[0][:, node.attrs["start"]:node.attrs["stop"]]),
    "adaptive_avgpool": Op(_adaptive_shape,
                           lambda node, s, o: P.adaptive_avg_pool2d_cost(s[0], node.attrs["out_hw"]),
                           lambda node, x: P.adaptive_avg_pool2d(x[0], node.attrs["out_hw"])),
    "flatten": Op(_flatten_shape,
                  lambda node, s, o: T.flatten_cost(s[0]),
                  lambda node, x: T.flatten(x[0])),
}


def get_op(node: Node) -> Op:
    try:
        return OPS[node.kind]
    except KeyError:
        raise KeyError(f"node {node.name!r} has kind {node.kind!r}, which has no kernel and no "
                       f"cost model; known kinds: {', '.join(sorted(OPS))}") from None


def infer_shapes(graph: Graph, input_shape) -> dict[str, tuple]:
    """Every value's shape for an input of ``input_shape`` (N, C, H, W), without running."""
    shapes = {graph.INPUT: tuple(int(d) for d in input_shape)}
    for node in graph:
        in_shapes = [shapes[i] for i in node.inputs]
        out = tuple(int(d) for d in get_op(node).shape(node, in_shapes))
        if min(out) <= 0:
            raise InputError(f"layer {node.name!r} ({node.kind}) would produce an empty output "
                             f"{out} from input {in_shapes[0]}")
        shapes[node.name] = out
    return shapes


def node_costs(graph: Graph, input_shape) -> list[tuple[Node, tuple, Cost]]:
    """(node, output shape, cost) for every node, in execution order."""
    shapes = infer_shapes(graph, input_shape)
    out = []
    for node in graph:
        in_shapes = [shapes[i] for i in node.inputs]
        out.append((node, shapes[node.name], get_op(node).cost(node, in_shapes, shapes[node.name])))
    return out
