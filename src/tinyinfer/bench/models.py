"""Model benchmark: tinyinfer vs PyTorch eager (and ONNX Runtime where installed) on the same
network, same weights, same input, in one process.

    python -m tinyinfer.bench models [--models mobilenet_v2 mobilenetv1_100] [--batch 1]
                                     [--resolution 224] [--runs 30] [--rounds 5]

For each model the first tinyinfer call (Numba compiling or loading its on-disk cache) is
timed and reported apart. Then engines take turns, ``--rounds`` rounds of ``--runs`` timed
calls each after 3 warm-up calls; a round's figure is its median and the reported figure is
the lowest round median, because on a shared 2-core machine other processes only ever add
time. torch runs on as many threads as Numba (2 here).
"""
from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

DEFAULT_MODELS = ("mobilenet_v2", "mobilenetv1_100")


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
    for _ in range(rounds):
        for k, fn in engines.items():
            best[k] = min(best[k], _median_ms(fn, runs))
    return {"model": name, "batch": batch, "resolution": resolution, "first_call_s": first,
            "gmacs": model.summary(resolution).macs * batch / 1e9, **best}


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
        ratio = lambda v: f"{r['tinyinfer'] / v:.2f}" if v else "-"
        print(f"| {name} | {batch} | {res} | {r['gmacs']:.3f} | {r['tinyinfer']:.1f} | "
              f"{ms(t)} | {ratio(t)} | {ms(o)} | {ratio(o)} | {r['first_call_s']:.1f} |",
              flush=True)
    return 0
