"""engine/prewarm.py: which kernel families a plan uses, how they are split between this
process and a helper, and that the warm-up calls compile, into the on-disk cache, exactly
the kernel signatures a network then asks for: a network run after them on the same (fresh)
cache loads those kernels instead of compiling them. Checked with Numba's per-dispatcher
counters and compile events, in fresh processes with their own cache directories."""
import itertools
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

import tinyinfer
from tinyinfer.engine import layout, prewarm, warm_calls
from tinyinfer.engine.ops import infer_shapes

ALL = list(warm_calls.FAMILIES)
TINY = [k for k, f in warm_calls.FAMILIES.items() if f.warm is not warm_calls._nchw_conv]

# Runs a network once on a fresh cache (after the warm-ups, or after compile_ahead) and
# reports which kernels the run itself compiled and which families the plan uses
PROBE = r"""
import json, sys, numpy as np, tinyinfer
from numba.core import event
compiled = []
class Seen(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__name__)
    def on_end(self, ev):
        pass
from tinyinfer.engine import layout, prewarm, warm_calls
from tinyinfer.engine.ops import infer_shapes
name, batch, res, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
m = tinyinfer.load(name, weights=None)
x = np.zeros((batch, 3, res, res), np.float32)
plan = layout.for_shape(m.plan, x.shape)
if mode == "ahead":
    prewarm.compile_ahead(plan, x.shape, print)
event.register("numba:compile", Seen())
m(x)
print(json.dumps({"compiled": compiled,
                  "families": list(warm_calls.families(plan, infer_shapes(plan, x.shape)))}))
"""


def _run(args, cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, *args], env=env, stdout=subprocess.PIPE,
                         text=True, check=True, timeout=900)
    return out.stdout


def _probe(cache_dir, name, batch, res, mode):
    out = _run(["-c", PROBE, name, str(batch), str(res), mode], cache_dir).strip().splitlines()
    return out[:-1], json.loads(out[-1])


def _kernels(names):
    return {warm_calls.FAMILIES[k].kernel for k in names} | {"act_inplace"}


def _families(name, batch=1, res=224):
    m = tinyinfer.load(name, weights=None)
    plan = layout.for_shape(m.plan, (batch, 3, res, res))
    return list(warm_calls.families(plan, infer_shapes(plan, (batch, 3, res, res))))


def test_families_of_networks():
    assert _families("mobilenet_v2") == ["direct", "depthwise", "pointwise", "pool", "linear"]
    assert _families("mobilenet_v3_small", res=64) == ["direct", "depthwise", "se",
                                                       "pointwise", "pool", "linear"]
    # ResNet-50: NCHW from the stem (implicit gemm) to stage 2 (Winograd step by step, 1x1
    # gemms), then blocked from the conversion on (dense convs on im2col panels)
    assert set(_families("resnet50")) == {"implicit", "convert", "max_pool", "pointwise",
                                          "panel", "gemm", "winograd_in", "winograd_out",
                                          "im2col", "pool", "linear"}
    assert "winograd_fused" in _families("resnet50", batch=8)


def test_warm_compiles_what_a_network_then_loads(tmp_path):
    _run(["-m", "tinyinfer.engine.prewarm", *TINY], tmp_path)
    _, seen = _probe(tmp_path, "mobilenet_v3_small", 1, 64, "plain")
    # MobileNetV3-Small runs six families; their kernels came from the cache the warm-ups
    # filled, none was compiled again, nor the activation ladder they call
    assert len(seen["families"]) == 6 and set(seen["families"]) <= set(TINY), seen
    assert not _kernels(seen["families"]) & set(seen["compiled"]), seen["compiled"]


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "resnet18"])
def test_compile_ahead_leaves_nothing_to_compile(tmp_path, name):
    said, seen = _probe(tmp_path, name, 1, 224, "ahead")
    assert len(said) == 1 and said[0].startswith("tinyinfer: compiling kernels once, ~"), said
    assert not _kernels(seen["families"]) & set(seen["compiled"]), seen["compiled"]
    if name == "resnet18":     # warm-ups at the nodes' own shapes: an NCHW conv's paths
        assert {"implicit", "gemm", "winograd_in", "winograd_out"} <= set(seen["families"])
    said, seen = _probe(tmp_path, name, 1, 224, "ahead")   # a warm cache: nothing to do
    assert said == [] and not set(seen["compiled"]) & _kernels(seen["families"])


def _finish(share, helper):
    """When a share is done under split's cost model (the ladder once per process)."""
    f = warm_calls.FAMILIES
    ladder = prewarm.LADDER if any(f[k].ladder for k in share) else 0.0
    return ((prewarm.HELPER_START if helper else 0.0) + ladder
            + sum(f[k].seconds for k in share)) if share else 0.0


@pytest.mark.parametrize("n", range(1, 8))
def test_split_shares_the_work(n):
    combos = list(itertools.combinations(ALL, n))
    for names in random.Random(n).sample(combos, min(len(combos), 200)):
        names = list(names)
        mine, theirs = prewarm.split(names)
        assert sorted(mine + theirs) == sorted(names)
        # gemm (which others call) first, then this process's families without the ladder
        order = [(k not in prewarm.FIRST, warm_calls.FAMILIES[k].ladder) for k in mine]
        assert order == sorted(order)
        assert [k not in prewarm.FIRST for k in theirs] == sorted(
            k not in prewarm.FIRST for k in theirs)
        # greedy, longest first: within 4/3 of the best split (Graham's bound), and never
        # later than this process alone
        best = min(max(_finish(a, False), _finish([k for k in names if k not in a], True))
                   for r in range(n + 1) for a in map(list, itertools.combinations(names, r)))
        made = max(_finish(mine, False), _finish(theirs, True))
        assert made <= 4 / 3 * best + 1e-9 and made <= _finish(names, False)
        assert prewarm.split(names, helper=False) == (sorted(names, key=lambda k: (
            k not in prewarm.FIRST, warm_calls.FAMILIES[k].ladder)), [])


def test_no_helper_without_a_spare_core(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a helper process was started")
    monkeypatch.setattr(prewarm.os, "cpu_count", lambda: 1)
    monkeypatch.setattr(prewarm.subprocess, "Popen", refuse)
    assert prewarm.start(["pool"]) is None


def test_warm_calls_stay_valid():
    """Each tiny warm-up call runs (a wrong argument would raise, here, not in a helper
    nobody reads)."""
    for name in TINY:
        warm_calls.FAMILIES[name].warm(np.int64(0), None)


def test_helper_arguments_round_trip():
    spec = {"x": [1, 64, 56, 56], "w": [64, 64, 3, 3], "stride": [1, 1],
            "padding": [1, 1, 1, 1], "dilation": [1, 1], "groups": 1}
    assert prewarm._parse(prewarm._arg("implicit", spec)) == ("implicit", spec)
    assert prewarm._parse(prewarm._arg("pool", None)) == ("pool", None)


def test_a_failing_warm_up_never_fails_the_run(monkeypatch):
    def broken(act, spec):
        raise ValueError("a warm-up that no longer matches its kernel")
    monkeypatch.setitem(warm_calls.FAMILIES, "pool",
                        warm_calls.FAMILIES["pool"]._replace(warm=broken))
    prewarm.warm({"pool": None, "linear": None})        # skipped, and the next one runs
