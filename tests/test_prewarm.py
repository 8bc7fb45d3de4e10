"""engine/prewarm.py: which kernel families a plan uses, how they are split between this
process and a helper, and that the warm-up calls compile, into the on-disk cache, exactly
the kernel signatures a network then asks for: a network run after them on the same (fresh)
cache loads those kernels instead of compiling them. Checked with Numba's per-dispatcher
counters and compile events, in fresh processes with their own cache directories."""
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinyinfer
from tinyinfer.engine import layout, prewarm

ALL = list(prewarm.FAMILIES)

# MobileNetV3-Small uses every family: a dense stem on the image, depthwise and pointwise
# convs, squeeze-excite, the global pool and the classifier
PROBE = r"""
import json, sys, numpy as np, numba, tinyinfer
from numba.core import event
compiled = []
class Seen(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__name__)
    def on_end(self, ev):
        pass
from tinyinfer.engine import layout, prewarm
m = tinyinfer.load("mobilenet_v3_small", weights=None)
x = np.zeros((1, 3, 64, 64), np.float32)
if sys.argv[1] == "ahead":
    prewarm.compile_ahead(layout.for_shape(m.plan, x.shape), print)
event.register("numba:compile", Seen())
m(x)
kernels = {f.kernel: getattr(__import__("tinyinfer.kernels." + f.module, fromlist=["_"]),
                             f.kernel) for f in prewarm.FAMILIES.values()}
print(json.dumps({"compiled": compiled, "hits": {k: sum(d.stats.cache_hits.values())
                                                 for k, d in kernels.items()}}))
"""


def _run(args, cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, *args], env=env, stdout=subprocess.PIPE,
                         text=True, check=True, timeout=600)
    return out.stdout


def _probe(mode, cache_dir):
    out = _run(["-c", PROBE, mode], cache_dir).strip().splitlines()
    return out[:-1], json.loads(out[-1])


def test_families_of_networks():
    def of(name, batch=1, res=224):
        m = tinyinfer.load(name, weights=None)
        return prewarm.families(layout.for_shape(m.plan, (batch, 3, res, res)))

    assert of("mobilenet_v2") == ["direct", "depthwise", "pointwise", "pool", "linear"]
    assert of("mobilenet_v3_small", res=64) == ["direct", "depthwise", "se", "pointwise",
                                                "pool", "linear"]
    assert of("mobilenet_v3_large") == ["direct", "depthwise", "pointwise", "se", "pool",
                                        "linear"]
    assert of("resnet18")[0] == "direct" and "depthwise" not in of("resnet18")


def test_warm_compiles_what_a_network_then_loads(tmp_path):
    _run(["-m", "tinyinfer.engine.prewarm", *ALL], tmp_path)
    _, seen = _probe("plain", tmp_path)
    # each family's kernel came from the cache the warm-up filled, none was compiled again,
    # nor the activation ladder they call
    assert all(hits > 0 for hits in seen["hits"].values()), seen
    kernels = {f.kernel for f in prewarm.FAMILIES.values()} | {"act_inplace"}
    assert not kernels & set(seen["compiled"]), seen["compiled"]


def test_compile_ahead_leaves_nothing_to_compile(tmp_path):
    said, seen = _probe("ahead", tmp_path)
    assert len(said) == 1 and said[0].startswith("tinyinfer: compiling kernels once, ~"), said
    kernels = {f.kernel for f in prewarm.FAMILIES.values()} | {"act_inplace"}
    assert not kernels & set(seen["compiled"]), seen["compiled"]
    said, _ = _probe("ahead", tmp_path)         # a warm cache: nothing to say or compile
    assert said == []


def _finish(share, helper):
    """When a share is done under split's cost model (the ladder once per process)."""
    f = prewarm.FAMILIES
    ladder = prewarm.LADDER if any(f[k].ladder for k in share) else 0.0
    return ((prewarm.HELPER_START if helper else 0.0) + ladder
            + sum(f[k].seconds for k in share)) if share else 0.0


@pytest.mark.parametrize("n", range(1, len(ALL) + 1))
def test_split_shares_the_work(n):
    for names in itertools.combinations(ALL, n):
        names = list(names)
        mine, theirs = prewarm.split(names)
        assert sorted(mine + theirs) == sorted(names)
        # this process compiles the families that need no ladder first
        assert [prewarm.FAMILIES[k].ladder for k in mine] == sorted(
            prewarm.FAMILIES[k].ladder for k in mine)
        # greedy, longest first: within 4/3 of the best split (Graham's bound), and never
        # later than this process alone
        best = min(max(_finish(a, False), _finish([k for k in names if k not in a], True))
                   for r in range(n + 1) for a in map(list, itertools.combinations(names, r)))
        made = max(_finish(mine, False), _finish(theirs, True))
        assert made <= 4 / 3 * best + 1e-9 and made <= _finish(names, False)
        assert prewarm.split(names, helper=False) == (
            sorted(names, key=lambda k: prewarm.FAMILIES[k].ladder), [])


def test_no_helper_without_a_spare_core(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a helper process was started")
    monkeypatch.setattr(prewarm.os, "cpu_count", lambda: 1)
    monkeypatch.setattr(prewarm.subprocess, "Popen", refuse)
    assert prewarm.start(["pool"]) is None


def test_warm_calls_stay_valid():
    """Each warm-up call runs (a wrong argument would raise, here, not in a helper nobody
    reads); on this process's cache they compile or load."""
    for name in ALL:
        prewarm.FAMILIES[name].warm(np.int64(0))
