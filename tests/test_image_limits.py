"""tinyinfer.io.image on hostile or extreme input: thin images, huge pixel counts, files that
are not regular files, empty images and out-of-range preprocessing arguments.

Every case must end quickly, in bounded memory, in its result or in one ImageError /
InputError that says what was wrong; none may block, crash or print a raw warning.
"""
import os
import struct
import subprocess
import sys
import textwrap
import threading
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from tinyinfer.errors import ImageError, InputError
from tinyinfer.io.image import IMAGENET_MEAN, IMAGENET_STD, load_image, preprocess


def png_bytes(width, height, pixels=b""):
    """A PNG file (8-bit RGB) whose header claims width x height and whose image data is
    ``pixels`` compressed: a few dozen bytes can claim any size."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(pixels)) + chunk(b"IEND", b""))


def normalised(rgb):
    """What preprocess gives for a pixel of colour ``rgb``: ToTensor then Normalize."""
    x = np.asarray(rgb, np.float32) / np.float32(255)
    return (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)


# ------------------------------------------------------------------------ thin images ---

COLOUR = (10, 200, 30)


@pytest.mark.parametrize("height, width, resize", [
    (1, 100_000, 256),     # enlarged to 256 x 25,600,000 by torchvision's rule
    (100_000, 1, 256),
    (3, 50_001, 256),
    (1, 600_000, 4096),    # 4096 x 2,457,600,000: more than a C int of columns
])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_thin_image_centre_crop(rng, height, width, resize, interpolation):
    # noise everywhere except a block of one colour around the centre, wide enough to hold
    # every source pixel the 224 x 224 centre of the enlarged image is made from
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    cy, cx = height // 2, width // 2
    rgb[max(cy - 20, 0):cy + 20, max(cx - 20, 0):cx + 20] = COLOUR
    x = preprocess(rgb, resize=resize, interpolation=interpolation)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    expected = normalised(COLOUR)[None, :, None, None]
    assert np.array_equal(x, np.broadcast_to(expected, x.shape))


_THIN_FILES_SCRIPT = textwrap.dedent("""
    import resource, sys, time
    from tinyinfer.io.image import preprocess

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

    preprocess(sys.argv[1])  # first call: lazy imports, allocator warm-up
    before, start = peak_mb(), time.perf_counter()
    for path in sys.argv[1:]:
        for interpolation in ("bilinear", "bicubic"):
            assert preprocess(path, interpolation=interpolation).shape == (1, 3, 224, 224)
    print(time.perf_counter() - start, peak_mb() - before)
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_thin_image_files_are_fast_and_small(tmp_path):
    # The files: a 109-byte 1 x 10000 PNG took 6.3 GB and 20 s. Measured in a
    # fresh process, whose peak resident size shows every allocation (PIL's included).
    paths = []
    for width, height in [(10_000, 1), (1, 10_000), (100_000, 1), (1, 100_000)]:
        path = tmp_path / f"thin_{width}x{height}.png"
        row = b"\x00" + bytes(range(256)) * (3 * width // 256) + bytes(3 * width % 256)
        path.write_bytes(png_bytes(width, height, row * height if height == 1 else
                                   (b"\x00\x7f\x80\x81") * height))
        paths.append(str(path))
    done = subprocess.run([sys.executable, "-c", _THIN_FILES_SCRIPT, *paths],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    seconds, grown_mb = map(float, done.stdout.split())
    assert seconds < 5.0, f"8 thin images took {seconds:.1f} s"
    assert grown_mb < 50, f"peak resident memory grew by {grown_mb:.0f} MB"


# ---------------------------------------------------------------- decompression bombs ---

def test_over_the_pixel_limit_says_too_large(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(20_000, 20_000))  # 400 MP claimed by a 67-byte file
    limit = 2 * Image.MAX_IMAGE_PIXELS           # PIL's hard limit (179 MP by default)
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message and "too large (400 MP" in message
    assert f"limit {limit / 1e6:.3g} MP" in message
    assert "PIL.Image.MAX_IMAGE_PIXELS = 400000000" in message and "corrupt" not in message


def test_between_the_warning_and_the_limit_no_raw_warning(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(10_000, 10_000))  # 100 MP: PIL warns (89.5 MP) but reads
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError) as info:  # the header has no pixel data behind it
            load_image(path)
    assert "truncated" in str(info.value)
    assert [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []


def test_pixel_limit_follows_pil_setting(tmp_path, monkeypatch, rng):
    path = tmp_path / "photo.png"
    rgb = rng.integers(0, 256, size=(100, 300, 3), dtype=np.uint8)  # 30,000 pixels
    Image.fromarray(rgb).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)    # refused over 20,000
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert "too large (0.03 MP, limit 0.02 MP)" in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 30,000 is within 2 x 15,000: read, no warning
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 15_000)
        np.testing.assert_array_equal(load_image(path), rgb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # no limit at all
    np.testing.assert_array_equal(load_image(path), rgb)


def test_file_larger_than_any_image_within_the_limit(tmp_path, monkeypatch, rng):
    path = tmp_path / "padded.png"
    Image.fromarray(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)).save(path)
    with open(path, "ab") as f:
        f.write(bytes(40_000))  # PIL ignores what follows IEND: a valid image file
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 2000 px x 16 bytes = 32,000 bytes
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message and f"{path.stat().st_size:,} bytes" in message
    assert "limit 32,000 bytes" in message and "MAX_IMAGE_PIXELS" in message
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 64,000 bytes allowed
    assert load_image(path).shape == (8, 8, 3)


# ---------------------------------------------------------------- not regular files ---

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    outcome = {}

    def read():
        try:
            load_image(fifo)
        except Exception as e:  # noqa: BLE001 - recorded and checked below
            outcome["error"] = e

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():  # blocked in open() waiting for a writer: release it, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
        pytest.fail("load_image blocked on a FIFO")
    error = outcome.get("error")
    assert isinstance(error, ImageError), repr(error)
    assert str(fifo) in str(error) and "not a regular file" in str(error)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this platform")
def test_device_is_refused():
    with pytest.raises(ImageError) as info:
        preprocess("/dev/zero")
    assert "'/dev/zero'" in str(info.value) and "not a regular file" in str(info.value)


# ------------------------------------------------------------ empty images, arguments ---

@pytest.mark.parametrize("size", [(0, 5), (5, 0), (0, 0)])
def test_empty_pil_image(size):
    image = Image.new("RGB", size)
    for call in (load_image, preprocess):
        with pytest.raises(ImageError) as info:
            call(image)
        assert f"{size[0]} x {size[1]}" in str(info.value) and "no pixels" in str(info.value)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(crop=10**6), "crop must be an int in 1..4096; got 1000000"),
    (dict(crop=4097), "crop must be an int in 1..4096; got 4097"),
    (dict(resize=10**9), "resize must be an int in 1..4096; got 1000000000"),
    (dict(resize=2**70), "resize must be an int in 1..4096"),
])
def test_huge_sizes_are_refused(kwargs, needle):
    with pytest.raises(InputError) as info:
        preprocess(np.zeros((8, 8, 3), np.uint8), **kwargs)
    assert needle in str(info.value)

