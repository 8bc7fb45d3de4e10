"""On a cold Numba cache, a second process compiles the kernels a mobile network reaches last.

Numba compiles on one core, one kernel after another, as the network first reaches each.
A MobileNet on an empty cache spends ~11 s there (engine/runtime.py), while the second core
idles. ``start`` launches ``python -c "...prewarm import warm; warm()"``, which calls the
channel-blocked kernels the main process does not reach first (it starts with the stem's
kernel): the activation ladder every kernel's epilogue calls (1.3 s; the main process
reaches it inside the stem's kernel), the depthwise kernel, then the classifier's, the
pool's and squeeze-excite's, so that each lands in the on-disk cache before the main
process needs it; it then loads it instead of compiling it.
Numba writes a cache entry to a temporary file and renames it, so a reader sees a whole
entry or none; a kernel both processes compile is simply compiled twice. The tiny inputs
have the engine's types (C-contiguous float32 arrays, int64 scalars), so the cached
signatures are the ones the network asks for (tests/test_prewarm.py).

Started by runtime.CompileNote with the note on the terminal (never under a test runner or
a script whose stderr is captured), only with two or more cores.
"""
from __future__ import annotations

import os
import subprocess
import sys


def start() -> bool:
    """Launch the helper process (detached, silent); False where there is no spare core."""
    if (os.cpu_count() or 1) < 2:
        return False
    subprocess.Popen([sys.executable, "-c", "from tinyinfer.engine.prewarm import warm; warm()"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    return True


def warm() -> None:
    """Compile (or load) the blocked path's later kernels, last-needed first."""
    import numpy as np

    from ..kernels import blocked_layout as BL
    from ..kernels import conv_blocked as CBK
    from ..kernels.activations import act_code, act_inplace
    from ..kernels.linear import linear
    from ..kernels.se import squeeze_excite_blocked

    f32 = np.float32
    act_inplace(np.ones(4, f32), act_code("relu6"))      # every kernel's epilogue calls it
    xb = BL.to_blocked(np.ones((1, 8, 5, 5), f32))
    CBK.conv2d_blocked(xb, np.ones((8, 1, 3, 3), f32), np.ones(8, f32), 1, 1, 8,
                       act_code("relu6"))                                  # depthwise
    linear(np.ones((1, 8), f32), np.ones((4, 8), f32), np.ones(4, f32))     # classifier
    BL.global_avg_pool_blocked(xb, 8)
    squeeze_excite_blocked(xb, np.ones((2, 8), f32), np.ones(2, f32), np.ones((8, 2), f32),
                           np.ones(8, f32), act_code("relu"), act_code("sigmoid"))
