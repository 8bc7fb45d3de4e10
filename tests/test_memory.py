"""Activation memory (tinyinfer/analysis/memory.py): liveness along the execution order, and the
tensors that must be materialized when bottlenecks are streamed (MobileNetV2 Section 5).
Expected values are closed forms written here from the architectures (channels x H x W x
element size); the paper's Table 3 itself is in test_paper_tables.py."""
import pytest

import tinyinfer
from tinyinfer.engine.graph import Graph
from tinyinfer.analysis.memory import liveness, materialized, streamed_values
from tinyinfer.models.builder import NetBuilder


def test_liveness_by_hand():
    """x -> a (conv 8ch) -> b (conv 8ch) -> c = add(a, b) -> d = slice(c) -> e (conv 4ch).
    a is alive from its birth until c reads it; the slice d is a view of c, so c's buffer
    lives until e has read d."""
    b = NetBuilder(in_channels=2)
    a = b.conv("a", Graph.INPUT, 8, 3)
    bb = b.conv("b", a, 8, 3)
    c = b.add("c", a, bb)
    d = b.slice("d", c, 0, 4)
    b.conv("e", d, 4, 1)
    px = 5 * 5 * 4                                         # one channel of 5x5 float32
    lv = liveness(b.graph, (1, 2, 5, 5))
    x = 2 * px
    assert lv.names == ["a", "b", "c", "d", "e"]
    assert lv.live_bytes == [x + 8 * px,                   # a runs: x read, a written
                             8 * px + 8 * px,              # b: x freed after a
                             8 * px + 8 * px + 8 * px,     # c: a, b, c
                             8 * px,                       # d: only c (d is a view)
                             8 * px + 4 * px]              # e: c (through d) and e
    assert lv.peak == 24 * px and lv.peak_at == "c"
    assert lv.working_set == [x + 8 * px, 16 * px, 24 * px, 0, 4 * px + 4 * px]   # e reads 4 ch
    assert liveness(b.graph, (1, 2, 5, 5), itemsize=2).peak == 12 * px


def test_mobilenet_v1_peak_is_the_first_pointwise_conv():
    """At 224, the widest moment is the first 1x1 conv: its 32-channel input and 64-channel
    output at 112x112, both float32 (the image was freed after the stem)."""
    m = tinyinfer.load("mobilenetv1_100", weights=None)
    lv = liveness(m.plan, (1, 3, 224, 224))
    assert lv.peak == (32 + 64) * 112 * 112 * 4
    assert lv.peak_at == "blocks.0.0.conv_pw"
    rep = m.summary()
    assert rep.peak_memory == lv.peak and rep.table()[-1][8] == lv.peak
    assert m.summary(itemsize=2).peak_memory == lv.peak // 2


def test_mobilenet_v2_streaming():
    """Streaming hides each bottleneck's expanded tensors and the stem output feeding the
    first depthwise conv (the paper's first-layer trick); block outputs stay."""
    m = tinyinfer.load("mobilenet_v2", weights=None)
    s = streamed_values(m.plan)
    assert {"conv_stem", "blocks.0.0.conv_dw", "blocks.1.0.conv_pw", "blocks.1.0.conv_dw",
            "conv_head"} <= s
    assert not {"blocks.0.0.conv_pw", "blocks.1.0.conv_pwl", "blocks.1.1.conv_pwl",
                "global_pool", "classifier"} & s
    rows = {r.size[0]: (r.channels, r.bytes) for r in materialized(m.plan, (1, 3, 224, 224))}
    assert rows[112] == (16, 16 * 112 * 112 * 2)
    assert rows[56] == (24, 24 * 56 * 56 * 2)
    assert rows[7] == (320, 320 * 7 * 7 * 2)
    assert rows[1] == (1280, 1280 * 2)
    # without streaming the 6x expansion of block 1 (16 -> 96 channels at 112x112) is the max
    whole = materialized(m.plan, (1, 3, 224, 224), itemsize=2, streaming=False)
    assert (whole[0].size, whole[0].channels) == ((112, 112), 96)
    assert whole[0].bytes == 96 * 112 * 112 * 2


def test_squeeze_excite_blocks_are_not_streamed():
    """SE needs every channel's mean before it can scale any channel: its input is whole."""
    m = tinyinfer.load("mobilenet_v3_large", weights=None)
    s = streamed_values(m.plan)
    se_inputs = {n.inputs[0] for n in m.plan if n.kind == "se"}
    assert se_inputs and not se_inputs & s


@pytest.mark.parametrize("batch", [1, 3])
def test_memory_scales_with_batch(batch):
    m = tinyinfer.load("mobilenetv1_100", weights=None, width_mult=0.25)
    assert liveness(m.plan, (batch, 3, 129, 129)).peak == \
        batch * liveness(m.plan, (1, 3, 129, 129)).peak
