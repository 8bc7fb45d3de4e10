"""Images in, ImageNet labels out: loading, the standard eval preprocessing, top-k labels.

``preprocess`` reproduces torchvision's eval transform

    Compose([Resize(resize), CenterCrop(crop), ToTensor(), Normalize(mean, std)])

applied to ``PIL.Image.open(path).convert("RGB")``, with PIL and NumPy only: the same
shorter-side size rule, the same resampling (PIL's, which always antialiases), the same
crop rounding and zero padding, and the same float32 arithmetic. Only the crop is ever
computed when enlarging (``tinyinfer.io.resample``), so a thin 1 x 10000 image, which the
Resize step makes 256 x 2,560,000, costs as little as any other.

Decisions ``load_image`` makes, so that results match that torchvision pipeline:

* Alpha is dropped, not composited: 'RGBA', 'LA', 'PA' and palette images with
  transparency become what ``convert("RGB")`` gives (the colour under the alpha).
* EXIF orientation is *not* applied, as torchvision does not apply it. To honour it, pass
  ``PIL.ImageOps.exif_transpose(PIL.Image.open(path))`` instead of the path.
* Multi-frame files (animated GIF, multi-page TIFF) give their first frame.
* 16-bit integer images ('I;16', 'I;16B', ...) and 32-bit 'I' images whose values lie in
  0..65535 (how PIL often holds 16-bit data) are scaled as ``round(v / 65535 * 255)``.
  Here we deliberately differ from ``convert("RGB")``, which clips every value above 255 to
  white. 'I' values outside 0..65535 and float 'F' images have no standard range and are
  refused. 16-bit *colour* PNGs are reduced to 8 bit by PIL itself while decoding.

Limits on image *files*, checked before decoding:

* Only regular files are read: a FIFO or a device could block forever or never end.
* PIL's decompression-bomb guard decides how many pixels are too many: files over twice
  ``PIL.Image.MAX_IMAGE_PIXELS`` (2 x 89.5 MP = 179 MP by default) are refused with
  "too large"; below that PIL's warning is silenced. To read larger files set
  ``PIL.Image.MAX_IMAGE_PIXELS`` higher, or to None for no limit, before calling.
* A file larger than any image within that limit could be (16 bytes per pixel) is
  refused without being read.
"""
import functools
import importlib.resources
import numbers
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImageError, InputError
from .resample import FILTERS, enlarged_window

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Largest ``resize`` and ``crop`` preprocess accepts: the output alone is 12 bytes per
# pixel of crop (float32 x 3), so 4096 x 4096 is 200 MB; no network here needs over 600.
MAX_SIZE = 4096

# The widest pixel PIL decodes (4 channels x 32 bit): a file larger than the pixel limit
# times this cannot hold an image within the limit, so it is refused without reading.
_MAX_FILE_BYTES_PER_PIXEL = 16

# data/imagenet_classes.txt holds the 1000 ImageNet-1k class names in index order,
# extracted from torchvision 0.28.0 as MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]
# (torchvision/models/_meta.py, _IMAGENET_CATEGORIES), one name per line, UTF-8.
_NUM_CLASSES = 1000


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------

def load_image(image):
    """Return ``image`` as a (H, W, 3) uint8 RGB array (a new array, never a view).

    ``image`` may be
      * a path (str or os.PathLike) to any image file PIL can read;
      * a ``PIL.Image.Image`` of any mode converted as described in the module docstring;
      * a uint8 NumPy array of shape (H, W, 3) RGB, (H, W) or (H, W, 1) grayscale
        (replicated to 3 channels) or (H, W, 4) RGBA (alpha dropped, as PIL does).

    Raises ImageError naming the file or the received shape/dtype for everything else.
    """
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    if isinstance(image, Image.Image):
        try:
            return _pil_to_rgb(image)
        except ImageError:
            raise
        except Exception as e:  # e.g. a lazily opened file that turns out truncated
            name = getattr(image, "filename", "") or "PIL image"
            raise ImageError(f"cannot decode {name!r} ({type(e).__name__}: {e})") from e
    if isinstance(image, (str, os.PathLike)):
        return _load_file(os.fspath(image))
    raise ImageError(
        f"expected an image path (str or os.PathLike), a PIL.Image.Image or a uint8 "
        f"NumPy array of shape (H, W, 3); got {type(image).__module__}.{type(image).__qualname__}")


def _load_file(path):
    with _open_regular_file(path) as file:
        try:
            with warnings.catch_warnings():
                # PIL warns between MAX_IMAGE_PIXELS and twice that (and raises above):
                # the file is read as PIL reads it, the warning is noise on stderr
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(file) as im:
                    im.load()  # PIL decodes lazily; force truncation/corruption errors out here
                    return _pil_to_rgb(im)
        except ImageError as e:  # our own message about the mode: add the file name
            raise ImageError(f"{path!r}: {e}") from e
        except Image.DecompressionBombError as e:
            raise ImageError(_too_many_pixels_message(path, e)) from e
        except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, EOFError, ...
            raise ImageError(
                f"cannot read image file {path!r}: it is corrupt, truncated or not an image "
                f"format PIL understands ({type(e).__name__}: {e})") from e


def _open_regular_file(path):
    """Open ``path`` for binary reading if it is a regular file of plausible size.

    Opened non-blocking, because opening a FIFO for reading otherwise waits for a writer
    (forever); then what was opened is checked with fstat, so nothing can be swapped in
    between the check and the read. (O_NONBLOCK does nothing for regular files.)
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ImageError(f"image file {path!r} does not exist") from None
    except IsADirectoryError:
        raise ImageError(f"{path!r} is a directory, not an image file") from None
    except OSError as e:
        raise ImageError(f"cannot open image file {path!r}: {e.strerror or e}") from e
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageError(f"{path!r} is a directory, not an image file")
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(
                f"{path!r} is not a regular file (a FIFO, device or socket, which can block "
                f"or never end); save the image to a file and pass that")
        pixel_limit = _max_pixels()
        if pixel_limit is not None and info.st_size > pixel_limit * _MAX_FILE_BYTES_PER_PIXEL:
            raise ImageError(
                f"image file {path!r} is too large ({info.st_size:,} bytes, limit "
                f"{pixel_limit * _MAX_FILE_BYTES_PER_PIXEL:,} bytes: {_megapixels(pixel_limit)}"
                f" x {_MAX_FILE_BYTES_PER_PIXEL} bytes); if it really is an image, raise the "
                f"pixel limit PIL.Image.MAX_IMAGE_PIXELS (or set it to None) first")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _max_pixels():
    """Most pixels an image file may have: PIL's hard limit, twice MAX_IMAGE_PIXELS."""
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


def _megapixels(n):
    return f"{n / 1e6:.3g} MP"


def _too_many_pixels_message(path, error):
    # PIL's message, "Image size (N pixels) exceeds limit of M pixels, ...", is the only
    # place the size is reported
    found = re.search(r"\((\d+) pixels\)", str(error))
    limit = _max_pixels()
    size = f"{_megapixels(int(found.group(1)))}, " if found else ""
    needed = int(found.group(1)) if found else "a larger number"
    return (f"image file {path!r} is too large ({size}limit {_megapixels(limit)}): PIL refuses "
            f"more than twice PIL.Image.MAX_IMAGE_PIXELS as a possible decompression bomb; "
            f"if you trust the file, raise the limit in Python before calling: "
            f"PIL.Image.MAX_IMAGE_PIXELS = {needed} (or None for no limit)")


def _pil_to_rgb(im):
    if im.width == 0 or im.height == 0:
        raise ImageError(f"image has no pixels (size {im.width} x {im.height}, width x height)")
    if im.mode == "RGB":
        return np.array(im, dtype=np.uint8)
    if im.mode.startswith("I"):  # 'I;16', 'I;16B', 'I;16L', 'I;16N', 'I'
        return _gray_to_rgb(_scale_16bit(np.asarray(im), im.mode))
    if im.mode == "F":
        raise ImageError(
            "32-bit float images (PIL mode 'F') have no standard 0-255 range; convert the "
            "data to uint8 yourself and pass the array")
    try:
        with warnings.catch_warnings():  # dropping alpha is intended, see module docstring
            warnings.filterwarnings("ignore", "Palette images with Transparency")
            rgb = im.convert("RGB")
    except ValueError as e:
        raise ImageError(f"cannot convert PIL mode {im.mode!r} to RGB ({e})") from e
    return np.array(rgb, dtype=np.uint8)


def _scale_16bit(values, mode):
    """Map integer values 0..65535 to uint8 with round(v / 65535 * 255)."""
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if lo < 0 or hi > 65535:
        raise ImageError(
            f"integer image (PIL mode {mode!r}) has values {lo}..{hi}, outside the 16-bit "
            f"range 0..65535 that tinyinfer scales to 8 bit; convert it to uint8 yourself")
    # v * 255 <= 16,711,425 is exact in float64, and so is dividing the rounded result.
    return np.rint(values.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)


def _gray_to_rgb(gray):
    return np.repeat(gray[:, :, None], 3, axis=2)


def _array_to_rgb(a):
    expected = "a uint8 array of shape (H, W, 3) RGB, (H, W) gray or (H, W, 4) RGBA"
    if a.dtype != np.uint8:
        hint = ""
        if a.dtype.kind == "f":
            hint = ("; for floats in 0..1 pass (a * 255).round().astype(np.uint8), for "
                    "floats in 0..255 pass a.round().astype(np.uint8)")
        raise ImageError(f"expected {expected}; got dtype {a.dtype} (shape {a.shape}){hint}")
    shape_ok = a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))
    if not shape_ok:
        hint = ""
        if a.ndim == 3 and a.shape[0] in (1, 3, 4):
            hint = "; this looks channels-first, pass a.transpose(1, 2, 0)"
        elif a.ndim == 4 and a.shape[0] == 1:
            hint = "; drop the batch axis, pass a[0]"
        raise ImageError(f"expected {expected}; got shape {a.shape}{hint}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"expected {expected} with H, W >= 1; got shape {a.shape}")
    if a.ndim == 2:
        return _gray_to_rgb(a)
    if a.shape[2] == 1:
        return _gray_to_rgb(a[:, :, 0])
    return np.array(a[:, :, :3], dtype=np.uint8, order="C")


# --------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------

def preprocess(image, resize=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD,
               interpolation="bilinear"):
    """Return the (1, 3, crop, crop) float32 network input for ``image``.

    Resize the shorter side to ``resize`` keeping the aspect ratio, take the centre
    ``crop`` x ``crop`` square (zero-padded when the image is smaller), scale to 0..1 and
    normalise per channel with ``mean`` and ``std``. ``interpolation`` is "bilinear" or
    "bicubic". ``resize`` and ``crop`` are ints in 1..MAX_SIZE (4096). ``image`` is
    anything ``load_image`` accepts.
    """
    resize = _size_arg(resize, "resize")
    crop = _size_arg(crop, "crop")
    mean = _three_floats(mean, "mean")
    std = _three_floats(std, "std")
    if not np.all(std != 0):
        raise InputError(f"std must not contain zeros; got {tuple(float(s) for s in std)}")
    if interpolation not in FILTERS:
        raise InputError(
            f"interpolation must be one of {sorted(FILTERS)}; got {interpolation!r}")

    x = _resize_center_crop(load_image(image), resize, crop, interpolation).astype(np.float32)
    x /= np.float32(255)  # ToTensor
    x -= mean  # Normalize, in float32 like torch (in place: the same operations, less memory)
    x /= std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _resize_center_crop(rgb, resize, crop, interpolation):
    """torchvision's Resize(resize) then CenterCrop(crop) of a (H, W, 3) uint8 array, as a
    (crop, crop, 3) uint8 array, computing no more of the resized image than the crop."""
    height, width = rgb.shape[:2]
    new_height, new_width = _resized_size(height, width, resize)
    top, bottom, pad_top = _crop_window(new_height, crop)
    left, right, pad_left = _crop_window(new_width, crop)
    if (new_height, new_width) == (height, width):  # torchvision skips a no-op resize too
        window = rgb[top:bottom, left:right]
    elif resize < min(height, width):
        # shrinking: the resized image is smaller than the original, PIL makes it whole
        pil_filter = FILTERS[interpolation][0]
        resized = Image.fromarray(rgb).resize((new_width, new_height), pil_filter)
        window = np.asarray(resized)[top:bottom, left:right]
    else:
        # enlarging: the resized image can be any size (1 x 10000 -> 256 x 2,560,000),
        # so only the window is computed, bit-identical to PIL's (see tinyinfer.io.resample)
        window = enlarged_window(rgb, new_height, new_width, (top, bottom), (left, right),
                                 interpolation)
    out = np.zeros((crop, crop, 3), dtype=np.uint8)
    out[pad_top:pad_top + bottom - top, pad_left:pad_left + right - left] = window
    return out


def _resized_size(height, width, size):
    """torchvision's rule: the shorter side becomes ``size``, the longer int(size*long/short)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _crop_window(size, crop):
    """torchvision's CenterCrop along one axis of length ``size``: (start, stop, pad_before).

    A side at least ``crop`` long is cut at start = round((size - crop) / 2) (Python
    rounding); a shorter one is kept whole and zero-padded, (crop - size) // 2 before
    and the rest after.
    """
    if crop <= size:
        start = int(round((size - crop) / 2.0))
        return start, start + crop, 0
    return 0, size, (crop - size) // 2


def _size_arg(value, name):
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or not 1 <= value <= MAX_SIZE):
        raise InputError(f"{name} must be an int in 1..{MAX_SIZE}; got {value!r}")
    return int(value)


def _three_floats(value, name):
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be 3 finite numbers (one per RGB channel); got {value!r}")
    return arr


# --------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------

def _data_file(name):
    return importlib.resources.files("tinyinfer").joinpath("data", name)


@functools.lru_cache(maxsize=None)
def _labels():
    labels = tuple(_data_file("imagenet_classes.txt").read_text(encoding="utf-8").splitlines())
    if len(labels) != _NUM_CLASSES:  # a broken installation, not a user error
        raise RuntimeError(f"imagenet_classes.txt has {len(labels)} lines, expected 1000")
    return labels


def imagenet_labels():
    """The 1000 ImageNet-1k class names in index order (a fresh list each call).

    Names are torchvision's, so a few differ only by case ('Cardigan' the dog, 'cardigan'
    the garment) or qualifier ('crane bird', 'crane')."""
    return list(_labels())


def bundled_photo():
    """Path of the bundled test photo, grace_hopper.jpg (public domain; data/README.md)."""
    return Path(str(_data_file("grace_hopper.jpg")))


def topk(logits, k=5):
    """Top-``k`` ImageNet labels with softmax probabilities.

    ``logits`` of shape (1000,) gives a list of ``(label, probability)``, best first;
    shape (N, 1000) gives a list of N such lists. The softmax is computed in float64 with
    the maximum subtracted; equal logits are ordered by class index.
    ``top_classes`` gives the same with each class's index.
    """
    def without_index(row):
        return [(label, p) for _, label, p in row]
    top = top_classes(logits, k)
    return without_index(top) if np.ndim(logits) == 1 else [without_index(r) for r in top]


def top_classes(logits, k=5):
    """As ``topk``, with ``(index, label, probability)`` tuples (index: the class index)."""
    x = np.asarray(logits)
    if x.dtype.kind not in "iuf" or x.ndim not in (1, 2) or x.shape[-1] != _NUM_CLASSES:
        raise InputError(
            f"logits must be a numeric array of shape (1000,) or (N, 1000); got "
            f"dtype {x.dtype}, shape {x.shape}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= _NUM_CLASSES:
        raise InputError(f"k must be an int in 1..{_NUM_CLASSES}; got {k!r}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError("logits contain NaN or infinity")

    labels = _labels()
    rows = []
    for row in np.atleast_2d(x):
        e = np.exp(row - row.max())
        probs = e / e.sum()
        order = np.argsort(-row, kind="stable")[:int(k)]
        rows.append([(int(i), labels[i], float(probs[i])) for i in order])
    return rows[0] if x.ndim == 1 else rows
