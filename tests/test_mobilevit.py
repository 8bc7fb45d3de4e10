"""MobileViT v1 (models/mobilevit.py) beyond the parity test of test_models.py: its counts
against the reference and the published numbers, the counting tools on it, its
preprocessing, its reports.

Published numbers and where they come from:
* parameters 1.3M / 2.3M / 5.6M (XXS / XS / S): the MobileViT paper (ICLR 2022), quoted in
  the seeds (../shared/seeds/000: its comparison tables for XS and S; the EfficientViT
  table there for XXS), rounded to 0.1M;
* MACs 410M (XXS) and 986M (XS) at 256 px: the EfficientViT paper's comparison table
  ("Flops (M)", seeds/000). No published MAC count for S was found in the seeds.
"""
import logging

import numpy as np
import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

import tinyinfer
from tinyinfer.analysis.conventions import count
from tinyinfer.analysis.memory import materialized
from tinyinfer.errors import InputError
from torch_ref import torch_macs

NAMES = ("mobilevit_xxs", "mobilevit_xs", "mobilevit_s")
PUBLISHED_PARAMS = {"mobilevit_xxs": 1.3e6, "mobilevit_xs": 2.3e6, "mobilevit_s": 5.6e6}


def _flop_counter_macs(module, fused: bool, resolution: int = 256) -> int:
    """FlopCounterMode's count / 2, with timm's attention fused (F.scaled_dot_product_
    attention, timm's default) or unfused (q @ k^T, softmax, @ v as plain matmuls)."""
    for m in module.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = fused
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module.eval()(torch.zeros(1, 3, resolution, resolution))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("name", NAMES)
def test_macs_and_params_equal_the_reference(name):
    """MACs = conv + linear + attention matmuls. FlopCounterMode sees all three on timm's
    unfused path, and tinyinfer's count equals it exactly; on the fused path (timm's default)
    it misses the attention matmuls, 2 * (B*P) * N^2 * d per transformer block (P = 4
    sequences of N tokens), which is exactly the difference. Parameters as PyTorch counts
    them (BN weight and bias, LayerNorm affines) equal the reference's."""
    ref = timm.create_model(name)
    model = tinyinfer.load(name, weights=None)
    ours = tinyinfer.summary(name, resolution=256).macs
    assert ours == _flop_counter_macs(ref, fused=False)
    attention = sum(2 * 4 * (256 // s) ** 4 // 16 * d * depth for s, d, depth in
                    zip((8, 16, 32), *_dims_and_depths(name)))
    assert ours - _flop_counter_macs(ref, fused=True) == attention
    assert ours - attention == torch_macs(ref, 256)          # conv + linear, by hooks
    assert count(model, "macs").params == sum(p.numel() for p in ref.parameters())


def _dims_and_depths(name):
    from tinyinfer.models.mobilevit import ARCHS
    layers = [r for r in ARCHS[name.split("_")[1]]["layers"] if r[0] == "vit"]
    return [r[3] for r in layers], [r[4] for r in layers]


@pytest.mark.parametrize("name", NAMES)
def test_params_are_the_papers(name):
    """The paper gives parameters to 0.1M: 1,272,024 / 2,317,848 / 5,578,632 (the reference's
    count, test above) round to its 1.3M / 2.3M / 5.6M. (XXS is 2.2% under 1.3M: within the
    rounding of a number given to 2 significant figures, not within 1% of it.)"""
    params = count(tinyinfer.load(name, weights=None), "macs").params
    assert round(params / 1e5) == round(PUBLISHED_PARAMS[name] / 1e5)


def test_macs_against_the_published_ones():
    """XXS: 407.36M vs the published 410M, -0.6%. XS: 1025.91M vs the published 986M,
    +4.0%, a difference we cannot explain: none of the counts of timm's XS at 256 px gives
    986M (conv + linear only 908.64M, -7.8%; fvcore with fused attention 934.92M, fvcore with
    the attention matmuls 1052.19M; the MobileViT paper itself prints no MAC count for XS),
    so this test pins the difference rather than hiding it."""
    xxs = tinyinfer.summary("mobilevit_xxs", resolution=256).macs
    xs = tinyinfer.summary("mobilevit_xs", resolution=256).macs
    assert abs(xxs / 410e6 - 1) < 0.02
    assert (xxs, xs) == (407_364_096, 1_025_911_808)
    assert round(100 * (xs / 986e6 - 1), 1) == 4.0


def test_counting_tools_on_timms_mobilevit():
    """The "torch" and "fvcore" emulations give the real tools' numbers for timm's
    mobilevit_xxs as it runs by default (fused attention): both ignore the attention
    matmuls (no CPU FLOP rule / no fvcore handle for scaled_dot_product_attention);
    fvcore adds BN 2 and LayerNorm 5 per element and the head's pool."""
    from fvcore.nn import FlopCountAnalysis
    ref = timm.create_model("mobilevit_xxs").eval()
    model = tinyinfer.load("mobilevit_xxs", weights=None)
    assert count(model, "torch").total == 2 * _flop_counter_macs(ref, fused=True)
    logging.disable(logging.WARNING)
    try:
        fv = FlopCountAnalysis(ref, torch.zeros(1, 3, 256, 256))
        fv.unsupported_ops_warnings(False)
        want = fv.total()
    finally:
        logging.disable(logging.NOTSET)
    assert count(model, "fvcore").total == want


def test_preprocessing_is_timms():
    """256 px, crop_pct 0.9 (resize 284), bicubic, no mean/std normalization: timm's
    pretrained_cfg for all three."""
    for name in NAMES:
        cfg = timm.data.resolve_data_config({}, model=timm.create_model(name))
        spec = tinyinfer.load(name, weights=None).spec
        assert cfg["input_size"] == (3, spec.input_size, spec.input_size)
        assert int(spec.input_size / cfg["crop_pct"]) == spec.resize
        assert (cfg["interpolation"], cfg["mean"], cfg["std"]) == \
            (spec.interpolation, spec.mean, spec.std)


def test_reports_show_the_attention_layers():
    """summary rows of the attention kind with their MACs (2 * 4 * 256^2 * 64 in the first
    block of XXS: 4 sequences of 256 tokens, d = 64, plus its qkv and proj linears); the
    memory table counts tokens (4, 256, C) as a 256 x 1 map of C channels."""
    model = tinyinfer.load("mobilevit_xxs", weights=None)
    rep = model.summary(resolution=256)
    attn = [r for r in rep.rows if r.type == "Self-attention"]
    assert len(attn) == 2 + 4 + 3
    first = attn[0]
    assert first.out_shape == (4, 256, 64)
    assert first.cost.macs == 2 * 4 * 256 * 256 * 64 + 4 * 256 * 64 * 4 * 64
    assert rep.by_type()["Self-attention"].macs == sum(r.cost.macs for r in attn)
    whole = {r.size: r for r in materialized(model.plan, (1, 3, 256, 256), streaming=False)}
    assert whole[(256, 1)].channels == 128      # the MLP's hidden tokens, 2 d = 128
    # streamed like MobileNetV2's expansion: fc1 (+SiLU) makes, fc2 sums feature slices
    streamed = {r.size: r for r in materialized(model.plan, (1, 3, 256, 256))}
    assert streamed[(256, 1)].channels == 64
    assert "Self-attention" in str(rep)


def test_unknown_variant_is_one_error():
    with pytest.raises(InputError, match="unknown MobileViT variant 'm'"):
        tinyinfer.load("mobilevit_xxs", weights=None, variant="m")


def test_odd_maps_resize_around_the_patches():
    """At 224 px the last MobileViT block sees a 7x7 map: it is resized to 8x8 for the
    2x2 patches and back (the parity test at 129 px checks the values); the fold node's
    cost counts both resizes' arithmetic and the output keeps the map's size."""
    model = tinyinfer.load("mobilevit_xxs", weights=None)
    rows = {r.name: r for r in model.summary(resolution=224).rows}
    assert rows["stages.4.1.unfold"].out_shape == (4, 16, 96)
    assert rows["stages.4.1.fold"].out_shape == (1, 96, 7, 7)
    assert rows["stages.4.1.fold"].cost.flops == 9 * 96 * 7 * 7
    assert rows["stages.2.1.fold"].cost.flops == 0      # 28x28: a multiple of 2
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    assert model(x).shape == (1, 1000)
