"""NetAdapt-style narrowing of MobileNetV2 to a latency budget, by the lookup table, no training.

    widths, steps = netadapt(budget_ms=20.0, table=LatencyTable.load("latency.json"))

NetAdapt (Yang et al., ECCV 2018) shrinks a network one layer at a time, guided by measured
latency instead of MACs. Here, without training (so no accuracy), the step rule is:

    unit      one of MobileNetV2's widths: the stem, each row c of the paper's Table 2, and
              the 1280-channel head. A row is one unit because its repeats are joined by
              residual additions, which need equal widths. (The expansion t x c follows c.)
    step      narrow one unit by 8 channels (MobileNetV2 rounds every width to a multiple
              of 8; no unit goes below 8)
    choice    the unit whose step saves the most predicted latency per MAC it removes
              (ms saved / MACs lost): the cut that buys the most speed for the least work
              removed, MACs standing in for the accuracy NetAdapt would measure
    stop      when the predicted latency is within the budget

Latency = the table's prediction (latency_table.LatencyTable.predict); a narrowed shape not
yet in the table is timed on the spot (``fill``) and added, so the table grows as it goes.
Each step's (widths, MACs, ms) is kept: the latency-vs-MAdds frontier, to set beside uniform
width scaling (``uniform_frontier``: width_mult for every unit at once).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..models.blocks import paper_table
from ..models.builder import build_mbconv_net
from ..models.mobilenet_v2 import MOBILENET_V2
from .latency_table import graph_keys, time_node

STEP = 8
# unit widths of MobileNetV2 1.0: stem, the seven rows' c, head
BASE_WIDTHS = (32,) + tuple(c for _, c, _, _ in MOBILENET_V2) + (1280,)
UNIT_NAMES = ("stem",) + tuple(f"row{i + 1} (c={c})" for i, (_, c, _, _) in
                               enumerate(MOBILENET_V2)) + ("head",)


def build(widths):
    """MobileNetV2's graph with the given unit widths (stem, 7 rows, head)."""
    table = [(t, c, n, s) for (t, _, n, s), c in zip(MOBILENET_V2, widths[1:-1])]
    return build_mbconv_net(paper_table(table, "t c n s"), stem_size=widths[0],
                            num_features=widths[-1], act="relu6")


@dataclass(frozen=True)
class Step:
    widths: tuple
    macs: int
    ms: float
    narrowed: str = ""          # which unit this step narrowed ("" for the start)


def _evaluate(widths, table, resolution, fill):
    from ..engine.passes import optimize
    from ..engine.ops import node_costs
    graph = optimize(build(widths))
    shape = (1, 3, resolution, resolution)
    ms = 0.0
    for node, ins, key in graph_keys(graph, shape):
        if key not in table.entries:
            table.entries[key] = fill(node, ins)
        ms += table.entries[key]
    macs = sum(c.macs for _, _, c in node_costs(graph, shape))
    return macs, ms


def _timed(node, ins):
    return time_node(node, ins, runs=3) * 1e3


def netadapt(budget_ms: float, table, resolution: int = 224, fill=_timed,
             max_steps: int = 1000) -> list[Step]:
    """The steps from MobileNetV2 1.0 until its predicted latency is <= ``budget_ms``."""
    widths = BASE_WIDTHS
    macs, ms = _evaluate(widths, table, resolution, fill)
    steps = [Step(widths, macs, ms)]
    while ms > budget_ms:
        best = None
        for u in range(len(widths)):
            if widths[u] - STEP < STEP:
                continue
            w = widths[:u] + (widths[u] - STEP,) + widths[u + 1:]
            m, t = _evaluate(w, table, resolution, fill)
            score = (ms - t) / max(macs - m, 1)
            if best is None or score > best[0]:
                best = (score, w, m, t, UNIT_NAMES[u])
        if best is None or len(steps) > max_steps:
            raise InputError(f"a latency budget of {budget_ms} ms cannot be met by narrowing "
                             f"MobileNetV2 (reached {ms:.2f} ms); give a larger budget")
        _, widths, macs, ms, name = best
        steps.append(Step(widths, macs, ms, name))
    return steps


def uniform_frontier(table, multipliers=(1.0, 0.75, 0.5, 0.35), resolution: int = 224,
                     fill=_timed) -> list[Step]:
    """(widths, MACs, ms) of width_mult scaling: every unit scaled and rounded to 8 at once
    (the head stays 1280 below 1.0, as MobileNetV2's "max" head rule)."""
    from ..models.builder import round_channels
    out = []
    for w in multipliers:
        widths = tuple(round_channels(c, w) for c in BASE_WIDTHS[:-1]) + \
            (max(1280, round_channels(1280, w)),)
        out.append(Step(widths, *_evaluate(widths, table, resolution, fill), f"x{w}"))
    return out
