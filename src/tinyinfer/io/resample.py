"""PIL's antialiased enlargement, computed for a window of the output only.

torchvision's eval transform enlarges the whole image (shorter side to 256) and then cuts
the centre 224 x 224 out of it. For a thin image that whole result is huge: 1 x 10000
pixels become 256 x 2,560,000 (6 GB and 20 s in PIL) for the 224 x 224 that are kept.
PIL's own ``Image.resize(size, box=...)`` cannot compute just that window exactly: it
rounds the box to float32, which moves the sample positions of a window far from the
origin (by ~2e-4 pixel at x = 5000, by ~0.03 at x = 10^6) and changes output values by a
level or two; and Pillow 13 picks the order of its two passes from the output size, so a
window can even be resampled in the other order than the whole image (up to 25 levels).

So this module repeats PIL's arithmetic (Pillow's src/libImaging/Resample.c:
precompute_coeffs, normalize_coeffs_8bpc and the 8-bit passes) for the wanted rows and
columns only, and its window is bit-identical to the same window of ``Image.resize``:

* each output pixel ``i`` of an axis has its centre at ``(i + 0.5) * in_size / out_size``
  in the source; source pixels ``j`` within the filter's support get the weight
  ``filter(j + 0.5 - centre)``, normalised to sum 1 in float64 and then rounded to
  22-bit fixed point;
* the horizontal pass runs first, then the vertical one, each summing pixel x weight in
  integers and rounding to uint8 (so the intermediate image is 8-bit, as in PIL).

Only enlarging is handled (``out_size > in_size`` on both axes): there every Pillow
version runs the horizontal pass first and the filters keep their unscaled support
(2 or 4 taps). A shrunken image is never larger than the original, so ``image.py`` lets
PIL shrink the whole image instead.
"""
import math

import numpy as np
from PIL import Image


def _bilinear(x):
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _bicubic(x):
    """Keys' cubic with a = -0.5, each operation in Resample.c's order (same float64
    rounding, so the fixed-point weights agree to the last bit)."""
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


# interpolation name -> (PIL's filter, support in source pixels, weight function)
FILTERS = {
    "bilinear": (Image.Resampling.BILINEAR, 1.0, _bilinear),
    "bicubic": (Image.Resampling.BICUBIC, 2.0, _bicubic),
}

_PRECISION_BITS = 22  # 32 - 8 - 2 in Resample.c: 8 bits of pixel, 2 of filter overshoot


def _axis_weights(in_size, out_size, start, stop, interpolation):
    """Fixed-point weights of output pixels start..stop-1 of one axis enlarged from
    ``in_size`` to ``out_size``.

    Returns (weights, index), both (stop - start, taps): output pixel ``i`` is
    ``sum_t src[index[i, t]] * weights[i, t]`` (before the shift and clip in ``_pass``).
    Taps beyond a pixel's support have weight 0 and repeat its last source index.
    """
    _, support, weight = FILTERS[interpolation]
    # < 1: enlarging, so the filter keeps its own support. (PIL takes in_size as a float32,
    # exact below 2^24 pixels; longer sides cannot be resized by PIL at all.)
    scale = in_size / out_size
    taps = int(math.ceil(support)) * 2 + 1
    centre = (np.arange(start, stop, dtype=np.float64) + 0.5) * scale
    # Resample.c rounds with (int)(v + 0.5), which truncates; floor differs only for
    # negative v, and those are clamped to 0 either way.
    first = np.maximum(np.floor(centre - support + 0.5), 0).astype(np.int64)
    end = np.minimum(np.floor(centre + support + 0.5), in_size).astype(np.int64)
    source = first[:, None] + np.arange(taps)
    inside = source < end[:, None]
    w = np.where(inside, weight((source - centre[:, None]) + 0.5), 0.0)
    total = np.zeros_like(centre)
    for t in range(taps):  # summed tap by tap in order, as the C loop does
        total = total + w[:, t]
    w = w / np.where(total != 0.0, total, 1.0)[:, None]
    scaled = w * (1 << _PRECISION_BITS)
    fixed = np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5))
    index = np.minimum(source, end[:, None] - 1)
    return fixed.astype(np.int32), index


def _pass(src, weights, index, axis):
    """One 8-bit pass of Resample.c along ``axis`` (0: rows, 1: columns) of a (H, W, 3)
    uint8 array: the integer sum is rounded (the 1 << 21 term) and clipped to 0..255.

    int32 cannot overflow, as in Resample.c: the weights of a pixel sum to 2^22 with
    sum |w| < 1.2 * 2^22, so |sum| < 255 * 1.2 * 2^22 < 2^31.
    """
    shape = (-1, 1, 1) if axis == 0 else (1, -1, 1)
    acc = np.full(np.take(src, index[:, 0], axis=axis).shape, 1 << (_PRECISION_BITS - 1),
                  dtype=np.int32)
    for t in range(index.shape[1]):
        acc += np.take(src, index[:, t], axis=axis) * weights[:, t].reshape(shape)  # -> int32
    return np.clip(acc >> _PRECISION_BITS, 0, 255).astype(np.uint8)


def enlarged_window(rgb, out_height, out_width, rows, cols, interpolation):
    """Rows ``rows[0]:rows[1]`` and columns ``cols[0]:cols[1]`` of
    ``Image.fromarray(rgb).resize((out_width, out_height), filter)``, computed without the
    rest of it.

    rgb: (H, W, 3) uint8 with out_height > H and out_width > W. Returns a
    (rows[1] - rows[0], cols[1] - cols[0], 3) uint8 array. Work and memory are
    proportional to the window (a few taps per output pixel), whatever the output size.
    """
    height, width = rgb.shape[:2]
    if not (out_height > height and out_width > width):
        raise ValueError("enlarged_window only enlarges: out_height > H and out_width > W")
    row_weights, row_index = _axis_weights(height, out_height, *rows, interpolation)
    col_weights, col_index = _axis_weights(width, out_width, *cols, interpolation)
    # horizontal pass first, on just the source rows the vertical pass reads (PIL does the
    # same: a row's horizontal result does not depend on which other rows are computed)
    first_row, end_row = int(row_index.min()), int(row_index.max()) + 1
    horizontal = _pass(rgb[first_row:end_row], col_weights, col_index, axis=1)
    return _pass(horizontal, row_weights, row_index - first_row, axis=0)
