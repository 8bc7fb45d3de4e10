"""RegNet's "activations": a network's third size, beside its FLOPs and parameters.

Radosavovic et al. 2020 (Designing Network Design Spaces, arXiv:2003.13678) define a
network's activations as "the size of the output tensors of all conv layers" and find they
predict GPU inference time better than FLOPs do (their comparison with EfficientNet,
/work/shared/seeds/001: EfficientNet-B0 0.4 GFLOPs and 6.7M activations, RegNetY-400MF
0.4 GFLOPs and 3.9M). Their code (pycls's ``complexity`` functions) also counts the output
of each fully connected layer, and the two 1x1 convs inside squeeze-excite (each on a 1x1
map: as many values as it has output channels); BN, activations, pooling and adds count
nothing, since they write over a tensor a conv already produced. We count the same:

    activations = sum over conv and linear nodes of their output's size (one image)
                + for each squeeze-excite node: reduced channels + channels

tinyinfer fuses SE's two convs into one ``se`` node (ops.py), hence its own line. Attention
matmuls are not convs and count nothing here (RegNet predates them in mobile networks).
"""
from __future__ import annotations

from ..engine.costs import numel
from ..engine.graph import Graph
from ..engine.ops import get_op, infer_shapes

# the op classes (ops.py records) whose outputs RegNet counts
COUNTED_CLASSES = ("conv", "linear")


def activations(graph: Graph, resolution: int = 224) -> int:
    """RegNet's activation count of ``graph`` for one RGB image of resolution x resolution."""
    shapes = infer_shapes(graph, (1, 3, resolution, resolution))
    total = 0
    for node in graph:
        if node.kind == "se":
            reduced, channels = node.param_shapes[f"{node.attrs['reduce']}.weight"][:2]
            total += reduced + channels
        elif _op_class(node) in COUNTED_CLASSES:
            total += numel(shapes[node.name])
    return total


def _op_class(node) -> str:
    op_class = get_op(node).op_class
    return op_class(node) if callable(op_class) else op_class


# RegNet's comparison with EfficientNet (seeds/001): name -> (tinyinfer model, resolution,
# GFLOPs, params M, activations M) as published. pycls runs each EfficientNet at its own
# resolution (B1 240 ... B5 456) and each RegNet at 224.
REGNET_VS_EFFICIENTNET = {
    "EfficientNet-B0": ("efficientnet_b0", 224, 0.4, 5.3, 6.7),
    "RegNetY-400MF": ("regnety_004", 224, 0.4, 4.3, 3.9),
    "EfficientNet-B1": ("efficientnet_b1", 240, 0.7, 7.8, 10.9),
    "RegNetY-600MF": ("regnety_006", 224, 0.6, 6.1, 4.3),
    "EfficientNet-B2": ("efficientnet_b2", 260, 1.0, 9.2, 13.8),
    "RegNetY-800MF": ("regnety_008", 224, 0.8, 6.3, 5.2),
    "EfficientNet-B3": ("efficientnet_b3", 300, 1.8, 12.0, 23.8),
    "RegNetY-1.6GF": ("regnety_016", 224, 1.6, 11.2, 8.0),
    "EfficientNet-B4": ("efficientnet_b4", 380, 4.2, 19.0, 48.5),
    "RegNetY-4.0GF": ("regnety_040", 224, 4.0, 20.6, 12.3),
    "EfficientNet-B5": ("efficientnet_b5", 456, 9.9, 30.0, 98.9),
    "RegNetY-8.0GF": ("regnety_080", 224, 8.0, 39.2, 18.0),
}


def regnet_vs_efficientnet():
    """RegNet's table beside EfficientNet: GFLOPs (= MACs, RegNet's usage), parameters and
    activations from tinyinfer's counts next to the published ones."""
    from .paper_tables import Table, counting_model
    rows = []
    for label, (name, res, gflops, params, acts) in REGNET_VS_EFFICIENTNET.items():
        model = counting_model(name)
        rep = model.summary(resolution=res)
        rows.append((label, res, round(rep.macs / 1e9, 2), gflops, round(rep.params / 1e6, 1),
                     params, round(activations(model.graph, res) / 1e6, 1), acts))
    return Table("RegNet vs EfficientNet: flops, params, activations",
                 ("model", "res", "GFLOPs", "paper", "M params", "paper", "M acts", "paper"),
                 rows, ["EfficientNet-B4 and -B5 count 4.5% and 3.7% more FLOPs than published "
                        "(4.39 vs 4.2, 10.27 vs 9.9 G), B4 2% more activations (49.5 vs 48.5M), "
                        "with the same stage widths and depths as pycls's configs: the cause "
                        "is not found yet"])
