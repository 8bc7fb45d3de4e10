"""An inverted residual's 1x1 expansion and its depthwise conv in one pass, on the
channel-blocked layout (blocked_layout.py): the MobileNetV2 paper's "memory efficient
inference" (Section 5.1), where the expanded tensor, t times the block's input, is never
stored whole

    e   = act_e(pw(x))          two blocks of CB expanded channels at a time, all pixels,
                                into a per-thread scratch plane (conv_blocked.pw_tiles)
    out = act_d(dw(e))          the depthwise conv reads those planes there
                                (conv_blocked_dw.dw_rows)

    x    (N, Cib, H, W, CB)     wp (Cob, Cib*CB, CB), bp (Cob*CB,)   conv_blocked.pack_pointwise
    out  (N, Cob, Ho, Wo, CB)   wd (Cob, KH, KW, CB), bd (Cob*CB,)   pack_depthwise

Run as two kernels, the expansion wrote e to memory (MobileNetV2's 14x14 blocks: 384 x 196
floats, half of them by the other core) and the depthwise conv read it back: in a network
the depthwise convs on 14x14 and 7x7 maps ran 1.4-1.7x slower than alone. Here each plane
is made and consumed by one core while it is in its cache, and one kernel call replaces
two. engine/layout.py fuses a blocked expansion into its depthwise reader on batches, where
the pair makes enough tasks (``fuses``).
"""
from __future__ import annotations

import numba
import numpy as np

from .activations import act_code
from .blocked_layout import CB, from_blocked, to_blocked
from .common import FASTMATH, cached_derived, epilogue
from .conv import normalize_padding
from .conv_blocked import check_blocked_args, pack_pointwise, packed_bias, pw_tiles
from .conv_blocked_dw import dw_rows, pack_depthwise, padded_plane

FUSE_MIN_TASKS_PER_THREAD = 4
# ... and only on batches: one process, per call paired, fused / two kernels (2026-12-03,
# Zen 4): batch 8 MobileNetV2 0.88, EfficientNet-B0 0.91, MnasNet 0.95, MobileNetV3-L 0.97;
# batch 1 (the 384+-channel blocks) 0.95-0.99. This kernel takes ~4.5 s to compile, and a
# one-image `tinyinfer run` on a cold cache compiled it in the main process (the helper of
# engine/prewarm.py was still busy): 10 -> ~14 s to the first answer.
FUSE_MIN_IMAGES = 2


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def _expand_dw(xb, wp, bp, act_e, wd, bd, sh, sw, pt, pl, act_d, scratch, bufs, out):
    """out = act_d(dw(act_e(pw(xb)))) as in the module docstring. scratch (chunks, 2, H*W*CB)
    and bufs (chunks, Hp, Wp*CB), zeros, one of each per chunk of tasks (per thread), made
    by the caller (a NumPy constructor in a kernel compiles for 0.4 s)."""
    N, Cib, H, W = xb.shape[0], xb.shape[1], xb.shape[2], xb.shape[3]
    Cob = out.shape[1]
    ngroups = (Cob + 1) // 2
    tasks = N * ngroups
    nchunks = scratch.shape[0]
    for chunk in numba.prange(nchunks):
        s, buf = scratch[chunk], bufs[chunk]
        for t in range(chunk * tasks // nchunks, (chunk + 1) * tasks // nchunks):
            n = t // ngroups
            ob0 = t % ngroups * 2
            ob1 = min(ob0 + 1, Cob - 1)             # a last group of one block: twice
            pw_tiles(xb[n].reshape(Cib, H * W * CB), wp[ob0], wp[ob1], bp[ob0 * CB:],
                      bp[ob1 * CB:], s[0], s[1], 0, H * W, Cib)
            for b in range(ob1 - ob0 + 1):
                ob = ob0 + b
                epilogue(s[b], None, act_e)
                dw_rows(s[b].reshape(H, W, CB), wd[ob], bd[ob * CB:ob * CB + CB], sh, sw,
                        pt, pl, buf, out[n, ob], 0, out.shape[2])
                epilogue(out[n, ob].reshape(-1), None, act_d)


def expand_dw_blocked(xb, wp, bp, act_e, wd, bd, stride, padding, act_d) -> np.ndarray:
    """Blocked xb -> blocked dw(act_e(pw(xb))), with the packed weights above. stride
    (sh, sw); padding (top, bottom, left, right) of the depthwise conv."""
    N, _, H, W, _ = xb.shape
    Cob, KH, KW = wd.shape[0], wd.shape[1], wd.shape[2]
    (sh, sw), (pt, pb, pl, pr) = stride, padding
    Ho, Wo = (H + pt + pb - KH) // sh + 1, (W + pl + pr - KW) // sw + 1
    out = np.empty((N, Cob, Ho, Wo, CB), np.float32)
    chunks = min(numba.get_num_threads(), N * ((Cob + 1) // 2))
    Hp, Wp = padded_plane(H, W, Ho, Wo, KH, KW, sh, sw, pt, pl)
    _expand_dw(xb, wp, bp, act_e, wd, bd, sh, sw, pt, pl, act_d,
               np.empty((chunks, 2, H * W * CB), np.float32),
               np.zeros((chunks, Hp, Wp * CB), np.float32), out)
    return out


def bind_expand_dw(x, expand, depthwise, blocked_out=True):
    """The fused pair's arguments checked and its weights packed once, for x's shape (as
    conv_blocked.bind_conv2d_blocked): a function run(x) -> the depthwise conv's output,
    blocked (NCHW if not ``blocked_out``). x blocked or NCHW; ``expand`` and ``depthwise``
    dicts of weight, bias, act (a code or name), cache (the node's), and the depthwise's
    stride and padding."""
    e, d = expand, depthwise
    x, we, be, _ = check_blocked_args(x, e["weight"], e["bias"], (1, 1), (0, 0, 0, 0), 1, None)
    cexp = we.shape[0]
    stride = tuple(d["stride"])
    padding = normalize_padding(d["padding"])
    _, wd, bd, _ = check_blocked_args(np.empty((1, cexp, x.shape[2], x.shape[3]), np.float32),
                          d["weight"], d["bias"], stride, padding, cexp, None)
    wp, bp = cached_derived(e["cache"], "blocked", we, pack_pointwise, 4), \
        packed_bias(e["cache"], we, be)
    wdp, bdp = cached_derived(d["cache"], "blocked", wd, pack_depthwise, 4), \
        packed_bias(d["cache"], wd, bd)
    act_e, act_d = act_code(e["act"]), act_code(d["act"])      # no residual: no ordering

    def run(x):
        y = expand_dw_blocked(to_blocked(x) if x.ndim == 4 else x, wp, bp, act_e, wdp, bdp,
                              stride, padding, act_d)
        return y if blocked_out else from_blocked(y, cexp)
    return run


def fuses(n_images: int, expanded_channels: int, threads: int) -> bool:
    """Whether an expansion and its depthwise conv run fused: on a batch, where they make
    enough tasks (a task is two blocks of one image: MobileNetV2's 96- and 144-channel
    blocks on one image, 3 and 5 tasks, would leave a core idle part of the time)."""
    return n_images >= FUSE_MIN_IMAGES and \
        n_images * ((expanded_channels + 2 * CB - 1) // (2 * CB)) >= \
        FUSE_MIN_TASKS_PER_THREAD * threads
