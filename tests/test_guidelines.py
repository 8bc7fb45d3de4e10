"""ShuffleNet V2's guideline experiments (tinyinfer/analysis/guidelines.py): the memory access
costs against the paper's formulas, written out here from shapes (Ma et al. 2018, Sec. 2),
and that each experiment runs. No timing order is asserted: under load noise can flip it
(the measured ones are stated in the notebook)."""
import math

import pytest

from tinyinfer.analysis import guidelines as G


@pytest.mark.parametrize("hw, c1, c2, g", [(56 * 56, 128, 128, 1), (28 * 28, 90, 180, 1),
                                           (7 * 7, 360, 360, 8), (4, 6, 4, 2)])
def test_pointwise_mac_is_the_papers_formula(hw, c1, c2, g):
    """MAC = hw (c1 + c2) + c1 c2 / g for a bias-free 1x1 conv."""
    assert G.pointwise_mac(hw, c1, c2, g) == hw * (c1 + c2) + c1 * c2 // g


def test_g1_channels_hold_flops_and_equal_width_has_the_least_mac():
    """c1 c2 within 6% of 128^2 for 1:1, 1:2, 1:6, 1:12 (1:12: 36 x 432 = 15552, 5.1% below,
    the nearest integers); MAC rises with the ratio and never
    falls below the AM-GM bound 2 sqrt(hw B) + B / hw, met at 1:1."""
    hw = 56 * 56
    pairs = G.g1_channels(128)
    assert [c2 // c1 for c1, c2 in pairs] == [1, 2, 6, 12]
    macs = []
    for c1, c2 in pairs:
        assert abs(c1 * c2 - 128 * 128) <= 0.06 * 128 * 128
        b = hw * c1 * c2
        mac = G.pointwise_mac(hw, c1, c2)
        assert mac >= 2 * math.sqrt(hw * b) + b / hw - 1e-6
        macs.append(mac)
    assert macs == sorted(macs) and macs[0] == 2 * hw * 128 + 128 * 128


def test_g2_channels_hold_flops_and_mac_grows_with_groups():
    rows = G.g2_channels(128)
    assert rows == [(1, 128), (2, 180), (4, 256), (8, 360)]   # c a multiple of g, c^2/g ~ 128^2
    hw = 56 * 56
    macs = [G.pointwise_mac(hw, c, c, g) for g, c in rows]
    assert macs == [hw * 2 * c + c * c // g for g, c in rows] and macs == sorted(macs)


def test_experiments_run_and_report_their_costs():
    """Tiny settings (8x8 map, one block, one timed run): every row has its MACs, the MAC of
    the formulas above and a measured time."""
    side, hw = 8, 64
    g1 = G.g1(side=side, blocks=1, runs=1)
    assert [r[0] for r in g1] == ["128:128", "90:180", "52:312", "36:432"]
    for (c1, c2), (_, macs, mac, ms) in zip(G.g1_channels(), g1):
        assert macs == 2 * hw * c1 * c2 and mac == 2 * (hw * (c1 + c2) + c1 * c2)
        assert 0 < ms < math.inf
    for (g, c), (_, macs, mac, ms) in zip(G.g2_channels(), G.g2(side=side, blocks=1, runs=1)):
        assert macs == hw * c * c // g and mac == hw * 2 * c + c * c // g and ms > 0


def test_g4_relu_and_shortcut_cost_no_macs_but_memory():
    """Bottleneck 256 -> 64 -> 64 -> 256 on 8x8: convs read input + weights and write output;
    each ReLU reads and writes its conv's output (2 hw (64 + 64 + 256)); the shortcut add
    reads two tensors and writes one (3 hw 256)."""
    hw, c, m = 64, 256, 64
    conv_mac = (hw * c + c * m + hw * m) + (hw * m + 9 * m * m + hw * m) + (hw * m + m * c + hw * c)
    relu_mac, add_mac = 2 * hw * (m + m + c), 3 * hw * c
    macs = hw * (c * m + 9 * m * m + m * c)
    rows = {r[0]: r for r in G.g4(channels=c, side=8, blocks=1, runs=1)}
    expected = {"ReLU on, shortcut on": conv_mac + relu_mac + add_mac,
                "ReLU on, shortcut off": conv_mac + relu_mac,
                "ReLU off, shortcut on": conv_mac + add_mac, "ReLU off, shortcut off": conv_mac}
    for name, mac in expected.items():
        assert rows[name][1] == macs and rows[name][2] == mac and rows[name][3] > 0, name


def test_g3_structures_hold_flops_and_cut_the_block_into_k_convs():
    """Table 3's five blocks at base 128: series widths floor(128 / sqrt k) = 90, 64 (k c^2 =
    16200, 16384: within 1.2% of 128^2 = 16384); parallel branches 128 -> 128/k, whose k
    outputs concatenate back to the block's 128 channels (exactly 128^2 per pixel)."""
    rows = G.g3_structures(128)
    assert rows == [("1-fragment", 1, 128, 128), ("2-fragment-series", 2, 90, 90),
                    ("4-fragment-series", 4, 64, 64), ("2-fragment-parallel", 2, 128, 64),
                    ("4-fragment-parallel", 4, 128, 32)]
    for name, k, c, cout in rows:
        assert abs(k * c * cout - 128 * 128) <= 0.012 * 128 * 128, name
        if "parallel" in name:
            assert k * cout == c          # the concat restores the block's width
        else:
            assert cout == c              # a series block keeps its width conv to conv


def test_g3_runs_and_reports_equal_macs_and_the_mac_of_each_structure():
    """8x8 map, one block: MACs hw k c cout; MAC per conv hw (c + cout) + c cout, and for a
    parallel block the concat reads and writes the hw c output once more (2 hw c)."""
    hw = 64
    rows = G.g3(side=8, blocks=1, runs=1)
    assert [r[0] for r in rows] == [s[0] for s in G.g3_structures()]
    for (name, k, c, cout), (_, macs, mac, ms) in zip(G.g3_structures(), rows):
        assert macs == hw * k * c * cout
        concat = 2 * hw * c if "parallel" in name else 0
        assert mac == k * (hw * (c + cout) + c * cout) + concat, name
        assert 0 < ms < math.inf
    # more fragments, more memory traffic at the same work: the guideline's premise
    mac = {r[0]: r[2] for r in rows}
    assert mac["1-fragment"] < mac["2-fragment-series"] < mac["4-fragment-series"]
    assert mac["1-fragment"] < mac["2-fragment-parallel"] < mac["4-fragment-parallel"]
