"""SqueezeNet 1.0 and 1.1.

Paper: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
<0.5MB model size", arXiv:1602.07360 (2016); version 1.1 is from the authors' repository
(github.com/forresti/SqueezeNet, "SqueezeNet_v1.1": 3x3 stem with 64 filters, pools moved
earlier, 2.4x less computation). Reference implementation:
``torchvision.models.squeezenet1_0`` / ``squeezenet1_1``, whose module names
(features.{i}.squeeze / expand1x1 / expand3x3, classifier.1) are the graph's node names.

A Fire module squeezes with 1x1 convs, then expands with 1x1 and 3x3 convs side by side
and concatenates them: the 3x3 filters, 9x the cost of a 1x1, see only the squeezed
channels and are only half of the output.
"""
from __future__ import annotations

from ..engine.graph import Graph
from .builder import NetBuilder
from .registry import ModelSpec, register

M = "M"   # 3x3 stride-2 max pool, ceil mode (Caffe's pooling arithmetic)

# The paper's Table 1 (1.0) and the v1.1 release notes, as torchvision's features list.
#   ("conv", c, k, s) = stem conv, c filters k x k stride s, no padding, + ReLU
#   (s1, e1, e3)      = Fire module: s1 squeeze 1x1 filters, e1 expand 1x1, e3 expand 3x3
#   M                 = max pool
SQUEEZENETS = {
    "squeezenet1_0": [("conv", 96, 7, 2), M, (16, 64, 64), (16, 64, 64), (32, 128, 128), M,
                      (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256), M,
                      (64, 256, 256)],
    "squeezenet1_1": [("conv", 64, 3, 2), M, (16, 64, 64), (16, 64, 64), M,
                      (32, 128, 128), (32, 128, 128), M,
                      (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)],
}


def fire(b: NetBuilder, x: str, prefix: str, squeeze: int, e1: int, e3: int) -> str:
    s = b.act(f"{prefix}.squeeze_activation", b.conv(f"{prefix}.squeeze", x, squeeze, 1,
                                                     bias=True), "relu")
    a = b.act(f"{prefix}.expand1x1_activation", b.conv(f"{prefix}.expand1x1", s, e1, 1,
                                                       bias=True), "relu")
    c = b.act(f"{prefix}.expand3x3_activation", b.conv(f"{prefix}.expand3x3", s, e3, 3,
                                                       bias=True), "relu")
    return b.concat(f"{prefix}.cat", [a, c])


def squeezenet(table, num_classes: int = 1000) -> Graph:
    b = NetBuilder()
    x = Graph.INPUT
    i = 0                                   # torchvision's index in ``features``
    for row in table:
        if row == M:
            x = b.pool(f"features.{i}", x, "max_pool2d", kernel=3, stride=2, ceil_mode=True)
        elif row[0] == "conv":
            _, c, k, s = row
            x = b.act(f"features.{i + 1}", b.conv(f"features.{i}", x, c, k, s, padding=0,
                                                  bias=True), "relu")
            i += 1                          # the ReLU has its own index
        else:
            x = fire(b, x, f"features.{i}", *row)
        i += 1
    # conv10: a 1x1 conv to the classes, ReLU, then global average pool (no FC layer)
    x = b.act("classifier.2", b.conv("classifier.1", x, num_classes, 1, bias=True), "relu")
    b.global_pool("classifier.3", x)
    return b.graph


def _builder(name):
    def build(num_classes: int = 1000) -> Graph:
        return squeezenet(SQUEEZENETS[name], num_classes)
    build.__doc__ = f"{name} (torchvision's layer list)"
    return build


for _name in SQUEEZENETS:
    register(ModelSpec(
        name=_name,
        build=_builder(_name),
        paper="Iandola et al. 2016, SqueezeNet (arXiv:1602.07360)",
        reference=f"torchvision.models.{_name}",
        layouts={"torchvision": None},
    ))
