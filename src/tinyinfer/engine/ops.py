"""One record per op kind: everything tinyinfer knows about a kind of node, in one place.

``OPS`` maps each node kind (``Node.kind``) to an ``Op``:

    run(node, inputs)                 -> output array  (calls the Numba kernel)
    shape(node, in_shapes)            -> output shape
    cost(node, in_shapes, out_shape)  -> Cost          (from shapes alone; never runs anything)
    lower(node, in_shapes, out_shape, calls) -> [RefOp]
                  the operations the PyTorch reference runs for this node; each counting
                  convention (fvcore, thop, ptflops, FlopCounterMode) is a table over these
                  (conventions.py). ``calls``: how the reference calls an op (REFERENCE_CALLS)
    op_class      its row in conventions.by_class (one of conventions.OP_CLASSES)
    layer_type    its type in reports ("Conv DW 3x3", "Pool", ...)        } a string, or a
    memory        how its output uses memory (MEMORY_ROLES; memory.py)    } function of the node
    buffers       weights PyTorch keeps as buffers, not parameters (BN's running statistics)

report.py, memory.py and conventions.py read these fields and nothing else about a kind.
A kind missing here is an error everywhere (running, reporting, counting): no node can
silently count as zero. What kind of conv a conv node is, is decided once, in
conv_variant.py.

Adding an op kind:
1. a kernel in kernels/: the Numba function with its shapes in the docstring, its NumPy
   reference (``*_ref``) and its cost model (``*_cost``), tested against torch in
   tests/test_kernels_*.py;
2. one ``Op(...)`` record (op_record.py), in the record module of its group: below for the
   CNN kinds, ops_transformer.py (norms, token reshapes, multi-head attention),
   ops_attention.py (the efficient attention variants), ops_cells.py (NAS cells' ops);
3. one NetBuilder method (models/builder.py) that adds the node with its attrs and weight
   shapes;
4. tests: a node of the new kind in a "kinds graph" (tests/test_ops.py's all_kinds_graph for
   the CNN kinds; ``kinds_graph`` in tests/test_ops_<group>.py for the other record modules),
   checked against torch there (test_ops.py fails while any kind is in no kinds graph); tests/test_conventions.py if a
   reference network the tools are run on uses it.
"""
from __future__ import annotations

from . import ops_attention, ops_cells, ops_transformer
from . import ops_blocked as OB
from .conv_variant import conv_class
from .costs import Cost, RefOp, numel
from ..errors import InputError
from .graph import Graph, Node
from .op_record import (MEMORY_ROLES, MIXES, PER_CHANNEL, POOL, VIEW, WHOLE, ByNode, Op,  # noqa: F401
                        act_ops, copy, lowers_to, same_shape)
from ..kernels import activations as A
from ..kernels import conv as C
from ..kernels import conv_transpose as CT
from ..kernels import linear as L
from ..kernels import norm as N
from ..kernels import pooling as P
from ..kernels import se as S
from ..kernels import tensor_ops as T


# ---- convolution (standard, group, depthwise, pointwise: the kernel dispatches) --------
def conv_geometry(node, in_shape=None):
    """(stride, padding (top, bottom, left, right), dilation) of a conv node on in_shape."""
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
    w, groups = node.param_shapes["weight"], node.attrs["groups"]
    if in_shapes[0][1] != w[1] * groups:   # conv_class relies on Cin = Cin/groups * groups
        raise InputError(f"{node.name}: input has {in_shapes[0][1]} channels but weight {w} "
                         f"with groups={groups} expects {w[1] * groups}")
    stride, padding, dilation = conv_geometry(node, in_shapes[0])
    return C.conv2d_out_shape(in_shapes[0], w, stride, padding, dilation)


def _conv_cost(node, in_shapes, out_shape):
    stride, padding, dilation = conv_geometry(node, in_shapes[0])
    return C.conv2d_cost(in_shapes[0], node.param_shapes["weight"], stride, padding, dilation,
                         node.attrs["groups"], act=node.attrs.get("act", 0),
                         has_bias="bias" in node.param_shapes, residual=len(in_shapes) > 1)


def _conv_run(node, inputs):
    if node.attrs.get("blocked"):          # marked by layout.py for this input shape
        return OB.conv(node, inputs, conv_geometry)
    stride, padding, dilation = conv_geometry(node, inputs[0].shape)
    return C.conv2d(inputs[0], node.params["weight"], node.params.get("bias"), stride, padding,
                    dilation, node.attrs["groups"], act=node.attrs.get("act", 0),
                    residual=inputs[1] if len(inputs) > 1 else None, cache=node.cache,
                    act_after_residual=node.attrs.get("act_after_residual", False))


def _conv_lower(node, in_shapes, out_shape, calls):
    n_in, n_out = numel(in_shapes[0]), numel(out_shape)
    cin_g, kh, kw = node.param_shapes["weight"][1:]
    # a strided conv with TF "same" padding is timm's Conv2dSame subclass in its references
    same = node.attrs.get("padding") == "same" and max(node.attrs.get("stride", (1, 1))) > 1
    ops = [RefOp("conv", macs=n_out * cin_g * kh * kw, n_in=n_in, n_out=n_out,
                 bias=n_out if "bias" in node.param_shapes else 0,
                 call=calls.get("conv_same", "module") if same else "module")]
    act = act_ops(node.attrs.get("act", 0), n_out, calls)
    add = [RefOp("add", n_in=n_out, n_out=n_out, call="operator")] if len(node.inputs) > 1 else []
    return ops + (add + act if node.attrs.get("act_after_residual") else act + add)


def _conv_class(node) -> str:
    return conv_class(node.param_shapes["weight"], node.attrs["groups"])


_CONV_LAYER_TYPES = {"depthwise": "Conv DW", "grouped": "Group conv", "pointwise": "Conv",
                     "dense": "Conv"}


def _conv_layer_type(node) -> str:
    """The papers' classes (MobileNet Table 2: Conv 1x1, Conv DW 3x3, Conv 3x3)."""
    kh, kw = node.param_shapes["weight"][2:]
    return f"{_CONV_LAYER_TYPES[_conv_class(node)]} {kh}x{kw}"


def _conv_memory(node) -> str:
    if _conv_class(node) != "depthwise":
        return MIXES
    return PER_CHANNEL if len(node.inputs) == 1 else WHOLE   # a residual input: whole


# ---- transposed convolution (EdgeViT's local propagation: depthwise, kernel = stride) ----
def _conv_t_args(node):
    a = node.attrs
    return a["stride"], a["padding"], a["output_padding"], a["dilation"], a["groups"]


def _conv_t_shape(node, in_shapes):
    w = node.param_shapes["weight"]     # (Cin, Cout/groups, KH, KW): ConvTranspose2d's layout
    if in_shapes[0][1] != w[0]:
        raise InputError(f"{node.name}: input has {in_shapes[0][1]} channels but the "
                         f"transposed-conv weight {w} expects {w[0]}")
    return CT.conv_transpose2d_out_shape(in_shapes[0], w, *_conv_t_args(node))


def _conv_t_lower(node, in_shapes, out_shape, calls):
    # call "transposed": thop counts a ConvTranspose2d by the forward conv's formula
    n_out = numel(out_shape)
    return [RefOp("conv", macs=numel(in_shapes[0]) * numel(node.param_shapes["weight"][1:]),
                  n_in=numel(in_shapes[0]), n_out=n_out,
                  bias=n_out if "bias" in node.param_shapes else 0, call="transposed")]


def _conv_t_depthwise(node) -> bool:
    return node.attrs["groups"] == node.param_shapes["weight"][0]


def _conv_t_layer_type(node) -> str:
    kh, kw = node.param_shapes["weight"][2:]
    return f"Conv transpose{' DW' if _conv_t_depthwise(node) else ''} {kh}x{kw}"


# ---- linear -------------------------------------------------------------------------------
def _linear_shape(node, in_shapes):
    return tuple(in_shapes[0][:-1]) + (node.param_shapes["weight"][0],)


def _linear_cost(node, in_shapes, out_shape):
    return L.linear_cost(in_shapes[0], node.param_shapes["weight"],
                         has_bias="bias" in node.param_shapes, act=node.attrs.get("act", 0))


def _linear_run(node, inputs):
    # packed only where linear_into reads the panels (not for a classifier at batch 1:
    # their packing kernel is 0.7 s of a cold start)
    rows = numel(inputs[0].shape[:-1])
    packed = (L.cached_weight_panels(node.cache, "weight", node.params["weight"])
              if rows >= L.PANEL_MIN_ROWS else None)
    return L.linear(inputs[0], node.params["weight"], node.params.get("bias"),
                    act=node.attrs.get("act", 0), packed=packed)


def _linear_lower(node, in_shapes, out_shape, calls):
    n_out = numel(out_shape)
    in_features = node.param_shapes["weight"][1]
    return [RefOp("linear", macs=n_out * in_features, n_in=numel(in_shapes[0]), n_out=n_out,
                  bias=n_out if "bias" in node.param_shapes else 0, call=calls.get("linear", "module"))] \
        + act_ops(node.attrs.get("act", 0), n_out, calls)


# ---- batch norm (only runs when it could not be folded into a conv) -----------------------
def _bn_run(node, inputs):
    p = node.params
    return N.batch_norm(inputs[0], p["weight"], p["bias"], p["running_mean"], p["running_var"],
                        node.attrs["eps"])


# ---- elementwise ---------------------------------------------------------------------------
def _add_shape(node, in_shapes):
    if tuple(in_shapes[0]) != tuple(in_shapes[1]):
        raise InputError(f"{node.name}: cannot add shapes {in_shapes[0]} and {in_shapes[1]}")
    return tuple(in_shapes[0])


def _act_lower(node, in_shapes, out_shape, calls):
    return act_ops(node.attrs["act"], numel(out_shape), calls)


# ---- pooling -------------------------------------------------------------------------------
def _gap_run(node, x):
    if node.attrs.get("blocked"):          # the end of a blocked run (layout.py)
        return OB.global_avg_pool(node, x)
    return P.global_avg_pool(x)


def _max_pool_run(node, x):
    if node.attrs.get("blocked"):          # marked by layout.py (ops_blocked.py)
        return OB.max_pool(node, x, _pool_args(node))
    return P.max_pool2d(x, **_pool_args(node))


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


def _adaptive_shape(node, in_shapes):
    oh, ow = node.attrs["out_hw"]
    return tuple(in_shapes[0][:2]) + (oh, ow)


# ---- concat, flatten, slice ----------------------------------------------------------------
def _concat_shape(node, in_shapes):
    first = tuple(in_shapes[0])
    for s in in_shapes[1:]:
        if tuple(s[:1]) + tuple(s[2:]) != first[:1] + first[2:]:
            raise InputError(f"{node.name}: cannot concatenate {in_shapes} along channels")
    return (first[0], sum(s[1] for s in in_shapes)) + first[2:]


def _flatten_shape(node, in_shapes):
    return (in_shapes[0][0], numel(in_shapes[0][1:]))


def _slice_shape(node, in_shapes):
    n, c = in_shapes[0][:2]
    start, stop = node.attrs["start"], node.attrs["stop"]
    if not 0 <= start < stop <= c:
        raise InputError(f"{node.name}: channel slice {start}:{stop} of {c} channels")
    return (n, stop - start) + tuple(in_shapes[0][2:])


# ---- squeeze-excite ------------------------------------------------------------------------
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
    if node.attrs.get("blocked"):          # marked by layout.py, between blocked convs
        return OB.squeeze_excite(node, inputs[0], _se_params(node))
    return S.squeeze_excite(inputs[0], *_se_params(node), act=node.attrs["act"],
                            gate=node.attrs["gate"])


def _se_lower(node, in_shapes, out_shape, calls):
    """pool -> 1x1 conv (bias) -> act -> 1x1 conv (bias) -> gate -> x * gate"""
    a, n_in = node.attrs, numel(in_shapes[0])
    n, c = in_shapes[0][:2]
    red = node.param_shapes[a["reduce"] + ".weight"][0]
    return [RefOp("adaptive_avg_pool", n_in=n_in, n_out=n * c, call=calls.get("se_pool", "module")),
            RefOp("conv", macs=n * c * red, n_in=n * c, n_out=n * red, bias=n * red),
            *act_ops(a["act"], n * red, calls),
            RefOp("conv", macs=n * red * c, n_in=n * red, n_out=n * c, bias=n * c),
            *act_ops(a["gate"], n * c, calls),
            RefOp("mul", n_in=n_in, n_out=n_in, call="operator")]


# ---- the records ---------------------------------------------------------------------------
#  Op(kind, run, shape, cost, lower, op_class, layer_type, memory[, buffers])
CNN_RECORDS = [
    Op("conv2d", _conv_run, _conv_shape, _conv_cost, _conv_lower, "conv",
       _conv_layer_type, _conv_memory),
    Op("conv_transpose2d",
       lambda node, x: CT.conv_transpose2d(x[0], node.params["weight"], node.params.get("bias"),
                                           *_conv_t_args(node)),
       _conv_t_shape,
       lambda node, s, o: CT.conv_transpose2d_cost(s[0], node.param_shapes["weight"],
                                                   *_conv_t_args(node),
                                                   has_bias="bias" in node.param_shapes),
       _conv_t_lower, "conv", _conv_t_layer_type,
       lambda node: PER_CHANNEL if _conv_t_depthwise(node) else MIXES),
    Op("linear", _linear_run, _linear_shape, _linear_cost, _linear_lower, "linear",
       "Fully Connected", MIXES),
    Op("batchnorm", _bn_run, same_shape,
       lambda node, s, o: N.batch_norm_cost(s[0]),
       lowers_to("batchnorm"), "batchnorm", "BatchNorm", PER_CHANNEL,
       buffers=("running_mean", "running_var")),
    Op("act", lambda node, x: A.activation(x[0], node.attrs["act"]), same_shape,
       lambda node, s, o: A.activation_cost(o, node.attrs["act"]),
       _act_lower, "activation", "Activation", PER_CHANNEL),
    Op("add", lambda node, x: (OB.add(node, x) if node.attrs.get("blocked") else
                               T.add(x[0], x[1], act=node.attrs.get("act", 0))), _add_shape,
       lambda node, s, o: T.add_cost(o, act=node.attrs.get("act", 0)),
       lowers_to("add", "operator", with_act=True), "add/mul", "Add", WHOLE),
    Op("mul", lambda node, x: T.mul(x[0], x[1]), same_shape,
       lambda node, s, o: T.mul_cost(s[0], s[1]),
       lowers_to("mul", "operator"), "add/mul", "mul", WHOLE),
    Op("global_avgpool", lambda node, x: _gap_run(node, x[0]), _gap_shape,
       lambda node, s, o: P.global_avg_pool_cost(s[0]),
       lowers_to("adaptive_avg_pool"), "pool", "Pool", POOL),
    Op("adaptive_avgpool",
       lambda node, x: P.adaptive_avg_pool2d(x[0], node.attrs["out_hw"]), _adaptive_shape,
       lambda node, s, o: P.adaptive_avg_pool2d_cost(s[0], node.attrs["out_hw"]),
       lowers_to("adaptive_avg_pool"), "pool", "Pool", POOL),
    Op("avg_pool2d", lambda node, x: P.avg_pool2d(x[0], **_pool_args(node)), _pool_shape,
       lambda node, s, o: P.avg_pool2d_cost(s[0], **_pool_args(node)),
       lowers_to("avg_pool"), "pool", "Pool", POOL),
    Op("max_pool2d", lambda node, x: _max_pool_run(node, x[0]), _pool_shape,
       lambda node, s, o: P.max_pool2d_cost(s[0], **_pool_args(node)),
       lowers_to("max_pool"), "pool", "Pool", POOL),
    Op("se", _se_run, same_shape, _se_cost, _se_lower, "other", "Squeeze-Excite", WHOLE),
    Op("concat", lambda node, x: OB.move(node, x) if node.attrs.get("blocked") else
       T.concat(x, axis=1), _concat_shape,
       lambda node, s, o: T.concat_cost(s, axis=1),
       copy, "other", "concat", WHOLE),
    Op("channel_shuffle", lambda node, x: OB.move(node, x) if node.attrs.get("blocked") else
       T.channel_shuffle(x[0], node.attrs["groups"]),
       same_shape, lambda node, s, o: T.channel_shuffle_cost(s[0], node.attrs["groups"]),
       copy, "other", "channel_shuffle", WHOLE),
    # A view (no copy, no work); the reader copies it if it needs contiguous input.
    Op("slice", lambda node, x: OB.move(node, x) if node.attrs.get("blocked") else
       x[0][:, node.attrs["start"]:node.attrs["stop"]], _slice_shape,
       lambda node, s, o: Cost(), copy, "other", "slice", VIEW),
    Op("flatten", lambda node, x: T.flatten(x[0]), _flatten_shape,
       lambda node, s, o: T.flatten_cost(s[0]), copy, "other", "flatten", VIEW),
]

# Every op kind tinyinfer knows: the CNN kinds above, then each record module's RECORDS
# (transformer building blocks, attention variants, NAS cells). A kind defined twice is a bug.
_ALL_RECORDS = [*CNN_RECORDS, *ops_transformer.RECORDS, *ops_attention.RECORDS,
                *ops_cells.RECORDS]
OPS: dict[str, Op] = {op.kind: op for op in _ALL_RECORDS}
assert len(OPS) == len(_ALL_RECORDS), "an op kind is defined in two record modules"


def get_op(node: Node) -> Op:
    try:
        return OPS[node.kind]
    except KeyError:
        raise KeyError(f"node {node.name!r} has kind {node.kind!r}, which has no kernel and no "
                       f"cost model; known kinds: {', '.join(sorted(OPS))}") from None


def _by_node(value: ByNode, node: Node) -> str:
    return value(node) if callable(value) else value


def layer_type(node: Node) -> str:
    """The node's type in reports, e.g. "Conv DW 3x3" (its record's layer_type)."""
    return _by_node(get_op(node).layer_type, node)


def memory_role(node: Node) -> str:
    """How the node's output uses memory, one of MEMORY_ROLES (its record's memory)."""
    return _by_node(get_op(node).memory, node)


def buffers(node: Node) -> tuple:
    """The node's params that PyTorch keeps as buffers (its record's buffers)."""
    return tuple(_by_node(get_op(node).buffers, node))


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
