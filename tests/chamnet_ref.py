"""ChamNet's PyTorch reference, for the tests only: no package builds ChamNet, so this is a
small FBNet-v2 builder with the semantics of facebookresearch/mobile-vision's
(``mobile_cv/arch/fbnet_v2``: fbnet_builder.py, irf_block.py, basic_blocks.py, and the
classification model of model_zoo/models/fbnet_v2.py), fed the tables of its
fbnet_modeldef_cls_chamnet.py (commit bfe163f, 2021-09-20). mobile-vision is licensed
CC BY-NC 4.0, so none of its code is copied here: this is written from reading it. What is
the same is what a checkpoint depends on: module names (hence state_dict keys), layer order,
which convs have a bias, channel arithmetic, residual rule.

The rules, as mobile-vision's code has them:
* a block row (op, c, s, n, {options}) is n blocks of op with c output channels, the first
  with stride s and the rest with stride 1; blocks are named xif{stage}_{index in stage};
* "conv_k3" / "conv_k1": ConvBNRelu = Conv2d (PyTorch's default bias=True: the arch passes
  no bias option), BatchNorm2d, ReLU; padding k // 2;
* "ir_k3": IRFBlock. mid = in x expansion (the builder's width_divisor is 1: the file's
  BASIC_ARGS = {"width_divisor": 8} is never attached to an arch). pw (1x1 + BN + ReLU)
  exists when mid != in or always_pw; dw (3x3 depthwise, stride, + BN + ReLU); pwl (1x1 +
  BN, no ReLU); every conv without bias; input added when in == out and stride 1;
* the classifier (ClsConvHead): adaptive average pool to 1x1, Conv2d 1x1 with bias, flatten.

The tables: cham_a and cham_b are fbnet_v2 tables in the file; C-F exist only commented out,
in the older FBNet builder's format ("first": [c, s] = a 3x3 conv; "stages": rows [t, c, n,
s] of "ir_k3" blocks, as every "block_op_type" entry says; "last": [c, 1.0] = a 1x1 conv of
c channels), converted by ``from_old_format``. The file's ``e1`` (fbnet_v2: no pw when
in == mid) is where this reference differs by default: ``always_pw=True`` (fbnet_v2's
``e1p``) keeps the pw of the t = 1 block, as the older builder did and as the published
counts have it (tests/test_chamnet.py).
"""
from collections import OrderedDict

import torch
import torch.nn as nn


def ex(t):
    return {"expansion": t}


# fbnet_modeldef_cls_chamnet.py's MODEL_ARCH_CHAM, transcribed: [op, c, s, n, options]
FBNET_V2 = {
    "cham_a": [
        [("conv_k3", 32, 2, 1)],
        [("ir_k3", 24, 1, 1, ex(1))],
        [("ir_k3", 40, 2, 2, ex(4))],
        [("ir_k3", 48, 2, 3, ex(6))],
        [("ir_k3", 96, 2, 4, ex(4)), ("ir_k3", 160, 1, 3, ex(4))],
        [("ir_k3", 248, 2, 3, ex(4)), ("ir_k3", 480, 1, 1, ex(6))],
        [("conv_k1", 2016, 1, 1)],
    ],
    "cham_b": [
        [("conv_k3", 24, 2, 1)],
        [("ir_k3", 16, 1, 1, ex(1))],
        [("ir_k3", 40, 2, 2, ex(5))],
        [("ir_k3", 40, 2, 3, ex(6))],
        [("ir_k3", 92, 2, 3, ex(6)), ("ir_k3", 104, 1, 3, ex(6))],
        [("ir_k3", 200, 2, 3, ex(5)), ("ir_k3", 384, 1, 1, ex(6))],
        [("conv_k1", 1984, 1, 1)],
    ],
}

# the commented-out entries, transcribed: first [c, s], stages of [t, c, n, s], last [c, scale]
OLD_FORMAT = {
    "cham_c": {"first": [16, 2], "last": [1520, 1.0], "stages": [
        [[1, 16, 1, 1]], [[4, 24, 1, 2]], [[4, 32, 3, 2]],
        [[5, 64, 2, 2], [6, 96, 3, 1]], [[6, 160, 3, 2], [4, 256, 1, 1]]]},
    "cham_d192": {"first": [8, 2], "last": [1600, 1.0], "stages": [
        [[1, 8, 1, 1]], [[6, 24, 1, 2]], [[4, 32, 2, 2]],
        [[6, 40, 4, 2], [6, 80, 3, 1]], [[5, 160, 3, 2], [6, 224, 1, 1]]]},
    "cham_e160": {"first": [8, 2], "last": [1600, 1.0], "stages": [
        [[1, 8, 1, 1]], [[4, 24, 1, 2]], [[4, 32, 3, 2]],
        [[6, 64, 1, 2], [6, 64, 3, 1]], [[6, 96, 2, 2], [4, 128, 1, 1]]]},
    "cham_f128": {"first": [8, 2], "last": [1280, 1.0], "stages": [
        [[1, 8, 1, 1]], [[4, 24, 1, 2]], [[4, 32, 3, 2]],
        [[4, 40, 1, 2], [4, 64, 3, 1]], [[4, 128, 2, 2], [4, 192, 1, 1]]]},
    "cham_b192": {"first": [24, 2], "last": [1984, 1.0], "stages": [
        [[1, 16, 1, 1]], [[5, 40, 2, 2]], [[6, 40, 3, 2]],
        [[6, 92, 3, 2], [6, 104, 3, 1]], [[5, 200, 3, 2], [6, 384, 1, 1]]]},
}

# tinyinfer's name -> the file's entry (at the resolution mobile-vision's README lists)
ARCHS = {"a": "cham_a", "b": "cham_b", "c": "cham_c", "d": "cham_d192", "e": "cham_e160",
         "f": "cham_f128"}


def from_old_format(cfg):
    """The older builder's dict as fbnet_v2 block rows."""
    (first, first_stride), (last, scale) = cfg["first"], cfg["last"]
    assert scale == 1.0
    return ([[("conv_k3", first, first_stride, 1)]]
            + [[("ir_k3", c, s, n, ex(t)) for t, c, n, s in stage] for stage in cfg["stages"]]
            + [[("conv_k1", last, 1, 1)]])


def arch_rows(name):
    return FBNET_V2[name] if name in FBNET_V2 else from_old_format(OLD_FORMAT[name])


class ConvBNRelu(nn.Module):
    def __init__(self, cin, cout, kernel, stride=1, groups=1, bias=True, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU() if relu else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


class IRFBlock(nn.Module):
    def __init__(self, cin, cout, stride, expansion, always_pw):
        super().__init__()
        mid = int(cin * expansion)
        self.pw = (ConvBNRelu(cin, mid, 1, bias=False) if mid != cin or always_pw else None)
        self.dw = ConvBNRelu(mid, mid, 3, stride, groups=mid, bias=False)
        self.pwl = ConvBNRelu(mid, cout, 1, bias=False, relu=False)
        self.residual = cin == cout and stride == 1

    def forward(self, x):
        y = self.pw(x) if self.pw is not None else x
        y = self.pwl(self.dw(y))
        return y + x if self.residual else y


CONV_KERNEL = {"conv_k3": 3, "conv_k1": 1}


class Backbone(nn.Module):
    def __init__(self, rows, always_pw):
        super().__init__()
        blocks, cin = OrderedDict(), 3
        for s, stage in enumerate(rows):
            i = 0
            for op, c, stride, n, *options in stage:
                expansion = options[0]["expansion"] if options else None
                for r in range(n):
                    st = stride if r == 0 else 1
                    blocks[f"xif{s}_{i}"] = (
                        IRFBlock(cin, c, st, expansion, always_pw) if op == "ir_k3"
                        else ConvBNRelu(cin, c, CONV_KERNEL[op], st))
                    cin, i = c, i + 1
        self.stages = nn.Sequential(blocks)
        self.out_channels = cin

    def forward(self, x):
        return self.stages(x)


class ClsConvHead(nn.Module):
    def __init__(self, cin, num_classes):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.conv = nn.Conv2d(cin, num_classes, 1)

    def forward(self, x):
        return torch.flatten(self.conv(self.avg_pool(x)), 1)


class FBNet(nn.Module):
    def __init__(self, rows, num_classes=1000, always_pw=True):
        super().__init__()
        self.backbone = Backbone(rows, always_pw)
        self.head = ClsConvHead(self.backbone.out_channels, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


def chamnet(version, always_pw=True):
    """ChamNet-{version} ("a" ... "f") as mobile-vision builds its table."""
    return FBNet(arch_rows(ARCHS[version]), always_pw=always_pw)
