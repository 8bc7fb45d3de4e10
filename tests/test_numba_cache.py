"""Numba's compiled kernels are cached on disk: a second process loads them instead of
compiling again. Checked with Numba's own per-dispatcher counters (cache hits / misses),
not with timings: a fresh cache directory, one process that compiles, a second that must
not miss once. And the note a person at a terminal sees while kernels compile (stderr is
a pseudo-terminal here) appears in the first process only."""
import json
import os
import pty
import subprocess
import sys
import threading

PROBE = r"""
import json, numpy as np, numba, tinyinfer
from numba.core.registry import CPUDispatcher
m = tinyinfer.load("mobilenet_v2", weights=None, width_mult=0.35)
m(np.zeros((1, 3, 64, 64), np.float32))
import gc
hits = misses = 0
for obj in gc.get_objects():
    if isinstance(obj, CPUDispatcher) and obj.__module__.startswith("tinyinfer"):
        hits += sum(obj.stats.cache_hits.values())
        misses += sum(obj.stats.cache_misses.values())
print(json.dumps({"hits": hits, "misses": misses}))
"""


def run_probe(cache_dir):
    """-> (the probe's counters, what it wrote on stderr, a pseudo-terminal)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    terminal, child_end = pty.openpty()
    chunks = []

    def drain():                 # read as it comes, so a chatty child never blocks
        while True:
            try:
                data = os.read(terminal, 4096)
            except OSError:      # EIO: the child has exited and its end is closed
                break
            if not data:
                break
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE,
                             stderr=child_end, text=True, check=True, timeout=600)
    finally:
        os.close(child_end)
        reader.join()
        os.close(terminal)
    return json.loads(out.stdout.strip().splitlines()[-1]), b"".join(chunks).decode()


def test_second_process_does_not_recompile(tmp_path):
    """...and only the compiling process prints runtime.CompileNote's line, once."""
    note = "tinyinfer: compiling kernels once"
    first, first_err = run_probe(tmp_path)
    assert first["misses"] > 0          # an empty cache: everything was compiled
    assert first_err.count(note) == 1, first_err
    second, second_err = run_probe(tmp_path)
    assert second["misses"] == 0, second
    assert second["hits"] > 0            # ...and everything it ran came from the cache
    assert note not in second_err, second_err
