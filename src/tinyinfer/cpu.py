"""What the CPU the kernels are compiled for can do, where tinyinfer's choices depend on it.

Numba compiles every kernel for the host CPU (LLVM's name for it: ``host_cpu_name()``).
One fact changes how tinyinfer blocks its loops: the width of a vector register.

    AVX-512 (32 zmm registers of 16 floats)   VECTOR_FLOATS = 16
    AVX2    (16 ymm registers of 8 floats)    VECTOR_FLOATS = 8

kernels/tiles.py sizes its register tile from it, and engine/conv_variant.py, which
decides where that tile's product beats the rows kernel, reads it too. Numba's cache is
keyed by the CPU as well, so a cache written on one kind of machine is not loaded on the
other. This module imports nothing from tinyinfer (conv_variant must stay import-free).

One more fact is not about the CPU but about LLVM's tuning for it: for Intel's AVX-512
cores (Skylake-X onwards; LLVM calls this Xeon "rocketlake") LLVM prefers 256-bit
vectors, to spare the clock the 512-bit units' power, and vectorizes every loop with
ymm registers: half the width the kernels are written for. Measured 2026-12-02 on the
2-core Intel Xeon, one core, the micro-tile with data in L1: 4x32 122 -> 173 GFLOP/s,
4x64 105 -> 230 with 512-bit vectors allowed (torch's own matmul: 208 on one core).
``prefer_full_width_vectors`` removes that preference (the "-prefer-256-bit" feature).
"""
from __future__ import annotations

from llvmlite import binding as _llvm

_FEATURES = _llvm.get_host_cpu_features()
AVX512 = bool(_FEATURES.get("avx512f", False))
VECTOR_FLOATS = 16 if AVX512 else 8


def host_cpu_name() -> str:
    """LLVM's name for this CPU, e.g. 'znver3', 'rocketlake' (what Numba compiles for)."""
    return _llvm.get_host_cpu_name()


def prefer_full_width_vectors() -> bool:
    """Let LLVM vectorize with the full AVX-512 width (see the module docstring): sets
    Numba's CPU_FEATURES to the host's own, less "prefer-256-bit". Numba reads it once, when
    it first compiles anything in this process, so this must run before that; it does
    nothing if the user has set NUMBA_CPU_FEATURES, on CPUs without AVX-512, or once Numba
    has compiled something (the kernels are then just narrower). Returns whether it set it.
    Numba's on-disk cache is keyed by the feature string, so code compiled either way is
    never mixed up."""
    from numba.core import codegen, config, registry
    if not AVX512 or config.CPU_FEATURES is not None:
        return False
    if "_toplevel_target_context" in vars(registry.cpu_target):
        return False                   # already compiling with its features fixed
    config.CPU_FEATURES = codegen.get_host_cpu_features() + ",-prefer-256-bit"
    return True
