"""The seeds' remaining tables (tinyinfer/analysis/scaling_tables.py, comparison_tables.py)
against the published numbers, typed in here from ../shared/seeds (not read from the modules
under test), and the scaled networks against timm's own modules.

Where each published number comes from:
    MobileNetV2 Table 4        seed 000 (also 001, 003): Sandler et al. 2018
    EfficientNet Table 3       seed 003 (Tan & Le 2019)
    EfficientNet Table 7       seed 000
    TinyNet vs EfficientNet    seed 002 (Han et al. 2020, "Comparison to EfficientNet Rule")
    EfficientViT's comparison  seed 000 (Liu et al. 2023)
    MobileViT (a), (b)         seed 000 (Mehta & Rastegari 2022)
    ShuffleNet 1.5x / 2x       also megvii-model/ShuffleNet-Series, ShuffleNetV1/README.md
                               (292M / 3.4M, 524M / 5.4M), whose network.py gives the widths

Tolerance, unless a test says otherwise (test_counts.close): |ours - published| <= 1% + half a
unit of the last printed digit, for Mult-Adds and parameters alike. Every larger gap is its
own test, with its arithmetic.
"""
import math

import pytest
import torch

import tinyinfer
from test_counts import close
from test_shufflenet_v1 import closed_form_macs
from tinyinfer.analysis import comparison_tables as C
from tinyinfer.analysis import scaling_tables as S
from tinyinfer.errors import InputError
from torch_ref import torch_macs


def half_unit(published) -> float:
    """Half a unit of the last printed digit: 575 -> 0.5, 4.2 -> 0.05, 12.4 -> 0.05."""
    text = repr(published)
    return 0.5 * 10 ** -(len(text.split(".")[1]) if "." in text else 0)


def rows(table):
    return {r[0]: r for r in table.rows}


# ---- MobileNetV2 Table 4: label -> (params M, MAdds M, Pixel-1 ms) ------------------------
TABLE_4 = {"MobileNetV1": (4.2, 575, 113), "ShuffleNet (1.5)": (3.4, 292, None),
           "ShuffleNet (x2)": (5.4, 524, None), "NasNet-A": (5.3, 564, 183),
           "MobileNetV2": (3.4, 300, 75), "MobileNetV2 (1.4)": (6.9, 585, 143)}


@pytest.fixture(scope="module")
def table_4():
    return rows(C.mobilenet_v2_table_4())


@pytest.mark.parametrize("label", ["ShuffleNet (1.5)", "ShuffleNet (x2)", "NasNet-A",
                                   "MobileNetV2 (1.4)", "MobileNetV2"])
def test_table_4_madds(table_4, label):
    row = table_4[label]
    assert (row[3], row[5], row[7]) == (TABLE_4[label][0], TABLE_4[label][1],
                                        TABLE_4[label][2] or "-")      # no typo in the module
    assert close(row[4], TABLE_4[label][1], half_unit(TABLE_4[label][1])), row


@pytest.mark.parametrize("label", ["MobileNetV1", "ShuffleNet (1.5)", "ShuffleNet (x2)",
                                   "NasNet-A"])
def test_table_4_params(table_4, label):
    row = table_4[label]
    assert close(row[2], TABLE_4[label][0], half_unit(TABLE_4[label][0])), row


def test_table_4_mobilenet_v1_is_575_here_and_569_in_its_own_paper(table_4):
    """The MobileNet paper's Tables 6-8 print 569M, which we reproduce (568.7M); this table's
    575M is 1.1% above both: within 2%, not within 1%."""
    ours = table_4["MobileNetV1"][4]
    assert close(ours, 569, 0.5) and 0.01 < 575 / ours - 1 < 0.02


def test_table_4_mobilenet_v2_params():
    """3.4M (1.0) and 6.9M (1.4) published. The authors' TF-slim README lists 3.47M and 6.06M
    for mobilenet_v2_1.0_224 and _1.4_224: 3.4 is 3.47 rounded down, and 6.9 disagrees with
    their own code. Ours (torchvision's network, one folded BN bias per channel): 3.49M and
    6.08M, within 1% of TF-slim's."""
    table = rows(C.mobilenet_v2_table_4())
    assert close(table["MobileNetV2"][2], 3.47, 0.005)
    assert close(table["MobileNetV2 (1.4)"][2], 6.06, 0.005)
    assert 6.9 / table["MobileNetV2 (1.4)"][2] > 1.13


def test_shufflenet_wider_widths_are_the_authors():
    """ShuffleNet 1.5x / 2x (g=3): the authors' network.py keeps a 24-channel stem at 1.5x
    (stages 360, 720, 1440) and uses 48 at 2x (480, 960, 1920). The closed form of Table 1 at
    those widths is exactly our count; pytorchcv's rule, stem int(24 x 1.5) = 36, adds
    3 x 9 x 12 x 112^2 (stem conv) + 12 x 90 x 56^2 (the first unit's dense 1x1) and removes
    12 x 30 x 28^2 (its grouped expand conv then outputs 360 - 36 = 324 channels, not 336):
    +7.17M, 299.6M, 2.6% above the published 292M."""
    w3d2 = tinyinfer.summary("shufflenet_g3_w3d2")
    assert w3d2.macs == closed_form_macs(3, [360, 720, 1440], 24) == 292_443_552
    assert tinyinfer.summary("shufflenet_g3_w2").macs == closed_form_macs(3, [480, 960, 1920],
                                                                          48)
    wide_stem = tinyinfer.summary("shufflenet_g3_w3d2", stem_channels=36).macs
    assert wide_stem - w3d2.macs == 3 * 9 * 12 * 112 * 112 + 12 * 90 * 56 * 56 \
        - 12 * 30 * 28 * 28


@pytest.mark.parametrize("value", [0, -24, 2.5])
def test_stem_channels_must_be_a_positive_integer(value):
    with pytest.raises(InputError, match="stem_channels"):
        tinyinfer.build("shufflenet_g3_w3d2", stem_channels=value)


def test_table_4_measured_column():
    """The ms column holds a measured time for the rows asked for, '-' for the others."""
    table = rows(C.mobilenet_v2_table_4(timed=("ShuffleNet (1.5)",), runs=1, rounds=1))
    assert isinstance(table["ShuffleNet (1.5)"][6], float) and table["ShuffleNet (1.5)"][6] > 0
    assert table["MobileNetV2"][6] == "-"
    assert "load average" in C.mobilenet_v2_table_4(timed=("x",)).notes[-1]


# ---- EfficientNet Table 3: label -> published FLOPS (B; the paper's FLOPS are Mult-Adds) ----
TABLE_3 = {"Baseline MobileNetV1": 0.6, "Scale MobileNetV1 by width (w=2)": 2.2,
           "Scale MobileNetV1 by resolution (r=2)": 2.2,
           "MobileNetV1 compound scale (d=1.4, w=1.2, r=1.3)": 2.3,
           "Baseline MobileNetV2": 0.3, "Scale MobileNetV2 by depth (d=4)": 1.2,
           "Scale MobileNetV2 by width (w=2)": 1.1, "Scale MobileNetV2 by resolution (r=2)": 1.2,
           "MobileNetV2 compound scale": 1.3, "Baseline ResNet-50": 4.1,
           "Scale ResNet-50 by depth (d=4)": 16.2, "Scale ResNet-50 by width (w=2)": 14.7,
           "Scale ResNet-50 by resolution (r=2)": 16.4, "ResNet-50 compound scale": 16.7}
# The rows within 1% + half a unit of 0.1B (0.05B): 9 of 14 (MobileNetV2 w=2 by 3.4%, inside
# half a unit only because 1.1 has two digits). The others: tests below.
TABLE_3_REPRODUCED = ["Baseline MobileNetV1", "Scale MobileNetV1 by width (w=2)",
                      "Baseline MobileNetV2", "Scale MobileNetV2 by depth (d=4)",
                      "Scale MobileNetV2 by width (w=2)", "Scale MobileNetV2 by resolution (r=2)",
                      "Baseline ResNet-50", "Scale ResNet-50 by resolution (r=2)"]


@pytest.fixture(scope="module")
def table_3():
    return rows(S.efficientnet_table_3())


def test_table_3_lists_the_published_rows(table_3):
    assert {k: r[5] for k, r in table_3.items()} == TABLE_3


@pytest.mark.parametrize("label", TABLE_3_REPRODUCED)
def test_table_3_reproduced_rows(table_3, label):
    assert close(table_3[label][4], TABLE_3[label], 0.05), table_3[label]


def test_table_3_mobilenet_v1_resolution_2():
    """At 448 every conv has 4x the outputs, the FC (1024 x 1000) the same: 4 x (568.74M -
    1.02M) + 1.02M = 2.272B, 3.3% above the printed 2.2B (r = 1.97 would give 2.2B)."""
    base = tinyinfer.summary("mobilenetv1_100").macs
    ours = S.macs(S.mobilenet_v1_scaled(), 448)
    assert ours == 4 * (base - 1024 * 1000) + 1024 * 1000
    assert 1.03 < ours / 2.2e9 < 1.04


def test_table_3_resnet50_depth_4():
    """ceil(4 n) = 12, 16, 24, 12 bottlenecks: 48 more than ResNet-50's 16. Every stride-1
    bottleneck costs (4c.c + 9c.c + c.4c) x (56/2^s)^2 with c = 64 x 2^s, the same
    218,365,952 in each stage s; so 4.089B + 48 x 0.2184B = 14.571B, 10% below the printed
    16.2B, which would need 55.5 added blocks."""
    block = (4 + 9 + 4) * 64 * 64 * 56 * 56
    assert block == 218_365_952
    ours = rows(S.efficientnet_table_3())["Scale ResNet-50 by depth (d=4)"][4]
    assert ours == round((tinyinfer.summary("resnet50").macs + 48 * block) / 1e9, 3)
    assert 0.89 < ours / 16.2 < 0.91


def test_table_3_resnet50_width_2(table_3):
    """Stage widths x 2, the 64-channel stem kept (timm's ResNet(channels=...), checked
    below): every conv but the stem and the 1x1s reading it has 4x the Mult-Adds, 15.87B,
    8% above the printed 14.7B; at ~w^2, 14.7B is w = 1.92."""
    assert 1.07 < table_3["Scale ResNet-50 by width (w=2)"][4] / 14.7 < 1.09


def test_table_3_compound_rows(table_3):
    """The paper gives (d, w, r) = (1.4, 1.2, 1.3) for MobileNetV1 only; applied to all three:
    MobileNetV1 2.47B (+7%; round(n d) depths give 2.18B, -5%: the published 2.3B lies
    between), MobileNetV2 1.44B (+11%), ResNet-50 15.69B (-6%). None reproduces; pinned."""
    ratios = [table_3[k][4] / TABLE_3[k] for k in (
        "MobileNetV1 compound scale (d=1.4, w=1.2, r=1.3)", "MobileNetV2 compound scale",
        "ResNet-50 compound scale")]
    assert [round(r, 2) for r in ratios] == [1.07, 1.11, 0.94]
    assert S.macs(S.mobilenet_v1_scaled(1.2, 1.4, "round"), 291) / 1e9 < 2.3 < ratios[0] * 2.3


# The scaled networks are timm's own: same Mult-Adds from PyTorch's shapes (at 96 pixels, to
# stay fast; the counts' resolution scaling is tested above and in test_counts.py).
def _timm_scaled(kind, w, d):
    import timm
    E = timm.models.efficientnet
    if kind == "v1":
        return E._gen_mobilenet_v1("mobilenetv1_100", channel_multiplier=w, depth_multiplier=d)
    if kind == "v2":
        return E._gen_mobilenet_v2("mobilenetv2_100", channel_multiplier=w, depth_multiplier=d)
    R = timm.models.resnet
    return R.ResNet(R.Bottleneck, [math.ceil(n * d) for n in (3, 4, 6, 3)],
                    channels=tuple(int(c * w) for c in (64, 128, 256, 512)))


@pytest.mark.parametrize("kind,w,d", [("v1", 1.2, 1.4), ("v2", 1.0, 4.0), ("v2", 2.0, 1.0),
                                      ("resnet", 2.0, 1.0), ("resnet", 1.2, 1.4)])
def test_scaled_networks_equal_timms(kind, w, d):
    ours = {"v1": S.mobilenet_v1_scaled, "v2": S.mobilenet_v2_scaled,
            "resnet": S.resnet50_scaled}[kind](w, d)
    assert S.macs(ours, 96) == torch_macs(_timm_scaled(kind, w, d).eval(), 96)


# ---- EfficientNet Table 7 (B FLOPS) ------------------------------------------------------
TABLE_7 = {"Baseline model (EfficientNet-B0)": 0.4, "Scale model by depth (d=4)": 1.8,
           "Scale model by width (w=2)": 1.8, "Scale model by resolution (r=2)": 1.9,
           "Compound Scale (d=1.4, w=1.2, r=1.3)": 1.8}


def test_table_7():
    """B0 (0.386B) and the compound row (1.800B at 291 px) reproduce. The one-dimension rows
    count less than printed: d=4 1.575B (-12.5%), w=2 1.450B (-19%), r=2 1.538B (-19%).
    r=2 is exact arithmetic: B0's convs all have 4x the outputs at 448 while its SE and FC
    layers (on pooled vectors) do not change, so no counting convention gives 1.9B; the
    printed multipliers must be rounded (r = 2.22 and w = 2.23 give the printed FLOPS)."""
    table = rows(S.efficientnet_table_7())
    assert {k: r[5] for k, r in table.items()} == TABLE_7
    for label in ("Baseline model (EfficientNet-B0)", "Compound Scale (d=1.4, w=1.2, r=1.3)"):
        assert close(table[label][4], TABLE_7[label], 0.05), label
    ratios = {k: round(r[4] / TABLE_7[k], 2) for k, r in table.items()}
    assert (ratios["Scale model by depth (d=4)"], ratios["Scale model by width (w=2)"],
            ratios["Scale model by resolution (r=2)"]) == (0.88, 0.81, 0.81)
    b0 = tinyinfer.summary("efficientnet_b0", resolution=224)
    pooled = sum(r.cost.macs for r in b0.rows if r.type in ("Squeeze-Excite", "Fully Connected"))
    assert table["Scale model by resolution (r=2)"][4] == round(
        (4 * (b0.macs - pooled) + pooled) / 1e9, 3)


# ---- TinyNet vs EfficientNet's rule (M FLOPs = Mult-Adds) --------------------------------
TINYNET = {"EfficientNet-B^-1 (phi = -1)": 200, "shrink B0 by r = 0.70": 196,
           "shrink B0 by d = 0.45": 196, "shrink B0 by w = 0.65": 205, "TinyNet-B": 201,
           "EfficientNet-B^-2 (phi = -2)": 97, "shrink B0 by r = 0.46": 103,
           "shrink B0 by w = 0.38": 99, "TinyNet-C": 97}


def test_tinynet_table():
    """The one-dimension rows and TinyNet-B reproduce under TinyNet's rules (round depths,
    fixed stem). TinyNet-C counts 99.5M, 2.6% above the slide's 97M. B^-1 / B^-2, (r, w, d)
    = (1.15, 1.1, 1.2)^phi built as networks, count 247.4M and 137.2M, 24% and 41% above the
    published 200M / 97M, which equal B0 / 1.92 = 200.9M and B0 / 4 = 96.5M within 1%."""
    table = rows(S.tinynet_table())
    assert {k: r[6] for k, r in table.items()} == TINYNET
    for label in ("shrink B0 by r = 0.70", "shrink B0 by d = 0.45", "shrink B0 by w = 0.65",
                  "TinyNet-B", "shrink B0 by r = 0.46", "shrink B0 by w = 0.38"):
        assert close(table[label][5], TINYNET[label], 0.5), table[label]
    assert 1.02 < table["TinyNet-C"][5] / 97 < 1.03
    b0 = tinyinfer.summary("efficientnet_b0").macs / 1e6
    assert close(b0 / 1.92, 200, 0) and close(b0 / 4, 97, 0)
    assert table["EfficientNet-B^-1 (phi = -1)"][5] / 200 > 1.2
    assert table["EfficientNet-B^-2 (phi = -2)"][5] / 97 > 1.4


def test_depth_underflow():
    """The slide's "depth underflow": depth alone cannot reach 97M. With one block in each of
    B0's seven stages (timm's TinyNet generator at a tiny depth multiplier, counted by
    PyTorch's shapes), B0 still has 173.2M Mult-Adds."""
    import timm
    floor = S.depth_floor_macs()
    ref = timm.models.efficientnet._gen_tinynet("tinynet_a", 1.0, 0.01).eval()
    assert floor == torch_macs(ref, 224)
    assert 170e6 < floor and floor > 97e6


# ---- EfficientViT's comparison: label -> (FLOPs M, params M), seed 000 -------------------
EFFICIENTVIT = {
    "EfficientViT-M0": (79, 2.3), "MobileNetV3-Small": (57, 2.5), "EfficientViT-M1": (167, 3.0),
    "MobileViT-XXS": (410, 1.3), "ShuffleNetV2 1.0x": (146, 2.3), "MobileViTV2-0.5": (466, 1.4),
    "EfficientViT-M2": (201, 4.2), "MobileOne-S0": (274, 2.1), "MobileNetV2 1.0x": (300, 3.4),
    "EfficientViT-M3": (263, 6.9), "GhostNet 1.0x": (141, 5.2), "NASNet-A-Mobile": (564, 5.3),
    "EfficientViT-M4": (299, 8.8), "EdgeViT-XXS": (556, 4.1), "MobileViT-XS": (986, 2.3),
    "ShuffleNetV2 2.0x": (591, 7.4), "MobileNetV3-Large": (217, 5.4),
    "MobileViTV2-0.75": (1030, 2.9), "MobileOne-S1": (825, 4.8), "EfficientNet-B0": (390, 5.3),
    "EfficientViT-M5": (522, 12.4),
    # printed as "EfficientViT-M4 384" with 12.4M params: M5's (M4 has 8.8M; M4 at 384 counts
    # 830M here, M5 1,474M): the paper's M5 at 384
    "EfficientViT-M5 384": (1486, 12.4), "EfficientViT-M5 512": (2670, 12.4),
}
# the table's two networks tinyinfer does not have
NOT_HERE = {"MobileFormer-52M", "GLiT-Tiny"}


@pytest.fixture(scope="module")
def efficientvit():
    return rows(C.efficientvit_table())


def test_efficientvit_table_has_every_row_tinyinfer_can_build(efficientvit):
    assert {k: (r[4], r[6]) for k, r in efficientvit.items()} == EFFICIENTVIT
    assert set(C.NOT_IN_TINYINFER) == NOT_HERE


@pytest.mark.parametrize("label", sorted(set(EFFICIENTVIT) - {"MobileViT-XS"}))
def test_efficientvit_table_flops(efficientvit, label):
    """Within 2% + half a unit (the brief's MAC tolerance). ShuffleNetV2 2.0x is the largest
    gap, -1.3%: torchvision's x2_0 counts 583M (its own documentation's 0.58 GFLOPS)."""
    flops = EFFICIENTVIT[label][0]
    assert abs(efficientvit[label][3] - flops) <= 0.02 * flops + 0.5, efficientvit[label]


@pytest.mark.parametrize("label", sorted(set(EFFICIENTVIT) - {"MobileNetV2 1.0x"}))
def test_efficientvit_table_params(efficientvit, label):
    params = EFFICIENTVIT[label][1]
    assert close(efficientvit[label][5], params, 0.05), efficientvit[label]


def test_efficientvit_table_known_gaps(efficientvit):
    """MobileViT-XS: 1,025.9M, 4.0% above 986M (the README's note (b): conv + linear alone is
    908.6M, with the attention matmuls 1,025.9M; no reading gives 986M). MobileNetV2's 3.4M is
    TF-slim's 3.47M rounded down (see test_table_4_mobilenet_v2_params)."""
    assert round(efficientvit["MobileViT-XS"][3] / 986, 3) == 1.040
    assert close(efficientvit["MobileNetV2 1.0x"][5], 3.47, 0.005)


def test_efficientvit_measured_columns():
    """images/s of the three engines for a timed row (batch 1), '-' elsewhere."""
    table = rows(C.efficientvit_table(timed=("MobileNetV3-Small",), runs=1, rounds=1))
    speed = table["MobileNetV3-Small"][7:]
    assert all(isinstance(v, float) and v > 0 for v in speed), speed
    assert table["EfficientViT-M0"][7:] == ("-", "-", "-")


# ---- MobileViT's tables (a) and (b): label -> params M, seed 000 -------------------------
MOBILEVIT = {"MobileNetv1": 2.6, "MobileNetv2": 2.6, "MobileNetv3": 2.5, "ShuffleNetv2": 2.3,
             "MobileViT-XS": 2.3, "EfficientNet-B0": 5.3, "ResNet-101": 44.5,
             "ResNet-101-SE": 49.3, "MobileViT-S": 5.6}


def test_mobilevit_tables():
    """Every network tinyinfer can count (not ESPNetv2, DenseNet-169) within 1% + half a
    unit; ResNet-101 is models/resnet.py's builder at (3, 4, 23, 3): 44.50M, with SE 49.27M."""
    table = {r[1]: r for r in C.mobilevit_tables().rows}
    assert {k: r[4] for k, r in table.items()} == MOBILEVIT
    for label, params in MOBILEVIT.items():
        assert close(table[label][3], params, half_unit(params)), table[label]
