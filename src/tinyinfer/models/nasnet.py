"""NASNet-A: NASNet-A Mobile (4 @ 1056) and NASNet-A Large (6 @ 4032).

Paper: Zoph, Vasudevan, Shlens, Le, "Learning Transferable Architectures for Scalable Image
Recognition", CVPR 2018 (arXiv:1707.07012); the cells are its Fig. 4 (Appendix A). "N @ F":
N normal cells per stage, F the penultimate layer's filters (F/24 per cell branch in the
last stage). References (tests only):

- ``nasnet_4a1056``: pytorchcv's ``pytorchcv/models/nasnet.py`` (``get_model(
  "nasnet_4a1056")``), module names features.init_block, features.stem1_unit,
  features.stem2_unit, features.stage{1,2,3}.unit{j} (each later stage's unit1 is its
  reduction cell), output.fc. It reproduces TensorFlow's stride-2 windows by padding a zero
  row/column at the top/left and cropping the first output row/column ("shifted" cells);
  its first stem cell uses PyTorch's symmetric padding.
- ``nasnetalarge``: timm's ``timm/models/nasnet.py`` (Cadene's port of the TF-slim
  checkpoint), module names conv0, cell_stem_0, cell_stem_1, cell_0 ... cell_17,
  reduction_cell_0 / _1, last_linear; TensorFlow's "SAME" padding (pad_type='same'), and the
  cell after a reduction cell takes the reduction cell's own previous input
  (skip_reduction_layer_input).

Both are the same network shape: a 3x3 stride-2 conv stem without padding (and without
ReLU: every cell starts with one), two reduction cells as stem, then three stages of N
normal cells with a reduction cell between stages, the width doubling at each reduction;
ReLU, global average pool, dropout (nothing at inference), fully connected. BN eps 1e-3 (TF).
"""
from __future__ import annotations

from ..errors import InputError
from ..engine.graph import Graph
from .nas_cells import TIMM_NAMES, Cell, Layer, Names, build_cell_net
from .registry import ModelSpec, register

# Fig. 4 (left): the normal cell. Each row: op on input + op on input; "x" is the previous
# cell's output (h_i), "prev" the one before (h_i-1), both brought to width F by a 1x1 conv.
NORMAL = Cell(
    combs=(("sep5", "x", "sep3", "prev"),
           ("sep5", "prev", "sep3", "prev"),
           ("avg3", "x", "id", "prev"),
           ("avg3", "prev", "avg3", "prev"),
           ("sep3", "x", "id", "x")),
    concat=("prev", 0, 1, 2, 3, 4))

# Fig. 4 (right): the reduction cell (stride 2 on x and prev); its two stem cells are the
# same table (the second factorizes its prev, at twice the resolution).
REDUCTION = Cell(
    combs=(("sep5", "x", "sep7", "prev"),
           ("max3", "x", "sep7", "prev"),
           ("avg3", "x", "sep5", "prev"),
           ("id", 1, "avg3", 0),
           ("sep3", 0, "max3", "x")),
    concat=(1, 2, 3, 4))

PYTORCHCV_NAMES = Names(
    comb="comb{i}_{side}",
    sep=("conv1.conv.dw_conv", "conv1.conv.pw_conv", "conv1.bn",
         "conv2.conv.dw_conv", "conv2.conv.pw_conv", "conv2.bn"),
    x_1x1="conv1x1", prev_1x1="conv1x1_prev",
    factorized=("path.path1.conv", "path.path2.conv", "path.bn"))



def _check(num_cells, penultimate_filters):
    if not (isinstance(num_cells, int) and num_cells >= 1):
        raise InputError(f"num_cells (N of 'N @ F') must be an integer >= 1, got {num_cells!r}")
    if not (isinstance(penultimate_filters, int) and penultimate_filters >= 96
            and penultimate_filters % 24 == 0):
        raise InputError(f"penultimate_filters (F of 'N @ F') must be a multiple of 24, at "
                         f"least 96 (the last stage concatenates 6 branches of F/24 x 4 "
                         f"channels; the stem cells F/96), got {penultimate_filters!r}")


def _stage_layers(num_cells, f, name_of, pads):
    """Three stages of ``num_cells`` normal cells, a reduction cell before stages 2 and 3;
    widths f, 2f, 4f. name_of(stage, j, reduction) -> the reference's module name."""
    layers = []
    for s in range(3):
        if s:
            layers.append(Layer(name_of(s, 0, True), REDUCTION, f << s, True, pads))
        layers += [Layer(name_of(s, j, False), NORMAL, f << s) for j in range(num_cells)]
    return layers


def nasnet_mobile(num_cells: int = 4, penultimate_filters: int = 1056,
                  num_classes: int = 1000) -> Graph:
    """pytorchcv's NASNet-A (nasnet_4a1056): 32-channel stem conv, shifted padding."""
    _check(num_cells, penultimate_filters)
    f = penultimate_filters // 24

    def name_of(s, j, reduction):   # pytorchcv: stage2/3's unit1 is the reduction cell
        return f"features.stage{s + 1}.unit{j + 1 + (s > 0 and not reduction)}"
    layers = [Layer("features.stem1_unit", REDUCTION, f // 4, True, "symmetric", stem=True),
              Layer("features.stem2_unit", REDUCTION, f // 2, True, "shifted", stem=True),
              *_stage_layers(num_cells, f, name_of, "shifted")]
    return build_cell_net(layers, PYTORCHCV_NAMES, num_classes=num_classes, head="output.fc",
                          stem=("features.init_block.conv", "features.init_block.bn", 32))


def nasnet_large(num_cells: int = 6, penultimate_filters: int = 4032,
                 num_classes: int = 1000) -> Graph:
    """timm's nasnetalarge: 96-channel stem conv, TensorFlow SAME padding, cells numbered
    through the stages (cell_0 ...) with the reduction cells named apart."""
    _check(num_cells, penultimate_filters)
    f = penultimate_filters // 24

    def name_of(s, j, reduction):
        return f"reduction_cell_{s - 1}" if reduction else f"cell_{s * num_cells + j}"
    layers = [Layer("cell_stem_0", REDUCTION, f // 4, True, "same", stem=True),
              Layer("cell_stem_1", REDUCTION, f // 2, True, "same", stem=True),
              *_stage_layers(num_cells, f, name_of, "same")]
    return build_cell_net(layers, TIMM_NAMES, num_classes=num_classes, head="last_linear",
                          stem=("conv0.conv", "conv0.bn", 96), skip_reduction_prev=True)


register(ModelSpec(
    name="nasnet_4a1056",
    build=nasnet_mobile,
    paper="Zoph et al. 2018, NASNet-A Mobile 4 @ 1056 (arXiv:1707.07012)",
    reference="pytorchcv.models.nasnet.nasnet_4a1056",
    layouts={"pytorchcv": None},
    defaults={"num_cells": 4},   # N; F is nasnet_mobile's argument (options are <= 100)
))

register(ModelSpec(
    name="nasnetalarge",
    build=nasnet_large,
    paper="Zoph et al. 2018, NASNet-A Large 6 @ 4032 (arXiv:1707.07012)",
    reference="timm.models.nasnetalarge",
    layouts={"timm": None},
    defaults={"num_cells": 6},
    # timm's pretrained_cfg: 331 crop at crop_pct 0.911, bicubic, mean = std = 0.5
    input_size=331, resize=363, interpolation="bicubic",
    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
))
