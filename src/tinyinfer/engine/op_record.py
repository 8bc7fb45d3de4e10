"""The op record (``Op``) and the small helpers every record module shares.

An op kind's record lives in one of the record modules that ``ops.py`` lists (``ops.py``
itself holds the CNN kinds); this module only defines what a record is, so that those
modules and ``ops.py`` import it without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from .costs import RefOp, numel
from .graph import Node
from ..kernels import activations as A

# How a node's output uses activation memory (memory.py). Every output but a view gets a
# buffer of its own; the other roles say whether the MobileNetV2 paper's streaming trick
# (compute and consume a wide tensor one channel slice at a time) can pass through it.
VIEW = "view"                  # shares its input's buffer, no copy and no work; keeps it alive
PER_CHANNEL = "per_channel"    # output channel c from input channel c only: slice in, slice out
MIXES = "mixes"                # sums over input channels: accumulates from input slices
POOL = "pool"                  # reduces each channel on its own: reads slices, output whole
WHOLE = "whole"                # needs every input channel at once (add, concat, SE, shuffle...)
MEMORY_ROLES = (VIEW, PER_CHANNEL, MIXES, POOL, WHOLE)

ByNode = Union[str, Callable[[Node], str]]   # a fixed value, or one that depends on the node


@dataclass(frozen=True)
class Op:
    """Everything about one op kind; the fields are described in ops.py's docstring."""
    kind: str
    run: Callable          # (node, inputs) -> array
    shape: Callable        # (node, in_shapes) -> shape
    cost: Callable         # (node, in_shapes, out_shape) -> Cost
    lower: Callable        # (node, in_shapes, out_shape, calls) -> [RefOp]
    op_class: str          # one of conventions.OP_CLASSES
    layer_type: ByNode     # report's type column
    memory: ByNode         # one of MEMORY_ROLES
    # param names PyTorch counts as buffers, or a function of the node giving them (a node
    # whose param names depend on its size, e.g. one BN per attention head)
    buffers: Union[tuple, Callable[[Node], tuple]] = ()


# ---- lowering to the reference's operations (what the counting tools see) --------------
def act_ops(code, n, calls) -> list[RefOp]:
    name = A.ACT_NAMES[int(code)]
    return [] if name == "none" else [RefOp(name, n_in=n, n_out=n, call=calls.get(name, "module"))]


def lowers_to(ref_op: str, call: str = "module", with_act: bool = False) -> Callable:
    """The reference runs one ``ref_op`` on the node's input (then the node's activation,
    ``with_act``); ``call``: how it is called, unless the model's ``calls`` say otherwise."""
    def lower(node, in_shapes, out_shape, calls):
        n_out = numel(out_shape)
        ops = [RefOp(ref_op, n_in=numel(in_shapes[0]), n_out=n_out,
                     call=calls.get(node.kind, call))]
        return ops + (act_ops(node.attrs.get("act", 0), n_out, calls) if with_act else [])
    return lower


def same_shape(node, in_shapes):
    """The output has the first input's shape (elementwise ops, norms, ...)."""
    return tuple(in_shapes[0])


copy = lowers_to("copy", "operator")     # data movement: no arithmetic in any convention
