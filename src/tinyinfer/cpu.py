"""What the CPU the kernels are compiled for can do, as far as tinyinfer's choices depend on it.

Numba compiles every kernel for the host CPU (LLVM's name for it: ``host_cpu_name()``).
One fact changes how tinyinfer blocks its loops: the width of a vector register.

    AVX-512 (32 zmm registers of 16 floats)   VECTOR_FLOATS = 16
    AVX2    (16 ymm registers of 8 floats)    VECTOR_FLOATS = 8

kernels/tiles.py sizes its register tile from it, and engine/conv_variant.py, which
decides where that tile's product beats the rows kernel, reads it too. Numba's cache is
keyed by the CPU as well, so a cache written on one kind of machine is not loaded on the
other. This module imports nothing from tinyinfer (conv_variant must stay import-free).
"""
from __future__ import annotations

from llvmlite import binding as _llvm

_FEATURES = _llvm.get_host_cpu_features()
AVX512 = bool(_FEATURES.get("avx512f", False))
VECTOR_FLOATS = 16 if AVX512 else 8


def host_cpu_name() -> str:
    """LLVM's name for this CPU, e.g. 'znver3', 'rocketlake' (what Numba compiles for)."""
    return _llvm.get_host_cpu_name()
