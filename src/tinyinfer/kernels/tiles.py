"""The register-blocked micro-tile that gemm.py, linear.py and attention.py share.

    o[mo:mo+MR, po:po+NR] = (bias if first else o) + w[m0:m0+MR, k0:k0+kc] @ xp[:kc]

    w   (M, K)    float32, C-contiguous: MR of its rows are read, each contiguous in k
    xp  (>=kc, NR) float32, C-contiguous: a "packed panel", NR columns side by side
    o   the output block, which must exist whole (callers pad it to MR x NR)

One step of k loads the panel's NR floats (4 vectors on AVX-512, 2 on AVX2), broadcasts
MR = 4 values of w and does 4 multiply-adds per panel vector into an MR x NR tile of
accumulators. Each loaded value is used 4 (panel) or NR (w) times from
a register, so the loop is bound by arithmetic, not by loads.

The accumulators live in a stack array (common.stack_empty): LLVM can prove nothing
else touches it and keeps the whole tile in registers. In a heap array, or in ``o``, the
same loop stores and reloads them every step.

The tile's width follows the vector registers (cpu.py), so that the same code keeps 8
or more accumulators in registers on either kind of CPU:
* AVX2 (16 ymm registers of 8 floats), NR = 16: 8 accumulators + 2 panel vectors + 4
  broadcasts. A 6 x 16 tile (12 accumulators) measured 2.4x slower, 3 x 32 and 4 x 24
  likewise: LLVM hoists every broadcast before the multiply-adds and spills accumulators.
* AVX-512 (32 zmm registers of 16 floats), NR = 64: 16 accumulators + 4 panel vectors +
  4 broadcasts. Measured 2026-12-02 on the 2-core Intel Xeon (LLVM: rocketlake), one
  core, data in L1, GFLOP/s, once LLVM was allowed 512-bit vectors (cpu.py): 4x16 111,
  4x32 173, 4x64 230, 8x16 175, 8x32 185 (torch's matmul on one core: 208). 4 x 16
  there has only 4 accumulators, too few to hide the multiply-add latency. Whole 1x1
  layers on the gemm variant (2 threads): 105-159 GFLOP/s at 4 x 16 with 256-bit
  vectors, 110-174 at 4 x 32, 155-243 at 4 x 64 with 512-bit ones.

Who packs what: gemm.py packs pixels of an NCHW map (w = the conv weight); linear.py
packs NR rows of x transposed (w = the weight, (OUT, IN) as PyTorch stores it);
attention.py packs NR scaled queries (w = the keys) and then reads the probabilities it
computed as the panel of the second product (w = the values, transposed).
"""
from __future__ import annotations

import numba

from ..cpu import VECTOR_FLOATS
from .common import FASTMATH, stack_empty

MR = 4                    # output channels per micro-tile
NR = 4 * VECTOR_FLOATS if VECTOR_FLOATS == 16 else 2 * VECTOR_FLOATS   # 64 or 16 pixels
TILE = MR * NR    # accumulators per micro-tile (a compile-time constant for stack_empty)


@numba.njit(fastmath=FASTMATH, cache=True)
def _micro_tile(w, m0, k0, kc, xp, bias, first, o, mo, po):
    """o[mo:mo+MR, po:po+NR] = (bias if first else itself) + w[m0:m0+MR, k0:k0+kc] @ xp[:kc]

    The register-blocked inner loop. xp (KC, NR) is one packed X panel; rows of w past M
    repeat the last row; the MR x NR block of o must exist (edge tiles go through a
    scratch block, see _edge_tile). Every index into ``acc`` is a constant once the
    constant-trip loops are unrolled: a single variable index and LLVM can no longer
    keep it in registers (measured: scalar FMAs, 6x slower).
    """
    M = w.shape[0]
    acc = stack_empty(TILE)
    for i in range(MR):
        oi = o[mo + i, po:po + NR]
        bi = bias[min(m0 + i, M - 1)]
        for j in range(NR):
            acc[i * NR + j] = bi if first else oi[j]
    # one slice per row, indexed from 0: no negative-index wraparound code in the loop
    w0 = w[min(m0, M - 1), k0:k0 + kc]
    w1 = w[min(m0 + 1, M - 1), k0:k0 + kc]
    w2 = w[min(m0 + 2, M - 1), k0:k0 + kc]
    w3 = w[min(m0 + 3, M - 1), k0:k0 + kc]
    for k in range(kc):
        xk = xp[k]
        a0, a1, a2, a3 = w0[k], w1[k], w2[k], w3[k]
        for j in range(NR):            # constant trip count: two vectors, fully unrolled
            v = xk[j]
            acc[j] += a0 * v
            acc[NR + j] += a1 * v
            acc[2 * NR + j] += a2 * v
            acc[3 * NR + j] += a3 * v
    for i in range(MR):
        oi = o[mo + i, po:po + NR]
        for j in range(NR):
            oi[j] = acc[i * NR + j]
