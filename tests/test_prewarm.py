"""engine/prewarm.py: the helper process compiles, into the on-disk cache, exactly the kernel
signatures a network then asks for: a network run after it on the same (fresh) cache loads
those kernels instead of compiling them. Checked with Numba's per-dispatcher counters."""
import json
import os
import subprocess
import sys

from tinyinfer.engine import prewarm

PROBE = r"""
import json, numpy as np, tinyinfer
from tinyinfer.kernels import blocked_layout, conv_blocked_dw, linear, se
m = tinyinfer.load("mobilenet_v3_small", weights=None)
m(np.zeros((1, 3, 64, 64), np.float32))
kernels = {"depthwise": conv_blocked_dw._depthwise, "dot": linear._dot_kernel,
           "pool": blocked_layout._pool_blocked, "se": se._se_serial}
print(json.dumps({k: [sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())]
                  for k, d in kernels.items()}))
"""


def _run(code, cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                         text=True, check=True, timeout=600)
    return out.stdout


def test_warm_compiles_what_a_network_then_loads(tmp_path):
    _run("from tinyinfer.engine.prewarm import warm; warm()", tmp_path)
    counts = json.loads(_run(PROBE, tmp_path).strip().splitlines()[-1])
    # MobileNetV3-Small (blocked throughout, with squeeze-excite): each of these kernels
    # came from the cache the helper filled, none was compiled again
    assert all(hits > 0 and misses == 0 for hits, misses in counts.values()), counts


def test_no_helper_without_a_spare_core(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a helper process was started")
    monkeypatch.setattr(prewarm.os, "cpu_count", lambda: 1)
    monkeypatch.setattr(prewarm.subprocess, "Popen", refuse)
    assert prewarm.start() is False
