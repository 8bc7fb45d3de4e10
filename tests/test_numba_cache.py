"""Numba's compiled kernels are cached on disk: a second process loads them instead of
compiling again. Checked with Numba's own per-dispatcher counters (cache hits / misses),
not with timings: a fresh cache directory, one process that compiles, a second that must
not miss once."""
import json
import os
import subprocess
import sys

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
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


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
