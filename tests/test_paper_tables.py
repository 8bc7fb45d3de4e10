"""The papers' tables (tinyinfer/analysis/paper_tables.py) against the published numbers, written out
here from ../shared/seeds (not read from the module under test).

Tolerance, unless a test says otherwise: published numbers are rounded (Mult-Adds to the
million, parameters to 0.1M or 0.01M), so |ours - published| <= 1% + half a unit of the last
published digit (test_counts.close). MobileNet Tables 2, 6 and 7 are checked in
test_counts.py; here the table functions are checked against the same published numbers.
"""
import pytest

from test_counts import MOBILENET_V1_PUBLISHED, close
from tinyinfer.analysis import paper_tables as P


def test_table_4_full_convolution_mobilenet():
    """Conv MobileNet 4866M Mult-Adds / 29.3M params; MobileNet 569M / 4.2M."""
    rows = {r[0]: r for r in P.table_4().rows}
    full = rows["Conv MobileNet"]
    assert close(full[1], 4866, 0.5) and close(full[3], 29.3, 0.05)
    assert close(rows["MobileNet"][1], 569, 0.5) and close(rows["MobileNet"][3], 4.2, 0.05)


def test_separable_layer_vs_standard_conv_is_1_over_n_plus_1_over_9():
    """Layer by layer, MobileNet's dw + pw MACs over the full-conv MobileNet's 3x3 conv
    MACs equal 1/N + 1/D_K^2 exactly (integers: (dw + pw) * 9N == standard * (9 + N))."""
    rows = P.separable_ratio().rows
    assert len(rows) == 13
    for layer, m_to_n, d_f, separable, standard, _, _ in rows:
        m, n = (int(v) for v in m_to_n.split(" -> "))
        assert standard == 9 * m * n * d_f * d_f, layer           # D_K^2 M N D_F^2
        assert separable * 9 * n == standard * (9 + n), layer


def test_tables_6_and_7_from_the_table_function():
    rows = {r[0]: r for r in P.tables_6_7().rows}
    for alpha, res, madds, params in MOBILENET_V1_PUBLISHED:
        row = rows[f"{alpha:.2f} MobileNet-{res}"]
        assert close(row[1], madds, 0.5) and close(row[3], params, 0.05), row


def test_table_2_from_the_table_function():
    """Mult-Add shares as published (the first conv's 1.19% read as 1.91%: see test_counts)."""
    published = {"Conv 1x1": 94.86, "Conv DW 3x3": 3.06, "Conv 3x3": 1.91, "Fully Connected": 0.18}
    for t, ours, *_ in P.table_2().rows:
        assert abs(ours - published[t]) <= 0.01, t


# MobileNet Tables 8 and 9: (Mult-Adds M, params M) and the tolerance each needs, with why.
# VGG's 15300 is 15.3 billion: three significant digits, so half a unit is 50M.
TABLES_8_9 = {
    "1.0 MobileNet-224": (569, 4.2, None),
    "VGG 16": (15300, 138, None),
    "0.50 MobileNet-160": (76, 1.32, None),
    # torchvision's GoogLeNet has BN and a 3x3 conv where the paper's Inception branch has
    # 5x5 (a known deviation of the reference): 3.3% fewer Mult-Adds, 2.7% fewer params
    "GoogleNet": (1550, 6.8, 0.04),
    # torchvision's single-tower AlexNet ("one weird trick") has 61.1M params vs ~60M
    "AlexNet": (720, 60, 0.02),
}


@pytest.mark.parametrize("label", sorted(TABLES_8_9))
def test_tables_8_and_9(label):
    madds, params, rel = TABLES_8_9[label]
    row = {r[0]: r for r in P.tables_8_9().rows}[label]
    if rel is None:
        assert close(row[2], madds, 50 if madds > 10000 else 0.5)
        assert close(row[4], params, {4.2: 0.05, 138: 0.5, 1.32: 0.005}[params])
    else:
        assert abs(row[2] / madds - 1) <= rel and abs(row[4] / params - 1) <= rel


def test_table_9_squeezenet_is_flops_not_mult_adds():
    """The paper lists SqueezeNet at 1700M "Mult-Adds" and 1.25M params. SqueezeNet 1.0
    has 1.25M params (matches) but ~0.82G multiply-adds: 1700 is about twice that, i.e.
    FLOPs. Here: the published number is 2.0-2.1x ours."""
    row = {r[0]: r for r in P.tables_8_9().rows}["Squeezenet"]
    assert close(row[4], 1.25, 0.005)
    assert 2.0 <= 1700 / row[2] <= 2.1


# MobileNetV2 Table 3 (16-bit floats, Kb = 1000 bytes): size -> (channels, Kb) for V1, V2
TABLE_3 = {112: ((64, 1600), (16, 400)), 56: ((128, 800), (32, 200)),
           28: ((256, 400), (64, 100)), 14: ((512, 200), (160, 62)),
           7: ((1024, 199), (320, 32)), 1: ((1024, 2), (1280, 2))}


def test_mobilenet_v2_table_3_memory():
    """Rows that reproduce: V1 at every size but 7x7, V2 at 112, 7 and 1, and both maxima
    (1600K, 400K). The others are the paper's own inconsistencies, asserted as such (see
    tinyinfer/analysis/memory.py): V1 7x7 counts two tensors, V2 56/28/14 list the next stage's width."""
    table = P.mobilenet_v2_memory()
    rows = {int(r[0].split("x")[0]): r for r in table.rows if r[0] != "max"}
    # the 1x1 row prints whole Kb: 2 for V1's 2.05K and for V2's 2.56K
    kb = lambda ours, published, size: int(ours) == published if size == 1 \
        else close(ours, published, 0.5)                                  # noqa: E731
    for size, ((c1, k1), (c2, k2)) in TABLE_3.items():
        ours = rows[size]
        if size != 7:
            assert ours[1] == c1 and kb(ours[2], k1, size), size
        if size in (112, 7, 1):
            assert ours[4] == c2 and kb(ours[5], k2, size), size
    assert rows[7][1] == 1024 and close(2 * rows[7][2], 199, 2)          # two tensors
    assert [rows[s][4] for s in (56, 28, 14)] == [24, 32, 96]             # vs 32, 64, 160
    maxima = [r for r in table.rows if r[0] == "max"][0]
    assert close(maxima[2], 1600, 0.5) and close(maxima[5], 400, 0.5)


def test_efficientnet_b0_and_scaling():
    """B0: 0.39B FLOPS (multiply-adds) and 5.3M params (seeds: EfficientNet paper, Table 2).
    Each B_i has more Mult-Adds than B_(i-1), and B7 is ~2^6.5 = 90x B0 (phi = 6.48)."""
    rows = P.efficientnet_scaling().rows
    b0 = rows[0]
    assert close(b0[5] * 1000, 390, 5) and close(b0[8], 5.3, 0.05)
    macs = [r[5] for r in rows]
    assert macs == sorted(macs) and 80 <= macs[-1] / macs[0] <= 110


# RegNet (Radosavovic et al. 2020) vs EfficientNet, /work/shared/seeds/001: model ->
# (resolution, activations M) as published (pycls runs EfficientNet-Bk at its own size).
REGNET_ACTIVATIONS = {"efficientnet_b0": (224, 6.7), "regnety_004": (224, 3.9),
                      "efficientnet_b1": (240, 10.9), "regnety_006": (224, 4.3),
                      "efficientnet_b2": (260, 13.8), "regnety_008": (224, 5.2),
                      "efficientnet_b3": (300, 23.8), "regnety_016": (224, 8.0),
                      "regnety_040": (224, 12.3), "efficientnet_b5": (456, 98.9),
                      "regnety_080": (224, 18.0)}


@pytest.mark.parametrize("name", REGNET_ACTIVATIONS)
def test_activations_match_regnets_table(name):
    """Activations (conv and linear outputs) within half a unit of the published 0.1M.
    EfficientNet-B4 (48.5M published, 49.5M here) is left out: see the table's note."""
    from tinyinfer.analysis.activations import activations
    from tinyinfer.api import get_spec
    res, published = REGNET_ACTIVATIONS[name]
    spec = get_spec(name)
    assert abs(activations(spec.build(**spec.defaults), res) / 1e6 - published) <= 0.05


def test_activations_count_convs_linears_and_se_by_hand():
    """A hand-built net: 3x3 conv stride 2 (8x16x16 = 2048), BN+ReLU (0), SE 8 -> 2 -> 8
    (2 + 8), pool (0), linear 8 -> 10 (10): 2068."""
    from tinyinfer.analysis.activations import activations
    from tinyinfer.engine.graph import Graph
    from tinyinfer.models.builder import NetBuilder
    b = NetBuilder()
    x = b.conv_bn_act(Graph.INPUT, "c", "bn", 8, 3, 2, act="relu")
    x = b.se("se", x, 2)
    b.linear("fc", b.global_pool("pool", x), 10)
    assert activations(b.graph, 32) == 2048 + 10 + 10
