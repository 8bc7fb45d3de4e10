"""The command line as a user meets it: several images and folders in one `run`, --json,
--weights, architecture options under the model's own names, --version, and every error
and warning on one line (the README promises it)."""
import json
import os
import shutil
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

import tinyinfer
from tinyinfer.cli import main as cli
from tinyinfer.cli import one_line
from tinyinfer.io.image import bundled_photo


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of `tinyinfer *argv`, argparse's own exits included."""
    try:
        code = cli(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err, *fragments):
    assert err.startswith("tinyinfer") and err.count("\n") == 1, err
    for f in fragments:
        assert f in err, err


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out == f"tinyinfer {tinyinfer.__version__}\n"


# ---- run -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder with the bundled photo, a PNG copy of it, a broken "jpg" and a text file."""
    root = tmp_path_factory.mktemp("photos")
    folder = root / "holiday"
    folder.mkdir()
    shutil.copy(bundled_photo(), folder / "a.jpg")
    Image.open(bundled_photo()).save(folder / "b.png")
    (folder / "c.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()
    return root


def test_run_several_images_and_folders_as_json(capsys, photos):
    photo = str(bundled_photo())
    code, out, err = run_cli(capsys, "run", "mobilenet_v2", photo, str(photos / "holiday"),
                             "--topk", "3", "--json")
    assert code == 2                              # one image could not be read
    result = json.loads(out)                      # one JSON document
    assert [r["path"] for r in result] == [photo] + [
        str(photos / "holiday" / n) for n in ("a.jpg", "b.png", "c.jpg")]  # notes.txt skipped
    for r in result[:3]:
        top = r["top"]
        assert len(top) == 3 and set(top[0]) == {"index", "label", "probability"}
        # torchvision's top-1 for this photo (README): bow tie, ImageNet class 457
        assert (top[0]["index"], top[0]["label"]) == (457, "bow tie")
        assert top[0]["probability"] == pytest.approx(0.5082, abs=1e-3)
        assert top[0]["probability"] >= top[1]["probability"] >= top[2]["probability"]
    assert "top" not in result[3] and "c.jpg" in result[3]["error"]
    assert_one_line_error(err, "c.jpg")


def test_run_prints_each_images_labels_under_its_path(capsys, photos):
    code, out, err = run_cli(capsys, "run", "mobilenet_v2", str(photos / "holiday" / "a.jpg"),
                             str(photos / "holiday" / "b.png"), "--topk", "1")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].endswith("a.jpg") and lines[2].endswith("b.png")
    assert lines[1].split() == ["0.5082", "bow", "tie"]


@pytest.mark.parametrize("argv,fragments", [
    (["run", "mobilenet_v2", "no_such.jpg", "no_such_folder"],
     ["no such file or folder: no_such.jpg, no_such_folder"]),
    (["run", "mobilenet_v2", "EMPTY"], ["no image files directly in this folder"]),
    (["run", "mobilenet_v2", "PHOTO", "--topk", "0"], ["--topk must be an integer from 1 to 1000"]),
    (["run", "mobilenet_v2", "PHOTO", "--topk", "1001"], ["--topk must be"]),
])
def test_run_checks_what_the_user_typed_before_any_work(capsys, photos, monkeypatch,
                                                        argv, fragments):
    def no_work(*a, **k):
        raise AssertionError("loaded a model for a command that was bound to fail")
    monkeypatch.setattr(tinyinfer.api, "load", no_work)
    argv = [{"EMPTY": str(photos / "empty"), "PHOTO": str(bundled_photo())}.get(a, a)
            for a in argv]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, *fragments)


def test_random_weights_only_when_asked(capsys):
    photo = str(bundled_photo())
    code, _, err = run_cli(capsys, "run", "mobilenet_v3_small", photo)
    assert code == 2
    assert_one_line_error(err, "no pretrained weights", "--weights random")
    code, out, err = run_cli(capsys, "run", "mobilenet_v3_small", photo, "--weights", "random",
                             "--topk", "2")
    assert code == 0 and len(out.splitlines()) == 2
    assert err == "tinyinfer: warning: random weights (--weights random): the labels mean nothing\n"


def test_run_with_a_checkpoint_path(capsys, tmp_path):
    """--weights PATH: a checkpoint written from a randomly initialised network gives the
    same labels as that network."""
    model = tinyinfer.load("mobilenet_v2", weights=None, width_mult=0.35)
    path = tmp_path / "mine.npz"
    np.savez(path, **{f"{n.name}.{p}": a for n in model.graph for p, a in n.params.items()})
    code, out, _ = run_cli(capsys, "run", "mobilenet_v2", str(bundled_photo()), "--weights",
                           str(path), "--width", "0.35", "--topk", "2", "--json")
    assert code == 0
    got = [(t["label"], t["probability"]) for t in json.loads(out)[0]["top"]]
    want = model.predict(bundled_photo(), topk=2)
    assert [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=1e-6)


# ---- architecture options ------------------------------------------------------------------
def total_line(out):
    return next(line for line in out.splitlines() if line.startswith("TOTAL"))


@pytest.mark.parametrize("argv,registered", [
    (["ghostnet_100", "--width", "0.5"], "ghostnet_050"),              # its option: width
    (["shufflenet_v2_x1_0", "--width", "x0_5"], "shufflenet_v2_x0_5"),  # width, a string
    (["mnasnet1_0", "--width", "0.5"], "mnasnet0_5"),                   # width_mult
    (["efficientnet_b0", "--width", "1.1", "--depth", "1.2"], "efficientnet_b2"),
    (["fbnetc_100", "--option", "width_mult=1.0"], "fbnetc_100"),
])
def test_width_and_depth_set_the_models_own_option(capsys, argv, registered):
    """--width on a model equals the registered variant of that width (the registry's
    defaults are the reference's published variants)."""
    code, out, _ = run_cli(capsys, "summary", *argv, "--resolution", "160")
    assert code == 0
    code, want, _ = run_cli(capsys, "summary", registered, "--resolution", "160")
    assert total_line(out) == total_line(want)


@pytest.mark.parametrize("argv,fragments", [
    (["mobilenet_v3_large", "--width", "2"],
     ["mobilenet_v3_large has no --width option", "architecture options: none"]),
    (["mobilenet_v2", "--depth", "2"], ["no --depth option", "options: width_mult=1.0"]),
    (["mobilenet_v2", "--width", "wide"], ["--width: 'wide' is not float", "width_mult=1.0"]),
    (["mobilenet_v2", "--option", "colour=red"],
     ["bad architecture option colour", "options of this model: width_mult"]),
    (["mobilenet_v2", "--option", "width_mult"], ["--option takes NAME=VALUE"]),
])
def test_bad_architecture_options_name_the_models_options(capsys, argv, fragments):
    code, _, err = run_cli(capsys, "summary", *argv)
    assert code == 2
    assert_one_line_error(err, *fragments)


def test_summary_of_a_huge_width_is_fast_and_small(capsys):
    """Issue 12: `summary mobilenet_v2 --width 100` used to build 86 GB of random weights."""
    tracemalloc.start()
    t0 = time.perf_counter()
    code, out, _ = run_cli(capsys, "summary", "mobilenet_v2", "--width", "100")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 0 and "21,382.935M params" in out.splitlines()[0]
    assert peak < 100e6 and time.perf_counter() - t0 < 60


@pytest.mark.parametrize("argv,fragment", [
    (["--resolution", "0"], "resolution must be a positive integer, got 0"),
    (["--resolution", "-5"], "resolution must be a positive integer, got -5"),
    (["--batch", "0"], "batch must be a positive integer, got 0"),
    (["--itemsize", "0"], "itemsize is the bytes per element, one of 1, 2, 4, 8; got 0"),
    (["--resolution", "big"], "argument --resolution: invalid int value: 'big'"),
    (["--format", "pdf"], "argument --format: invalid choice: 'pdf'"),
])
def test_summary_refuses_meaningless_sizes_in_one_line(capsys, argv, fragment):
    code, out, err = run_cli(capsys, "summary", "mobilenet_v2", *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, fragment)


# ---- one line per message --------------------------------------------------------------------
def test_a_checkpoint_that_does_not_fit_is_one_line(capsys, tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, **{"features.0.weight": np.zeros((8, 3, 3, 3), np.float32)})
    code, _, err = run_cli(capsys, "run", "mobilenet_v2", str(bundled_photo()), "--weights",
                           str(path))
    assert code == 2
    assert_one_line_error(err, "does not fit this network", "missing keys", "unexpected keys",
                          "features.0.weight")


def test_argparse_errors_are_one_line(capsys):
    for argv in ([], ["run"], ["summary", "mobilenet_v2", "--bogus"], ["frobnicate"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == ""
        assert_one_line_error(err, "error:", "--help")


def test_one_line_joins_lines_and_escapes_control_characters():
    text = "checkpoint does not fit:\n  missing keys (2):\n    a\x1b[2J\n    b\nCheck it."
    assert one_line(text) == ("checkpoint does not fit: missing keys (2): a\\x1b[2J; b; "
                              "Check it.")


def test_profile_warns_in_one_line_when_the_machine_is_busy(capsys, monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (3.25, 2.0, 1.0))
    code, out, err = run_cli(capsys, "profile", "mobilenet_v2", str(bundled_photo()),
                             "--width", "0.35", "--runs", "1")
    assert code == 0 and "fastest of 1 timed runs" in out
    assert err.startswith("tinyinfer: warning: mobilenet_v2 profile: the load average is 3.25")
    assert err.count("\n") == 1


def test_bench_errors_are_one_line(capsys):
    from tinyinfer.bench.__main__ import main as bench
    assert bench(["models", "--models", "no_such_net", "--runs", "1", "--rounds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: unknown model 'no_such_net'" in err
    with pytest.raises(SystemExit):
        bench(["models", "--runs", "many"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid int value: 'many'" in err


def test_list_shows_each_models_options(capsys):
    code, out, _ = run_cli(capsys, "list")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert set(rows) == set(tinyinfer.list_models())
    assert rows["mobilenet_v2"][2:] == ["pretrained", "width_mult=1.0"]
    assert rows["ghostnet_050"][-1] == "width=0.5"
    assert rows["shufflenet_v2_x0_5"][-1] == "width=x0_5"
    assert rows["resnet18"][-1] == "-"
