"""Keeps the memory of freed activations in the process, so the next run does not page-fault.

Every activation is a fresh NumPy (or Numba) array of 0.1-10 MB. glibc's malloc serves
arrays that large from fresh mmaps, or grows its heap for them and gives the top of the heap
back to the OS when they are freed; either way the next run's first write to each 4 KB
page faults, and the kernel zeroes the page (a few us each in this VM). How often depends on
the order of allocations: measured 2026-12-03 (Zen 4), MixNet-S at batch 1 took 2,103 page
faults per run, GhostNet 1,145 when loaded first, MobileNetV2 none. ONNX Runtime keeps an
arena for the same reason.

``keep_freed_memory`` (runtime.execute calls it before the first run) sets, through
mallopt, M_MMAP_THRESHOLD = 32 MB (arrays up to that from the heap, not fresh mmaps) and
M_TRIM_THRESHOLD = 1 GB (freed heap memory stays in the process up to that): after the
first run, MixNet-S takes no page faults. The cost: the process keeps up to its peak of
freed memory instead of returning it. It is process-wide, so TINYINFER_MALLOC=default in
the environment leaves malloc as it was. Elsewhere than glibc it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3       # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30

_result: bool | None = None      # None: not tried yet in this process
_lock = threading.Lock()


def keep_freed_memory() -> bool:
    """Set the thresholds once per process; True if they are set (now or before)."""
    global _result
    if _result is None:                  # every run asks: no lock once it is decided
        with _lock:
            if _result is None:
                _result = _set_thresholds()
    return _result


def _set_thresholds() -> bool:
    if os.environ.get("TINYINFER_MALLOC", "").lower() == "default":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):    # not glibc (musl, macOS, Windows)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
