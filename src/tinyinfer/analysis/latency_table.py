"""A per-operator latency lookup table measured on this machine, and a predictor that sums it.

    tinyinfer latency-table --models mobilenet_v2,mnasnet1_0 -o latency.json
    tinyinfer latency-table --models mobilenet_v2,mnasnet1_0 -o latency.json --check
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
a model of the network's time, not its measurement. ``check`` (``--check``) tests that model:
it times each network whole, the same way (random input of the same batch and size, one
warm-up, fastest of ``runs``, the same Numba threads), and records predicted vs measured ms
in the file's ``checks`` (notebook 12 plots those of notebooks/latency_table.json).

Threads. Measure on one Numba thread (NUMBA_NUM_THREADS=1) unless the machine is idle. A
parallel kernel on two threads waits for both; when another process holds the second core,
the second thread runs only when the scheduler gives it a slice, so every call takes a slice
whatever its work: on this 2-core machine at load 4.4 a 3x3 depthwise conv took 15-16 ms on
two threads and 0.3 ms on one (2026-12-02). The entries and whole-network times of an
earlier notebooks/latency_table.json (2 threads, load 5.8: MobileNetV2 "513 ms", 248 ms
predicted) measured these waits, not the kernels. One thread is not immune either: under
load a whole network (tens of ms) is preempted in every run while a node's call (under a
millisecond) often escapes, so the checks come out above the predictions (at load 5 on
2026-12-02, one thread: measured 20-68% above predicted for notebook 12's 7 networks).

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
from ..engine.runtime import execute
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
    return _fastest(lambda: op.run(node, args), runs)


def time_network(model, input_shape, runs: int = 5, seed: int = 0) -> float:
    """Fastest of ``runs`` calls (s) of ``model``'s whole plan on a random input of
    ``input_shape``, timed as time_node times one node. It runs the plan as model(x) does,
    without model(x)'s input check (a shape inference, not a node of the table)."""
    x = np.random.default_rng(seed).standard_normal(input_shape).astype(np.float32)
    return _fastest(lambda: execute(model.plan, x), runs)


def _fastest(call, runs: int) -> float:
    call()                                         # compile / load, touch the pages
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
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
        except OSError as e:             # a folder, no permission, ...
            raise InputError(f"cannot read the latency table {path}: {e.strerror or e}") \
                from None
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


def _conditions() -> dict:
    """What a measurement depends on besides the code, recorded beside every run and check."""
    import numba
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "load_average": None if load is None else round(load, 2),
            "machine": platform.processor() or platform.machine(),
            "numba_threads": numba.get_num_threads()}


def measure(models, path, runs: int = 5, resolution: int | None = None, log=print):
    """Add the entries of each model in ``models`` (names) to the table at ``path``,
    saving after each model. Returns the table."""
    from ..api import load
    table = LatencyTable.load(path)
    check_threads(table)        # a sum of entries timed on different counts means nothing
    for name in models:
        model = load(name, weights=None)
        before = _conditions()       # before we run: our own threads would raise the load
        t0 = time.time()
        new = table.measure_model(model, _input_shape(model, resolution), runs)
        table.runs.append({"model": name, "input": list(_input_shape(model, resolution)),
                           "new_entries": new, "runs": runs, **before,
                           "seconds": round(time.time() - t0, 1)})
        table.save(path)
        log(f"{name}: {new} new entries, table has {len(table.entries)}")
    return table


def check(table: LatencyTable, models, runs: int = 5, resolution: int | None = None,
          log=print) -> list[dict]:
    """Time each model in ``models`` (names) whole and record its prediction beside it: one
    record per (model, input) in ``table.checks``, replacing an earlier one. Measures no
    entries: a network whose nodes the table lacks gets ``missing`` (those nodes' names) and
    no prediction (predicted_ms and error_pct None), since a partial sum would predict low.
    error_pct = 100 (predicted - measured) / measured. Returns the new records."""
    from ..api import load
    check_threads(table)
    records = []
    for name in models:
        model = load(name, weights=None)
        shape = _input_shape(model, resolution)
        pred = table.predict(model, shape)
        before = _conditions()
        measured = time_network(model, shape, runs) * 1e3
        predicted = None if pred.missing else round(pred.ms, 3)
        record = {"model": name, "input": list(shape), "predicted_ms": predicted,
                  "measured_ms": round(measured, 3),
                  "error_pct": None if predicted is None
                  else round(100 * (predicted - measured) / measured, 1),
                  "missing": [node for node, _ in pred.missing], "runs": runs, **before,
                  "measured": f"whole network (its plan, as model(x) runs it), random input, "
                              f"fastest of {runs} runs after 1 warm-up"}
        table.checks = [c for c in table.checks
                        if (c["model"], c.get("input")) != (name, record["input"])] + [record]
        records.append(record)
        if pred.missing:
            log(f"{name}: {len(pred.missing)} of {len(model.plan)} nodes are not in the "
                f"table, so no prediction; measure them first: tinyinfer latency-table "
                f"--models {name}" + (f" --resolution {resolution}" if resolution else ""))
        else:
            log(f"{name}: predicted {predicted:.2f} ms, measured {measured:.2f} ms "
                f"({record['error_pct']:+.1f}%)")
    return records


def check_threads(table: LatencyTable) -> None:
    """Entries, and a check's measured time, must use one number of Numba threads (a
    kernel's time depends on it): refuse a table whose entries used another count."""
    import numba
    now = numba.get_num_threads()
    used = sorted({r["numba_threads"] for r in table.runs if "numba_threads" in r})
    if len(used) > 1:
        raise InputError(f"the table mixes entries measured on {' and '.join(map(str, used))} "
                         f"Numba threads: measure a new table on one count")
    if used and used != [now]:
        raise InputError(f"the table's entries were measured on {used[0]} Numba thread(s) and "
                         f"this process runs {now}: run with NUMBA_NUM_THREADS={used[0]}")
