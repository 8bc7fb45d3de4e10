"""ProxylessNAS and Single-Path NAS (tinyinfer/models/proxylessnas.py): operation counts vs
pytorchcv's modules and vs the published Mult-Adds, the zero (identity) units, the pytorchcv
key maps, timm's SPNASNet layout, and parity at a resolution where pytorchcv's fixed 7x7
head pool cannot run. (The parity at 224 and 193 is tests/test_models.py's, through
tests/reference_registry.py.)

Counting rule as in test_shufflenet_v1.py: Mult-Adds within 2% of a published figure plus
half a unit of its last printed digit. Our parameters count a folded BN as one bias per
channel (what runs); PyTorch's keeps BN's weight and bias, so pytorchcv's count is higher
by exactly the number of BN channels.

SPNASNet has no published Mult-Adds checked here: the Single-Path NAS paper's abstract and
the authors' README (enyac-group/single-path-nas) print accuracy and Pixel 1 latency only,
and the 365M the brief asks to verify was found in no stored source. Ours, 333,467,072, is
pytorchcv's and timm's spnasnet_100 network exactly (test_counts_equal_pytorchcv and the
timm-layout parity below); timm's model card lists "FLOPs: 442385600", a different tool's
count, not Mult-Adds of conv and FC.
"""
import pytest
import torch
from pytorchcv.model_provider import get_model

import tinyinfer
from tinyinfer.models.proxylessnas import PROXYLESS, proxylessnas, spnasnet
from torch_ref import (assert_matches, forward, he_init, image_batch, randomize,
                       state_dict_numpy, torch_macs)

PROXYLESS_NAMES = [f"proxylessnas_{v}" for v in PROXYLESS]
NAMES = PROXYLESS_NAMES + ["spnasnet"]


def within(ours, published, rel, half_unit):
    return abs(ours - published) <= rel * published + half_unit


def test_all_five_pytorchcv_names_are_registered():
    assert NAMES == ["proxylessnas_cpu", "proxylessnas_gpu", "proxylessnas_mobile",
                     "proxylessnas_mobile14", "spnasnet"]
    assert set(NAMES) <= set(tinyinfer.list_models())


# pytorchcv's own assertion of its parameter counts (its _test(): calc_net_weight_count)
PYTORCHCV_PARAMS = {"proxylessnas_cpu": 4_361_648, "proxylessnas_gpu": 7_119_848,
                    "proxylessnas_mobile": 4_080_512, "proxylessnas_mobile14": 6_857_568,
                    "spnasnet": 4_421_616}


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_pytorchcv(name):
    """Exactly: pytorchcv's conv and FC Mult-Adds (forward hooks) and its parameter count
    less one per BN channel (the count pytorchcv itself asserts)."""
    rep = tinyinfer.summary(name, resolution=224)
    ref = get_model(name)
    bn_channels = sum(m.num_features for m in ref.modules()
                      if isinstance(m, torch.nn.BatchNorm2d))
    total = sum(p.numel() for p in ref.parameters())
    assert total == PYTORCHCV_PARAMS[name]
    assert rep.params == total - bn_channels
    assert rep.macs == torch_macs(ref)


# Published Mult-Adds at 224 and where they come from. The authors' README
# (github.com/mit-han-lab/proxylessnas, "Mobile settings" table, FLOPs column = Mult-Adds)
# prints mobile 320M and mobile_14 581M; the GPU and CPU figures are the ones issue 10's
# brief cites for the paper (Cai et al. 2019), not found in any source stored here, and
# 465M is also the budget mmrazor's proxyless_gpu search config names (flops=465e6).
PAPER_MADDS = [
    ("proxylessnas_mobile", 320, "authors' README, ProxylessNAS (mobile) 320M"),
    ("proxylessnas_mobile14", 581, "authors' README, ProxylessNAS (mobile_14) 581M"),
    ("proxylessnas_gpu", 465, "as cited for the paper; mmrazor flops=465e6"),
    ("proxylessnas_cpu", 439, "as cited for the paper"),
]


@pytest.mark.parametrize("name,madds,source", PAPER_MADDS, ids=[p[0] for p in PAPER_MADDS])
def test_published_madds(name, madds, source):
    """Ours: mobile 320,427,584, mobile14 580,883,408, GPU 465,260,160, CPU 439,243,864:
    each within 0.1% of the published figure (its rounding), so there is no
    paper-vs-reference difference to explain. (SPNASNet: see the module docstring.)"""
    assert within(tinyinfer.summary(name).macs / 1e6, madds, 0.02, 0.5), source


def test_mobile_decomposition():
    """proxylessnas_mobile's 320.43M, term by term: stem 3x3 conv 3 -> 32 at 112x112
    (32*27*112*112 = 10,838,016), the first MB1 block (dw 3x3 on 32 + 1x1 32 -> 16 at
    112x112: 3,612,672 + 6,422,528), head 1x1 320 -> 1280 at 7x7 (20,070,400), FC 1280 x
    1000; the 20 remaining MBConv blocks make up the rest."""
    rep = tinyinfer.summary("proxylessnas_mobile")
    by_name = {r.name: r.cost.macs for r in rep.rows}
    assert by_name["conv_stem"] == 32 * 27 * 112 * 112
    assert by_name["blocks.0.0.conv_dw"] == 32 * 9 * 112 * 112
    assert by_name["blocks.0.0.conv_pw"] == 32 * 16 * 112 * 112
    assert by_name["conv_head"] == 320 * 1280 * 7 * 7
    assert by_name["classifier"] == 1280 * 1000


@pytest.mark.parametrize("version", list(PROXYLESS))
def test_zero_units_are_absent_and_shortcuts_match(version):
    """pytorchcv's residual=0 units are the identity: no block here. Every other unit is
    one block, and has a shortcut exactly where pytorchcv's unit adds its input."""
    ref = get_model(f"proxylessnas_{version}")
    units = [m for name, m in ref.named_modules() if type(m).__name__ == "ProxylessUnit"]
    graph = proxylessnas(version)
    blocks = {".".join(n.name.split(".")[:3]) for n in graph if n.name.startswith("blocks.")}
    adds = [n for n in graph if n.kind == "add"]
    assert len(blocks) == sum(u.residual for u in units)
    assert len(adds) == sum(u.residual and u.shortcut for u in units)
    zero = sum(unit is None for stage in PROXYLESS[version]["stages"] for unit in stage)
    assert zero == sum(not u.residual for u in units)


@pytest.mark.parametrize("name", NAMES)
def test_pytorchcv_keymap_is_every_state_dict_key(name):
    """The explicit key map covers pytorchcv's state_dict exactly (BN's num_batches_tracked,
    a training counter, aside) and maps it onto distinct graph weights."""
    spec = tinyinfer.models.registry.get_spec(name)
    keymap = spec.layouts["pytorchcv"](spec.build())
    theirs = {k for k in get_model(name).state_dict() if not k.endswith("num_batches_tracked")}
    assert set(keymap) == theirs
    assert len(set(keymap.values())) == len(keymap)


def test_spnasnet_structure():
    """Single-Path NAS's 21 MBConv blocks in timm's 7 stages (1, 3, 4, 4, 4, 4, 1); the
    first (t = 1) has no expansion conv, its depthwise conv reads the stem; 5x5 depthwise
    kernels where the paper's figure has them: the first block of the 40- and 80-channel
    stages and all eight 96- and 192-channel blocks (10)."""
    graph = spnasnet()
    nodes = {n.name: n for n in graph}
    blocks = sorted({tuple(map(int, n.name.split(".")[1:3])) for n in graph
                     if n.name.startswith("blocks.")})
    assert [sum(1 for s, _ in blocks if s == k) for k in range(7)] == [1, 3, 4, 4, 4, 4, 1]
    dw = [n for n in graph if n.name.endswith("conv_dw")]
    assert len(dw) == 21
    assert sorted(n.name for n in dw if n.param_shapes["weight"][-1] == 5) == sorted(
        ["blocks.2.0.conv_dw", "blocks.3.0.conv_dw"]
        + [f"blocks.{s}.{i}.conv_dw" for s in (4, 5) for i in range(4)])
    assert nodes["blocks.0.0.conv_dw"].inputs == ["bn1.act"]
    assert "blocks.0.0.conv_pwl" not in nodes


def test_spnasnet_loads_timm_layout():
    """timm's spnasnet_100 is the same network under the graph's own names (BN epsilon
    1e-5 in both): its randomized weights load and match at batch 2, 160."""
    import timm
    ref = randomize(timm.create_model("spnasnet_100"), seed=5)
    model = tinyinfer.load("spnasnet", weights=state_dict_numpy(ref))
    assert "timm" in model.weights_source
    x = image_batch(2, 160, seed=160)
    assert_matches(model(x), forward(ref, x), "spnasnet (timm layout) @2x160")


def test_unknown_option_is_one_clear_error():
    with pytest.raises(tinyinfer.TinyInferError, match="width_mult"):
        tinyinfer.load("proxylessnas_mobile", weights=None, width_mult=0.5)


@pytest.mark.parametrize("name", ["proxylessnas_gpu", "spnasnet"])
def test_parity_where_pytorchcv_head_cannot_run(name):
    """At 129 the last map is 5x5 (129 -> 65 -> 33 -> 17 -> 9 -> 5), where pytorchcv's fixed
    AvgPool2d(7) fails; our global pool is its value wherever it runs, so the reference
    here swaps in a global average pool and everything before it (7x7 depthwise kernels on
    odd maps included) is compared, at batch 2."""
    ref = randomize(he_init(get_model(name), seed=4), seed=4)
    ref.features.final_pool = torch.nn.AdaptiveAvgPool2d(1)
    model = tinyinfer.load(name, weights=state_dict_numpy(ref))
    x = image_batch(2, 129, seed=129)
    assert_matches(model(x), forward(ref, x), f"{name} @2x129")
