"""PNASNet-5 Large and PNASNet-5 Mobile.

Paper: Liu, Zoph, Neumann, Shlens, Hua, Li, Fei-Fei, Yuille, Huang, Murphy, "Progressive
Neural Architecture Search", ECCV 2018 (arXiv:1712.00559); the cell is its Fig. 1 (left).
Reference (tests only): timm's ``timm/models/pnasnet.py`` (Cadene's port of the TF-slim
checkpoint, ``nets/nasnet/pnasnet.py``), module names conv_0, cell_stem_0, cell_stem_1,
cell_0 ... cell_11, last_linear; TensorFlow's "SAME" padding (pad_type='same'). PNASNet-5
Mobile has no PyTorch package: its reference is the test suite's port of TF-slim's
``build_pnasnet_mobile`` (tests/nas_tf_ref.py, timm's module names), mobile_imagenet_config:
9 cells, F = 54, a 32-channel stem.

One cell type throughout: a cell is a reduction cell (stride 2 on its inputs, twice the
width) at positions num_cells/3 and 2 num_cells/3 (TF-slim's calc_reduction_layers: cells 4
and 8 of 12), normal otherwise. The stem: a 3x3 stride-2 conv without padding to
32 x stem_multiplier channels and BN, then two stride-2 cells of width F/4 and F/2.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import InputError
from ..engine.graph import Graph
from .nas_cells import TIMM_NAMES, Cell, Layer, build_cell_net
from .registry import ModelSpec, register

# Fig. 1 (left), as TF-slim's PNasNetNormalCell lists it ("left" = the older input, prev):
# a 1x1 conv follows a pool whose input is not F wide (the first stem cell's), and the
# identity on x becomes a stride-2 1x1 conv in reduction cells (nas_cells' rules).
PNASNET5 = Cell(
    combs=(("sep5", "prev", "max3", "prev"),
           ("sep7", "x", "max3", "x"),
           ("sep5", "x", "sep3", "x"),
           ("sep3", 2, "max3", "x"),
           ("sep3", "prev", "id", "x")),
    concat=(0, 1, 2, 3, 4))

# timm keeps the factorized reduction inside conv_prev_1x1
NAMES = replace(TIMM_NAMES, factorized=("conv_prev_1x1.path_1.conv",
                                        "conv_prev_1x1.path_2.conv",
                                        "conv_prev_1x1.final_path_bn"))


def reduction_cells(num_cells: int) -> tuple[int, int]:
    """TF-slim's calc_reduction_layers for two reductions: int(num_cells * k / 3)."""
    return int(num_cells / 3), int(num_cells * 2 / 3)


def pnasnet(num_cells: int = 12, num_conv_filters: int = 216, stem_channels: int = 96,
            num_classes: int = 1000) -> Graph:
    """num_cells, num_conv_filters (F): TF-slim's hyperparameters (Large: 12 and 216, the
    paper's N = 4 cells per stage, F = 216); stem_channels: 32 x stem_multiplier."""
    if not (isinstance(num_cells, int) and num_cells >= 3):
        raise InputError(f"num_cells must be an integer >= 3 (a stage before each of the two "
                         f"reduction cells), got {num_cells!r}")
    if not (isinstance(num_conv_filters, int) and num_conv_filters >= 8):
        raise InputError(f"num_conv_filters (F) must be an integer >= 8 (the stem cells are "
                         f"int(F/4) and int(F/2) wide), got {num_conv_filters!r}")
    if not (isinstance(stem_channels, int) and stem_channels >= 1):
        raise InputError(f"stem_channels must be an integer >= 1, got {stem_channels!r}")
    # TF-slim's int(F x scaling): Mobile's F = 54 gives stem cells 13 and 27 wide (and the
    # factorized reduction int(27/2) = 13 channels per path: nas_cells handles the 26)
    f = num_conv_filters
    layers = [Layer("cell_stem_0", PNASNET5, f // 4, True, "same", stem=True),
              Layer("cell_stem_1", PNASNET5, f // 2, True, "same", stem=True)]
    for i in range(num_cells):
        if i in reduction_cells(num_cells):
            f *= 2
        layers.append(Layer(f"cell_{i}", PNASNET5, f, i in reduction_cells(num_cells), "same"))
    return build_cell_net(layers, NAMES, num_classes=num_classes, head="last_linear",
                          stem=("conv_0.conv", "conv_0.bn", stem_channels))


register(ModelSpec(
    name="pnasnet5large",
    build=pnasnet,
    paper="Liu et al. 2018, PNASNet-5 Large (arXiv:1712.00559)",
    reference="timm.models.pnasnet5large",
    layouts={"timm": None},
    defaults={"num_cells": 12},   # F and the stem are pnasnet's arguments (options are <= 100)
    # timm's pretrained_cfg: 331 crop at crop_pct 0.911, bicubic, mean = std = 0.5
    input_size=331, resize=363, interpolation="bicubic",
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
))


def pnasnet_mobile(num_cells: int = 9, num_classes: int = 1000) -> Graph:
    """TF-slim's mobile_imagenet_config: F = 54, stem_multiplier 1 (32 channels)."""
    return pnasnet(num_cells, 54, 32, num_classes)


register(ModelSpec(
    name="pnasnet5mobile",
    build=pnasnet_mobile,
    paper="Liu et al. 2018, PNASNet-5 Mobile (arXiv:1712.00559)",
    reference="tests/nas_tf_ref.PNASNetMobile (a PyTorch port of TF-slim's pnasnet_mobile)",
    layouts={"timm": None},
    defaults={"num_cells": 9},
    # TF-slim's inception preprocessing: central crop 0.875, bilinear, mean = std = 0.5
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
))
