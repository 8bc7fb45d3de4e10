"""Runs a graph: walks the nodes in order, calls each node's kernel through ``ops.OPS``, and
drops every intermediate array as soon as its last reader has run (so peak memory is the
liveness peak, not the sum of all activations)."""
from __future__ import annotations

import time

import numpy as np

from .graph import Graph
from .ops import get_op


def last_uses(graph: Graph) -> dict[str, int]:
    """value name -> index of the last node that reads it."""
    last = {}
    for i, node in enumerate(graph):
        for v in node.inputs:
            last[v] = i
    return last


def execute(graph: Graph, x: np.ndarray, timings: dict | None = None) -> np.ndarray:
    """Run ``graph`` on ``x``. If ``timings`` is a dict, each node's wall time (s) is stored in it."""
    values = {graph.INPUT: x}
    last = last_uses(graph)
    for i, node in enumerate(graph):
        op = get_op(node)
        args = [values[v] for v in node.inputs]
        if timings is not None:
            t0 = time.perf_counter()
            values[node.name] = op.run(node, args)
            timings[node.name] = time.perf_counter() - t0
        else:
            values[node.name] = op.run(node, args)
        for v in set(node.inputs):   # a node may read one value twice (add(x, x))
            if last.get(v) == i and v != graph.output:
                del values[v]
    return values[graph.output]
