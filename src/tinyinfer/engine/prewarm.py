"""On a cold Numba cache, a network's kernels are compiled before its first run, on two cores.

Numba compiles a kernel the first time it is called, on the calling thread, one after
another as the network reaches them, holding the GIL (threads cannot share the work). On
an empty cache MobileNetV2's first run spent 18-20 s there (Zen 4, 2026-12-03: the stem's
kernel 6.7 s with the activation ladder every kernel's epilogue calls, depthwise 4.5,
pointwise 3.7, the classifier's product 2.7, the pool 1.0), ResNet-50's 45 s, the second
core idle. A second process can share it: what it compiles lands in the on-disk cache, and
this process then loads it (Numba writes an entry to a temporary file and renames it, so a
reader sees a whole entry or none).

``compile_ahead(plan, shape)`` (runtime.execute, the first time a plan runs at a shape,
when stderr is a terminal: a person is waiting): the kernel families the plan uses
(warm_calls.families) whose kernels are not in the cache are split between this process
and a helper (``python -m tinyinfer.engine.prewarm NAME[=SPEC] ...``) by their measured
compile times (``split``); each compiles its share by warm_calls' calls, this process
waits for the helper, and the run then loads everything. Kernels no family covers
(attention, concats, NCHW depthwise) compile when the run reaches them, as before.
Measured (one process, alternating, CLI on an empty cache, Zen 4): MobileNetV2 12.1-12.6 s
with the earlier helper (it compiled the later kernels while this process ran), 8.9-9.0 s
with this; MobileNetV3-Large 15.0 -> 11.1 s; ResNet-50 48.5 -> 29.7-30.9 s.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading

from .graph import Graph
from .ops import infer_shapes
from .warm_calls import FAMILIES, families

LADDER = 1.9          # s: activations.act_inplace, compiled once in each process that needs it
HELPER_START = 1.0    # a helper's Python, NumPy, Numba and tinyinfer imports
FIRST = {"gemm"}      # families others call (Winograd's products, im2col's): compiled first
WAIT_LIMIT = 600      # s: a helper that takes longer is left to finish on its own

_lock = threading.Lock()
_known: set[str] = set()     # families this process has found cached or compiled


def split(names: list[str], helper: bool = True) -> tuple[list[str], list[str]]:
    """(this process's share, the helper's): longest compile first, each to the process that
    would finish it sooner, counting the helper's start and the ladder once per process.
    Each share in the order to compile it: FIRST, then (this process's) the families
    without the ladder (by then the helper may have cached it), else in the given order."""
    starts = (0.0, HELPER_START if helper else float("inf"))
    shares = ([], [])
    for name in sorted(names, key=lambda k: -FAMILIES[k].seconds):
        shares[min((0, 1), key=lambda i: _finish(shares[i] + [name], starts[i]))].append(name)
    mine = sorted([k for k in names if k in shares[0]],
                  key=lambda k: (k not in FIRST, FAMILIES[k].ladder))
    theirs = sorted([k for k in names if k in shares[1]], key=lambda k: k not in FIRST)
    return mine, theirs


def _finish(share, start):
    """When a process that starts at ``start`` s has compiled ``share``, by FAMILIES' times."""
    ladder = LADDER if any(FAMILIES[k].ladder for k in share) else 0.0
    return start + ladder + sum(FAMILIES[k].seconds for k in share) if share else 0.0


def is_cached(name: str) -> bool:
    """True if the family's kernel has a cache entry for this machine (Numba's index file
    holds one key per signature and machine); True too if that cannot be told (then the
    kernels compile as the run reaches them, which is always correct)."""
    family = FAMILIES[name]
    disp = getattr(importlib.import_module(f"tinyinfer.kernels.{family.module}"), family.kernel)
    try:
        index = disp._cache._cache_file._load_index()
        magic = disp.targetctx.codegen().magic_tuple()
        return any(key[1] == magic for key in index)
    except Exception:                   # noqa: BLE001 (a private Numba API changed)
        return True


def compile_ahead(plan: Graph, input_shape, say=None) -> bool:
    """If some kernel families ``plan`` (layout.for_shape's) runs at ``input_shape`` are not
    cached, compile them now (this process and a helper process, if there is a second
    core), first calling ``say`` with one line that says so. True if it compiled."""
    with _lock:
        uses = families(plan, infer_shapes(plan, input_shape))
        todo = {k: spec for k, spec in uses.items() if k not in _known and not is_cached(k)}
        _known.update(uses)
        if not todo:
            return False
        spare = (os.cpu_count() or 1) >= 2
        mine, theirs = split(list(todo), helper=spare)
        seconds = max(_finish(mine, 0.0), _finish(theirs, HELPER_START))
        if say is not None:
            say(f"tinyinfer: compiling kernels once, ~{seconds:.0f} s; "
                "later runs load them from the cache")
        helper = start([_arg(k, todo[k]) for k in theirs]) if theirs else None
        try:
            warm({k: todo[k] for k in mine})
        finally:
            if helper is not None:
                try:
                    helper.wait(timeout=WAIT_LIMIT)
                except subprocess.TimeoutExpired:
                    pass                # it keeps filling the cache; the run compiles the rest
        return True


def start(args: list[str]) -> subprocess.Popen | None:
    """Launch the helper compiling the families ``args`` (_arg's; silent); None where there
    is no spare core."""
    if (os.cpu_count() or 1) < 2:
        return None
    # the helper imports the tinyinfer this process runs (Numba's cache is per source file)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-m", "tinyinfer.engine.prewarm", *args],
                            env={**os.environ, "PYTHONPATH": path}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def warm(todo: dict) -> None:
    """Compile (or load) each family of ``todo`` (name -> spec, as families gives). A
    warm-up that fails is skipped: it only saves time, and the run compiles what it needs
    (tests/test_prewarm.py runs every one)."""
    from ..kernels.activations import act_code

    relu6 = act_code("relu6")
    for name, spec in todo.items():
        try:
            FAMILIES[name].warm(relu6, spec)
        except Exception:          # noqa: BLE001 (never the reason a first run fails)
            pass


def _arg(name, spec) -> str:
    """A family as the helper's command line carries it: NAME or NAME=<spec as JSON>."""
    return name if spec is None else f"{name}={json.dumps(spec)}"


def _parse(arg):
    name, _, spec = arg.partition("=")
    return name, (json.loads(spec) if spec else None)


if __name__ == "__main__":
    warm(dict(_parse(arg) for arg in sys.argv[1:]))
