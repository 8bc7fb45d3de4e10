"""The cell grammar of the NAS-searched networks (NASNet-A, PNASNet-5, AmoebaNet-A): one
module that turns a cell written as a table into graph nodes, used by nasnet.py, pnasnet.py
and amoebanet.py alike (as blocks.py / builder.py serve the MBConv family).

A cell (Zoph et al. 2018, Fig. 4; Liu et al. 2018, Fig. 1) takes two hidden states: ``x``,
the previous cell's output, and ``prev``, the one before it. Each is first brought to the
cell's width F by ReLU-1x1 conv-BN (``prev``, if it is at twice x's resolution, by the
factorized reduction instead: two stride-2 1x1 convs on interleaved pixels, concatenated).
Then B combinations, each ``op(input) + op(input)``, where an input is ``x``, ``prev`` or an
earlier combination (by its index); the cell's output concatenates the hidden states its
table lists. Ops:

    sep3, sep5, sep7   ReLU, depthwise kxk, pointwise 1x1, BN, done twice (the first with
                       the cell's stride), as every reference does it
    max3, avg3         3x3 pooling (average: padding not counted); if the input is not F
                       channels wide, a 1x1 conv + BN follows (TF-slim's rule)
    id                 the input itself; at stride 2 or another width: ReLU-1x1 conv-BN
                       (stride 2), TF-slim's rule again
    1x7_7x1            AmoebaNet's factorized 7x7, with its bottleneck: ReLU-1x1 conv-BN to
                       F/4, ReLU, 1x7 conv (the stride along the width), BN, ReLU, 7x1 conv
                       (the stride along the height), BN, ReLU-1x1 conv-BN back to F

In a reduction cell, ops reading ``x`` or ``prev`` have stride 2; ops reading a
combination (already reduced) stride 1.

Padding: how a stride-2 op pads is the one thing the references do differently (``Pads``).
Node names come from a ``Names`` record, one per reference, so its state_dict keys are the
graph's parameter names.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..engine.graph import Graph
from .builder import NetBuilder

OPS = ("sep3", "sep5", "sep7", "max3", "avg3", "id", "1x7_7x1")
Input = str | int          # "x", "prev", or the index of an earlier combination


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, tuple) else (v, v)


@dataclass(frozen=True)
class Cell:
    """A cell table: ``combs`` rows (left op, its input, right op, its input), each row one
    hidden state ``left_op(left_in) + right_op(right_in)``; ``concat``: the hidden states
    concatenated into the cell's output, in order."""
    combs: tuple[tuple[str, Input, str, Input], ...]
    concat: tuple[Input, ...]

    def __post_init__(self):
        for i, (lop, lin, rop, rin) in enumerate(self.combs):
            assert lop in OPS and rop in OPS, f"comb {i}: unknown op in {(lop, rop)}"
            for inp in (lin, rin):
                assert inp in ("x", "prev") or 0 <= inp < i, f"comb {i} reads {inp!r}"


@dataclass(frozen=True)
class Names:
    """A reference's module names inside a cell (its state_dict keys)."""
    comb: str                     # e.g. "comb{i}_{side}": a combination's op, side left/right
    sep: tuple[str, ...]          # a sep op's depthwise, pointwise, BN, twice (6 names)
    x_1x1: str                    # the ReLU-1x1-BN that brings x to width F
    prev_1x1: str                 # the one for prev
    factorized: tuple[str, str, str]   # the factorized reduction's two convs and its BN
    conv: str = "conv"            # inside a ReLU-conv-BN (x_1x1, prev_1x1, id and pool ops)
    bn: str = "bn"
    # the 1x7_7x1 op: its two ReLU-1x1-BN (bottleneck in, out) and the 1x7 / 7x1 convs, BNs
    conv_1x7_7x1: tuple[str, ...] = ("pre_1x1", "conv_1x7", "bn_1x7", "conv_7x1", "bn_7x1",
                                     "post_1x1")


# timm's names (its NASNet-A Large and PNASNet-5 Large, both Cadene's ports of the TF-slim
# checkpoints); timm's PNASNet keeps the factorized reduction inside conv_prev_1x1
TIMM_NAMES = Names(
    comb="comb_iter_{i}_{side}",
    sep=("separable_1.depthwise_conv2d", "separable_1.pointwise_conv2d", "bn_sep_1",
         "separable_2.depthwise_conv2d", "separable_2.pointwise_conv2d", "bn_sep_2"),
    x_1x1="conv_1x1", prev_1x1="conv_prev_1x1",
    factorized=("path_1.conv", "path_2.conv", "final_path_bn"))


# How a reference pads its stride-2 ops (stride-1 ops are always PyTorch's symmetric k//2):
#   "symmetric" PyTorch's k//2 on each side
#   "same"      TensorFlow's SAME, which depends on the input size (timm's pad_type='same'):
#               convs pad in the conv node; pools get a pad node first (-inf before a max
#               pool, zeros before an average pool, which timm's AvgPool2dSame then counts)
#   "shifted"   pytorchcv's NASNet-A Mobile: a zero row and column at the top/left, the
#               op with PyTorch's padding, then the first output row and column cropped
#               (every sep op of such a cell is wrapped so, as pytorchcv does)
#   "tf"        TensorFlow's own SAME (AmoebaNet's TF reference): as "same", but an average
#               pool never counts its padding (the avg_pool2d_same kind), as tf.nn.avg_pool
PADS = ("symmetric", "same", "shifted", "tf")


class CellBuilder:
    """Adds NAS cells to a NetBuilder's graph; ``pads`` is the current cell's padding."""

    def __init__(self, b: NetBuilder, names: Names):
        self.b, self.names = b, names
        self.pads = "symmetric"

    # ---- single layers ------------------------------------------------------------------
    def relu(self, name, x):
        return self.b.act(name, x, "relu")

    def pad(self, name, x, pads, value=0.0, kernel=None, stride=None):
        self.b.graph.add_node(name, "pad", [x], {"pads": pads, "value": value,
                                                 "kernel": kernel, "stride": stride})
        self.b.channels[name] = self.b.channels[x]
        return name

    def conv(self, name, x, out_ch, kernel, stride=1, depthwise=False):
        """kernel, stride: ints, or (h, w) pairs (the 1x7_7x1 op's)."""
        groups = self.b.channels[x] if depthwise else 1
        if self.pads in ("same", "tf") and max(_pair(stride)) > 1:
            return self.b.conv_same(name, x, out_ch, kernel, stride, groups=groups)
        return self.b.conv(name, x, out_ch, kernel, stride, groups=groups)

    def relu_conv_bn(self, prefix, x, out_ch, stride=1):
        """ReLU, 1x1 conv, BN (the references' ActConvBn / NasConv)."""
        y = self.conv(f"{prefix}.{self.names.conv}", self.relu(f"{prefix}.act", x), out_ch, 1,
                      stride)
        return self.b.bn(f"{prefix}.{self.names.bn}", y)

    # ---- ops ----------------------------------------------------------------------------
    def sep(self, prefix, x, out_ch, kernel, stride):
        """(ReLU, depthwise kxk, pointwise 1x1, BN) twice; the first has the stride and
        already ``out_ch`` outputs (every reference's "stem cell" rule, and the same as
        keeping the input width wherever input and output widths are equal)."""
        dw1, pw1, bn1, dw2, pw2, bn2 = (f"{prefix}.{n}" for n in self.names.sep)
        shifted = self.pads == "shifted"
        y = self.relu(f"{prefix}.act_1", x)
        if shifted:
            y = self.pad(f"{prefix}.shift_1", y, (1, 0, 1, 0))
        y = self.b.bn(bn1, self.conv(pw1, self.conv(dw1, y, self.b.channels[y], kernel,
                                                     stride, depthwise=True), out_ch, 1))
        if shifted:   # after the BN, which then folds into the conv (BN and crop commute)
            y = self.pad(f"{prefix}.crop_1", y, (-1, 0, -1, 0))
        y = self.relu(f"{prefix}.act_2", y)
        y = self.conv(pw2, self.conv(dw2, y, out_ch, kernel, depthwise=True), out_ch, 1)
        return self.b.bn(bn2, y)

    def pool(self, prefix, x, kind, stride):
        """3x3 max or average pool (padding not counted in the average)."""
        b, name = self.b, f"{prefix}.pool"
        avg = dict(count_include_pad=False) if kind == "avg_pool2d" else {}
        if stride == 1 or self.pads == "symmetric":
            return b.pool(name, x, kind, 3, stride, padding=1, **avg)
        if self.pads == "tf" and avg:
            b.graph.add_node(name, "avg_pool2d_same", [x], {"kernel": 3, "stride": stride})
            b.channels[name] = b.channels[x]
            return name
        if self.pads in ("same", "tf"):
            value = float("-inf") if kind == "max_pool2d" else 0.0
            y = self.pad(f"{prefix}.pad", x, "same", value, kernel=3, stride=stride)
            return b.pool(name, y, kind, 3, stride, padding=0)
        y = self.pad(f"{prefix}.shift", x, (1, 0, 1, 0))
        y = b.pool(name, y, kind, 3, stride, padding=1, **avg)
        return self.pad(f"{prefix}.crop", y, (-1, 0, -1, 0))

    def conv_1x7_7x1(self, prefix, x, out_ch, stride):
        """ReLU-1x1-BN to out_ch / 4, (ReLU, 1x7 conv, BN), (ReLU, 7x1 conv, BN), ReLU-1x1-BN
        to out_ch; the 1x7 conv strides along the width, the 7x1 along the height."""
        pre, conv_1x7, bn_1x7, conv_7x1, bn_7x1, post = (f"{prefix}.{n}"
                                                        for n in self.names.conv_1x7_7x1)
        mid = out_ch // 4
        y = self.relu_conv_bn(pre, x, mid)
        y = self.conv(conv_1x7, self.relu(f"{conv_1x7}.act", y), mid, (1, 7), (1, stride))
        y = self.conv(conv_7x1, self.relu(f"{conv_7x1}.act", self.b.bn(bn_1x7, y)), mid,
                      (7, 1), (stride, 1))
        return self.relu_conv_bn(post, self.b.bn(bn_7x1, y), out_ch)

    def op(self, prefix, op, x, width, stride):
        in_ch = self.b.channels[x]
        if op == "1x7_7x1":
            return self.conv_1x7_7x1(prefix, x, width, stride)
        if op.startswith("sep"):
            return self.sep(prefix, x, width, int(op[3:]), stride)
        if op == "id":
            if stride == 1 and in_ch == width:
                return x
            return self.relu_conv_bn(prefix, x, width, stride)
        y = self.pool(prefix, x, {"max3": "max_pool2d", "avg3": "avg_pool2d"}[op], stride)
        if in_ch != width:
            y = self.b.bn(f"{prefix}.{self.names.bn}",
                          self.conv(f"{prefix}.{self.names.conv}", y, width, 1))
        return y

    # ---- the factorized reduction and the cell --------------------------------------------
    def factorized_reduction(self, prefix, x, width):
        """ReLU, then two stride-2 paths of width/2 channels each, on interleaved pixels:
        path 1 the even rows/columns, path 2 the odd ones (a one-pixel shift, zero-filled at
        the bottom/right); 1x1 convs, concatenated, BN."""
        conv1, conv2, bn = (f"{prefix}.{n}" for n in self.names.factorized)
        x = self.relu(f"{conv1}.act", x)
        p1 = self.b.pool(f"{conv1}.pool", x, "avg_pool2d", 1, 2)
        shifted = self.pad(f"{conv2}.shift", x, (-1, 1, -1, 1))
        p2 = self.b.pool(f"{conv2}.pool", shifted, "avg_pool2d", 1, 2)
        halves = [self.b.conv(conv1, p1, width // 2, 1), self.b.conv(conv2, p2, width // 2, 1)]
        return self.b.bn(bn, self.b.concat(f"{prefix}.path_cat", halves))

    def cell(self, prefix, cell: Cell, x, prev, width, reduction, prev_mode, pads):
        """One cell; returns its output. prev_mode: "1x1" (ReLU-1x1-BN), "factorized"
        (prev is at twice x's resolution) or "raw" (used as it is: the first stem cell)."""
        self.pads = pads
        n = self.names
        states = {"x": self.relu_conv_bn(f"{prefix}.{n.x_1x1}", x, width)}
        states["prev"] = {"1x1": lambda: self.relu_conv_bn(f"{prefix}.{n.prev_1x1}", prev, width),
                          "factorized": lambda: self.factorized_reduction(prefix, prev, width),
                          "raw": lambda: prev}[prev_mode]()
        for i, (lop, lin, rop, rin) in enumerate(cell.combs):
            sides = []
            for side, op, inp in (("left", lop, lin), ("right", rop, rin)):
                stride = 2 if reduction and inp in ("x", "prev") else 1
                sides.append(self.op(f"{prefix}.{n.comb.format(i=i, side=side)}", op,
                                     states[inp], width, stride))
            states[i] = self.b.add(f"{prefix}.comb{i}", *sides)
        return self.b.concat(f"{prefix}.cat", [states[s] for s in cell.concat])


@dataclass(frozen=True)
class Layer:
    """One cell of a network: its module name, table, width F, whether it reduces, how it
    pads its stride-2 ops, and whether it is one of the stem cells (which read the stem
    conv's output, and to which skip_reduction_prev does not apply)."""
    name: str
    cell: Cell
    width: int
    reduction: bool = False
    pads: str = "symmetric"
    stem: bool = False


def build_cell_net(layers: list[Layer], names: Names, *, stem: tuple[str, str, int],
                   head: str, skip_reduction_prev: bool = False, num_classes: int = 1000,
                   bn_eps: float = 1e-3) -> Graph:
    """stem conv (3x3, stride 2, no padding) + BN -> cells -> ReLU -> global average pool
    -> fully connected. ``stem``: the stem conv's and BN's names and its channels;
    ``head``: the classifier's name. Each cell reads (x, prev) = the last two outputs; the
    first stem cell's prev is the stem conv's output, used raw. ``skip_reduction_prev``: the
    cell after a (non-stem) reduction cell takes as prev the reduction cell's own prev, not
    its input (timm's NASNet-A Large; pytorchcv's skip_reduction_layer_input=True)."""
    for layer in layers:
        if layer.pads not in PADS:
            raise InputError(f"{layer.name}: padding must be one of {PADS}, got {layer.pads!r}")
    b = NetBuilder(bn_eps=bn_eps)
    conv_name, bn_name, stem_ch = stem
    x = b.bn(bn_name, b.conv(conv_name, Graph.INPUT, stem_ch, 3, 2, padding=0))
    cells = CellBuilder(b, names)
    prev, prev_mode = x, "raw"
    for layer in layers:
        out = cells.cell(layer.name, layer.cell, x, prev, layer.width, layer.reduction,
                         prev_mode, layer.pads)
        if not (layer.reduction and skip_reduction_prev and not layer.stem):
            prev = x
        x = out
        # after a reduction, prev (one cell further back) is at twice x's resolution
        prev_mode = "factorized" if layer.reduction else "1x1"
    x = b.global_pool("global_pool", b.act("final_act", x, "relu"))
    b.linear(head, x, num_classes)
    return b.graph
