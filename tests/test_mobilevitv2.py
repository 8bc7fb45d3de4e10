"""MobileViTV2's counts against timm's module (FlopCounterMode, its parameters) and the
published figures, its checkpoint layout, and what it refuses. Parity of the logits is in
tests/reference_registry.py (all seven widths, 256 and 255).

Published figures and where they come from:
  params   the authors' model zoo (apple/corenet, projects/mobilevit_v2/README.md, "MobileViTv2
           (256x256)"; also their ml-cvnets): 1.4, 2.9, 4.9, 7.5, 10.6, 14.3, 18.4 M for widths
           0.5 ... 2.0, given to 0.1 M. tinyinfer counts 1,370,593 ... 18,449,329 (timm's
           exact numbers); each rounds to the published figure. A 1% band would be tighter
           than that rounding (0.05 / 1.4 = 3.6% at width 0.5), so the test rounds instead.
  MACs     the EfficientViT paper's comparison table (Liu et al. 2023, CVPR; seeds/000):
           MobileViTV2-0.5 466 M and -0.75 1030 M "FLOPs" at 256 (multiply-adds, as every
           row of that table), vs 464.8 M and 1028.4 M here: -0.25% and -0.16%, within 2%.
           No MACs for the other widths were found in the MobileViTV2 paper text available
           to us. timm's model cards list 0.5 / 1.1 / 2.9 / 5.5 GMACs for widths 0.5 / 0.75 /
           1.25 / 1.75, 0.01 to 0.08 G above the conv + linear MACs counted here (0.465,
           1.028, 2.818, 5.490 G) and by FlopCounterMode, and rounded to 0.1 G; the cards do
           not say what they count beyond convs and linears, so they are not asserted.

tinyinfer vs FlopCounterMode: FlopCounterMode counts the convolutions and the classifier (2
FLOPs per MAC) and nothing else. tinyinfer also counts the separable attention's context
vectors as MACs (sum over tokens of score x key: T d per transformer block, T = H W tokens
of d channels), which timm computes as an elementwise product and a sum that FlopCounterMode
does not see. At 256, width 0.5: stages 2-4 have 32x32, 16x16, 8x8 maps, d = 64, 96, 128, and
2, 4, 3 transformer blocks: 1024*64*2 + 256*96*4 + 64*128*3 = 253,952 MACs, exactly the
difference (464,848,896 - 464,594,944), 0.05% of the total.
"""
import numpy as np
import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

import tinyinfer
from tinyinfer.analysis.conventions import count, torch_params
from tinyinfer.errors import InputError
from tinyinfer.models.registry import get_spec

WIDTHS = {"mobilevitv2_050": 0.5, "mobilevitv2_075": 0.75, "mobilevitv2_100": 1.0,
          "mobilevitv2_125": 1.25, "mobilevitv2_150": 1.5, "mobilevitv2_175": 1.75,
          "mobilevitv2_200": 2.0}
PUBLISHED_PARAMS_M = {"mobilevitv2_050": 1.4, "mobilevitv2_075": 2.9, "mobilevitv2_100": 4.9,
                      "mobilevitv2_125": 7.5, "mobilevitv2_150": 10.6, "mobilevitv2_175": 14.3,
                      "mobilevitv2_200": 18.4}
PUBLISHED_MACS = {"mobilevitv2_050": 466e6, "mobilevitv2_075": 1030e6}
# (map side at 256, transformer blocks) of stages 2, 3, 4; d = int(c * width) / 2
TRANSFORMER_STAGES = ((32, 256, 2), (16, 384, 4), (8, 512, 3))


def _graph(name):
    spec = get_spec(name)
    return spec.build(**spec.defaults)


def _context_macs(width, resolution=256):
    """The separable attention's context vectors: T d MACs per transformer block."""
    scale = resolution // 256
    return sum((side * scale) ** 2 * (int(c * width) // 2) * depth
               for side, c, depth in TRANSFORMER_STAGES)


@pytest.mark.parametrize("name", ["mobilevitv2_050", "mobilevitv2_125"])
def test_macs_are_flop_counter_mode_plus_the_context_vectors(name):
    ref = timm.create_model(name).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ref(torch.zeros(1, 3, 256, 256))
    torch_macs = counter.get_total_flops() // 2
    ours = tinyinfer.summary(name).macs
    assert ours - torch_macs == _context_macs(WIDTHS[name])
    assert abs(ours - torch_macs) <= 0.02 * torch_macs
    # the "torch" convention's emulation (conventions.py) gives FlopCounterMode's own number
    model = tinyinfer.load(name, weights=None)
    assert count(model, "torch").total == counter.get_total_flops()


@pytest.mark.parametrize("name", sorted(WIDTHS))
def test_params_equal_timm_and_the_published_figures(name):
    ref = timm.create_model(name)
    timm_params = sum(p.numel() for p in ref.parameters())
    assert torch_params(_graph(name)) == timm_params
    assert round(timm_params / 1e6, 1) == PUBLISHED_PARAMS_M[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_MACS))
def test_macs_within_2_percent_of_published(name):
    macs = tinyinfer.summary(name).macs
    assert abs(macs - PUBLISHED_MACS[name]) <= 0.02 * PUBLISHED_MACS[name]


def test_graph_keys_are_timms_state_dict_keys():
    """The checkpoint layout is timm's, key for key (and shape for shape)."""
    name = "mobilevitv2_075"
    want = {k: tuple(v.shape) for k, v in timm.create_model(name).state_dict().items()
            if not k.endswith("num_batches_tracked")}
    got = {f"{n.name}.{p}": tuple(s) for n in _graph(name) for p, s in n.param_shapes.items()}
    assert got == want


def test_attention_cost_is_linear_in_the_tokens():
    """Twice the resolution, four times the tokens: the separable attention's rows count
    exactly 4x the MACs (multi-head attention's T^2 term would give 16x)."""
    rows = {r: [row.cost.macs for row in tinyinfer.summary("mobilevitv2_050", resolution=r).rows
                if row.type == "Separable attention"] for r in (256, 512)}
    assert len(rows[256]) == 9                     # 2 + 4 + 3 transformer blocks
    assert sum(rows[256]) == _context_macs(0.5)
    assert rows[512] == [4 * m for m in rows[256]]


def test_an_odd_map_is_resized_as_timm_does():
    """224 -> ... -> 7x7 at the last MobileViTV2 block: timm resizes it to 8x8 (bilinear,
    align_corners=True) and keeps that size; so does the resize_to_patches node. At 256 no
    map needs it and the nodes cost nothing. (Parity at 224 is tests/test_models.py's.)"""
    s224 = tinyinfer.summary("mobilevitv2_050", 224)
    resized = [r for r in s224.rows if r.kind == "resize_to_patches" and r.cost.flops]
    assert [r.name for r in resized] == ["stages.4.1.resize"]
    assert resized[0].out_shape == (1, 256, 8, 8)
    s256 = tinyinfer.summary("mobilevitv2_050", 256)
    assert all(r.cost.flops == 0 for r in s256.rows if r.kind == "resize_to_patches")


def test_width_mult_option():
    """The width multiplier is an architecture option (timm's int(c * alpha) widths)."""
    model = tinyinfer.load("mobilevitv2_100", weights=None, width_mult=0.5)
    assert model.summary().params == tinyinfer.summary("mobilevitv2_050").params
    with pytest.raises(InputError, match="width_mult must be a number > 0"):
        tinyinfer.load("mobilevitv2_100", weights=None, width_mult=0)
