"""Test-side PyTorch reference for PNASNet-5 Mobile, which no PyTorch package ships: written
from the TensorFlow reference, TF-slim's ``research/slim/nets/nasnet/pnasnet.py``
(``mobile_imagenet_config``, ``PNasNetNormalCell``) and ``nasnet_utils.py`` (the base cell,
``factorized_reduction``), tensorflow/models, Copyright 2018 The TensorFlow Authors,
Apache License 2.0. It follows TF-slim's structure (an operations list and hidden-state
indices per cell, TF's SAME padding), not tinyinfer's cell grammar, so the two are
independent; module names follow timm's PNASNet port (cell_{i}.comb_iter_{j}_{left|right},
separable_1.depthwise_conv2d, ...), so its state_dict loads into tinyinfer's graph.

TF-slim details kept: the stem is a 3x3 stride-2 VALID conv to 32 x stem_multiplier
channels and two stride-2 cells at filter scaling 1/4 and 1/2 (int(): 54 -> 13, 27); the
reduction cells are cells int(9/3) = 3 and int(18/3) = 6; the factorized reduction gives
int(F/2) channels per path (26 for F = 27), and a pool whose input is not F wide is followed
by a 1x1 conv + BN; "none" at stride 2 is ReLU-1x1 conv (stride 2)-BN. BN eps 1e-3.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# PNasNetNormalCell: (operation, hidden-state index) pairs, left then right, per combination;
# hidden state 0 = the current input (x), 1 = the previous one, 2 + j = combination j
OPERATIONS = ["separable_5x5_2", "max_pool_3x3", "separable_7x7_2", "max_pool_3x3",
              "separable_5x5_2", "separable_3x3_2", "separable_3x3_2", "max_pool_3x3",
              "separable_3x3_2", "none"]
HIDDENSTATE_INDICES = [1, 1, 0, 0, 0, 0, 4, 0, 1, 0]


def _same_pad(x, k, s, value=0.0):
    """TensorFlow's SAME padding for a k x k window at stride s (odd pixel after)."""
    pads = []
    for size in (x.shape[3], x.shape[2]):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)


class SameConv(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(_same_pad(x, self.kernel_size[0], self.stride[0]), self.weight, None,
                        self.stride, 0, 1, self.groups)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3)


class Separable(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.depthwise_conv2d = SameConv(cin, cin, k, stride, groups=cin, bias=False)
        self.pointwise_conv2d = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise_conv2d(self.depthwise_conv2d(x))


class StackedSeparable(nn.Module):
    """TF-slim's _stacked_separable_conv with 2 layers: (ReLU, separable, BN) x 2."""
    def __init__(self, cin, filters, k, stride):
        super().__init__()
        self.separable_1 = Separable(cin, filters, k, stride)
        self.bn_sep_1 = bn(filters)
        self.separable_2 = Separable(filters, filters, k, 1)
        self.bn_sep_2 = bn(filters)

    def forward(self, x):
        x = self.bn_sep_1(self.separable_1(F.relu(x)))
        return self.bn_sep_2(self.separable_2(F.relu(x)))


class ActConvBn(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.bn = bn(cout)

    def forward(self, x):
        return self.bn(self.conv(F.relu(x)))


class MaxPool(nn.Module):
    """3x3 max pool, SAME; then a 1x1 conv + BN if the input is not ``filters`` wide."""
    def __init__(self, cin, filters, stride):
        super().__init__()
        self.stride = stride
        if cin != filters:
            self.conv = nn.Conv2d(cin, filters, 1, bias=False)
            self.bn = bn(filters)

    def forward(self, x):
        x = F.max_pool2d(_same_pad(x, 3, self.stride, float("-inf")), 3, self.stride)
        return self.bn(self.conv(x)) if hasattr(self, "conv") else x


class FactorizedReduction(nn.Module):
    def __init__(self, cin, filters):
        super().__init__()
        self.path_1 = nn.Module()
        self.path_1.conv = nn.Conv2d(cin, filters // 2, 1, bias=False)
        self.path_2 = nn.Module()
        self.path_2.conv = nn.Conv2d(cin, filters // 2, 1, bias=False)
        self.final_path_bn = bn(filters // 2 * 2)

    def forward(self, x):
        x = F.relu(x)
        p1 = self.path_1.conv(x[:, :, ::2, ::2])
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]    # TF: pad bottom/right, drop first
        p2 = self.path_2.conv(shifted[:, :, ::2, ::2])
        return self.final_path_bn(torch.cat([p1, p2], 1))


class TFCell(nn.Module):
    """NasNetABaseCell with PNASNet's operations; forward(x, prev)."""
    def __init__(self, filters, stride, x_ch, prev_ch, prev_reduce):
        super().__init__()
        self.conv_1x1 = ActConvBn(x_ch, filters)
        if prev_reduce == "factorized":
            self.conv_prev_1x1 = FactorizedReduction(prev_ch, filters)
            prev_ch = filters // 2 * 2
        elif prev_reduce == "1x1":
            self.conv_prev_1x1 = ActConvBn(prev_ch, filters)
            prev_ch = filters
        widths = [filters, prev_ch]
        for j in range(5):
            for side, idx in (("left", 2 * j), ("right", 2 * j + 1)):
                op, state = OPERATIONS[idx], HIDDENSTATE_INDICES[idx]
                s = stride if state < 2 else 1
                cin = widths[state]
                if op.startswith("separable"):
                    module = StackedSeparable(cin, filters, int(op[10]), s)
                elif op == "max_pool_3x3":
                    module = MaxPool(cin, filters, s)
                elif s > 1 or cin != filters:
                    module = ActConvBn(cin, filters, s)
                else:
                    module = nn.Identity()
                setattr(self, f"comb_iter_{j}_{side}", module)
            widths.append(filters)

    def forward(self, x, prev):
        states = [self.conv_1x1(x), self.conv_prev_1x1(prev) if hasattr(self, "conv_prev_1x1")
                  else prev]
        for j in range(5):
            left = getattr(self, f"comb_iter_{j}_left")(states[HIDDENSTATE_INDICES[2 * j]])
            right = getattr(self, f"comb_iter_{j}_right")(states[HIDDENSTATE_INDICES[2 * j + 1]])
            states.append(left + right)
        return torch.cat(states[2:], 1)


class PNASNetMobile(nn.Module):
    """TF-slim's build_pnasnet_mobile: mobile_imagenet_config (num_cells 9, F 54, stem
    multiplier 1, two reductions; skip_reduction_layer_input=1, i.e. each cell reads the two
    previous outputs)."""
    def __init__(self, num_cells=9, filters=54, stem_multiplier=1.0, num_classes=1000):
        super().__init__()
        stem = int(32 * stem_multiplier)
        self.conv_0 = nn.Module()
        self.conv_0.conv = nn.Conv2d(3, stem, 3, 2, bias=False)
        self.conv_0.bn = bn(stem)
        reductions = [int(num_cells * k / 3) for k in (1, 2)]
        plan = [("cell_stem_0", 0.25, 2), ("cell_stem_1", 0.5, 2)]
        scaling = 1.0
        for i in range(num_cells):
            scaling *= 2 if i in reductions else 1
            plan.append((f"cell_{i}", scaling, 2 if i in reductions else 1))
        chans, prev_stride = [None, stem], 2     # channels of (prev, x); the stem reduced
        self.names = []
        for name, scale, stride in plan:
            f = int(filters * scale)
            prev_reduce = ("raw" if chans[0] is None else
                           "factorized" if prev_stride == 2 else "1x1")
            setattr(self, name, TFCell(f, stride, chans[1], chans[0] or chans[1], prev_reduce))
            chans, prev_stride = [chans[1], 5 * f], stride
            self.names.append(name)
        self.last_linear = nn.Linear(chans[1], num_classes)

    def forward(self, x):
        x = self.conv_0.bn(self.conv_0.conv(x))
        prev = x
        for name in self.names:
            x, prev = getattr(self, name)(x, prev), x
        return self.last_linear(F.relu(x).mean((2, 3)))
