"""Runs a graph: walks the nodes in order, calls each node's kernel through ``ops.OPS``, and
drops every intermediate array as soon as its last reader has run (so peak memory is the
liveness peak, not the sum of all activations).

Threads: Numba runs parallel kernels on OpenMP or TBB where the machine has them, else on its
own "workqueue" layer, which is not thread-safe: two Python threads launching kernels at
once abort the process ("Concurrent access has been detected"). So under that layer, and
before Numba has chosen its layer (on the first parallel launch), a graph runs under one
process-wide lock; under OpenMP and TBB calls run concurrently.

First call: Numba compiles each kernel once and caches it on disk; compiling takes 10-30 s
(a MobileNet ~11 s, ResNet-50 ~31 s on the Zen 4). When stderr is a terminal (a person is
waiting), the first run of a plan compiles the kernel families it uses ahead, on two
processes, saying so in one line (prewarm.compile_ahead); whatever is compiled later, as
the run reaches it, gets that line once too (``CompileNote``).

Memory: freed activations stay in the process for the next run (allocator.py;
TINYINFER_MALLOC=default turns that off).
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time

import numba
import numba.core.event
import numpy as np

from .graph import Graph
from . import allocator, prewarm
from .layout import for_shape, has_run
from .ops import get_op


def last_uses(graph: Graph) -> dict[str, int]:
    """value name -> index of the last node that reads it."""
    last = {}
    for i, node in enumerate(graph):
        for v in node.inputs:
            last[v] = i
    return last


class CompileNote(numba.core.event.Listener):
    """Prints one line on stderr when the first tinyinfer kernel of the process is compiled.
    Numba emits "numba:compile" only when a kernel is not in its disk cache (a cache hit
    loads without the event), so the line appears on a cold cache and never on warm runs.
    Only on a terminal, like a progress bar: it is for a person waiting, and output that a
    script or a test runner captures stays exactly what it was."""

    MESSAGE = ("tinyinfer: compiling kernels once, ~10-30 s; "
               "later runs load them from the cache")

    def __init__(self):
        self.printed = False

    def on_start(self, event):
        module = getattr(event.data["dispatcher"].py_func, "__module__", None) or ""
        if not self.printed and module.startswith("tinyinfer.") and _terminal():
            self.say(self.MESSAGE)

    def say(self, line):
        """The one line a person at the terminal gets (prewarm.compile_ahead's, or ours)."""
        self.printed = True
        print(line, file=sys.stderr, flush=True)

    def on_end(self, event):
        pass


_note = CompileNote()
numba.core.event.register("numba:compile", _note)


def _terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()

_launch_lock = threading.Lock()
_layer_is_threadsafe: bool | None = None     # None: Numba has not chosen its layer yet


def _serialize_launches() -> bool:
    """True while kernel launches from several threads could meet on the workqueue layer."""
    global _layer_is_threadsafe
    if _layer_is_threadsafe is None:
        try:
            layer = numba.threading_layer()
        except ValueError:          # no parallel kernel has run in this process yet
            return True
        _layer_is_threadsafe = layer != "workqueue"
    return not _layer_is_threadsafe


def execute(graph: Graph, x: np.ndarray, timings: dict | None = None) -> np.ndarray:
    """Run ``graph`` on ``x``. If ``timings`` is a dict, each node's wall time (s) is stored in
    it. Safe to call from several threads (see the module docstring)."""
    # which convs run channel-blocked at this shape; timed node by node without fusing an
    # expansion and its depthwise conv (one kernel), so that each layer gets its own time
    first = not has_run(graph, x.shape)
    graph = for_shape(graph, x.shape, fuse=timings is None)
    if first and _terminal():
        prewarm.compile_ahead(graph, x.shape, None if _note.printed else _note.say)
    allocator.keep_freed_memory()        # once per process: no page faults run after run
    with _launch_lock if _serialize_launches() else contextlib.nullcontext():
        return _run_nodes(graph, x, timings)


def _run_nodes(graph: Graph, x: np.ndarray, timings: dict | None) -> np.ndarray:
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
