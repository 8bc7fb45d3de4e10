"""AmoebaNet-A, the mobile-size ImageNet network (N = 4, F = 50).

Paper: Real, Aggarwal, Huang, Le, "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019 (arXiv:1802.01548); the cells are its Fig. 4 (normal and reduction cell of
AmoebaNet-A), found by aging evolution in NASNet's search space, stacked as NASNet stacks its
cells (Zoph et al. 2018). "N = 4, F = 50": N normal cells per stage, F filters per cell
branch in the first stage. Reference (tests only): no PyTorch package ships AmoebaNet; the
test suite ports the TensorFlow reference, tensorflow/tpu models/official/amoeba_net
(tests/amoebanet_ref.py), whose module names the graph uses: stem.conv0, cell_stem_0,
cell_stem_1, cell_0 ... cell_11, reduction_cell_0 / _1, final_layer.fc.

The network: a 3x3 stride-2 conv without padding (32 channels) and BN; two reduction cells
as stem, F/4 and F/2 wide; three stages of N normal cells, a reduction cell before stages 2
and 3, the width doubling there (F, 2F, 4F); ReLU, global average pool, fully connected
(the dropout before it and the auxiliary head are training-only). Every op pads as
TensorFlow's "SAME" (an average pool never counting the padding); BN eps 1e-3 (TF).
"""
from __future__ import annotations

from ..errors import InputError
from ..engine.graph import Graph
from .nas_cells import Cell, Layer, build_cell_net
from .pnasnet import NAMES
from .registry import ModelSpec, register

# Fig. 4 (left), the normal cell, row by row as model_specs.py lists it: each hidden state is
# op(input) + op(input), where "x" is the previous cell's output, "prev" the one before (both
# brought to F channels), and 0 ... 4 the cell's earlier hidden states. The output
# concatenates the states that TF's used_hiddenstates marks unused: prev, 1, 2 and 4 (4F).
NORMAL = Cell(
    combs=(("avg3", "x", "max3", "x"),
           ("sep3", "prev", "id", "prev"),
           ("id", "x", "avg3", "prev"),
           ("sep3", "x", "sep5", 0),
           ("avg3", 3, "sep3", "x")),
    concat=("prev", 1, 2, 4))

# Fig. 4 (right), the reduction cell: ops reading x or prev have stride 2. All five hidden
# states are concatenated (5F).
REDUCTION = Cell(
    combs=(("sep3", "prev", "avg3", "x"),
           ("max3", "x", "sep7", 0),
           ("max3", "prev", "max3", "x"),
           ("sep3", 2, "1x7_7x1", "x"),
           ("avg3", "prev", "sep7", "x")),
    concat=(0, 1, 2, 3, 4))


def amoebanet_a(num_cells: int = 4, num_filters: int = 50, num_classes: int = 1000) -> Graph:
    """num_cells: N, normal cells per stage; num_filters: F."""
    if not (isinstance(num_cells, int) and num_cells >= 1):
        raise InputError(f"num_cells (N) must be an integer >= 1, got {num_cells!r}")
    if not (isinstance(num_filters, int) and num_filters >= 16 and num_filters % 2 == 0):
        raise InputError(f"num_filters (F) must be an even integer >= 16 (the first stem cell "
                         f"is int(F/4) wide, and its 1x7_7x1 bottleneck a quarter of that; "
                         f"the normal cells concatenate factorized reductions of F/2 + F/2), "
                         f"got {num_filters!r}")
    f = num_filters
    # the stem cells' widths are TF's int(F x 1/4) and int(F x 1/2): 12 and 25 for F = 50
    layers = [Layer("cell_stem_0", REDUCTION, f // 4, True, "tf", stem=True),
              Layer("cell_stem_1", REDUCTION, f // 2, True, "tf", stem=True)]
    for stage in range(3):
        if stage:
            layers.append(Layer(f"reduction_cell_{stage - 1}", REDUCTION, f << stage, True,
                                "tf"))
        layers += [Layer(f"cell_{stage * num_cells + j}", NORMAL, f << stage, pads="tf")
                   for j in range(num_cells)]
    return build_cell_net(layers, NAMES, num_classes=num_classes, head="final_layer.fc",
                          stem=("stem.conv0", "stem.conv0_bn", 32))


register(ModelSpec(
    name="amoebanet_a_mobile",
    build=amoebanet_a,
    paper="Real et al. 2019, AmoebaNet-A mobile N=4, F=50 (arXiv:1802.01548)",
    reference="tests/amoebanet_ref.AmoebaNetA (a PyTorch port of tensorflow/tpu amoeba_net)",
    layouts={"tf_port": None},
    defaults={"num_cells": 4, "num_filters": 50},
    # TF's inception preprocessing: central crop 0.875, bilinear, mean = std = 0.5
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
))
