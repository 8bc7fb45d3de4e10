"""A per-operator latency lookup table measured on this machine, and a predictor that sums it.

    tinyinfer latency-table --models mobilenet_v2,mnasnet1_0 -o latency.json
    table = LatencyTable.load("latency.json")
    pred = table.predict(tinyinfer.load("mobilenet_v2", weights=None))
    pred.ms, pred.missing            # predicted ms; nodes whose key the table lacks

This is the lookup table of platform-aware NAS and NetAdapt: instead of counting MACs, each
operator the networks use is timed once on the target machine, and a network's latency is
predicted as the sum of its operators' entries.

Key. One entry per distinct piece of work: the op kind, the input shapes, the weights'
shapes and the attributes (stride, padding, groups, fused activation, ...), written as one
readable line, e.g.
    conv2d in=1x32x112x112 w=32x1x3x3 b=32 | act=relu6 groups=32 padding=1 stride=1
Node names are not in the key: the 13 identical 3x3 depthwise layers of two networks share
one entry. Array-valued attributes (a drawn FAVOR+ projection) enter as their shape.

Measuring. Each key's node is run alone on random float32 inputs of its shapes, with the
model's (random) weights: one warm-up call, then the fastest of ``runs`` calls (the one
least disturbed by other processes; see report.py). Run alone, a layer finds its input in
cache less often than inside the network and pays no dispatch of neighbours, so the sum is
a model of the network's time, not its measurement:
notebooks/latency_table.json holds predicted vs measured ms for the networks it covers.

Bounded and resumable. ``measure`` takes a list of models; entries already in the file are
not measured again, and the file is rewritten after every model, so a run that is killed
loses at most one model's new entries. The file records the machine, date, Numba threads and
the load average at each model's measurement (a busy machine's entries are too slow).
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..engine.ops import get_op, infer_shapes
from ..errors import InputError, OutputFileError


def _shape(s) -> str:
    return "x".join(str(int(d)) for d in s)


def _attr(v) -> str:
    if isinstance(v, np.ndarray):
        return "array" + _shape(v.shape)
    if isinstance(v, (list, tuple)):
        return "(" + ",".join(_attr(x) for x in v) + ")"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def node_key(node, in_shapes) -> str:
    """The table's key for ``node`` run on inputs of ``in_shapes`` (see the docstring)."""
    ins = " ".join(f"in={_shape(s)}" for s in in_shapes)
    weights = " ".join(f"{k}={_shape(s)}" for k, s in sorted(node.param_shapes.items()))
    attrs = " ".join(f"{k}={_attr(v)}" for k, v in sorted(node.attrs.items()))
    return " ".join(p for p in (node.kind, ins, weights) if p) + (f" | {attrs}" if attrs else "")


def graph_keys(graph, input_shape) -> list[tuple[object, list, str]]:
    """(node, input shapes, key) for every node of ``graph``, in execution order."""
    shapes = infer_shapes(graph, input_shape)
    out = []
    for node in graph:
        ins = [shapes[v] for v in node.inputs]
        out.append((node, ins, node_key(node, ins)))
    return out


def time_node(node, in_shapes, runs: int = 5, seed: int = 0) -> float:
    """Fastest of ``runs`` calls (s) of ``node`` alone on random inputs of ``in_shapes``."""
    rng = np.random.default_rng(seed)
    args = [rng.standard_normal(s).astype(np.float32) for s in in_shapes]
    if set(node.params) != set(node.param_shapes):
        # a graph built from shapes alone (netadapt's candidates): random weights, as the
        # time does not depend on their values
        node = replace(node, params={k: rng.standard_normal(s).astype(np.float32)
                                     for k, s in node.param_shapes.items()})
    op = get_op(node)
    op.run(node, args)                             # compile / load, touch the pages
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        op.run(node, args)
        best = min(best, time.perf_counter() - t0)
    return best


@dataclass
class Prediction:
    ms: float                                  # sum of the entries found
    per_node: dict = field(default_factory=dict)   # node name -> ms (found ones)
    missing: list = field(default_factory=list)    # (node name, key) not in the table


@dataclass
class LatencyTable:
    entries: dict = field(default_factory=dict)    # key -> ms
    runs: list = field(default_factory=list)       # one record per measured model
    checks: list = field(default_factory=list)     # predicted vs measured, per network

    @classmethod
    def load(cls, path) -> "LatencyTable":
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            return cls(dict(data["entries"]), list(data["runs"]), list(data.get("checks", [])))
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path} is not a latency table ({e}); give a file written "
                             f"by `tinyinfer latency-table` or a new name") from None

    def save(self, path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")   # a kill mid-write leaves the old file
        try:
            tmp.write_text(json.dumps({"entries": self.entries, "runs": self.runs,
                                       "checks": self.checks},
                                      indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError as e:
            raise OutputFileError(f"cannot write {path}: {e.strerror or e}") from None

    def predict(self, model, input_shape=None) -> Prediction:
        """The sum of the table's entries over ``model``'s nodes (a tinyinfer Model);
        nodes whose key is absent are listed in .missing, not guessed."""
        shape = input_shape or _input_shape(model, None)
        pred = Prediction(0.0)
        for node, _, key in graph_keys(model.plan, shape):
            if key in self.entries:
                pred.per_node[node.name] = self.entries[key]
                pred.ms += self.entries[key]
            else:
                pred.missing.append((node.name, key))
        return pred

    def measure_model(self, model, input_shape=None, runs: int = 5) -> int:
        """Time every node of ``model`` whose key is not yet in the table; returns how many
        new entries were measured."""
        shape = input_shape or _input_shape(model, None)
        new = 0
        for node, ins, key in graph_keys(model.plan, shape):
            if key not in self.entries:
                self.entries[key] = round(time_node(node, ins, runs) * 1e3, 5)
                new += 1
        return new


def _input_shape(model, resolution):
    r = resolution or model.spec.input_size
    return (1, 3, r, r)


def measure(models, path, runs: int = 5, resolution: int | None = None, log=print):
    """Add the entries of each model in ``models`` (names) to the table at ``path``,
    saving after each model. Returns the table."""
    from ..api import load
    import numba
    table = LatencyTable.load(path)
    for name in models:
        model = load(name, weights=None)
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        t0 = time.time()
        new = table.measure_model(model, _input_shape(model, resolution), runs)
        table.runs.append({"model": name, "input": list(_input_shape(model, resolution)),
                           "new_entries": new, "runs": runs,
                           "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                           "load_average": load_before, "seconds": round(time.time() - t0, 1),
                           "machine": platform.processor() or platform.machine(),
                           "numba_threads": numba.get_num_threads()})
        table.save(path)
        log(f"{name}: {new} new entries, table has {len(table.entries)}")
    return table
