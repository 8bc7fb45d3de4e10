"""The MicroNet reference for tinyinfer's tests, written from the authors' code
(github.com/liyunsheng13/micronet, backbone/activation.py; MIT License, Copyright (c) 2021
Yunsheng Li). Only what the tests need so far: DYShiftMax (dynamic Shift-Max) with its
h_sigmoid and _make_divisible, the same state_dict names (``fc.0``, ``fc.2``) and the same
arithmetic; the authors' print calls are left out.
"""
import torch
import torch.nn as nn


def _make_divisible(v, divisor, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:        # do not round down by more than 10%
        new_v += divisor
    return new_v


class h_sigmoid(nn.Module):
    def __init__(self, inplace=True, h_max=1):
        super().__init__()
        self.relu = nn.ReLU6(inplace=inplace)
        self.h_max = h_max / 6

    def forward(self, x):
        return self.relu(x + 3) * self.h_max


class DYShiftMax(nn.Module):
    def __init__(self, inp, oup, reduction=4, act_max=1.0, act_relu=True, init_a=(0.0, 0.0),
                 init_b=(0.0, 0.0), relu_before_pool=False, g=None, expansion=False):
        super().__init__()
        self.oup = oup
        self.act_max = act_max * 2
        self.act_relu = act_relu
        self.avg_pool = nn.Sequential(
            nn.ReLU(inplace=True) if relu_before_pool else nn.Sequential(),
            nn.AdaptiveAvgPool2d(1))
        self.exp = 4 if act_relu else 2
        self.init_a = init_a
        self.init_b = init_b
        squeeze = max(_make_divisible(inp // reduction, 4), 4)
        self.fc = nn.Sequential(
            nn.Linear(inp, squeeze),
            nn.ReLU(inplace=True),
            nn.Linear(squeeze, oup * self.exp),
            h_sigmoid())
        if g is None:
            g = (1, 1)          # the authors write g = 1 here, then index it: callers pass g
        self.g = g[1]
        if self.g != 1 and expansion:
            self.g = inp // self.g
        self.gc = inp // self.g
        index = torch.Tensor(range(inp)).view(1, inp, 1, 1)
        index = index.view(1, self.g, self.gc, 1, 1)
        indexgs = torch.split(index, [1, self.g - 1], dim=1)
        indexgs = torch.cat((indexgs[1], indexgs[0]), dim=1)
        indexs = torch.split(indexgs, [1, self.gc - 1], dim=2)
        indexs = torch.cat((indexs[1], indexs[0]), dim=2)
        self.index = indexs.view(inp).type(torch.LongTensor)
        self.expansion = expansion

    def forward(self, x):
        x_in = x
        x_out = x
        b, c, _, _ = x_in.size()
        y = self.avg_pool(x_in).view(b, c)
        y = self.fc(y).view(b, self.oup * self.exp, 1, 1)
        y = (y - 0.5) * self.act_max
        x2 = x_out[:, self.index, :, :]
        if self.exp == 4:
            a1, b1, a2, b2 = torch.split(y, self.oup, dim=1)
            a1 = a1 + self.init_a[0]
            a2 = a2 + self.init_a[1]
            b1 = b1 + self.init_b[0]
            b2 = b2 + self.init_b[1]
            z1 = x_out * a1 + x2 * b1
            z2 = x_out * a2 + x2 * b2
            out = torch.max(z1, z2)
        elif self.exp == 2:
            a1, b1 = torch.split(y, self.oup, dim=1)
            a1 = a1 + self.init_a[0]
            b1 = b1 + self.init_b[0]
            out = x_out * a1 + x2 * b1
        return out
