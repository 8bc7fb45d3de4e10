"""tinyinfer.io.image: loading, preprocessing parity with torchvision, labels and top-k.

torchvision (imported through conftest's workaround) is the reference for preprocessing
and for the label list; everything else is checked against expectations written here.
"""
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import skimage
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision import transforms as T
from torchvision.models import MobileNet_V2_Weights

from tinyinfer.errors import ImageError, InputError
from tinyinfer.io.image import (IMAGENET_MEAN, IMAGENET_STD, bundled_photo, imagenet_labels,
                             load_image, preprocess, topk)
from tinyinfer.io.resample import FILTERS, enlarged_window

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
PHOTOS = [SKIMAGE_DATA / name for name in
          ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")] + [bundled_photo()]

PARITY_ATOL = 1e-6  # max |tinyinfer - torchvision| allowed on the normalised float32 input


def torchvision_preprocess(pil_rgb, resize, crop, interpolation, mean=IMAGENET_MEAN,
                           std=IMAGENET_STD):
    mode = {"bilinear": T.InterpolationMode.BILINEAR,
            "bicubic": T.InterpolationMode.BICUBIC}[interpolation]
    transform = T.Compose([T.Resize(resize, interpolation=mode), T.CenterCrop(crop),
                           T.ToTensor(), T.Normalize(mean, std)])
    return transform(pil_rgb).unsqueeze(0).numpy()


def assert_parity(image, pil_rgb, resize, crop, interpolation, **norm):
    ours = preprocess(image, resize=resize, crop=crop, interpolation=interpolation, **norm)
    ref = torchvision_preprocess(pil_rgb, resize, crop, interpolation, **norm)
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (1, 3, crop, crop)
    assert ours.flags.c_contiguous
    assert np.abs(ours - ref).max() <= PARITY_ATOL


# ---------------------------------------------------------------- preprocess parity ---

@pytest.mark.parametrize("resize, crop, interpolation", [
    (256, 224, "bilinear"),
    (232, 224, "bilinear"),
    (256, 224, "bicubic"),
    (236, 193, "bicubic"),   # odd crop
    (211, 193, "bilinear"),  # odd resize and crop
    (200, 224, "bilinear"),  # shorter side below the crop: padded on one axis only
    (97, 224, "bicubic"),    # both sides below the crop: padded on both axes
])
@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_preprocess_matches_torchvision_on_photos(path, resize, crop, interpolation):
    with Image.open(path) as im:
        pil_rgb = im.convert("RGB")
    assert_parity(path, pil_rgb, resize, crop, interpolation)


@pytest.mark.parametrize("height, width, resize, crop", [
    (257, 259, 257, 224),  # no resize (torchvision skips it); offsets 16.5 -> 16, 17.5 -> 18
    (259, 300, 259, 224),  # 17.5 -> 18 on the short axis, 38 -> ... on the long one
    (40, 31, 31, 64),      # tiny image, odd padding split (33 -> 16 before, 17 after)
    (1, 1, 5, 3),          # a single pixel
    (333, 101, 150, 149),  # portrait, odd everything
    (1, 60, 256, 224),     # thin: enlarged to 256 x 15360, only the crop is computed
    (3, 1500, 48, 40),     # thin, the crop far from the origin (column ~12000 of 24000)
    (1500, 2, 40, 32),     # tall and thin
    (7, 9, 600, 600),      # enlarged ~70x on both axes
])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_preprocess_matches_torchvision_on_arrays(rng, height, width, resize, crop,
                                                  interpolation):
    array = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    assert_parity(array, Image.fromarray(array), resize, crop, interpolation)


def side_lengths():
    return st.one_of(st.integers(1, 4), st.integers(1, 400), st.integers(400, 1600))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(height=side_lengths(), width=side_lengths(),
       resize=st.one_of(st.sampled_from([256, 232, 236]), st.integers(1, 640)),
       crop=st.one_of(st.sampled_from([224, 193]), st.integers(1, 480)),
       interpolation=st.sampled_from(["bilinear", "bicubic"]), hard_edges=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_preprocess_matches_torchvision_on_random_sizes(height, width, resize, crop,
                                                        interpolation, hard_edges, seed):
    # any aspect ratio, shrunk or enlarged, thin ones included; torchvision resizes the
    # whole image, so keep that affordable (at most 3 MP)
    assume(resize * resize * max(height, width) / min(height, width) <= 3_000_000)
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    if hard_edges:  # black/white steps: bicubic overshoots and PIL clips
        array = np.where(array > 127, 255, 0).astype(np.uint8)
    assert_parity(array, Image.fromarray(array), resize, crop, interpolation)


# enlarged_window alone: a window of PIL's own enlargement, bit for bit
@settings(max_examples=150, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 40),
       grow_y=st.integers(1, 400), grow_x=st.integers(1, 400),
       window=st.tuples(*[st.floats(0, 1)] * 4),
       interpolation=st.sampled_from(["bilinear", "bicubic"]), seed=st.integers(0, 2**32 - 1))
def test_enlarged_window_equals_pil_resize(height, width, grow_y, grow_x, window,
                                           interpolation, seed):
    out_height, out_width = height + grow_y, width + grow_x
    r0, r1 = sorted(int(f * out_height) for f in window[:2])
    c0, c1 = sorted(int(f * out_width) for f in window[2:])
    rows, cols = (r0, max(r1, r0 + 1)), (c0, max(c1, c0 + 1))
    assume(rows[1] <= out_height and cols[1] <= out_width)
    rgb = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    pil = Image.fromarray(rgb).resize((out_width, out_height), FILTERS[interpolation][0])
    expected = np.asarray(pil)[rows[0]:rows[1], cols[0]:cols[1]]
    np.testing.assert_array_equal(
        enlarged_window(rgb, out_height, out_width, rows, cols, interpolation), expected)


def test_enlarged_window_refuses_shrinking():
    with pytest.raises(ValueError):
        enlarged_window(np.zeros((10, 10, 3), np.uint8), 20, 10, (0, 1), (0, 1), "bilinear")


def test_preprocess_custom_mean_std_and_pil_input():
    with Image.open(bundled_photo()) as im:
        pil_rgb = im.convert("RGB")
    norm = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.125))
    assert_parity(pil_rgb, pil_rgb, 256, 224, "bicubic", **norm)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(interpolation="nearest"), "interpolation must be one of ['bicubic', 'bilinear']"),
    (dict(resize=0), "resize must be an int in 1..4096; got 0"),
    (dict(resize=256.0), "resize must be an int in 1..4096; got 256.0"),
    (dict(crop=True), "crop must be an int in 1..4096; got True"),
    (dict(crop=-3), "crop must be an int in 1..4096; got -3"),
    (dict(mean=(0.5, 0.5)), "mean must be 3 finite numbers"),
    (dict(std="abc"), "std must be 3 finite numbers"),
    (dict(std=(0.2, 0.0, 0.2)), "std must not contain zeros"),
])
def test_preprocess_rejects_bad_arguments(kwargs, needle):
    with pytest.raises(InputError) as info:
        preprocess(np.zeros((8, 8, 3), np.uint8), **kwargs)
    assert needle in str(info.value)


# ------------------------------------------------------------- load_image: PIL modes ---

def saved(tmp_path, im, name, **save_args):
    path = tmp_path / name
    im.save(path, **save_args)
    return path


def gray_rgb(g):
    return np.repeat(np.asarray(g, np.uint8)[:, :, None], 3, axis=2)


GRAY = np.arange(0, 240, 4, dtype=np.uint8).reshape(6, 10)


def test_rgb_file_and_array_roundtrip(tmp_path, rng):
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    for name in ("rgb.png", "rgb.tif"):
        np.testing.assert_array_equal(load_image(saved(tmp_path, Image.fromarray(rgb), name)), rgb)
    out = load_image(str(tmp_path / "rgb.png"))  # str paths as well as Path
    np.testing.assert_array_equal(out, rgb)
    out = load_image(rgb)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out is not rgb
    np.testing.assert_array_equal(out, rgb)


def test_jpeg_equals_pil_decode():
    with Image.open(bundled_photo()) as im:
        expected = np.asarray(im.convert("RGB"))
    out = load_image(bundled_photo())
    assert out.shape == (600, 512, 3)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", ["gray.png", "gray.tif", "gray.jpg"])
def test_mode_L(tmp_path, name):
    path = saved(tmp_path, Image.fromarray(GRAY, "L"), name, **({"quality": 100} if
                                                                  name.endswith("jpg") else {}))
    with Image.open(path) as im:
        assert im.mode == "L"
        decoded = np.asarray(im)  # JPEG is lossy: compare with what was stored
    np.testing.assert_array_equal(load_image(path), gray_rgb(decoded))
    if not name.endswith("jpg"):
        np.testing.assert_array_equal(decoded, GRAY)


def test_mode_1(tmp_path):
    bits = (GRAY % 8 == 0)
    path = saved(tmp_path, Image.fromarray(bits), "bits.png")
    assert Image.open(path).mode == "1"
    np.testing.assert_array_equal(load_image(path), gray_rgb(bits * 255))


def palette_image(transparency=None):
    """A 'P' image whose index i maps to colour ((3i) % 256, 255 - i, (7i) % 256)."""
    colour = [((3 * i) % 256, 255 - i, (7 * i) % 256) for i in range(256)]
    im = Image.new("P", (10, 6))
    im.putpalette([c for rgb in colour for c in rgb])
    im.putdata(GRAY.ravel().tolist())
    if transparency is not None:
        im.info["transparency"] = transparency
    return im, np.array([[colour[i] for i in row] for row in GRAY], dtype=np.uint8)


@pytest.mark.parametrize("name, transparency", [
    ("pal.png", None),
    ("pal.gif", None),
    ("pal_t.png", 4),                                   # one transparent index
    ("pal_t.gif", 4),
    ("pal_tb.png", bytes(range(0, 256, 1))),            # per-entry alpha bytes
])
def test_mode_P(tmp_path, name, transparency):
    im, expected = palette_image(transparency)
    path = saved(tmp_path, im, name)
    with Image.open(path) as reopened:
        assert reopened.mode == "P"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pil_rgb = np.asarray(reopened.convert("RGB"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our conversion is silent about the dropped alpha
        out = load_image(path)
    np.testing.assert_array_equal(out, pil_rgb)
    np.testing.assert_array_equal(out, expected)


def test_mode_RGBA_and_LA_drop_alpha(tmp_path, rng):
    rgba = rng.integers(0, 256, size=(5, 7, 4), dtype=np.uint8)
    rgba[0, 0, 3] = 0  # fully transparent pixel keeps its colour, as in convert('RGB')
    path = saved(tmp_path, Image.fromarray(rgba, "RGBA"), "rgba.png")
    out = load_image(path)
    np.testing.assert_array_equal(out, rgba[:, :, :3])
    np.testing.assert_array_equal(out, np.asarray(Image.open(path).convert("RGB")))

    la = np.stack([GRAY, 255 - GRAY], axis=2)
    path = saved(tmp_path, Image.fromarray(la, "LA"), "la.png")
    assert Image.open(path).mode == "LA"
    np.testing.assert_array_equal(load_image(path), gray_rgb(GRAY))


@pytest.mark.parametrize("name", ["cmyk.tif", "cmyk.jpg"])
def test_mode_CMYK(tmp_path, rng, name):
    cmyk = rng.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)
    path = saved(tmp_path, Image.fromarray(cmyk, "CMYK"), name, **({"quality": 100} if
                                                                    name.endswith("jpg") else {}))
    with Image.open(path) as im:
        assert im.mode == "CMYK"
        stored = np.asarray(im).astype(np.float64)
        pil_rgb = np.asarray(im.convert("RGB"))
    out = load_image(path)
    np.testing.assert_array_equal(out, pil_rgb)
    # independent check: R = (255 - C) * (255 - K) / 255, within PIL's integer rounding
    expected = (255 - stored[:, :, :3]) * (255 - stored[:, :, 3:]) / 255
    assert np.abs(out - expected).max() <= 1


U16 = np.array([[0, 1, 128, 129, 257, 32767],
                [32768, 32896, 65279, 65406, 65535, 1000]], dtype=np.uint16)


def expected_8bit(values):
    return np.array([[round(int(v) / 65535 * 255) for v in row] for row in values], np.uint8)


def test_16bit_expectation_is_not_trivial():
    # full-range scaling differs from both v >> 8 and clipping on these values
    assert not np.array_equal(expected_8bit(U16), (U16 >> 8).astype(np.uint8))
    assert expected_8bit(U16)[1, 4] == 255 and expected_8bit(U16)[0, 2] == 0


@pytest.mark.parametrize("mode, name", [("I;16", "u16.png"), ("I;16", "u16.tif"),
                                        ("I;16B", "u16b.tif")])
def test_16bit_files_scale_full_range(tmp_path, mode, name):
    dtype = "<u2" if mode == "I;16" else ">u2"
    im = Image.frombytes(mode, U16.shape[::-1], U16.astype(dtype).tobytes())
    path = saved(tmp_path, im, name)
    assert Image.open(path).mode == mode
    np.testing.assert_array_equal(load_image(path), gray_rgb(expected_8bit(U16)))


def test_32bit_I_in_16bit_range_scales_like_16bit(tmp_path):
    path = saved(tmp_path, Image.fromarray(U16.astype(np.int32)), "i32.tif")
    assert Image.open(path).mode == "I"
    np.testing.assert_array_equal(load_image(path), gray_rgb(expected_8bit(U16)))


@pytest.mark.parametrize("values, needle", [(70000, "1..70000"), (-5, "-5..65535")])
def test_32bit_I_out_of_range_is_refused(tmp_path, values, needle):
    data = U16.astype(np.int32)
    data[0, 0] = values
    path = saved(tmp_path, Image.fromarray(data), "i32.tif")
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(path) in str(info.value) and needle in str(info.value)
    assert "0..65535" in str(info.value)


def test_float_F_image_is_refused(tmp_path):
    path = saved(tmp_path, Image.fromarray(GRAY.astype(np.float32)), "f.tif")
    for image in (path, Image.open(path)):
        with pytest.raises(ImageError) as info:
            load_image(image)
        assert "'F'" in str(info.value) and "uint8" in str(info.value)


def test_exif_orientation_is_not_applied_like_torchvision(tmp_path, rng):
    rgb = rng.integers(0, 256, size=(4, 9, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = saved(tmp_path, Image.fromarray(rgb), "exif.png", exif=exif)
    assert Image.open(path).getexif()[0x0112] == 6
    np.testing.assert_array_equal(load_image(path), rgb)  # stored pixel order, unrotated


def test_arrays_gray_and_rgba(rng):
    np.testing.assert_array_equal(load_image(GRAY), gray_rgb(GRAY))
    np.testing.assert_array_equal(load_image(GRAY[:, :, None]), gray_rgb(GRAY))
    rgba = rng.integers(0, 256, size=(5, 7, 4), dtype=np.uint8)
    out = load_image(rgba)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgba[:, :, :3])
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(rgba).convert("RGB")))
    np.testing.assert_array_equal(load_image(rgba[:, ::-1, :3]), rgba[:, ::-1, :3])


# ----------------------------------------------------------------------- error cases ---

def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope" / "cat.jpg"
    with pytest.raises(ImageError) as info:
        load_image(missing)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    with pytest.raises(ImageError) as info:
        preprocess(str(tmp_path))
    assert str(tmp_path) in str(info.value) and "directory" in str(info.value)


def corrupt_files(tmp_path):
    jpeg = bundled_photo().read_bytes()
    png = (SKIMAGE_DATA / "chelsea.png").read_bytes()
    broken_png = bytearray(png)
    broken_png[len(png) // 2: len(png) // 2 + 64] = bytes(64)
    return {
        "empty.jpg": b"",
        "text.png": b"this is not an image\n" * 10,
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 3],
        "header_only.png": png[:40],
        "broken.png": bytes(broken_png),
    }


@pytest.mark.parametrize("name", ["empty.jpg", "text.png", "truncated.jpg", "truncated.png",
                                  "header_only.png", "broken.png"])
def test_corrupt_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(corrupt_files(tmp_path)[name])
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message and "cannot read image file" in message
    assert info.value.__cause__ is not None  # raised `from` PIL's error


def test_lazily_opened_truncated_pil_image(tmp_path):
    path = tmp_path / "truncated.jpg"
    path.write_bytes(bundled_photo().read_bytes()[:20000])
    with pytest.raises(ImageError) as info:
        load_image(Image.open(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("array, needles", [
    (np.zeros((4, 5, 3), np.float32), ["dtype float32", "(H, W, 3)", "astype(np.uint8)"]),
    (np.zeros((4, 5, 3), np.uint16), ["dtype uint16", "uint8"]),
    (np.zeros((4, 5, 3), bool), ["dtype bool"]),
    (np.zeros((4, 5, 2), np.uint8), ["shape (4, 5, 2)", "(H, W, 3)"]),
    (np.zeros((3, 8, 9), np.uint8), ["shape (3, 8, 9)", "channels-first", "transpose(1, 2, 0)"]),
    (np.zeros((1, 8, 9, 3), np.uint8), ["shape (1, 8, 9, 3)", "a[0]"]),
    (np.zeros((7,), np.uint8), ["shape (7,)"]),
    (np.zeros((0, 5, 3), np.uint8), ["shape (0, 5, 3)", "H, W >= 1"]),
])
def test_bad_arrays(array, needles):
    with pytest.raises(ImageError) as info:
        load_image(array)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize("obj", [None, 3, [[0, 0, 0]], b"cat.jpg"])
def test_bad_types(obj):
    with pytest.raises(ImageError) as info:
        load_image(obj)
    assert "PIL.Image.Image" in str(info.value) and type(obj).__name__ in str(info.value)


# ------------------------------------------------------------------ labels and top-k ---

def test_labels_equal_torchvision():
    labels = imagenet_labels()
    assert labels == list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])
    assert len(labels) == 1000 and labels[0] == "tench" and labels[999] == "toilet tissue"
    labels.append("mutated")  # a fresh list: the cache is not affected
    assert len(imagenet_labels()) == 1000


def test_bundled_photo():
    path = bundled_photo()
    assert isinstance(path, Path) and path.name == "grace_hopper.jpg" and path.is_file()


def softmax_expected(logits, indices):
    m = max(logits)
    total = math.fsum(math.exp(v - m) for v in logits)
    return [math.exp(logits[i] - m) / total for i in indices]


def test_topk_single_vector():
    logits = [0.0] * 1000
    logits[1], logits[207], logits[954], logits[3] = 9.0, 7.5, 7.5, 6.0  # 207/954 tie
    logits[999] = -3.0
    result = topk(np.array(logits, np.float32), k=5)
    labels = [label for label, _ in result]
    # the tie between 207 and 954 goes to the lower index; then 3, then 0 (first of the zeros)
    assert labels == ["goldfish", "golden retriever", "banana", "tiger shark", "tench"]
    probs = softmax_expected(logits, [1, 207, 954, 3, 0])
    for (_, p), q in zip(result, probs):
        assert isinstance(p, float) and p == pytest.approx(q, rel=1e-12)


def test_topk_batch_is_stable_for_huge_logits():
    a = np.zeros((2, 1000))
    a[0, 409] = 1000.0                    # would overflow a naive exp
    a[1, :] = -1e4
    a[1, 817], a[1, 511] = -1e4 + 2.0, -1e4 + 1.0
    result = topk(a, k=2)
    assert len(result) == 2
    assert result[0][0] == ("analog clock", 1.0) and result[0][1][1] == 0.0
    assert [label for label, _ in result[1]] == ["sports car", "convertible"]
    expected = softmax_expected(list(a[1]), [817, 511])
    assert [p for _, p in result[1]] == pytest.approx(expected, rel=1e-12)
    assert topk(np.ones(1000, np.int64), k=1000)[-1][0] == "toilet tissue"


@pytest.mark.parametrize("logits, k, needle", [
    (np.zeros(1000), 0, "k must be an int in 1..1000"),
    (np.zeros(1000), 1001, "k must be an int in 1..1000"),
    (np.zeros(1000), 2.0, "k must be an int in 1..1000"),
    (np.zeros(1000), True, "k must be an int in 1..1000"),
    (np.zeros(10), 5, "shape (10,)"),
    (np.zeros((2, 3, 1000)), 5, "shape (2, 3, 1000)"),
    (np.array(["a"] * 1000), 5, "dtype <U1"),
    (np.full(1000, np.nan), 5, "NaN"),
])
def test_topk_rejects_bad_input(logits, k, needle):
    with pytest.raises(InputError) as info:
        topk(logits, k=k)
    assert needle in str(info.value)
