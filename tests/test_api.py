"""The public API and CLI, and every bad input a user can give them: each must end in a
TinyInferError whose message says what was wrong and what to do."""
import numpy as np
import pytest

import tinyinfer
from tinyinfer.cli import main as cli
from tinyinfer.errors import (ImageError, InputError, ModelNotFoundError, WeightsMismatchError,
                              TinyInferError)


@pytest.fixture(scope="module")
def small_v2():
    return tinyinfer.load("mobilenet_v2", weights=None, width_mult=0.35)


def test_list_models_names_references():
    names = tinyinfer.list_models()
    assert {"mobilenet_v2", "mobilenetv1_100", "mobilenetv2_100"} <= set(names)


def test_unknown_model_suggests_closest():
    with pytest.raises(ModelNotFoundError, match="Did you mean 'mobilenet_v2'"):
        tinyinfer.load("mobilenet_v2x", weights=None)
    with pytest.raises(ModelNotFoundError, match="tinyinfer list"):
        tinyinfer.load("resnet9000", weights=None)


def test_logits_shape_any_batch_and_resolution(small_v2):
    for shape in [(1, 3, 224, 224), (2, 3, 97, 131)]:
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        y = small_v2(x)
        assert y.shape == (shape[0], 1000) and y.dtype == np.float32
        assert np.isfinite(y).all()


@pytest.mark.parametrize("x,match", [
    (np.zeros((224, 224, 3), np.float32), r"shape \(N, 3, H, W\).*batch axis|NHWC"),
    (np.zeros((1, 224, 224, 3), np.float32), "NHWC"),
    (np.zeros((1, 3, 64, 64), np.uint8), "float32"),
    (np.zeros((0, 3, 64, 64), np.float32), "empty batch"),
    ([[1.0]], "NumPy array"),
])
def test_bad_model_input(small_v2, x, match):
    with pytest.raises(InputError, match=match):
        small_v2(x)


def test_float64_input_is_accepted(small_v2):
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64))
    np.testing.assert_allclose(small_v2(x), small_v2(x.astype(np.float32)), rtol=1e-6, atol=1e-6)


def test_too_small_input_is_a_clear_error(small_v2):
    with pytest.raises(InputError, match="larger image"):
        small_v2(np.zeros((1, 3, 0, 5), np.float32))


def test_wrong_checkpoint_lists_missing_unexpected_and_mismatched():
    v1 = tinyinfer.load("mobilenetv1_100", weights=None)
    state = {f"{n.name}.{p}": a for n in v1.graph for p, a in n.params.items()}
    with pytest.raises(WeightsMismatchError) as e:
        tinyinfer.load("mobilenet_v2", weights=state)
    msg = str(e.value)
    assert "missing keys" in msg and "unexpected keys" in msg
    assert "blocks.1.0.conv_pwl.weight" in msg       # only MobileNetV2 has it


def test_wrong_width_reports_shape_mismatches():
    half = tinyinfer.load("mobilenet_v2", weights=None, width_mult=0.5)
    state = {f"{n.name}.{p}": a for n in half.graph for p, a in n.params.items()}
    with pytest.raises(WeightsMismatchError, match=r"(?s)shape mismatches.*conv_stem.weight: "
                                                   r"checkpoint \(16, 3, 3, 3\), network \(32, 3, 3, 3\)"):
        tinyinfer.load("mobilenet_v2", weights=state, layout="timm")
    # and the partial checkpoint: one key removed
    del state["conv_stem.weight"]
    with pytest.raises(WeightsMismatchError, match=r"missing keys \(1\):\n    conv_stem.weight"):
        tinyinfer.load("mobilenet_v2", weights=state, width_mult=0.5, layout="timm")


def test_bad_weights_argument():
    with pytest.raises(InputError, match="weights must be"):
        tinyinfer.load("mobilenet_v2", weights=42)
    with pytest.raises(InputError, match="bad architecture option"):
        tinyinfer.load("mobilenet_v2", weights=None, depth=3)


def test_missing_image_file_is_clear(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        tinyinfer.run("mobilenet_v2", tmp_path / "nope.jpg", weights=None)


def test_summary_is_static_and_reports_totals(small_v2):
    rep = small_v2.summary(resolution=160)
    assert isinstance(rep.macs, int) and isinstance(rep.params, int)
    assert rep.rows[0].name == "conv_stem" and rep.rows[-1].name == "classifier"
    assert "<table>" in rep._repr_html_()
    assert rep.to_markdown().startswith("| layer |")


def test_cli_list_and_summary(capsys):
    assert cli(["list"]) == 0
    assert "mobilenet_v2" in capsys.readouterr().out
    assert cli(["summary", "mobilenet_v2", "--resolution", "160", "--width", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "TOTAL" in out and "1x1000" in out and "x80x80" in out


def test_cli_errors_are_messages_not_tracebacks(capsys, tmp_path):
    assert cli(["summary", "mobilenet_v9"]) == 2
    assert "unknown model 'mobilenet_v9'" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg")
    assert cli(["run", "mobilenet_v2", str(bad), "--weights", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinyinfer: error:") and "bad.jpg" in err


def test_every_error_is_a_tinyinfer_error():
    for cls in (ImageError, InputError, ModelNotFoundError, WeightsMismatchError):
        assert issubclass(cls, TinyInferError)
