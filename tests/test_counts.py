"""Whole-network operation counts vs the papers' published numbers (../shared/seeds) and vs
closed forms written out here independently of the code under test.

Published numbers are rounded: Mult-Adds to the nearest million, parameters to 0.1M (or
0.01M). We accept |ours - published| <= 1% of published + half a unit of the last
published digit.
"""
import pytest
import torch

import tinyinfer
from tinyinfer.engine.costs import Cost
from tinyinfer.engine.graph import Graph
from tinyinfer.engine.ops import node_costs


def summary(name, resolution=224, **kw):
    return tinyinfer.load(name, weights=None, **kw).summary(resolution=resolution)


def close(ours, published, half_unit):
    return abs(ours - published) <= 0.01 * published + half_unit


# MobileNet (Howard et al. 2017): Table 6 (width multiplier) and Table 7 (resolution).
#                 alpha, res, Mult-Adds (M), params (M)
MOBILENET_V1_PUBLISHED = [
    (1.0, 224, 569, 4.2),
    (0.75, 224, 325, 2.6),
    (0.5, 224, 149, 1.3),
    (0.25, 224, 41, 0.5),
    (1.0, 192, 418, 4.2),
    (1.0, 160, 290, 4.2),
    (1.0, 128, 186, 4.2),
]


@pytest.mark.parametrize("alpha,res,madds,params", MOBILENET_V1_PUBLISHED)
def test_mobilenet_v1_tables_6_and_7(alpha, res, madds, params):
    rep = summary("mobilenetv1_100", res, width_mult=alpha)
    assert close(rep.macs / 1e6, madds, 0.5), rep.macs
    assert close(rep.params / 1e6, params, 0.05), rep.params


def mobilenet_v1_closed_form(alpha, res):
    """Sum of the seeds' formulas over Table 1: standard conv D_K*D_K*M*N*D_F*D_F for the
    first layer, D_K*D_K*M*D_F*D_F + M*N*D_F*D_F for each separable layer, M*N for the FC."""
    c = lambda n: int(n * alpha)  # every Table 1 width times these alphas is a multiple of 8
    rows = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 \
        + [(2, 1024), (1, 1024)]
    size = res // 2
    macs = 3 * 3 * 3 * c(32) * size * size
    params = 3 * 3 * 3 * c(32) + c(32)                       # + folded BN bias
    m = c(32)
    for stride, n in rows:
        size //= stride
        macs += 3 * 3 * m * size * size + m * c(n) * size * size
        params += 3 * 3 * m + m + m * c(n) + c(n)
        m = c(n)
    macs += m * 1000
    params += m * 1000 + 1000
    return macs, params


@pytest.mark.parametrize("alpha,res", [(1.0, 224), (0.5, 160), (0.25, 128), (0.75, 192)])
def test_mobilenet_v1_equals_closed_form(alpha, res):
    rep = summary("mobilenetv1_100", res, width_mult=alpha)
    assert (rep.macs, rep.params) == mobilenet_v1_closed_form(alpha, res)


def test_mobilenet_v1_table_2_resource_per_layer_type():
    """Table 2: Conv 1x1 94.86% of Mult-Adds / 74.59% of params, Conv DW 3x3 3.06% / 1.06%,
    Conv 3x3 1.19% / 0.02%, FC 0.18% / 24.33%.

    Two known differences, both checked here rather than hidden in a tolerance:
    * the paper's 1.19% for the first 3x3 conv is a digit swap of 1.91%: its four shares
      sum to 99.29%; with 1.91% they sum to 100.01%. The closed form agrees:
      3*3*3*32*112*112 / 568.74M = 1.906%.
    * the paper's parameter shares leave out BN; we count a folded BN as one bias per
      channel, which lifts the depthwise share by 1024+512*6+... biases (~0.12 points).
    """
    rep = summary("mobilenetv1_100")
    by = rep.by_type()
    published = {"Conv 1x1": (94.86, 74.59), "Conv DW 3x3": (3.06, 1.06),
                 "Conv 3x3": (1.91, 0.02), "Fully Connected": (0.18, 24.33)}
    for kind, (madds_pct, params_pct) in published.items():
        assert abs(100 * by[kind].macs / rep.macs - madds_pct) <= 0.01, kind
        assert abs(100 * by[kind].params / rep.params - params_pct) <= 0.15, kind
    # without the folded biases the parameter shares are the paper's to 0.02 points
    weights = {k: sum(r.cost.params - r.out_shape[1] for r in rep.rows if r.type == k)
               for k in published if k != "Fully Connected"}
    weights["Fully Connected"] = 1024 * 1000 + 1000
    total = sum(weights.values())
    for kind, (_, params_pct) in published.items():
        assert abs(100 * weights[kind] / total - params_pct) <= 0.02, kind


def test_mobilenet_v2_published():
    """MobileNetV2 1.0 at 224: 300M Mult-Adds, 3.4M params (paper Table 4; torchvision lists
    3.50M counting BN's 2 params per channel, we count BN folded into a bias: 1)."""
    rep = summary("mobilenet_v2")
    assert close(rep.macs / 1e6, 300, 0.5), rep.macs
    assert 3.4e6 <= rep.params <= 3.51e6, rep.params


def test_mobilenet_v2_1_4_published():
    """MobileNetV2 (1.4): 585M Mult-Adds (paper Table 4). The table's 6.9M parameters
    disagree with the paper's own reference implementation (TF-slim lists 6.06M for
    mobilenet_v2_1.4_224) and with torchvision's mobilenet_v2(width_mult=1.4); we check the
    parameters against torchvision's module, counting its BN as one folded bias per channel."""
    import torchvision
    rep = summary("mobilenet_v2", width_mult=1.4)
    assert close(rep.macs / 1e6, 585, 0.5), rep.macs
    tv = torchvision.models.mobilenet_v2(width_mult=1.4)
    expected = sum(m.weight.numel() for m in tv.modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    expected += sum(m.num_features for m in tv.modules() if isinstance(m, torch.nn.BatchNorm2d))
    expected += tv.classifier[1].bias.numel()
    assert rep.params == expected


def test_depthwise_separable_ratio_in_network():
    """For every depthwise + pointwise pair of MobileNet V1, (dw + pw) / standard conv of the
    same shape = 1/N + 1/D_K^2 (the seeds' Ratio_G), with the standard conv's MACs
    written out as D_K*D_K*M*N*D_F*D_F."""
    rep = summary("mobilenetv1_100")
    rows = rep.rows
    pairs = [(a, b) for a, b in zip(rows, rows[1:])
             if a.type == "Conv DW 3x3" and b.type == "Conv 1x1"]
    assert len(pairs) == 13
    for dw, pw in pairs:
        m, n, df = dw.out_shape[1], pw.out_shape[1], dw.out_shape[2]
        standard = 3 * 3 * m * n * df * df
        assert (dw.cost.macs + pw.cost.macs) * 9 * n == standard * (9 + n)


def test_unknown_node_kind_has_no_silent_zero():
    g = Graph()
    g.add_node("mystery", "fancy_new_op", [g.input])
    with pytest.raises(KeyError, match="no kernel and no cost model"):
        node_costs(g, (1, 3, 8, 8))


def test_report_totals_are_row_sums():
    rep = summary("mobilenet_v2", 160)
    total = sum((r.cost for r in rep.rows), Cost())
    assert total == rep.total
    assert rep.macs == sum(r.cost.macs for r in rep.rows)
    text = str(rep)
    assert "TOTAL" in text and "blocks.1.0.conv_dw" in text
    assert rep.to_csv().count("\n") == len(rep.rows) + 2
