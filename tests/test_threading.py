"""Two Python threads calling one model at the same time.

Numba runs the parallel kernels on one of three threading layers: OpenMP or TBB when the
machine has them, else its own "workqueue", which is not thread-safe: two threads launching
parallel kernels at once abort the whole process (SIGABRT, "Concurrent access has been
detected"). tinyinfer serializes model calls under that layer (runtime.py). Each case runs
in a fresh process, since the layer is chosen once per process (here forced through
NUMBA_THREADING_LAYER), and checks that every concurrent call returned the logits the same
input gives when called alone.
"""
import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import json, threading
import numpy as np
import numba
import tinyinfer

m = tinyinfer.load("mobilenet_v2", weights=None, width_mult=0.35)
rng = np.random.default_rng(0)
inputs = [rng.standard_normal((1, 3, 64, 64), dtype=np.float32) for _ in range(4)]
expected = [m(x) for x in inputs]          # one thread: the logits to compare with
CALLS = 40
wrong = []

def worker(t):
    for i in range(CALLS):
        k = (t + i) % len(inputs)
        if not np.array_equal(m(inputs[k]), expected[k]):
            wrong.append((t, i))

threads = [threading.Thread(target=worker, args=(t,)) for t in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"layer": numba.threading_layer(), "wrong": len(wrong)}))
"""


@pytest.mark.parametrize("layer", ["workqueue", "default"])
def test_two_threads_calling_one_model(layer):
    env = dict(os.environ)
    env.pop("NUMBA_THREADING_LAYER", None)
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["wrong"] == 0
    if layer != "default":
        assert result["layer"] == layer        # the forced layer is the one that ran
