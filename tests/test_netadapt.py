"""NetAdapt-style narrowing (analysis/netadapt.py): it meets the budget by the table's
prediction, every width stays a multiple of 8 (MobileNetV2's rounding), each step narrows
exactly one unit by 8 and lowers both predicted latency and MACs, and the rule picks the
largest latency saved per MAC lost. The table is filled by a made-up latency per node
(deterministic, not the clock), so the test is fast and exact; the frontier's real timings
come from a measured table."""
import pytest

from tinyinfer.analysis.latency_table import LatencyTable
from tinyinfer.analysis import netadapt as na
from tinyinfer.engine.ops import get_op
from tinyinfer.errors import InputError

RES = 64


def made_up_ms(node, ins):
    """A latency that is not proportional to MACs: a fixed cost per node plus MACs plus
    a depthwise penalty, so the rule's choice depends on more than MACs."""
    out = get_op(node).shape(node, ins)
    c = get_op(node).cost(node, ins, out)
    dw = 3.0 if node.attrs.get("groups", 1) not in (1, None) else 1.0
    return 0.01 + dw * c.macs / 1e7


@pytest.fixture(scope="module")
def run():
    table = LatencyTable()
    start_ms = na.netadapt(1e9, table, RES, made_up_ms)[0].ms
    budget = 0.8 * start_ms
    return budget, table, na.netadapt(budget, table, RES, made_up_ms)


def test_meets_the_budget_with_valid_monotone_steps(run):
    budget, table, steps = run
    assert steps[0].widths == na.BASE_WIDTHS and steps[0].ms > budget
    assert steps[-1].ms <= budget < steps[-2].ms       # stops at the first step within
    for prev, step in zip(steps, steps[1:]):
        diff = [a - b for a, b in zip(prev.widths, step.widths)]
        assert sorted(diff) == [0] * (len(diff) - 1) + [na.STEP]
        assert step.ms < prev.ms and step.macs < prev.macs
        assert all(w % 8 == 0 and w >= 8 for w in step.widths)
    # the prediction is the table's: re-predicting the final network gives the same ms
    assert na._evaluate(steps[-1].widths, table, RES, made_up_ms)[1] == \
        pytest.approx(steps[-1].ms, rel=1e-12)


def test_each_step_is_the_best_latency_saved_per_mac_lost(run):
    _, table, steps = run
    prev, step = steps[0], steps[1]
    scores = []
    for u in range(len(prev.widths)):
        w = prev.widths[:u] + (prev.widths[u] - 8,) + prev.widths[u + 1:]
        m, t = na._evaluate(w, table, RES, made_up_ms)
        scores.append(((prev.ms - t) / (prev.macs - m), w))
    assert max(scores)[1] == step.widths


def test_uniform_width_scaling_rounds_to_8_and_an_impossible_budget_is_refused():
    table = LatencyTable()
    uni = na.uniform_frontier(table, (1.0, 0.5), RES, made_up_ms)
    assert uni[0].widths == na.BASE_WIDTHS
    assert uni[1].widths == (16, 8, 16, 16, 32, 48, 80, 160, 1280)
    with pytest.raises(InputError, match="cannot be met"):
        na.netadapt(0.0, table, 32, made_up_ms)
