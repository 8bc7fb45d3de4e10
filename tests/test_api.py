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


def test_a_shape_that_ran_is_not_inferred_again(small_v2, monkeypatch):
    """Shape inference costs ~6% of a MobileNetV3-Small call; a shape that ran (with or
    without fusion, i.e. also after Model.profile) skips it."""
    import tinyinfer.model as model_module
    calls = []
    real = model_module.infer_shapes
    monkeypatch.setattr(model_module, "infer_shapes", lambda *a: calls.append(a) or real(*a))
    x = np.zeros((1, 3, 61, 67), np.float32)
    small_v2(x)
    small_v2(x)
    small_v2(x[:, :, :59])
    assert len(calls) == 2
    small_v2.profile(np.zeros((1, 3, 53, 53), np.float32))
    small_v2(np.zeros((1, 3, 53, 53), np.float32))
    assert len(calls) == 3


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
    with pytest.raises(InputError, match=r"empty output.*nearest input sizes \(H x W\) that work are 1x5:"):
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


# ---- architecture options: names, types, sizes (issue 8 item 6, issue 12 items 11-13) -----
def test_unknown_option_is_refused_naming_the_models_options():
    with pytest.raises(InputError, match=r"mobilenet_v2: bad architecture option depth; "
                                         r"the options of this model: width_mult$"):
        tinyinfer.load("mobilenet_v2", weights=None, depth=3)
    with pytest.raises(InputError, match="options of this model: none"):
        tinyinfer.summary("mobilenet_v3_large", width_mult=0.5)


def test_a_type_error_inside_a_builder_is_a_bug_and_surfaces_as_one(monkeypatch):
    from tinyinfer.models.registry import MODELS, ModelSpec

    def broken_builder(width_mult=1.0):
        return None + width_mult            # a bug in the model file, not the caller's fault
    monkeypatch.setitem(MODELS, "broken_net", ModelSpec(
        "broken_net", broken_builder, "", "", defaults={"width_mult": 1.0}))
    with pytest.raises(TypeError, match="unsupported operand"):
        tinyinfer.load("broken_net", weights=None, width_mult=0.5)


@pytest.mark.parametrize("name,options,match", [
    ("efficientnet_lite0", {"bn_eps": "x"}, "bn_eps must be a finite number"),
    ("mobilenet_v2", {"width_mult": float("inf")}, "width_mult must be a finite number"),
    ("mobilenet_v2", {"width_mult": True}, "width_mult must be a finite number"),
    ("googlenet", {"five_by_five": 2.5}, "five_by_five must be an integer"),
    ("shufflenet_v2_x1_0", {"width": 0.5}, "width must be str like its registered value 'x1_0'"),
    ("efficientnet_b0", {"depth_mult": 1e6}, r"depth_mult=1000000.0 is too large"),
    ("mobilevit_xxs", {"attention": "performer", "features": 5000},
     r"features=5000 is too large \(at most 4096 for this model"),
])
def test_option_values_must_have_the_registered_type_and_a_sane_size(name, options, match):
    with pytest.raises(InputError, match=match):
        tinyinfer.load(name, weights=None, **options)


def test_a_model_may_allow_larger_option_values():
    """A count of FAVOR+ random features is not a multiplier: 256 is an ordinary value."""
    graph = tinyinfer.build("mobilevit_xxs", attention="performer", features=256).graph
    assert {n.attrs["projection"].shape[0] for n in graph if n.kind == "favor_attention"} \
        == {256}


def test_absurd_width_is_refused_before_allocating():
    import time
    import tracemalloc
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"mobilenet_v2\(width_mult=100\) has 21,388,052,200 "
                                         r"parameters .*MAX_PARAMS"):
        tinyinfer.load("mobilenet_v2", weights=None, width_mult=100)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6 and time.perf_counter() - t0 < 30


def test_summary_of_a_huge_width_builds_no_weights():
    import time
    import tracemalloc
    tracemalloc.start()
    t0 = time.perf_counter()
    rep = tinyinfer.summary("mobilenet_v2", width_mult=100)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rep.params > 2e10      # 86 GB of float32 weights, had they been built
    assert peak < 100e6 and time.perf_counter() - t0 < 60


@pytest.mark.parametrize("name,options", [
    ("mobilenet_v2", {"width_mult": 0.5}),      # BN folding, fused residuals
    ("mixnet_s", {}),                           # BN folded through MixConv's concat
    ("efficientnet_b0", {}),                    # squeeze-excite
])
def test_summary_without_weights_equals_the_loaded_models(name, options):
    loaded = tinyinfer.load(name, weights=None, **options).summary(resolution=128)
    built = tinyinfer.summary(name, resolution=128, **options)
    assert built.table() == loaded.table()


def test_a_model_without_weights_counts_but_does_not_run():
    m = tinyinfer.build("mobilenet_v2", width_mult=0.35)
    assert m.summary(resolution=64).macs > 0
    with pytest.raises(InputError, match="built without weights.*tinyinfer.load"):
        m(np.zeros((1, 3, 64, 64), np.float32))


@pytest.mark.parametrize("kwargs,match", [
    ({"resolution": 0}, "resolution must be a positive integer, got 0"),
    ({"resolution": -32}, "resolution must be a positive integer"),
    ({"resolution": 2.5}, "resolution must be a positive integer"),
    ({"batch": 0}, "batch must be a positive integer"),
    ({"batch": -1}, "batch must be a positive integer"),
    ({"itemsize": 0}, "itemsize is the bytes per element, one of 1, 2, 4, 8; got 0"),
    ({"itemsize": 3}, "one of 1, 2, 4, 8; got 3"),
])
def test_summary_refuses_meaningless_sizes(small_v2, kwargs, match):
    with pytest.raises(InputError, match=match):
        small_v2.summary(**kwargs)
    with pytest.raises(InputError, match=match):
        tinyinfer.summary("mobilenet_v2", **kwargs)


# ---- run on several images; the batch helper --------------------------------------------
def test_run_takes_a_list_of_images():
    photo = tinyinfer.io.image.bundled_photo()
    pixels = np.asarray(tinyinfer.io.image.load_image(photo))
    one, both = tinyinfer.run("mobilenet_v2", photo), tinyinfer.run("mobilenet_v2", [photo, pixels])
    assert both == [one, one]
    assert one[0][0] == "bow tie"                # torchvision's top-1 for this photo (README)


def test_run_checks_topk_before_any_work(monkeypatch):
    def no_work(*a, **k):
        raise AssertionError("loaded a model for a call that was bound to fail")
    monkeypatch.setattr(tinyinfer.api, "load", no_work)
    tinyinfer.api._CACHE.clear()
    for bad in (0, 1001, 2.0, True):
        with pytest.raises(InputError, match=f"topk must be an integer from 1 to 1000, "
                                             f"got {bad!r}"):
            tinyinfer.run("mobilenet_v2", "photo.jpg", topk=bad)


def test_topk_turns_a_batch_of_logits_into_labels():
    logits = np.zeros((2, 1000), np.float32)
    logits[0, 457], logits[1, 3] = 5.0, 9.0      # 457: bow tie, 3: tiger shark
    top = tinyinfer.topk(logits, 1)
    assert [t[0][0] for t in top] == ["bow tie", "tiger shark"]
    e = np.exp(5.0)
    assert top[0][0][1] == pytest.approx(e / (e + 999))
    assert tinyinfer.top_classes(logits, 1)[1][0][:2] == (3, "tiger shark")


# ---- profile under load (issue 12 item 18) -------------------------------------------------
def test_profile_warns_when_the_machine_is_busy(small_v2, monkeypatch):
    import os
    import warnings
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 64), dtype=np.float32)
    monkeypatch.setattr(os, "getloadavg", lambda: (6.5, 3.0, 1.0))
    with pytest.warns(RuntimeWarning, match="load average is 6.50.*too slow"):
        small_v2.profile(x, runs=1)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small_v2.profile(x, runs=1)
