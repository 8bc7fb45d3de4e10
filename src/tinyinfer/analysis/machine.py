"""This machine's two roofline numbers, measured: peak FLOP/s and memory bandwidth.

A kernel that does F FLOPs and moves B bytes cannot run faster than
    max(F / peak, B / bandwidth)
so its attainable speed is min(peak, intensity * bandwidth), intensity = F / B (FLOP per
byte). Below the "ridge" intensity peak / bandwidth a kernel is memory-bound: a depthwise
3x3 conv does 9 MACs per output element (18 FLOPs) for ~8 bytes moved, far below the ridge
of a CPU that does dozens of FLOPs per byte, while a 1x1 conv with 512 channels does 1024
FLOPs per output element. That is why MobileNet's depthwise layers take far more time than
their share of the FLOPs (notebook 2).

peak:      every core runs a loop of independent fused multiply-adds a*x + b on registers
           (no memory traffic): 2 FLOPs per FMA, float32, all SIMD lanes.
bandwidth: every core streams a[i] = b[i] + s * c[i] over arrays much larger than the caches
           (STREAM's "triad"); bytes = 3 arrays x 4 bytes per element (the write-allocate
           read of a is not counted, as STREAM does not).
Both are best-of-several runs and cached per process: ``peak_flops()`` and ``bandwidth()``
measure once, later calls return the cached value. Other processes running at the same
time (2 cores here) lower both numbers.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from ..cpu import VECTOR_FLOATS

# Independent accumulators: 10 vector registers' worth (160 floats on AVX-512, 80 on AVX2),
# enough chains to hide a 4-5 cycle FMA latency on two FMA ports. All sixteen of AVX2's
# registers (128 floats, as first written) spill: measured 2026-12-02 on the AMD EPYC Zen
# 2, 2 threads, GFLOP/s by lanes: 64 136, 80 170, 96 121, 128 69.
_LANES = 10 * VECTOR_FLOATS


@numba.njit(fastmath=True, nogil=True, cache=True)
def _fma_chains(iters, acc):
    # acc: (_LANES,) float32. The inner loop becomes one vector FMA per register with the
    # accumulators in registers. (The same loop inside a prange body measured 8x slower:
    # LLVM then kept acc in memory.) So each core gets its own Python thread instead,
    # which Numba's nogil lets run in parallel.
    a, b = np.float32(0.999), np.float32(0.001)
    for _ in range(iters):
        for j in range(_LANES):
            acc[j] = acc[j] * a + b


def _fma_loop(iters, acc):
    with ThreadPoolExecutor(acc.shape[0]) as pool:
        list(pool.map(lambda row: _fma_chains(iters, row), acc))


@numba.njit(parallel=True, fastmath=True, cache=True)
def _triad(a, b, c, s):
    for i in numba.prange(a.shape[0]):
        a[i] = b[i] + s * c[i]


@dataclass(frozen=True)
class Machine:
    peak_flops: float        # FLOP/s, all cores, float32
    bandwidth: float         # bytes/s, all cores
    threads: int

    @property
    def ridge(self) -> float:
        """Arithmetic intensity (FLOP/byte) where the roofline's two lines meet."""
        return self.peak_flops / self.bandwidth

    def attainable(self, intensity: float) -> float:
        """Roofline: the best FLOP/s a kernel of this intensity can reach."""
        return min(self.peak_flops, intensity * self.bandwidth)

    def __str__(self):
        return (f"peak {self.peak_flops / 1e9:.1f} GFLOP/s (float32 FMA, {self.threads} "
                f"threads), memory bandwidth {self.bandwidth / 1e9:.1f} GB/s, ridge "
                f"{self.ridge:.1f} FLOP/byte")


_CACHE: dict[str, float] = {}


def _best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_flops(repeats: int = 5) -> float:
    """Measured float32 FLOP/s of an FMA loop on every Numba thread (cached)."""
    if "peak" not in _CACHE:
        threads = numba.get_num_threads()
        acc = np.ones((threads, _LANES), np.float32)
        iters = 4_000_000                          # ~10 ms per run
        _fma_loop(10, acc)                         # compile / load from cache
        t = _best_time(lambda: _fma_loop(iters, acc), repeats)
        _CACHE["peak"] = 2.0 * _LANES * iters * threads / t
    return _CACHE["peak"]


def bandwidth(repeats: int = 5, mbytes: int = 64) -> float:
    """Measured triad bandwidth in bytes/s over three arrays of ``mbytes`` MB each (cached)."""
    if "bandwidth" not in _CACHE:
        n = mbytes * 2**20 // 4
        a, b, c = np.zeros(n, np.float32), np.ones(n, np.float32), np.ones(n, np.float32)
        _triad(a, b, c, np.float32(2.0))           # compile, and touch every page
        t = _best_time(lambda: _triad(a, b, c, np.float32(2.0)), repeats)
        _CACHE["bandwidth"] = 3 * 4 * n / t
    return _CACHE["bandwidth"]


def machine() -> Machine:
    """This machine's roofline (measured on first call, then cached)."""
    return Machine(peak_flops(), bandwidth(), numba.get_num_threads())


def best_machine(times: int = 3) -> Machine:
    """The highest peak and bandwidth of ``times`` fresh measurements: this host has slow
    spells of a few seconds, and a per-layer "% of the roofline" must not be judged against
    a peak measured in one of them (bench kernels measured 178 GFLOP/s once, 218 usually)."""
    best = None
    for _ in range(times):
        _CACHE.clear()
        m = machine()
        best = m if best is None else Machine(max(best.peak_flops, m.peak_flops),
                                              max(best.bandwidth, m.bandwidth), m.threads)
    return best


def main() -> int:
    """python -m tinyinfer.bench machine"""
    m = machine()
    print(m)
    for name, intensity in [("depthwise 3x3 conv", 2.0), ("1x1 conv, 512 ch", 100.0)]:
        print(f"  a {name} at ~{intensity:g} FLOP/byte can reach at most "
              f"{m.attainable(intensity) / 1e9:.1f} GFLOP/s")
    return 0


# A 1-minute load average above this means other processes compete for the cores: on an
# idle 2-core machine it stays at 0.3-0.5, and a busy one made profile's layers up to 80x
# slower. The load average counts runnable processes, so the threshold does not scale with
# the core count: one busy process delays every parallel kernel that needs all cores.
BUSY_LOAD = 0.7


def busy_note() -> str | None:
    """A one-line warning if other processes keep the CPU busy right now (os.getloadavg),
    else None (also where the load average is unknown, e.g. on Windows)."""
    import os
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    if load <= BUSY_LOAD:
        return None
    return (f"the load average is {load:.2f} (above {BUSY_LOAD}: other processes are busy), "
            f"so measured times can be several times too slow; measure on an idle machine")
