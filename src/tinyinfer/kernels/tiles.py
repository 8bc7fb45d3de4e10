"""The register-blocked micro-tile that gemm.py, linear.py and attention.py share.

    o[mo:mo+MR, po:po+NR] = (bias if first else o) + w[m0:m0+MR, k0:k0+kc] @ xp[:kc]

    w   (M, K)    float32, C-contiguous: MR of its rows are read, each contiguous in k
    xp  (>=kc, NR) float32, C-contiguous: a "packed panel", NR columns side by side
    o   the output block, which must exist whole (callers pad it to MR x NR)

One step of k loads the panel's NR floats (4 vectors on AVX-512, 2 on AVX2), broadcasts
MR values of w (4 on AVX-512, 5 on AVX2) and does MR multiply-adds per panel vector into
an MR x NR tile of accumulators. Each loaded value is used MR (panel) or NR (w) times
from a register, so the loop is bound by arithmetic, not by loads.

The accumulators live in a stack array (common.stack_empty): LLVM can prove nothing
else touches it and keeps the whole tile in registers. In a heap array, or in ``o``, the
same loop stores and reloads them every step.

The tile's shape follows the vector registers (cpu.py), so that the same code keeps 10
or more accumulators in registers on either kind of CPU (a multiply-add takes 4-5
cycles and two can start per cycle: fewer independent sums leave the units idle):
* AVX2 (16 ymm registers of 8 floats), MR x NR = 5 x 16: 10 accumulators + 2 panel
  vectors + the broadcasts. Measured 2026-12-02 on the 2-core AMD EPYC Zen 2 (LLVM:
  znver2), one core, data in L1, GFLOP/s: 2x16 7, 3x16 4, 4x16 75, **5x16 95**, 6x16 43
  (at 6 rows LLVM hoists every broadcast before the multiply-adds and spills
  accumulators; 3 x 32 and 4 x 24 did the same on the Zen 3). Whole 1x1 layers, 2
  threads: 128->256 @90x90 92 -> 123 GFLOP/s, 256->512 @64x64 101 -> 138 (4 -> 5 rows);
  whole networks, best of 3 processes each: MobileViTV2-200 159 -> 145 ms, ResNet-50 98
  -> 87, MobileViT-S 62 -> 57, MobileNetV2 13.8 -> 13.2.
* AVX-512 (32 zmm registers of 16 floats), NR = 64: 16 accumulators + 4 panel vectors +
  4 broadcasts. Measured 2026-12-02 on the 2-core Intel Xeon (LLVM: rocketlake), one
  core, data in L1, GFLOP/s, once LLVM was allowed 512-bit vectors (cpu.py): 4x16 111,
  4x32 173, 4x64 230, 8x16 175, 8x32 185 (torch's matmul on one core: 208). 4 x 16
  there has only 4 accumulators, too few to hide the multiply-add latency. Whole 1x1
  layers on the gemm variant (2 threads): 105-159 GFLOP/s at 4 x 16 with 256-bit
  vectors, 110-174 at 4 x 32, 155-243 at 4 x 64 with 512-bit ones.

Who packs what: gemm.py packs pixels of an NCHW map (w = the conv weight); linear.py
packs the weight transposed, NR outputs per panel, once per weight (w = MR rows of x);
attention.py packs NR scaled queries (w = the keys) and then reads the probabilities it
computed as the panel of the second product (w = the values, transposed).
"""
from __future__ import annotations

import numba
import numpy as np

from ..cpu import VECTOR_FLOATS
from .common import FASTMATH, stack_empty

MR = 4 if VECTOR_FLOATS == 16 else 5      # rows of w (output channels) per micro-tile
NR = 4 * VECTOR_FLOATS if VECTOR_FLOATS == 16 else 2 * VECTOR_FLOATS   # 64 or 16 pixels
TILE = MR * NR    # accumulators per micro-tile (a compile-time constant for stack_empty)

# Arguments for _micro_tile calls that would otherwise be literals. Numba compiles a
# function once per distinct argument types, and a literal 0 or True is its own type
# (Literal[int](0)): gemm, linear and attention passing 0 / True / MR as constants made
# _micro_tile compile four times, ~1.1 s each on a cold cache. NumPy scalars are typed
# int64 / bool, so every caller shares one compiled version.
ZERO = np.int64(0)
TRUE, FALSE = np.bool_(True), np.bool_(False)
NMR = np.int64(MR)


@numba.njit(fastmath=FASTMATH, cache=True)
def _micro_tile(w, m0, k0, kc, xp, bias, first, o, mo, po, mr):
    """o[mo:mo+mr, po:po+NR] = (bias if first else itself) + w[m0:m0+mr, k0:k0+kc] @ xp[:kc]

    The register-blocked inner loop, over MR rows of w of which the first mr (1..MR) are
    read and written: xp (KC, NR) is one packed X panel; rows of w past M repeat the last
    row, and their results are dropped, so the last rows of a product need no scratch
    block (a 64-channel conv is 12 tiles of 5 rows and one of 4; through a scratch copy
    that one had cost ~10% of the layer). The mr x NR block of o must exist (edge tiles
    in pixels go through a scratch block, see gemm._edge_tile). Every index into ``acc``
    is a constant once the constant-trip loops are unrolled: a single variable index and
    LLVM can no longer keep it in registers (measured: scalar FMAs, 6x slower).
    """
    # The branches are taken once per tile, outside the row loops (a test per row inside
    # them cost 5-16% of whole products: K147 M64 P12544 104 -> 110 GFLOP/s, K64 M256
    # P3136 87 -> 101, K256 M260 P3072 134 -> 143; measured 2026-12-02 on the AMD EPYC
    # Zen 2, 2 threads, same process). Rows past mr start from a copy of row mr - 1.
    M = w.shape[0]
    acc = stack_empty(TILE)
    if first:
        for i in range(MR):
            bi = bias[min(m0 + i, M - 1)]
            for j in range(NR):
                acc[i * NR + j] = bi
    else:
        for i in range(MR):
            oi = o[mo + min(i, mr - 1), po:po + NR]
            for j in range(NR):
                acc[i * NR + j] = oi[j]
    if MR == 5:          # a compile-time constant: only one of the two loops is compiled
        _k_loop5(w, m0, k0, kc, xp, acc)
    else:
        _k_loop4(w, m0, k0, kc, xp, acc)
    if mr == MR:
        for i in range(MR):
            oi = o[mo + i, po:po + NR]
            for j in range(NR):
                oi[j] = acc[i * NR + j]
    else:
        for i in range(MR):
            if i < mr:
                oi = o[mo + i, po:po + NR]
                for j in range(NR):
                    oi[j] = acc[i * NR + j]


# The k loops, one per MR: each row of w is its own slice, indexed from 0 (no negative-
# index wraparound code in the loop), and its value at k a named scalar that LLVM
# broadcasts into a vector once per step.

@numba.njit(inline="always", cache=True)
def _k_loop4(w, m0, k0, kc, xp, acc):
    M = w.shape[0]
    w0 = w[min(m0, M - 1), k0:k0 + kc]
    w1 = w[min(m0 + 1, M - 1), k0:k0 + kc]
    w2 = w[min(m0 + 2, M - 1), k0:k0 + kc]
    w3 = w[min(m0 + 3, M - 1), k0:k0 + kc]
    for k in range(kc):
        xk = xp[k]
        a0, a1, a2, a3 = w0[k], w1[k], w2[k], w3[k]
        for j in range(NR):            # constant trip count: fully unrolled
            v = xk[j]
            acc[j] += a0 * v
            acc[NR + j] += a1 * v
            acc[2 * NR + j] += a2 * v
            acc[3 * NR + j] += a3 * v


@numba.njit(inline="always", cache=True)
def _k_loop5(w, m0, k0, kc, xp, acc):
    M = w.shape[0]
    w0 = w[min(m0, M - 1), k0:k0 + kc]
    w1 = w[min(m0 + 1, M - 1), k0:k0 + kc]
    w2 = w[min(m0 + 2, M - 1), k0:k0 + kc]
    w3 = w[min(m0 + 3, M - 1), k0:k0 + kc]
    w4 = w[min(m0 + 4, M - 1), k0:k0 + kc]
    for k in range(kc):
        xk = xp[k]
        a0, a1, a2, a3, a4 = w0[k], w1[k], w2[k], w3[k], w4[k]
        for j in range(NR):
            v = xk[j]
            acc[j] += a0 * v
            acc[NR + j] += a1 * v
            acc[2 * NR + j] += a2 * v
            acc[3 * NR + j] += a3 * v
            acc[4 * NR + j] += a4 * v
