"""tinyinfer.evaluate / `tinyinfer eval` in process: accuracy on a labelled set of real
photos, the output file (row per image, resume, cut-off last line), bad datasets, the
comparison with PyTorch, the command line. Dask runs: tests/test_evaluate_dask.py."""
import importlib.util
import json
from pathlib import Path

import pytest

import tinyinfer
from tinyinfer.cli import main
from tinyinfer.evaluate import evaluate
from tinyinfer.errors import DatasetError, OutputFileError
from tinyinfer.evaluation.dataset import imagenet_wnids, read_dataset
from tinyinfer.io.image import imagenet_labels

from eval_photos import build_dataset

PROB_TOL = 1e-3   # tinyinfer vs torchvision, as in tests/test_pretrained.py


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """(dataset folder, key -> (label, torchvision's top-1 probability))."""
    root = tmp_path_factory.mktemp("photos")
    labels = build_dataset(root)
    assert len(labels) >= 12, "the photo set lost too many near-tied crops to mean much"
    return root, labels


@pytest.fixture(scope="module")
def full_run(photos, tmp_path_factory):
    """One in-process evaluation of the whole set (batch size 4), shared by several tests."""
    out = tmp_path_factory.mktemp("run") / "results.jsonl"
    return evaluate("mobilenet_v2", photos[0], output=out, batch_size=4, progress=False), out


def read_rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


# ---- the WordNet ids shipped in tinyinfer/data ----------------------------------------

def test_wnids_are_in_torchvisions_class_index_order():
    wnids = imagenet_wnids()
    labels = imagenet_labels()
    assert len(set(wnids)) == 1000
    # ImageFolder numbers classes by sorted folder name: that is torchvision's index order
    assert list(wnids) == sorted(wnids)
    for wnid, index, name in [("n01440764", 0, "tench"), ("n02123045", 281, "tabby"),
                              ("n03710721", 639, "maillot tank suit"),
                              ("n15075141", 999, "toilet tissue")]:
        assert wnids[index] == wnid and labels[index] == name


def test_wnids_file_is_timms_file():
    timm_dir = Path(importlib.util.find_spec("timm").origin).parent
    shipped = Path(tinyinfer.__file__).parent / "data" / "imagenet_wnids.txt"
    assert shipped.read_bytes() == (timm_dir / "data/_info/imagenet_synsets.txt").read_bytes()


# ---- accuracy and rows ------------------------------------------------------------------

def test_in_process_gets_torchvisions_labels(photos, full_run):
    root, labels = photos
    ev, out = full_run
    assert ev.n == len(labels) and ev.errors == 0 and ev.evaluated == len(labels)
    assert ev.top1 == 1.0 and ev.top5 == 1.0
    for row in ev.rows:
        label, torch_p = labels[row["path"]]
        assert row["label"] == label and row["top5"][0] == label
        assert abs(row["probs"][0] - torch_p) <= PROB_TOL
        assert row["probs"] == sorted(row["probs"], reverse=True) and len(row["top5"]) == 5
    assert read_rows(out) == ev.rows   # every row written, in dataset order (one process)
    assert "top-1 100.00%" in ev.summary() and ev.images_per_second > 0


def test_rows_do_not_depend_on_batch_size(photos, full_run):
    """Each image is scored on its own: batched, its logits would change in the last bits
    with its batch neighbours, and resumed or distributed runs would not be identical."""
    ev = evaluate("mobilenet_v2", photos[0], batch_size=5, limit=7, progress=False)
    assert ev.rows == full_run[0].rows[:7]   # bit-identical probabilities


def test_resume_writes_no_duplicates_and_redoes_a_cut_off_row(photos, full_run, tmp_path):
    root, labels = photos
    want = full_run[0].rows[:8]
    out = tmp_path / "results.jsonl"
    first = evaluate("mobilenet_v2", root, output=out, limit=3, progress=False)
    assert first.evaluated == 3 and len(read_rows(out)) == 3
    # a run killed while writing its 4th row: half a line, no newline
    text = out.read_text()
    out.write_text(text + json.dumps(want[3])[:30])
    second = evaluate("mobilenet_v2", root, output=out, limit=5, progress=False)
    assert second.evaluated == 2            # rows 4 and 5; the first three were resumed
    third = evaluate("mobilenet_v2", root, output=out, limit=8, progress=False)
    assert third.evaluated == 3
    rows = read_rows(out)
    assert rows == want and third.rows == want    # each image once, in order
    again = evaluate("mobilenet_v2", root, output=out, limit=8, progress=False)
    assert again.evaluated == 0 and read_rows(out) == rows and again.top1 == 1.0


def test_csv_dataset_with_index_labels(photos, full_run, tmp_path):
    root, labels = photos
    keys = sorted(labels)[:3]
    csv = tmp_path / "set.csv"
    csv.write_text("path,label\n" + "".join(f"{root / k},{labels[k][0]}\n" for k in keys))
    ev = evaluate("mobilenet_v2", csv, progress=False)
    assert [r["path"] for r in ev.rows] == [str(root / k) for k in keys]
    assert ev.top1 == 1.0
    want = {r["path"]: r["probs"] for r in full_run[0].rows}
    assert [r["probs"] for r in ev.rows] == [want[k] for k in keys]


def test_compare_with_torch(photos):
    ev = evaluate("mobilenet_v2", photos[0], limit=3, compare_with="torch", progress=False)
    assert ev.agreement == 1.0 and all(r["top5_agree"] for r in ev.rows)
    assert 0 < ev.max_prob_diff <= PROB_TOL
    assert "top-5 identical for 100.00% of images" in ev.summary()


# ---- bad datasets and output files ---------------------------------------------------------

def test_unreadable_image_gets_its_row_and_the_run_goes_on(photos, full_run, tmp_path):
    root, labels = photos
    keys = sorted(labels)[:3]
    for k in keys:
        (tmp_path / k).parent.mkdir(exist_ok=True)
        (tmp_path / k).write_bytes((root / k).read_bytes())
    bad = tmp_path / keys[0].split("/")[0] / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out.jsonl"
    ev = evaluate("mobilenet_v2", tmp_path, output=out, batch_size=2, progress=False)
    assert ev.n == 3 and ev.errors == 1 and ev.top1 == 1.0
    broken = [r for r in read_rows(out) if "error" in r]
    assert [r["path"] for r in broken] == [bad.relative_to(tmp_path).as_posix()]
    assert "broken.jpg" in broken[0]["error"] and "corrupt" in broken[0]["error"]
    assert "unreadable 1" in ev.summary()


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="no class folders"):
        read_dataset(tmp_path)
    (tmp_path / "n01440764").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        read_dataset(tmp_path)


def test_images_without_class_folders(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="1 images but no class folders"):
        read_dataset(tmp_path)


def test_unknown_class_folder_names(tmp_path):
    for name in ("n01440764", "cats", "1000", "n99999999"):
        (tmp_path / name).mkdir()
    with pytest.raises(DatasetError) as e:
        read_dataset(tmp_path)
    msg = str(e.value)
    assert "3 class folder(s)" in msg and "'cats'" in msg and "'1000'" in msg
    assert "'n99999999'" in msg and "n01440764'" not in msg


def test_csv_with_bad_rows(tmp_path):
    csv = tmp_path / "set.csv"
    csv.write_text("path,label\na.jpg,0\nb.jpg\nc.jpg,tabby\nd.jpg,1000\na.jpg,3\n\n")
    with pytest.raises(DatasetError) as e:
        read_dataset(csv)
    msg = str(e.value)
    assert "4 bad row(s)" in msg
    assert "line 3: 1 fields" in msg and "line 4: label 'tabby'" in msg
    assert "line 5: label '1000'" in msg and "line 6: 'a.jpg' is listed twice" in msg


def test_missing_dataset_and_bad_arguments(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        evaluate("mobilenet_v2", tmp_path / "nothing")
    with pytest.raises(tinyinfer.InputError, match="batch_size must be a positive integer"):
        evaluate("mobilenet_v2", tmp_path, batch_size=0)
    with pytest.raises(tinyinfer.InputError, match="local:N"):
        evaluate("mobilenet_v2", tmp_path, scheduler="local")
    with pytest.raises(tinyinfer.InputError, match="compare_with must be None or one of torch"):
        evaluate("mobilenet_v2", tmp_path, compare_with="onnx")


def test_output_file_of_something_else(photos, full_run, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"path": "x.png"}\n')
    with pytest.raises(OutputFileError, match="line 1 of .* is not a tinyinfer eval row"):
        evaluate("mobilenet_v2", photos[0], output=out)
    out.write_text(json.dumps({**full_run[0].rows[0], "model": "resnet18"}) + "\n")
    with pytest.raises(OutputFileError, match="holds results of resnet18"):
        evaluate("mobilenet_v2", photos[0], output=out)
    with pytest.raises(OutputFileError, match="is a folder"):
        evaluate("mobilenet_v2", photos[0], output=tmp_path)
    with pytest.raises(OutputFileError, match="folder of output .* does not exist"):
        evaluate("mobilenet_v2", photos[0], output=tmp_path / "no" / "r.jsonl")


# ---- command line ---------------------------------------------------------------------------

def test_cli_eval(photos, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    assert main(["eval", "mobilenet_v2", str(photos[0]), "--output", str(out),
                 "--limit", "2"]) == 0
    captured = capsys.readouterr()
    assert "top-1 100.00%" in captured.out and "n 2" in captured.out
    assert captured.err == ""          # no progress bar when stderr is not a terminal
    assert len(read_rows(out)) == 2


def test_cli_eval_bad_dataset_is_one_line(tmp_path, capsys):
    assert main(["eval", "mobilenet_v2", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinyinfer: error: dataset folder") and err.count("\n") == 1


def test_cli_progress_bar_on_a_terminal(photos):
    """On a terminal, stderr shows tqdm's bar: images done of total, rate, ETA."""
    import fcntl
    import os
    import pty
    import struct
    import sys
    import termios
    pid, fd = pty.fork()
    if pid == 0:   # the child: tinyinfer eval with the pty as its terminal
        os.execv(sys.executable, [sys.executable, "-m", "tinyinfer", "eval", "mobilenet_v2",
                                  str(photos[0]), "--limit", "2", "--batch-size", "1"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:    # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "2/2 [" in text and ("img/s" in text or "s/img" in text), text
    assert "top-1 100.00%" in text
