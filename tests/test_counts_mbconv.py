"""Operation counts of the MBConv family vs the published numbers, and vs closed forms
written out here.

What is counted (the papers' convention, and tinyinfer's default summary):
* BN folded into the conv before it: no BN Mult-Adds, one bias per channel as parameters.
  (torchvision's num_params counts BN's weight and bias, 2 per channel, so its parameter
  counts are slightly higher: 5,483,032 for MobileNetV3-Large vs our 5,470,832.)
* squeeze-excite: its two fully connected layers ARE Mult-Adds (C * C_r each per image);
  the pooling and the channel-wise scaling are elementwise: FLOPs, not Mult-Adds.
* activations (ReLU, h-swish, swish, sigmoid gates): 0 Mult-Adds (FLOPs only).
* the classifier FC is counted; MixConv counts each channel group with its own kernel.

Published numbers are rounded: we accept |ours - published| <= 2% of published Mult-Adds
(1% of parameters) + half a unit of the last published digit (tests/test_counts.py's rule,
with the 2% the MBConv issue asks for).
"""
import math

import pytest
import torch
import torchvision

import tinyinfer
from tinyinfer.engine.graph import Graph
from tinyinfer.models.builder import NetBuilder, conv
from tinyinfer.engine.ops import node_costs


def summary(name, resolution=None, **kw):
    model = tinyinfer.load(name, weights=None, **kw)
    return model.summary(resolution=resolution)


def close(ours, published, half_unit, rel):
    return abs(ours - published) <= rel * published + half_unit


# name, resolution, Mult-Adds (M) and its half unit, params (M) and its half unit, source
PUBLISHED = [
    ("mobilenet_v3_large", 224, 217, 0.5, 5.48, 0.005, "torchvision: 0.217 GFLOPS, 5,483,032"),
    ("mobilenet_v3_small", 224, 56.5, 0.05, 2.54, 0.005, "torchvision 0.057 / 2.54M"),
    ("mobilenetv3_large_100", 224, 217, 0.5, 5.48, 0.005, "same network, timm's names"),
    ("mobilenetv3_small_100", 224, 56.5, 0.05, 2.54, 0.005, "same network, timm's names"),
    ("mnasnet1_0", 224, 314, 0.5, 4.38, 0.005, "torchvision 0.314 GFLOPS / 4.38M"),
    ("efficientnet_b0", 224, 386, 0.5, 5.29, 0.005, "torchvision: 0.386 GFLOPS, 5,288,548"),
    ("efficientnet_b1", 240, 700, 5, 7.8, 0.05, "paper Table 2"),
    ("efficientnet_b2", 260, 1000, 50, 9.2, 0.05, "paper Table 2"),
    ("efficientnet_b3", 300, 1800, 50, 12, 0.5, "paper Table 2"),
    ("efficientnet_b6", 528, 19000, 500, 43, 0.5, "paper Table 2"),
    ("efficientnet_b7", 600, 37000, 500, 66, 0.5, "paper Table 2"),
    ("efficientnet_v2_s", 384, 8400, 50, 21.5, 0.05, "torchvision 8.366 GFLOPS / 21.46M"),
    ("tinynet_a", 192, 337, 0.5, 6.2, 0.05, "issue 3 (TinyNet-A at 192)"),
    ("mixnet_s", 224, 239, 0.5, 4.1, 0.05, "issue 3, as built by timm"),
    ("fbnetc_100", 224, 385, 0.5, 5.5, 0.05, "issue 3, as built by timm"),
]


@pytest.mark.parametrize("name,res,madds,madds_half,params,params_half,source", PUBLISHED,
                         ids=[p[0] for p in PUBLISHED])
def test_published_counts(name, res, madds, madds_half, params, params_half, source):
    rep = summary(name, res)
    assert close(rep.macs / 1e6, madds, madds_half, 0.02), (rep.macs, source)
    assert close(rep.params / 1e6, params, params_half, 0.01), (rep.params, source)


def test_efficientnet_b4_b5_paper_numbers_are_below_the_built_networks():
    """The paper's Table 2 gives B4 4.2B and B5 9.9B Mult-Adds, but the networks its own
    coefficients build (TF reference, timm, torchvision alike) have 4.39B and 10.27B:
    torchvision lists 4.394 and 10.266 GFLOPS for exactly these. We match torchvision to
    0.1%, and check that the paper's figures are 3-5% lower, rather than widen the
    tolerance until they pass."""
    for name, res, paper, torchvision_ops, params in (("efficientnet_b4", 380, 4.2, 4.394, 19),
                                                      ("efficientnet_b5", 456, 9.9, 10.266, 30)):
        rep = summary(name, res)
        gmacs = rep.macs / 1e9
        assert abs(gmacs - torchvision_ops) <= 0.001 * torchvision_ops, (name, gmacs)
        assert 1.03 <= gmacs / paper <= 1.05, (name, gmacs)
        assert close(rep.params / 1e6, params, 0.5, 0.01), (name, rep.params)


def test_efficientnet_v2_s_flops_conventions():
    """EfficientNetV2-S: the paper's ImageNet results table says 8.8B FLOPs; torchvision's 8.37
    GFLOPS (its FLOPs are Mult-Adds) is what the network it ships, ours, has: 8.366B.
    The paper's figure is 5% higher (a training-resolution/counting difference we do not
    reproduce); we pin torchvision's."""
    rep = summary("efficientnet_v2_s", 384)
    assert abs(rep.macs / 1e9 - 8.366) <= 0.0005 * 8.366
    assert 1.04 <= 8.8 / (rep.macs / 1e9) <= 1.06


def test_mobilenet_v3_parameter_count_is_torchvisions_with_bn_folded():
    """Parameters equal torchvision's module's, counting each BN (weight + bias, 2 per
    channel) as the one bias per channel it leaves when folded."""
    tv = torchvision.models.mobilenet_v3_large()
    bn_channels = sum(m.num_features for m in tv.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert sum(p.numel() for p in tv.parameters()) == 5_483_032
    assert summary("mobilenet_v3_large").params == 5_483_032 - bn_channels


def test_se_and_activations_are_counted_as_the_papers_do():
    """In EfficientNet-B0 at 224: SE nodes' Mult-Adds are exactly their two FCs, 2 C C_r,
    summed over the 16 blocks; activations (fused into convs) add no Mult-Adds."""
    model = tinyinfer.load("efficientnet_b0", weights=None)
    rep = model.summary(224)
    se_rows = [r for r in rep.rows if r.kind == "se"]
    assert len(se_rows) == 16
    expected = 0
    for node in model.plan:
        if node.kind == "se":
            cr, c = node.param_shapes["conv_reduce.weight"][:2]
            expected += 2 * c * cr
    assert sum(r.cost.macs for r in se_rows) == expected
    # the same network without activations has the same Mult-Adds
    convs = sum(r.cost.macs for r in rep.rows if r.kind in ("conv2d", "linear"))
    assert convs + expected == rep.macs


def test_mixconv_counts_each_group_with_its_kernel():
    """A MixConv of 40 channels with kernels 3, 5, 7 (split 14/13/13) at 28x28, stride 1:
    (14*9 + 13*25 + 13*49) * 28 * 28 Mult-Adds; a plain 7x7 depthwise would be 40*49*784."""
    b = NetBuilder(40)
    conv(b, "mix", Graph.INPUT, 40, (3, 5, 7), 1, depthwise=True)
    macs = sum(c.macs for _, _, c in node_costs(b.graph, (1, 40, 28, 28)))
    assert macs == (14 * 9 + 13 * 25 + 13 * 49) * 28 * 28


def test_efficientnet_doubling_resolution_quadruples_conv_work():
    """Closed form: at 448 every feature map has 4x the pixels of 224 (all sizes stay even),
    so conv Mult-Adds quadruple while the SE FCs and the classifier stay the same."""
    small, big = summary("efficientnet_b0", 224), summary("efficientnet_b0", 448)
    fixed = lambda rep: sum(r.cost.macs for r in rep.rows if r.kind in ("se", "linear"))
    assert fixed(small) == fixed(big)
    assert big.macs - fixed(big) == 4 * (small.macs - fixed(small))


def test_tf_same_padding_changes_no_counts_for_odd_kernels():
    """TF "same" and PyTorch's (k - 1) // 2 padding give the same output sizes for odd
    kernels (ceil(n / s), even or odd n), so the TF ports count like the PyTorch-padded
    networks: only where the padding pixels go differs."""
    for res in (224, 225):
        assert summary("tf_efficientnet_b0", res).macs == summary("efficientnet_b0", res).macs
    assert summary("tf_efficientnet_b0").params == summary("efficientnet_b0").params


def test_mobilenet_v3_head_forms_count_the_same():
    """torchvision's FC head and timm's 1x1-conv head are the same arithmetic."""
    a, b = summary("mobilenet_v3_large"), summary("mobilenetv3_large_100")
    assert (a.macs, a.params) == (b.macs, b.params)
    assert math.isclose(a.macs / 1e6, 216.6, abs_tol=0.1)
