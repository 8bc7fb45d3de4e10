"""Per-layer benchmark of the conv / linear kernels on MobileNetV2's layer shapes.

    python -m tinyinfer.bench kernels [--runs 60] [--size 224] [--batch 1] [--no-torch]
                                      [--variants pointwise,im2col,dot | all]

For every distinct conv / linear shape of MobileNetV2 it prints the conv variant conv2d
picks (kernels/conv.py), tinyinfer's median time and GFLOP/s, PyTorch's (F.conv2d /
F.linear, 2 threads) and their ratio, and for 1x1 convs a comparison-only column: NumPy's
BLAS matmul (a 1x1 conv is already its own im2col). Both sides compute conv + bias with no
activation, so they do the same work. The "blocked" columns: the channel-blocked kernel
(conv_blocked.py, what the engine runs for MobileNetV2's convs) on blocked input and
output, its GFLOP/s, and that as a share of the roofline at the layer's arithmetic
intensity (analysis/machine.py: min(peak, intensity x bandwidth), measured first).
``--variants`` adds one column per named conv variant, run on every layer it supports
("-" where it cannot run), side by side.

Timing: warm-up first; then the candidates take turns in rounds (tinyinfer, torch, numpy,
tinyinfer, ...), each round timing --runs / 6 calls per candidate; the figure is the
median of a round, from the quietest round (see _medians for why). Numba compilation (or,
with the on-disk cache, loading) is timed separately, before the table.
"""
from __future__ import annotations

import os
import sys
import time

import numba
import numpy as np

from ..analysis.machine import best_machine
from ..errors import InputError
from ..kernels import conv_blocked as CBK
from ..kernels.conv import VARIANTS, choose_variant, conv2d, conv2d_cost, supported_variants
from ..kernels.linear import linear, linear_cost

# MobileNetV2 (Sandler et al. 2018, table 2): expansion t, output channels c, repeats n,
# stride s of the first repeat. Each block: 1x1 expand (skipped when t=1), 3x3 depthwise,
# 1x1 project.
MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenet_v2_layers(size: int = 224):
    """Every conv / linear layer as (kind, cin, cout, k, stride, in_hw), in network order."""
    def down(hw, s):                     # 3x3, padding 1
        return (hw + 2 - 3) // s + 1
    layers = [("standard", 3, 32, 3, 2, size)]
    hw, cin = down(size, 2), 32
    for t, c, n, s in MOBILENET_V2:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            if t != 1:
                layers.append(("pointwise", cin, hidden, 1, 1, hw))
            layers.append(("depthwise", hidden, hidden, 3, stride, hw))
            hw = down(hw, stride)
            layers.append(("pointwise", hidden, c, 1, 1, hw))
            cin = c
    layers.append(("pointwise", cin, 1280, 1, 1, hw))
    layers.append(("linear", 1280, 1000, 0, 0, 1))
    return layers


def distinct_layers(size: int = 224):
    """[(layer, count)] in first-seen order."""
    counts = {}
    for layer in mobilenet_v2_layers(size):
        counts[layer] = counts.get(layer, 0) + 1
    return list(counts.items())


def _import_torch():
    try:
        import torch
        import torch.nn.functional as F
    except Exception:                    # not installed (it is a test-only dependency)
        return None, None
    torch.set_num_threads(2)
    return torch, F


def parse_variants(text) -> list:
    """'pointwise,dot' -> ['pointwise', 'dot']; 'all' -> every conv variant."""
    if not text:
        return []
    names = list(VARIANTS) if text == "all" else [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown conv variant(s) {', '.join(unknown)}; "
                         f"known: {', '.join(VARIANTS)} (or 'all')")
    return names


def _make(layer, batch, rng, torch, F, variants=()):
    """-> (flops, tinyinfer fn, torch fn or None, numpy-BLAS fn or None, dispatched variant,
    {variant: fn, or None where it cannot run this layer})"""
    kind, cin, cout, k, stride, hw = layer
    if kind == "linear":
        x = rng.standard_normal((batch, cin), dtype=np.float32)
        w = rng.standard_normal((cout, cin), dtype=np.float32) * 0.05
        b = rng.standard_normal(cout, dtype=np.float32)
        flops = linear_cost(x.shape, w.shape, True, 0).flops
        ti = lambda: linear(x, w, b)                                # noqa: E731
        tt = None
        if torch is not None:
            xt_, wt_, bt_ = (torch.from_numpy(a) for a in (x, w, b))
            tt = lambda: F.linear(xt_, wt_, bt_)                   # noqa: E731
        return flops, ti, tt, None, "linear", {v: None for v in variants}, None, 0
    groups = cin if kind == "depthwise" else 1
    pad = k // 2
    x = rng.standard_normal((batch, cin, hw, hw), dtype=np.float32)
    w = rng.standard_normal((cout, cin // groups, k, k), dtype=np.float32) * 0.1
    b = rng.standard_normal(cout, dtype=np.float32)
    cost = conv2d_cost(x.shape, w.shape, stride, pad, 1, groups, 0, True)
    flops = cost.flops
    cache = {}   # a derived weight (Winograd's transform) made once, as the engine does
    ti = lambda: conv2d(x, w, b, stride, pad, 1, groups, cache=cache)  # noqa: E731
    tt = None
    if torch is not None:
        xt_, wt_, bt_ = (torch.from_numpy(a) for a in (x, w, b))
        tt = lambda: F.conv2d(xt_, wt_, bt_, stride, pad, 1, groups)  # noqa: E731
    npf = None
    if kind == "pointwise":
        x3, w2, b2 = x.reshape(batch, cin, hw * hw), w.reshape(cout, cin), b[:, None]
        npf = lambda: np.matmul(w2, x3) + b2                        # noqa: E731
    can = supported_variants(x.shape, w.shape, pad, groups, stride)
    vfns = {v: (lambda v=v: conv2d(x, w, b, stride, pad, 1, groups, variant=v, cache=cache))
            if v in can else None for v in variants}
    tb = None
    if CBK.supports(w.shape, groups, (stride, stride), (pad,) * 4, (1, 1)):
        # as the engine runs it: blocked in and out (a dense stem reads the NCHW image)
        xin = x if groups == 1 and k > 1 else CBK.to_blocked(x)
        run = CBK.bind_conv2d_blocked(xin, w, b, stride, pad, groups, 0, cache={})
        tb = lambda: run(xin, None)                                  # noqa: E731
    return (flops, ti, tt, npf, choose_variant(x.shape, w.shape, stride, pad, 1, groups), vfns,
            tb, cost.bytes_moved())


def _medians(fns, runs, rounds=6):
    """Seconds per call for each fn (None stays None): the median of a round of runs, from
    the quietest of `rounds` rounds. The fns take turns round by round, so a burst of load
    from another process hits all of them; on 2 cores one busy core stalls a 2-thread
    kernel for a whole scheduler tick (4-8 ms), which would swamp any plain statistic."""
    live = [f for f in fns if f is not None]
    for f in live:                       # warm-up: caches, allocator, thread pools
        for _ in range(3):
            f()
    best = {id(f): float("inf") for f in live}
    per_round = max(3, runs // rounds)
    for _ in range(rounds):
        for f in live:
            ts = []
            for _ in range(per_round):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
            best[id(f)] = min(best[id(f)], float(np.median(ts)))
    return [best[id(f)] if f is not None else None for f in fns]


def _compile_all():
    """Call every kernel once on tiny inputs; return (seconds, compiled, loaded from cache)."""
    from ..kernels import conv_depthwise, conv_im2col, conv_pointwise, linear as L
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8, 20, 20), dtype=np.float32)
    t0 = time.perf_counter()
    conv2d(x, rng.standard_normal((8, 8, 1, 1), dtype=np.float32))              # rows
    conv2d(x[:, :, :5, :5].copy(), rng.standard_normal((8, 8, 1, 1), dtype=np.float32))  # dot
    conv2d(x, rng.standard_normal((8, 1, 3, 3), dtype=np.float32), groups=8)     # depthwise
    conv2d(x, rng.standard_normal((8, 8, 3, 3), dtype=np.float32))               # im2col
    linear(x.reshape(1, -1), rng.standard_normal((4, 3200), dtype=np.float32))
    seconds = time.perf_counter() - t0
    kernels = [conv_pointwise._pointwise_rows, conv_im2col._im2col, conv_depthwise._depthwise,
               L._dot_kernel, L._rows_kernel]
    hits = sum(sum(k.stats.cache_hits.values()) for k in kernels)
    misses = sum(sum(k.stats.cache_misses.values()) for k in kernels)
    return seconds, misses, hits


def _shape_text(layer, batch):
    kind, cin, cout, k, stride, hw = layer
    if kind == "linear":
        return f"{batch}x{cin} -> {cout}"
    return f"{cin:>4}->{cout:<4} {k}x{k} s{stride} @{hw}"


def main(runs: int = 60, size: int = 224, batch: int = 1, use_torch: bool = True,
         variants: str = "") -> int:
    try:
        variants = parse_variants(variants)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch, F = _import_torch() if use_torch else (None, None)
    secs, compiled, loaded = _compile_all()
    print(f"MobileNetV2 conv/linear layers, batch {batch}, {size}x{size}; "
          f"numba threads {numba.get_num_threads()} ({numba.config.THREADING_LAYER} layer)"
          + (f", torch {torch.__version__} threads {torch.get_num_threads()}" if torch else
             ", torch not installed: tinyinfer columns only"))
    print(f"numba first calls: {secs:.2f} s ({compiled} kernel versions compiled, "
          f"{loaded} loaded from the on-disk cache)")
    roof = best_machine()
    print(f"roofline (best of 3 measurements): {roof}")
    load = os.getloadavg()[0]
    print(f"load average {load:.2f}" + ("  (other processes are busy: expect noise)"
                                          if load > 0.7 else "") + "\n")
    head = f"{'kind':<10} {'shape':<26} {'n':>2} {'variant':<9} {'tinyinfer':>10} {'GFLOP/s':>8}"
    if torch:
        head += f" {'torch':>10} {'GFLOP/s':>8} {'ratio':>6}"
    head += f" {'blocked':>10} {'GFLOP/s':>8} {'%roof':>5} {'numpy BLAS':>11}"
    head += "".join(f" {v:>10}" for v in variants)
    print(head)
    print("-" * len(head))
    rng = np.random.default_rng(0)
    total = {"conv": [0.0, 0.0], "all": [0.0, 0.0]}
    total_blas = [0.0, 0.0]   # pointwise only: numpy BLAS vs tinyinfer
    total_variants = {v: 0.0 for v in variants}   # over the layers each can run
    total_blocked = 0.0                           # blocked where it runs, else conv2d
    for layer, count in distinct_layers(size):
        flops, ti, tt, npf, chosen, vfns, tb, moved = _make(layer, batch, rng, torch, F,
                                                             variants)
        t_ti, t_torch, t_np, t_b, *t_vs = _medians([ti, tt, npf, tb] + list(vfns.values()),
                                                   runs)
        line = (f"{layer[0]:<10} {_shape_text(layer, batch):<26} {count:>2} {chosen:<9} "
                f"{t_ti * 1e3:>7.3f} ms {flops / t_ti / 1e9:>8.1f}")
        if torch:
            line += (f" {t_torch * 1e3:>7.3f} ms {flops / t_torch / 1e9:>8.1f}"
                     f" {t_ti / t_torch:>6.2f}")
        if t_b is not None:
            share = flops / t_b / roof.attainable(flops / moved)
            line += f" {t_b * 1e3:>7.3f} ms {flops / t_b / 1e9:>8.1f} {share:>5.0%}"
        else:
            line += f" {'-':>10} {'':>8} {'':>5}"
        total_blocked += count * (t_b if t_b is not None else t_ti)
        line += f" {t_np * 1e3:>8.3f} ms" if t_np is not None else f" {'':>11}"
        for v, t in zip(variants, t_vs):
            line += f" {t * 1e3:>7.3f} ms" if t is not None else f" {'-':>10}"
            total_variants[v] += count * (t or 0.0)
        print(line)
        for key in ("all",) + (("conv",) if layer[0] != "linear" else ()):
            total[key][0] += count * t_ti
            total[key][1] += count * (t_torch or 0.0)
        if t_np is not None:
            total_blas[0] += count * t_ti
            total_blas[1] += count * t_np
    print("-" * len(head))
    for key, label in (("conv", "all conv layers"), ("all", "conv + linear")):
        ti_ms, torch_ms = total[key][0] * 1e3, total[key][1] * 1e3
        line = f"total, {label} (x count): tinyinfer {ti_ms:.2f} ms"
        if torch:
            line += f", torch {torch_ms:.2f} ms, ratio {ti_ms / torch_ms:.2f}"
        print(line)
    print(f"conv + linear, blocked kernels where they run: {total_blocked * 1e3:.2f} ms")
    print(f"pointwise layers only: tinyinfer {total_blas[0] * 1e3:.2f} ms, "
          f"numpy BLAS matmul {total_blas[1] * 1e3:.2f} ms")
    for v, t in total_variants.items():
        print(f"variant {v}: {t * 1e3:.2f} ms over the layers it can run (x count)")
    return 0
