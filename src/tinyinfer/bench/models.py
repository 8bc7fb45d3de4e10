"""Model benchmark: tinyinfer vs PyTorch eager (and ONNX Runtime where installed) on the same
network, same weights, same input, in one process.

    python -m tinyinfer.bench models [--models mobilenet_v2 mobilenetv1_100] [--batch 1]
                                     [--resolution 224] [--runs 30] [--rounds 5]

For each model the first tinyinfer call (Numba compiling or loading its on-disk cache) is
timed and reported apart. Then engines take turns, ``--rounds`` rounds of ``--runs`` timed
calls each after a pause (SETTLE_S: the other engines' threads stop spinning) and 3 warm-up
calls; a round's figure is its median and the reported ms is the lowest round median,
because on a shared 2-core machine other processes only ever add time. The ratio columns
are paired instead: the median over rounds of tinyinfer's round median over the other
engine's in the same round, seconds apart (this host's speed swings over seconds to
minutes: a ratio of lowest medians taken in different moments swung by 30-40% between
tables). torch runs on as many threads as Numba (2 here).
"""
from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

DEFAULT_MODELS = ("mobilenet_v2", "mobilenetv1_100")


# Seconds each engine's round waits before its first call, for the other engines' worker
# threads to stop spinning. ONNX Runtime's pool spins after a run, and PyTorch's OpenMP
# threads after theirs, each keeping a core busy: measured 2026-12-04 (2-core Zen 4,
# MobileNetV3-Small at batch 1), tinyinfer's calls right after an ONNX Runtime call took
# 5.6-7.5 ms instead of 1.5-2.6, every other call for 20 ms and more (a scheduler time
# slice lost to the spinning thread), and ONNX Runtime's after a torch call 2.2-6.9 ms
# instead of 1.2-1.7; after a 0.1 s pause neither showed it. The 3 warm-up calls of a
# round (a few ms on a small network) had not covered that.
SETTLE_S = 0.3


def _median_ms(fn, runs: int) -> float:
    for _ in range(3):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def torch_reference(name: str):
    """The torchvision / timm / pytorchcv module registered as ``name``'s reference (None
    without torch, or without the package)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    from ._torch import import_torchvision
    torchvision = import_torchvision()
    from ..models.registry import get_spec
    module, _, attr = get_spec(name).reference.rpartition(".")
    if module == "timm.models":
        import timm
        return timm.create_model(attr).eval()
    if module == "torchvision.models":
        return getattr(torchvision.models, attr)().eval()
    if module.startswith("pytorchcv.models."):
        try:
            from pytorchcv.model_provider import get_model
        except ImportError:
            return None
        return get_model(attr).eval()
    return None   # a reference outside the packages (a test-side module): tinyinfer's column only


def onnx_session(ref, x):
    """An ONNX Runtime session of the torch module, or None if onnxruntime/onnx are missing."""
    try:
        import io

        import onnxruntime as ort
        import torch
        import warnings
        buf = io.BytesIO()
        with warnings.catch_warnings():   # the TorchScript exporter is deprecated, still works
            warnings.simplefilter("ignore")
            torch.onnx.export(ref, torch.from_numpy(x), buf, input_names=["x"], dynamo=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
        return lambda: sess.run(None, {"x": x})
    except Exception:
        return None


def bench_model(name: str, batch: int, resolution: int, runs: int, rounds: int) -> dict:
    import tinyinfer
    x = np.random.default_rng(0).standard_normal((batch, 3, resolution, resolution),
                                                 dtype=np.float32)
    engines = {}
    ref = torch_reference(name)
    if ref is not None:
        import torch
        torch.set_num_threads(int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)))
        model = tinyinfer.load(name, weights={k: v.numpy() for k, v in ref.state_dict().items()})
        xt = torch.from_numpy(x)

        def torch_call():
            with torch.no_grad():
                ref(xt)
        engines["torch"] = torch_call
        ort_call = onnx_session(ref, x)
        if ort_call:
            engines["onnxruntime"] = ort_call
    else:
        model = tinyinfer.load(name, weights=None)
    t0 = time.perf_counter()
    model(x)
    first = time.perf_counter() - t0
    engines = {"tinyinfer": lambda: model(x), **engines}
    best = {k: float("inf") for k in engines}
    paired = {k: [] for k in engines if k != "tinyinfer"}
    for _ in range(rounds):
        round_ms = {}
        for k, fn in engines.items():
            time.sleep(SETTLE_S)
            round_ms[k] = _median_ms(fn, runs)
            best[k] = min(best[k], round_ms[k])
        for k in paired:
            paired[k].append(round_ms["tinyinfer"] / round_ms[k])
    return {"model": name, "batch": batch, "resolution": resolution, "first_call_s": first,
            "gmacs": model.summary(resolution).macs * batch / 1e9, **best,
            "ratio": {k: statistics.median(v) for k, v in paired.items()}}


def main(models=DEFAULT_MODELS, batch=1, resolution=None, runs=30, rounds=5) -> int:
    import numba

    from ..models.registry import get_spec, list_models
    if list(models) == ["all"]:
        models = list_models()
    print(f"# {platform.machine()} {os.cpu_count()} cores, numba {numba.__version__} with "
          f"{numba.config.NUMBA_NUM_THREADS} threads, load average "
          f"{os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d')}")
    print("| model | batch | res | GMACs | tinyinfer ms | torch ms | tinyinfer / torch | "
          "onnxruntime ms | tinyinfer / onnxruntime | first call s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in models:
        res = resolution or get_spec(name).input_size
        r = bench_model(name, batch, res, runs, rounds)
        t, o = r.get("torch"), r.get("onnxruntime")
        ms = lambda v: f"{v:.1f}" if v else "-"
        ratio = lambda k: f"{r['ratio'][k]:.2f}" if k in r["ratio"] else "-"
        print(f"| {name} | {batch} | {res} | {r['gmacs']:.3f} | {r['tinyinfer']:.1f} | "
              f"{ms(t)} | {ratio('torch')} | {ms(o)} | {ratio('onnxruntime')} | "
              f"{r['first_call_s']:.1f} |", flush=True)
    return 0
