"""Token reshapes: an NCHW map to transformer tokens and back, as patches (MobileViT).

A transformer works on tokens, (B, T, C): T vectors of C channels. A feature map is NCHW.
Two ways to turn one into the other, both pure data movement (no arithmetic):

* tokens: every pixel is a token, (N, C, H, W) -> (N, H*W, C), token t = y*W + x
  (``to_tokens``; EfficientViT, EdgeViT: ``x.flatten(2).transpose(1, 2)``);
* patches (MobileViT): cut the map into ph x pw patches; pixel (py, px) of every patch
  forms one sequence, so attention runs between the same pixel of different patches:

      (B, C, H, W) -> (B*P, N, C),  P = ph*pw pixels per patch, N = (H/ph)*(W/pw) patches
      tokens[b*P + py*pw + px, iy*(W/pw) + ix, c] = x[b, c, iy*ph + py, ix*pw + px]

  which is timm's MobileVitBlock reshape order (``unfold_patches_ref`` is its code). With
  ph = pw = 1 this is ``to_tokens``; the two share one kernel.

When H or W is not a multiple of the patch size, timm first resizes the map bilinearly to the
next multiple (``F.interpolate(..., mode="bilinear", align_corners=False)``) and resizes the
folded map back afterwards; ``resize_bilinear`` is that interpolation.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..engine.costs import Cost, numel
from ..errors import InputError
from .common import check_int, float32_array


@numba.njit(parallel=True, cache=True)
def _unfold(x, ph, pw, out):
    # x: (B, C, H, W) with H % ph == W % pw == 0; out: (B*ph*pw, N, C). One task per
    # (image, patch row): it reads ph full rows of every channel (contiguous) and writes
    # whole C-vectors of the tokens it owns.
    B, C, H, W = x.shape
    nh, nw = H // ph, W // pw
    for task in numba.prange(B * nh):
        b = task // nh
        iy = task % nh
        for c in range(C):
            for py in range(ph):
                for ix in range(nw):
                    for px in range(pw):
                        out[b * ph * pw + py * pw + px, iy * nw + ix, c] = \
                            x[b, c, iy * ph + py, ix * pw + px]


@numba.njit(parallel=True, cache=True)
def _fold(t, ph, pw, out):
    # the inverse of _unfold: t (B*ph*pw, N, C) -> out (B, C, H, W)
    B, C, H, W = out.shape
    nh, nw = H // ph, W // pw
    for task in numba.prange(B * nh):
        b = task // nh
        iy = task % nh
        for c in range(C):
            for py in range(ph):
                for ix in range(nw):
                    for px in range(pw):
                        out[b, c, iy * ph + py, ix * pw + px] = \
                            t[b * ph * pw + py * pw + px, iy * nw + ix, c]


def _patch(patch) -> tuple[int, int]:
    ph, pw = (patch, patch) if isinstance(patch, (int, np.integer)) else tuple(patch)
    return check_int(ph, "patch height", 1), check_int(pw, "patch width", 1)


def padded_size(h: int, w: int, patch) -> tuple[int, int]:
    """(H, W) rounded up to multiples of the patch size: the size timm resizes to."""
    ph, pw = _patch(patch)
    return math.ceil(h / ph) * ph, math.ceil(w / pw) * pw


def patches_shape(x_shape, patch) -> tuple[int, int, int]:
    """Tokens shape of unfold_patches for an NCHW ``x_shape``: (B*P, N, C)."""
    B, C, H, W = x_shape
    ph, pw = _patch(patch)
    Hp, Wp = padded_size(H, W, (ph, pw))
    return B * ph * pw, (Hp // ph) * (Wp // pw), C


def unfold_patches(x: np.ndarray, patch=2) -> np.ndarray:
    """(B, C, H, W) -> tokens (B*P, N, C) (module docstring); H, W that are not multiples
    of the patch are first resized bilinearly to the next multiples, as timm does."""
    x = float32_array(x, "x", 4, "(B, C, H, W)")
    ph, pw = _patch(patch)
    Hp, Wp = padded_size(x.shape[2], x.shape[3], (ph, pw))
    if (Hp, Wp) != x.shape[2:]:
        x = resize_bilinear(x, Hp, Wp)
    out = np.empty(patches_shape(x.shape, (ph, pw)), np.float32)
    _unfold(x, ph, pw, out)
    return out


def fold_patches(t: np.ndarray, batch: int, height: int, width: int, patch=2) -> np.ndarray:
    """The inverse of unfold_patches: tokens (batch*P, N, C) -> (batch, C, height, width)
    (resized back bilinearly if unfold_patches had to resize)."""
    t = float32_array(t, "tokens", 3, "(B*P, N, C)")
    ph, pw = _patch(patch)
    Hp, Wp = padded_size(height, width, (ph, pw))
    want = (batch * ph * pw, (Hp // ph) * (Wp // pw))
    if t.shape[:2] != want:
        raise InputError(f"tokens of shape {t.shape} do not fold into {batch} image(s) of "
                         f"{height}x{width} with {ph}x{pw} patches: expected {want} + (C,)")
    out = np.empty((batch, t.shape[2], Hp, Wp), np.float32)
    _fold(t, ph, pw, out)
    return out if (Hp, Wp) == (height, width) else resize_bilinear(out, height, width)


def unfold_patches_ref(x, patch=2):
    """timm's MobileVitBlock.forward, unfold part, in NumPy (the resize included)."""
    ph, pw = _patch(patch)
    B, C, H, W = x.shape
    Hp, Wp = padded_size(H, W, (ph, pw))
    if (Hp, Wp) != (H, W):
        x = resize_bilinear_ref(x, Hp, Wp)
    nh, nw = Hp // ph, Wp // pw
    x = x.reshape(B * C * nh, ph, nw, pw).transpose(0, 2, 1, 3)
    x = x.reshape(B, C, nh * nw, ph * pw).transpose(0, 3, 2, 1)
    return np.ascontiguousarray(x.reshape(B * ph * pw, nh * nw, C))


def fold_patches_ref(t, batch, height, width, patch=2):
    """timm's MobileVitBlock.forward, fold part, in NumPy."""
    ph, pw = _patch(patch)
    Hp, Wp = padded_size(height, width, (ph, pw))
    nh, nw = Hp // ph, Wp // pw
    C = t.shape[-1]
    x = t.reshape(batch, ph * pw, nh * nw, C).transpose(0, 3, 2, 1)
    x = x.reshape(batch * C * nh, nw, ph, pw).transpose(0, 2, 1, 3)
    x = np.ascontiguousarray(x.reshape(batch, C, Hp, Wp))
    return x if (Hp, Wp) == (height, width) else resize_bilinear_ref(x, height, width)


def patches_cost(map_shape, patch=2, fold: bool = False) -> Cost:
    # Data movement: every element read once and written once, no arithmetic; plus the
    # bilinear resize when the map is not a multiple of the patch (resize_bilinear_cost):
    # unfold resizes the (B, C, H, W) map up to the multiples, fold resizes back down.
    B, C, H, W = map_shape
    Hp, Wp = padded_size(H, W, patch)
    n = B * C * Hp * Wp
    cost = Cost(elems_read=n, elems_written=n)
    if (Hp, Wp) != (H, W):
        cost = cost + (resize_bilinear_cost((B, C, Hp, Wp), H, W) if fold
                       else resize_bilinear_cost(map_shape, Hp, Wp))
    return cost


# ----------------------------------------------------------------------------------------
# bilinear resize, as F.interpolate(mode="bilinear", align_corners=False, antialias=False)

def _source_index(out_size: int, in_size: int):
    """For each output index: the two input indices and the weight of the second,
    PyTorch's rule: src = (dst + 0.5) * in/out - 0.5, clamped at 0."""
    scale = in_size / out_size
    src = np.maximum((np.arange(out_size) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, (src - i0).astype(np.float32)


@numba.njit(parallel=True, cache=True)
def _resize(x, y0, y1, wy, x0, x1, wx, out):
    # x: (M, H, W) planes; out: (M, OH, OW). Output pixel (i, j) blends the 4 input pixels
    # at rows y0[i], y1[i] and columns x0[j], x1[j].
    M, OH, OW = out.shape
    for m in numba.prange(M):
        for i in range(OH):
            a = 1.0 - wy[i]
            b = wy[i]
            for j in range(OW):
                top = x[m, y0[i], x0[j]] * (1.0 - wx[j]) + x[m, y0[i], x1[j]] * wx[j]
                bot = x[m, y1[i], x0[j]] * (1.0 - wx[j]) + x[m, y1[i], x1[j]] * wx[j]
                out[m, i, j] = a * top + b * bot


def resize_bilinear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, height, width), bilinear, align_corners=False."""
    x = float32_array(x, "x", 4, "(N, C, H, W)")
    height, width = check_int(height, "height", 1), check_int(width, "width", 1)
    N, C, H, W = x.shape
    out = np.empty((N, C, height, width), np.float32)
    _resize(x.reshape(N * C, H, W), *_source_index(height, H), *_source_index(width, W),
            out.reshape(N * C, height, width))
    return out


def resize_bilinear_ref(x, height, width):
    """The same rule in float64 NumPy (fancy indexing), one axis at a time."""
    y0, y1, wy = _source_index(height, x.shape[2])
    x0, x1, wx = _source_index(width, x.shape[3])
    v = x.astype(np.float64)
    wy, wx = wy.astype(np.float64)[:, None], wx.astype(np.float64)
    rows = v[:, :, y0] * (1 - wy) + v[:, :, y1] * wy
    return (rows[..., x0] * (1 - wx) + rows[..., x1] * wx).astype(np.float32)


def resize_bilinear_cost(in_shape, height: int, width: int) -> Cost:
    # Per output element: two horizontal blends (2 mul + 1 add each) and one vertical
    # (2 mul + 1 add) = 9 FLOPs; reads 4 inputs (counted once each: the input is read
    # whole), writes 1.
    N, C = in_shape[:2]
    n_out = N * C * height * width
    return Cost(flops=9 * n_out, elems_read=numel(in_shape), elems_written=n_out)
