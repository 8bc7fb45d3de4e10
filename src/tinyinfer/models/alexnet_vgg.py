"""AlexNet and VGG: plain stacks of conv + ReLU and max pooling, then three FC layers.

Papers: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012, as re-specified in Krizhevsky, "One weird trick for
parallelizing convolutional neural networks", arXiv:1404.5997 (the single-GPU variant
torchvision implements: 64/192/384/256/256 filters, no local response norm); Simonyan &
Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015
(arXiv:1409.1556), configuration D = VGG16. Reference implementations:
``torchvision.models.alexnet`` and ``torchvision.models.vgg16``, whose module names
(features.{i}, classifier.{i}, indices counting the ReLU, pool and dropout modules too)
are the graph's node names.
"""
from __future__ import annotations

from ..engine.graph import Graph
from .builder import NetBuilder
from .registry import ModelSpec, register

M = "M"   # a max pool

# AlexNet ("one weird trick" Table / torchvision): convs as
#   (out channels, kernel, stride, padding); M = 3x3 stride-2 max pool
ALEXNET = [(64, 11, 4, 2), M, (192, 5, 1, 2), M, (384, 3, 1, 1), (256, 3, 1, 1),
           (256, 3, 1, 1), M]

# VGG paper Table 1, column D: 3x3 stride-1 convs (padding 1) by output channels;
# M = 2x2 stride-2 max pool
VGG16 = [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M]


def plain_features(b: NetBuilder, x: str, rows, pool_kernel: int) -> str:
    """conv + ReLU per row, a max pool per M. Node names are torchvision's Sequential
    indices: a conv takes one index, its ReLU the next, a pool one."""
    i = 0
    for row in rows:
        if row == M:
            x = b.pool(f"features.{i}", x, "max_pool2d", kernel=pool_kernel, stride=2)
            i += 1
            continue
        out_ch, k, s, p = row if isinstance(row, tuple) else (row, 3, 1, 1)
        x = b.conv(f"features.{i}", x, out_ch, k, s, padding=p, bias=True)
        x = b.act(f"features.{i + 1}", x, "relu")
        i += 2
    return x


def fc_head(b: NetBuilder, x: str, pooled_hw: int, linear_indices, num_classes: int) -> str:
    """Adaptive average pool to pooled_hw x pooled_hw (an identity at 224 input), flatten,
    then FC-4096 + ReLU, FC-4096 + ReLU, FC-classes (dropout is a no-op at inference).
    ``linear_indices``: the three linears' indices in torchvision's classifier."""
    x = b.adaptive_pool("avgpool", x, (pooled_hw, pooled_hw))
    x = b.flatten("flatten", x, b.channels[x] * pooled_hw * pooled_hw)
    first, second, last = linear_indices           # each ReLU is the next index
    x = b.act(f"classifier.{first + 1}", b.linear(f"classifier.{first}", x, 4096), "relu")
    x = b.act(f"classifier.{second + 1}", b.linear(f"classifier.{second}", x, 4096), "relu")
    return b.linear(f"classifier.{last}", x, num_classes)


def alexnet(num_classes: int = 1000) -> Graph:
    b = NetBuilder()
    x = plain_features(b, Graph.INPUT, ALEXNET, pool_kernel=3)
    fc_head(b, x, 6, (1, 4, 6), num_classes)     # classifier.0 and .3 are dropout
    return b.graph


def vgg16(num_classes: int = 1000) -> Graph:
    b = NetBuilder()
    x = plain_features(b, Graph.INPUT, VGG16, pool_kernel=2)
    fc_head(b, x, 7, (0, 3, 6), num_classes)     # classifier.2 and .5 are dropout
    return b.graph


register(ModelSpec(
    name="alexnet",
    build=alexnet,
    paper="Krizhevsky et al. 2012, ImageNet Classification with Deep CNNs; single-tower "
          "variant of Krizhevsky 2014 (arXiv:1404.5997)",
    reference="torchvision.models.alexnet",
    layouts={"torchvision": None},
))

register(ModelSpec(
    name="vgg16",
    build=vgg16,
    paper="Simonyan & Zisserman 2015, Very Deep Convolutional Networks (arXiv:1409.1556)",
    reference="torchvision.models.vgg16",
    layouts={"torchvision": None},
))
