"""Test-side PyTorch reference for AmoebaNet-A, which no PyTorch package ships: written from
the TensorFlow reference, tensorflow/tpu ``models/official/amoeba_net/`` (``model_specs.py``:
the cell tables, ``network_utils.py``: ``BaseCell``, ``factorized_reduction``,
``calc_reduction_layers``, ``model_builder.py``: ``_build_network_base``, the ImageNet stem),
Copyright 2018 The TensorFlow Authors, Apache License 2.0; and the paper (Real, Aggarwal,
Huang, Le, "Regularized Evolution for Image Classifier Architecture Search", AAAI 2019,
arXiv:1802.01548: the cells of its Fig. 4 / appendix). It follows TF's structure (operation
lists, hidden-state indices, "used" flags, shapes decided as TF decides them), not tinyinfer's
cell grammar, so the two are independent. Module names follow the test suite's other TF port
(nas_tf_ref: timm's cell_{i}.comb_iter_{j}_{left|right}, separable_1.depthwise_conv2d, ...),
with TF's scopes for the stem (stem.conv0, stem.conv0_bn) and the head (final_layer.fc).

TF semantics kept: every conv, separable conv and pool pads "SAME" (the stem conv "VALID");
TF's average pool never counts its padding (``_tf_avg_pool``); the 1x7_7x1 op is a bottleneck
(ReLU-1x1-BN to F/4, ReLU, 1x7 conv with the stride along the width, BN, ReLU, 7x1 conv with
the stride along the height, BN, ReLU-1x1-BN back to F); the previous hidden state is brought
to the cell's shape by the factorized reduction (other resolution), a ReLU-1x1-BN (other
width) or not at all, and the first stem cell uses the stem conv's output as it is; a cell's
output concatenates the hidden states its "used" flags mark 0 (unused) - in the normal cell
that includes the previous hidden state; ReLU comes first in every conv op (none before the
1x1 conv after a pool); drop-path is off (inference) and the auxiliary head is not built (it
only exists while training). BN eps 1e-3 (``imagenet_hparams``; the training script's flag
overrides it to 1e-5: a convention both sides share, so parity does not depend on it).

One departure: F = 50 makes the second stem cell 25 wide, and TF's ``factorized_reduction``
asserts an even width there; like TF-slim's later ``nasnet_utils`` (which PNASNet-5 Mobile,
27 wide, needs), each path then gets int(25 / 2) = 12 channels, 24 in all.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_tf_ref import ActConvBn, FactorizedReduction, MaxPool, StackedSeparable, bn

# model_specs.get_normal_cell / get_reduction_cell('amoeba_net_a'): (operations, hidden-state
# indices, used hidden states); hidden state 0 = the cell's input, 1 = the previous one,
# 2 + j = combination j
NORMAL = (['avg_pool_3x3', 'max_pool_3x3', 'separable_3x3_2', 'none', 'none', 'avg_pool_3x3',
           'separable_3x3_2', 'separable_5x5_2', 'avg_pool_3x3', 'separable_3x3_2'],
          [0, 0, 1, 1, 0, 1, 0, 2, 5, 0],
          [1, 0, 1, 0, 0, 1, 0])
REDUCTION = (['separable_3x3_2', 'avg_pool_3x3', 'max_pool_3x3', 'separable_7x7_2',
              'max_pool_3x3', 'max_pool_3x3', 'separable_3x3_2', '1x7_7x1', 'avg_pool_3x3',
              'separable_7x7_2'],
             [1, 0, 0, 2, 1, 0, 4, 0, 1, 0],
             [1, 1, 0, 0, 0, 0, 0])


def _same_pads(size, k, s):
    """TF "SAME" for one dimension: (before, after), the odd pixel after."""
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _same_pad(x, kernel, stride, value=0.0):
    (kh, kw), (sh, sw) = kernel, stride
    return F.pad(x, _same_pads(x.shape[3], kw, sw) + _same_pads(x.shape[2], kh, sh), value=value)


class SameConv(nn.Conv2d):
    """slim.conv2d with padding="SAME" (any kernel shape and per-dimension stride)."""
    def forward(self, x):
        return F.conv2d(_same_pad(x, self.kernel_size, self.stride), self.weight, None,
                        self.stride)


def _tf_avg_pool(x, k, s):
    """tf.nn.avg_pool, "SAME": the sum over the zero-padded window divided by the number of
    real pixels in it (TF never counts padding)."""
    ones = torch.ones_like(x[:, :1])
    pad = lambda t: _same_pad(t, (k, k), (s, s))
    return F.avg_pool2d(pad(x), k, s) / F.avg_pool2d(pad(ones), k, s)


class AvgPool(nn.Module):
    """3x3 average pool, SAME; then a 1x1 conv + BN if the input is not ``filters`` wide."""
    def __init__(self, cin, filters, stride):
        super().__init__()
        self.stride = stride
        if cin != filters:
            self.conv = nn.Conv2d(cin, filters, 1, bias=False)
            self.bn = bn(filters)

    def forward(self, x):
        x = _tf_avg_pool(x, 3, self.stride)
        return self.bn(self.conv(x)) if hasattr(self, "conv") else x


class Conv1x7x7x1(nn.Module):
    """_apply_operation's '1x7_7x1' with its bottleneck (reduced_filter_size = int(F / 4))."""
    def __init__(self, cin, filters, stride):
        super().__init__()
        mid = int(filters / 4)
        assert mid >= 1, "TF's form without the bottleneck is not ported"
        self.pre_1x1 = ActConvBn(cin, mid)
        self.conv_1x7 = SameConv(mid, mid, (1, 7), (1, stride), bias=False)
        self.bn_1x7 = bn(mid)
        self.conv_7x1 = SameConv(mid, mid, (7, 1), (stride, 1), bias=False)
        self.bn_7x1 = bn(mid)
        self.post_1x1 = ActConvBn(mid, filters)

    def forward(self, x):
        x = self.bn_1x7(self.conv_1x7(F.relu(self.pre_1x1(x))))
        return self.post_1x1(self.bn_7x1(self.conv_7x1(F.relu(x))))


def _operation(op, cin, filters, stride):
    """BaseCell._apply_operation for the ops AmoebaNet-A uses."""
    if op.startswith("separable"):
        return StackedSeparable(cin, filters, int(op.split("_")[1][0]), stride)
    if op == "max_pool_3x3":
        return MaxPool(cin, filters, stride)
    if op == "avg_pool_3x3":
        return AvgPool(cin, filters, stride)
    if op == "1x7_7x1":
        return Conv1x7x7x1(cin, filters, stride)
    assert op == "none", op
    return ActConvBn(cin, filters, stride) if stride > 1 or cin != filters else nn.Identity()


class AmoebaCell(nn.Module):
    """BaseCell; forward(x, prev). prev_reduce: "raw" (prev is None in TF: the input itself),
    "factorized" (prev at twice x's resolution), "1x1" (another width) or "none"."""
    def __init__(self, spec, filters, stride, x_ch, prev_ch, prev_reduce):
        super().__init__()
        self.operations, self.indices, self.used = spec
        self.prev_reduce = prev_reduce
        self.conv_1x1 = ActConvBn(x_ch, filters)
        if prev_reduce == "factorized":
            self.conv_prev_1x1 = FactorizedReduction(prev_ch, filters)
            prev_ch = filters // 2 * 2
        elif prev_reduce == "1x1":
            self.conv_prev_1x1 = ActConvBn(prev_ch, filters)
            prev_ch = filters
        elif prev_reduce == "raw":
            prev_ch = x_ch
        widths = [filters, prev_ch]
        for j in range(5):
            for side, i in (("left", 2 * j), ("right", 2 * j + 1)):
                state = self.indices[i]
                setattr(self, f"comb_iter_{j}_{side}", _operation(
                    self.operations[i], widths[state], filters, stride if state < 2 else 1))
            widths.append(filters)
        # _combine_unused_states would factorize a concatenated state of another shape:
        # AmoebaNet-A never has one (each is F wide, at the cell's output resolution)
        self.out_channels = sum(w for w, u in zip(widths, self.used) if not u)
        assert all(w == filters for w, u in zip(widths, self.used) if not u)

    def forward(self, x, prev):
        prev = {"raw": lambda: x, "none": lambda: prev}.get(
            self.prev_reduce, lambda: self.conv_prev_1x1(prev))()
        states = [self.conv_1x1(x), prev]
        for j in range(5):
            left = getattr(self, f"comb_iter_{j}_left")(states[self.indices[2 * j]])
            right = getattr(self, f"comb_iter_{j}_right")(states[self.indices[2 * j + 1]])
            states.append(left + right)
        return torch.cat([h for h, u in zip(states, self.used) if not u], 1)


def calc_reduction_layers(num_cells, num_reduction_layers=2):
    return [int(k / (num_reduction_layers + 1) * num_cells)
            for k in range(1, num_reduction_layers + 1)]


class AmoebaNetA(nn.Module):
    """_build_network_base with the ImageNet stem: a 3x3 stride-2 VALID conv + BN, two
    reduction cells at filter scaling 1/4 and 1/2 (cell_stem_0, cell_stem_1), then
    3 x num_cells normal cells (TF's num_cells hparam is their total) with a reduction cell
    before cells N and 2N (the filters doubling there); ReLU, global average pool, FC.
    Each cell reads the two previous outputs (cell_outputs[-1], [-2])."""
    def __init__(self, num_cells=4, filters=50, stem_filters=32, num_classes=1000):
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv0 = nn.Conv2d(3, stem_filters, 3, 2, bias=False)
        self.stem.conv0_bn = bn(stem_filters)
        total = 3 * num_cells
        reductions = calc_reduction_layers(total)
        plan = [("cell_stem_0", REDUCTION, 0.25, 2), ("cell_stem_1", REDUCTION, 0.5, 2)]
        scaling = 1.0
        for i in range(total):
            if i in reductions:
                scaling *= 2
                plan.append((f"reduction_cell_{reductions.index(i)}", REDUCTION, scaling, 2))
            plan.append((f"cell_{i}", NORMAL, scaling, 1))
        # (channels, resolution divisor) of cell_outputs[-2] and [-1]; [-2] starts as None
        prev, cur = None, (stem_filters, 2)
        self.names = []
        for name, spec, scale, stride in plan:
            f = int(filters * scale)
            if prev is None:
                mode = "raw"
            elif prev[1] != cur[1]:          # TF compares prev's height with the input's
                mode = "factorized"
            else:
                mode = "1x1" if prev[0] != f else "none"
            cell = AmoebaCell(spec, f, stride, cur[0], prev[0] if prev else None, mode)
            setattr(self, name, cell)
            prev, cur = cur, (cell.out_channels, cur[1] * stride)
            self.names.append(name)
        self.final_layer = nn.Module()
        self.final_layer.fc = nn.Linear(cur[0], num_classes)

    def forward(self, x):
        x = self.stem.conv0_bn(self.stem.conv0(x))
        prev = None
        for name in self.names:
            x, prev = getattr(self, name)(x, prev), x
        return self.final_layer.fc(F.relu(x).mean((2, 3)))
