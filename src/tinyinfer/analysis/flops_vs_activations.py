"""RegNet's question on this CPU: which predicts a network's measured time better, its FLOPs
or its activations?

Radosavovic et al. 2020 (Designing Network Design Spaces, arXiv:2003.13678, Sec. 5) report
that on a GPU inference time tracks activations (the size of all conv outputs) more closely
than FLOPs. Here every registered network (or a chosen list) is counted and timed with
tinyinfer's kernels:

    python -m tinyinfer.analysis.flops_vs_activations -o notebooks/flops_activations_time.json
    data = load_measurements("notebooks/flops_activations_time.json")
    correlations(data)        # {"MACs": rho, "activations": rho, "params": rho}

Counts. MACs from the cost model (the papers' "FLOPs", one multiply-add = 1), activations
by RegNet's definition (analysis/activations.py), parameters: one image at the network's
own input size (EfficientNet-B7 at 600, NASNet-A Large at 331, most at 224).

Timing. Batch 1, random weights (time does not depend on their values), one Numba thread
(on a shared 2-core machine a second thread is often descheduled, and the call then waits
for it: a time that says nothing about the network). Each network: one warm-up call, then
the fastest of ``runs`` calls; that is repeated for ``rounds`` rounds, the networks taking
turns (interleaved), so that a busy minute slows every network a little instead of a few a
lot; the figure kept is the fastest round. The file records the machine, date, thread
count and the load average before each round.

Rank correlation. Spearman's rho: the Pearson correlation of the ranks (ties get the mean of
the ranks they span). Ranks, because the claim is about ordering networks, and because time
grows with work far from linearly across such different networks.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputFileError, TinyInferError
from ..engine.ops import get_op
from .activations import activations

PREDICTORS = ("MACs", "activations", "params")


def ranks(values) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span
    (ranks([10, 20, 20, 5]) = [2, 3.5, 3.5, 1])."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1      # mean of ranks i+1 .. j+1
        i = j + 1
    return r


def spearman(x, y) -> float:
    """Spearman's rank correlation of two equally long sequences (at least 2 values, neither
    constant)."""
    x, y = list(x), list(y)
    if len(x) != len(y) or len(x) < 2:
        raise InputError(f"spearman needs two sequences of equal length >= 2 "
                         f"(got {len(x)} and {len(y)} values)")
    rx, ry = ranks(x), ranks(y)
    dx, dy = rx - rx.mean(), ry - ry.mean()
    norm = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    if norm == 0:
        raise InputError("spearman of a constant sequence is undefined; give values that "
                         "differ")
    return float((dx * dy).sum() / norm)


def counts(model, resolution: int) -> dict:
    """MACs, activations and parameters of one tinyinfer Model at resolution x resolution."""
    rep = model.summary(resolution=resolution)
    return {"MACs": int(rep.macs), "activations": int(activations(model.graph, resolution)),
            "params": int(rep.params),
            "attention": any(_op_class(n) == "attention" for n in model.graph)}


def _op_class(node) -> str:
    op_class = get_op(node).op_class
    return op_class(node) if callable(op_class) else op_class


def _best_ms(fn, runs: int) -> float:
    fn()                                       # warm-up (loads the compiled kernels)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best


def measure(models, runs: int = 3, rounds: int = 2, threads: int = 1, log=print) -> dict:
    """Count and time ``models`` (registered names) as the module docstring says; returns the
    record ``save`` writes. Models are built again each round (all of them at once would
    hold several GB of random weights)."""
    import numba

    from ..api import load
    from ..models.registry import get_spec
    specs = {name: get_spec(name) for name in models}     # unknown names fail here, first
    for what, v, top in (("runs", runs, None), ("rounds", rounds, None),
                         ("threads", threads, numba.config.NUMBA_NUM_THREADS)):
        if not isinstance(v, int) or v < 1 or (top and v > top):
            raise InputError(f"{what} must be a whole number from 1"
                             f"{f' to {top}' if top else ''}, not {v!r}")
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    rows = {name: {"model": name, "resolution": spec.input_size, "paper": spec.paper,
                   "ms_per_round": []} for name, spec in specs.items()}
    loads = []
    try:
        for r in range(rounds):
            loads.append(round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None)
            for name, row in rows.items():
                model = load(name, weights=None)
                x = np.random.default_rng(0).standard_normal(
                    (1, 3, row["resolution"], row["resolution"])).astype(np.float32)
                if r == 0:
                    row.update(counts(model, row["resolution"]))
                row["ms_per_round"].append(round(_best_ms(lambda: model(x), runs), 3))
                log(f"round {r + 1}/{rounds} {name}: {row['ms_per_round'][-1]:.2f} ms")
                del model
    finally:
        numba.set_num_threads(previous)
    for row in rows.values():
        row["ms"] = min(row["ms_per_round"])
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": _machine(),
            "numba_threads": threads, "runs": runs, "rounds": rounds,
            "load_average_per_round": loads,
            "timing": "batch 1, random weights, fastest of `runs` calls after 1 warm-up, "
                      "fastest of `rounds` interleaved rounds",
            "networks": list(rows.values())}


def _machine() -> str:
    name = platform.processor() or platform.machine()
    try:                                       # the CPU's marketing name, where Linux says it
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def save(record: dict, path) -> None:
    path = Path(path)
    try:
        path.write_text(json.dumps(record, indent=1) + "\n")
    except OSError as e:
        raise OutputFileError(f"cannot write {path}: {e.strerror or e}") from None


def load_measurements(path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        data["networks"][0]["ms"]
        return data
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise InputError(f"{path} is not a file written by `python -m "
                         f"tinyinfer.analysis.flops_vs_activations` ({e})") from None


def correlations(data: dict, networks=None) -> dict:
    """Spearman's rho of measured ms with each of PREDICTORS over ``data``'s networks (or the
    subset named in ``networks``)."""
    rows = [r for r in data["networks"] if networks is None or r["model"] in networks]
    times = [r["ms"] for r in rows]
    return {p: spearman([r[p] for r in rows], times) for p in PREDICTORS}


def main(argv=None) -> int:
    from ..models.registry import list_models
    ap = argparse.ArgumentParser(prog="python -m tinyinfer.analysis.flops_vs_activations",
                                 description="count and time registered networks (RegNet's "
                                             "FLOPs vs activations question) into a JSON file")
    ap.add_argument("--models", default="all", help="comma-separated names, or all")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-gmacs", type=float, default=None,
                    help="leave out networks of more GMACs at their own resolution (the "
                         "largest take minutes per round on a loaded machine)")
    ap.add_argument("-o", "--output", required=True, metavar="FILE.json")
    args = ap.parse_args(argv)
    try:
        _run(args, list_models() if args.models == "all" else args.models.split(","))
    except TinyInferError as e:    # an unknown model name, an unwritable file: one line
        from ..cli import one_line
        print(f"{ap.prog}: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    return 0


def _run(args, models) -> None:
    if not Path(args.output).resolve().parent.is_dir():   # before minutes of measuring
        raise OutputFileError(f"cannot write {args.output}: its folder does not exist")
    left_out = []
    if args.max_gmacs is not None:
        from ..api import summary
        from ..models.registry import get_spec
        for name in list(models):
            gmacs = summary(name, resolution=get_spec(name).input_size).macs / 1e9
            if gmacs > args.max_gmacs:
                models.remove(name)
                left_out.append([name, round(gmacs, 2)])
    record = measure(models, args.runs, args.rounds, args.threads)
    record["left_out"] = {"max_gmacs": args.max_gmacs, "networks": left_out}
    save(record, args.output)


if __name__ == "__main__":
    raise SystemExit(main())
