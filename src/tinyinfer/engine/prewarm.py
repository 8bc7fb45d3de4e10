"""On a cold Numba cache, a network's kernels are compiled before its first run, on two cores.

Numba compiles a kernel the first time it is called, on the calling thread, one after
another as the network reaches them, holding the GIL (threads cannot share the work). On
an empty cache MobileNetV2's first run spent 18-20 s there (Zen 4, 2026-12-03: the stem's
kernel 6.7 s with the activation ladder every kernel's epilogue calls, depthwise 4.5,
pointwise 3.7, the classifier's product 2.7, the pool 1.0), the second core idle. A second
process can share it: what it compiles lands in the on-disk cache, and this process then
loads it (Numba writes an entry to a temporary file and renames it, so a reader sees a
whole entry or none).

``compile_ahead(plan)`` (runtime.execute, the first time a plan runs at a shape, when stderr
is a terminal: a person is waiting): the kernel families the plan uses (``families``) whose
kernels are not in the cache are split between this process and a helper (``python -m
tinyinfer.engine.prewarm NAME ...``) by their measured compile times (``split``); each
compiles its share by tiny calls with the engine's argument types (so that the cached
signatures are the ones the network asks for: tests/test_prewarm.py), this process waits
for the helper, and the run then loads everything. A family the plan uses that no warm-up
covers (a max pool, a concat) is compiled when the run reaches it, as before.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
from typing import Callable, NamedTuple

import numpy as np

from .graph import Graph

LADDER = 1.9          # s: activations.act_inplace, compiled once in each process that needs it
HELPER_START = 1.0    # a helper's Python, NumPy, Numba and tinyinfer imports
WAIT_LIMIT = 600      # s: a helper that takes longer is left to finish on its own

_lock = threading.Lock()
_known: set[str] = set()     # families this process has found cached or compiled


def families(plan: Graph) -> list[str]:
    """The FAMILIES the blocked nodes of ``plan`` (layout.for_shape's) run, in plan order."""
    blocked_out = {n.name: n.attrs.get("blocked_out", False) for n in plan}
    found = []

    def add(name):
        if name not in found:
            found.append(name)

    for n in plan:
        if n.kind == "linear":
            add("linear")
        if not n.attrs.get("blocked"):
            continue
        if n.kind == "conv2d":
            kh, kw = n.param_shapes["weight"][2:]
            if n.attrs["groups"] > 1:
                add("depthwise")
            elif not blocked_out.get(n.inputs[0], False) and (kh, kw) != (1, 1):
                add("direct")          # a dense conv reading NCHW (the stem)
            else:
                add("pointwise")
            if n.attrs.get("then_dw") is not None:
                add("depthwise")
        elif n.kind == "se":
            add("se")
        elif n.kind == "global_avgpool":
            add("pool")
    return found


def split(names: list[str], helper: bool = True) -> tuple[list[str], list[str]]:
    """(this process's share, the helper's): longest compile first, each to the process that
    would finish it sooner, counting the helper's start and the ladder once per process.
    Each share in the order to compile it: this process's families without the ladder
    first (by then the helper may have cached it), else in the given order."""
    starts = (0.0, HELPER_START if helper else float("inf"))
    shares = ([], [])
    for name in sorted(names, key=lambda k: -FAMILIES[k].seconds):
        shares[min((0, 1), key=lambda i: _finish(shares[i] + [name], starts[i]))].append(name)
    mine = sorted([k for k in names if k in shares[0]], key=lambda k: FAMILIES[k].ladder)
    theirs = [k for k in names if k in shares[1]]
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


def compile_ahead(plan: Graph, say=None) -> bool:
    """If some of ``plan``'s kernel families are not cached, compile them now (this process
    and a helper process, if there is a second core), first calling ``say`` with one line
    that says so. True if it compiled."""
    with _lock:
        todo = [k for k in families(plan) if k not in _known and not is_cached(k)]
        _known.update(families(plan))
        if not todo:
            return False
        spare = (os.cpu_count() or 1) >= 2
        mine, theirs = split(todo, helper=spare)
        seconds = max(_finish(mine, 0.0), _finish(theirs, HELPER_START))
        if say is not None:
            say(f"tinyinfer: compiling kernels once, ~{seconds:.0f} s; "
                "later runs load them from the cache")
        helper = start(theirs) if theirs else None
        try:
            warm(mine)
        finally:
            if helper is not None:
                try:
                    helper.wait(timeout=WAIT_LIMIT)
                except subprocess.TimeoutExpired:
                    pass                # it keeps filling the cache; the run compiles the rest
        return True


def start(names: list[str]) -> subprocess.Popen | None:
    """Launch the helper compiling ``names`` (silent); None where there is no spare core."""
    if (os.cpu_count() or 1) < 2:
        return None
    return subprocess.Popen([sys.executable, "-m", "tinyinfer.engine.prewarm", *names],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def warm(names: list[str]) -> None:
    """Compile (or load) each family's kernels by a tiny call with the engine's types."""
    from ..kernels.activations import act_code

    relu6 = act_code("relu6")
    for name in names:
        FAMILIES[name].warm(relu6)


def _xb(pixels=5):
    return np.ones((1, 1, pixels, 5, 16), np.float32)     # 8 channels, blocked


def _conv(x, cout, cin, k, stride, groups, act):
    from ..kernels import conv_blocked as CBK
    f = np.float32
    CBK.conv2d_blocked(x, np.ones((cout, cin, k, k), f), np.ones(cout, f), stride, k // 2,
                       groups, act)


def _se(act):
    from ..kernels.se import squeeze_excite_blocked
    f = np.float32
    for pixels in (5, 900):       # the serial kernel, and the pool + FCs + scale above it
        squeeze_excite_blocked(_xb(pixels), np.ones((2, 8), f), np.ones(2, f),
                               np.ones((8, 2), f), np.ones(8, f), act, act)


def _linear(act):
    from ..kernels.linear import linear
    f = np.float32
    linear(np.ones((1, 8), f), np.ones((4, 8), f), np.ones(4, f))


def _pool(act):
    from ..kernels import blocked_layout as BL
    BL.global_avg_pool_blocked(_xb(), 8)


def _direct(act):
    _conv(np.ones((1, 3, 8, 8), np.float32), 16, 3, 3, 2, 1, act)


def _depthwise(act):
    _conv(_xb(), 8, 1, 3, 1, 8, act)


def _pointwise(act):
    _conv(_xb(), 16, 8, 1, 1, 1, act)


class Family(NamedTuple):
    module: str         # kernels.<module>.<kernel>: its cache entry says the family is cached
    kernel: str
    seconds: float      # to compile on a cold cache, the ladder (below) not counted
    ladder: bool        # calls the activation ladder (activations.act_inplace)
    warm: Callable      # warm(act code): a tiny call with the engine's argument types


# Compile times: each alone in a fresh process after the ladder (2026-12-03, Zen 4; the
# host's speed swings by 1.5x, a process compiling beside another one is ~1.2x slower)
FAMILIES = {
    "direct": Family("conv_blocked_direct", "_direct", 4.8, True, _direct),
    "depthwise": Family("conv_blocked_dw", "_depthwise", 4.7, True, _depthwise),
    "pointwise": Family("conv_blocked", "_pointwise", 3.3, True, _pointwise),
    "se": Family("se", "_se_serial", 6.0, True, _se),
    "linear": Family("linear", "_dot_kernel", 2.3, False, _linear),
    "pool": Family("blocked_layout", "_pool_blocked", 1.1, False, _pool),
}

if __name__ == "__main__":
    warm(sys.argv[1:])
