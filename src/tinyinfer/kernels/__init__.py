"""Numba kernels. Each is a free function on plain float32 NumPy arrays, with its shapes in
its docstring, a NumPy reference beside it for tests, and a ``*_cost`` function that counts
its work from shapes alone (see tinyinfer/engine/costs.py for the conventions)."""
from .. import cpu
from . import _cache

_cache.install()     # before any kernel module is imported: see _cache.py
cpu.prefer_full_width_vectors()   # before Numba compiles anything: see cpu.py
