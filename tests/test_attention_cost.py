"""analysis/attention_cost.py (notebook 06): its counts against arithmetic written out here
from the architectures and the attention formulas, and the structure of its tables. Times
are measured but never asserted (only that they were taken)."""
import math

import pytest

import tinyinfer
from tinyinfer.analysis.attention_cost import (METHODS, Scaling, attention_parts,
                                               attention_scaling, block_table, group_of,
                                               memory_bound_share)
from tinyinfer.engine.graph import Node

# MobileViT-XXS at 256 px, its first MobileViT block (stages.2.1): a 32x32 map of C = 48
# channels, transformer width d = 64, L = 2 layers, 2x2 patches: P = 4 sequences of
# T = 256 tokens, 4 heads of D = 16, MLP 64 -> 128 -> 64.
HW, C, d, L, P, T, H, D = 32 * 32, 48, 64, 2, 4, 256, 4, 16
QKV, CORE, PROJ = P * T * d * 3 * d, 2 * P * H * T * T * D, P * T * d * d
MLP = 2 * P * T * d * 2 * d
BLOCK_MACS = (HW * C * C * 9          # local 3x3
              + HW * C * d            # local 1x1 to d
              + L * (QKV + CORE + PROJ + MLP)
              + HW * d * C            # conv_proj back to C
              + HW * 2 * C * C * 9)   # fusion 3x3 on the concat (2C -> C)


def test_attention_parts_are_the_formulas_and_add_up_to_the_mhsa_node():
    parts = dict(attention_parts((P, T, d), H))
    assert [p.macs for p in parts.values()] == [QKV, CORE, PROJ]
    node = next(r for r in tinyinfer.summary("mobilevit_xxs").rows
                if r.name == "stages.2.1.transformer.0.attn")
    assert sum(p.macs for p in parts.values()) == node.cost.macs
    assert sum(p.flops for p in parts.values()) == node.cost.flops


def test_block_table_counts_the_block_layer_by_layer():
    t = block_table("mobilevit_xxs", "stages.2.1", runs=0)
    assert t.input_shape == (1, 3, 256, 256)
    assert t.macs == BLOCK_MACS
    nodes = [r for r in t.rows if not r["sub"]]
    assert [r["layer"] for r in nodes[:3]] == ["conv_kxk.conv", "conv_1x1", "unfold"]
    assert [r["layer"] for r in nodes[-5:]] == ["norm", "fold", "conv_proj.conv", "cat",
                                                 "conv_fusion.conv"]
    # pre-norm: LN, attention, add, LN, fc1 (+SiLU fused), fc2, add
    assert [r["layer"] for r in nodes if r["part"] == "transformer 1"] == [
        f"transformer.1.{n}" for n in ("norm1", "attn", "add1", "norm2", "mlp.fc1", "mlp.fc2",
                                       "add2")]
    subs = [r for r in t.rows if r["sub"]]
    assert [r["macs"] for r in subs] == [QKV, CORE, PROJ] * L
    # each attention node is directly followed by its three parts
    for i, r in enumerate(t.rows):
        if r["layer"].endswith(".attn"):
            assert [s["sub"] for s in t.rows[i + 1:i + 4]] == [True] * 3
    assert math.isclose(sum(t.share(r, "macs") for r in nodes), 100)
    assert math.isclose(t.share(subs[1], "macs"), 100 * CORE / BLOCK_MACS)
    assert t.ms is None and t.load == (None, None)
    with pytest.raises(tinyinfer.TinyInferError, match="runs >= 1"):
        t.gaps()
    assert "T^2 part" in t.to_markdown()


def test_block_table_refuses_an_unknown_block_naming_the_real_ones():
    with pytest.raises(tinyinfer.TinyInferError, match="stages.2.1, stages.3.1, stages.4.1"):
        block_table("mobilevit_xxs", "stages.9.1", runs=0)
    with pytest.raises(tinyinfer.TinyInferError, match="runs must be >= 0"):
        block_table(runs=-1)


def test_block_table_measured_has_a_time_for_every_row():
    t = block_table("mobilevit_xxs", "stages.4.1", resolution=64, runs=1)
    assert all(r["ms"] > 0 for r in t.rows)
    assert math.isclose(sum(t.share(r, "ms") for r in t.rows if not r["sub"]), 100)
    assert len(t.gaps(3)) == 3 and t.load[0] is not None


def test_attention_scaling_counts_per_head():
    dim, heads, M = 32, 4, int(32 * math.log(32))      # performer's default M = 110
    s = attention_scaling((16, 64, 256, 1024), dim, heads, measure=False)
    assert s.features == M == 110
    for row in s.rows:
        n, c = row["tokens"], heads * dim
        assert row["macs"] == {"exact": 2 * n * n * dim,                    # q k^T and x v
                               "relu_linear": 2 * n * dim * (dim + 1),      # KV|ksum, q (KV|ksum)
                               "separable": n * dim,                        # scores x keys
                               "favor": n * M * (4 * dim + 1)}              # phi(q), phi(k), C, out
        # the T^2 part's share of a whole layer with its qkv (3 n c^2) and proj (n c^2)
        assert math.isclose(row["t2_share"], 100 * 2 * n * n * c / (4 * n * c * c + 2 * n * n * c))
        assert row["ms"] is None
    # cheaper than exact from T > D + 1 (ReLU linear) and T > M (4D + 1) / 2D = 221.7 (FAVOR+)
    assert s.faster_from("relu_linear") == 64 and s.faster_from("favor") == 256
    assert s.faster_from("separable") == 16
    assert "T^2 share" in s.to_markdown()


def test_faster_from_wants_every_longer_length():
    def row(t, exact, other):
        return {"tokens": t, "macs": {"exact": exact, "favor": other}, "ms": None}
    dip = Scaling([row(1, 5, 4), row(2, 5, 6), row(3, 5, 4), row(4, 5, 1)], 8, 1, 8, (0, 0))
    assert dip.faster_from("favor") == 3
    assert Scaling([row(1, 5, 4), row(2, 5, 6)], 8, 1, 8, (0, 0)).faster_from("favor") is None


def test_attention_scaling_measures_every_method_and_refuses_bad_sizes():
    s = attention_scaling((8, 16), dim=8, heads=2, repeats=1, min_seconds=0)
    assert [set(r["ms"]) for r in s.rows] == [set(METHODS)] * 2
    assert all(v > 0 for r in s.rows for v in r["ms"].values())
    with pytest.raises(tinyinfer.TinyInferError, match="dim, heads and every T >= 1"):
        attention_scaling((0, 16), measure=False)


def _node(kind):
    return Node("n", kind, ["input"], {}, {})


@pytest.mark.parametrize("kind, group", [("conv2d", "matmul-like"), ("linear", "matmul-like"),
                                         ("mhsa", "matmul-like"),
                                         ("cascaded_group_attention", "matmul-like"),
                                         ("layer_norm", "memory ops"), ("add", "memory ops"),
                                         ("unfold_patches", "memory ops"), ("act", "memory ops"),
                                         ("batchnorm", "memory ops"), ("concat", "memory ops")])
def test_group_of(kind, group):
    assert group_of(_node(kind)) == group


def test_memory_bound_share_as_built_and_fused():
    m = memory_bound_share("efficientvit_m0", resolution=128, runs=1)
    built, fused = m.forms["as built"], m.forms["fused"]
    # fusing moves no multiply-adds and removes only memory-op nodes (BN, activations, adds)
    for key in ("macs", "nodes"):
        assert built["groups"]["matmul-like"][key] == fused["groups"]["matmul-like"][key]
    assert fused["groups"]["memory ops"]["nodes"] < built["groups"]["memory ops"]["nodes"]
    assert fused["groups"]["memory ops"]["macs"] == built["groups"]["memory ops"]["macs"]
    # 6 cascaded group attention nodes (stages of 1, 2, 3 blocks), one per block
    assert built["classes"]["attention"]["nodes"] == fused["classes"]["attention"]["nodes"] == 6
    for form in m.forms:
        rows = m.table(form)
        assert [r[0] for r in rows] == ["matmul-like", "memory ops"]
        for col in (2, 3, 4):
            assert math.isclose(sum(r[col] for r in rows), 100)
        assert math.isclose(m.forms[form]["ms"],
                            sum(g["ms"] for g in m.forms[form]["groups"].values()))
    assert "op class" in m.to_markdown("classes")
    # every BN, activation and add the fused graph absorbed is accounted for in m.fusion
    absorbed = sum(len(n.fused) for n in tinyinfer.build("efficientvit_m0").plan)
    assert built["groups"]["memory ops"]["nodes"] - fused["groups"]["memory ops"]["nodes"] \
        == absorbed
    assert len(m.fusion) == sum(1 for n in tinyinfer.build("efficientvit_m0").plan if n.fused)
    totals = m.fusion_totals()
    assert math.isclose(totals["absorbed_ms"], sum(f[3] for f in m.fusion))
    with pytest.raises(tinyinfer.TinyInferError, match="runs must be at least 1"):
        memory_bound_share(runs=0)
