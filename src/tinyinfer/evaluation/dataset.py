"""Read an evaluation dataset: which image files, with which class index.

Two layouts are accepted:

* a folder of class folders, as torchvision's ImageFolder reads ImageNet's validation set
  sorted into folders: DATASET/n01440764/ILSVRC2012_val_00000293.JPEG, ... Class folders
  are named by WordNet id (n01440764, mapped to the class index through
  data/imagenet_wnids.txt) or by class index (0 ... 999). Files whose suffix is not an image
  suffix, hidden files and files directly inside DATASET are ignored, as ImageFolder does.
* a CSV file of ``path,label`` rows (an optional first row ``path,label`` is a header);
  relative paths are relative to the CSV file's folder; labels are class indices or WordNet
  ids.

Every image becomes an ``Item``: ``key`` is the path as the output file names it (relative to
the dataset folder, or as written in the CSV), ``file`` the path to read, ``label`` the class
index. Items come in a fixed order (sorted, or the CSV's), so --limit N always means the
same N images.
"""
from __future__ import annotations

import csv
import functools
import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

NUM_CLASSES = 1000

# torchvision's IMG_EXTENSIONS (datasets/folder.py), the files ImageFolder picks up.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Item:
    key: str      # the image's name in the output file
    file: str     # where to read it
    label: int    # the class index 0..999


@functools.lru_cache(maxsize=None)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids in class-index order (data/imagenet_wnids.txt)."""
    text = importlib.resources.files("tinyinfer").joinpath("data", "imagenet_wnids.txt")
    wnids = tuple(text.read_text(encoding="ascii").split())
    if len(wnids) != NUM_CLASSES:  # a broken installation, not a user error
        raise RuntimeError(f"imagenet_wnids.txt has {len(wnids)} ids, expected 1000")
    return wnids


@functools.lru_cache(maxsize=None)
def _wnid_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(imagenet_wnids())}


def class_index(name: str) -> int | None:
    """A class folder name or CSV label -> class index, or None if it is neither a WordNet
    id of ImageNet-1k nor an integer 0..999."""
    name = name.strip()
    if name in _wnid_index():
        return _wnid_index()[name]
    if name.isdigit() and int(name) < NUM_CLASSES:
        return int(name)
    return None


def read_dataset(path) -> list[Item]:
    """The labelled images of a dataset folder or CSV file (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset {str(path)!r} does not exist; give a folder of class "
                           f"folders or a CSV file of path,label rows")
    items = _read_folder(path) if path.is_dir() else _read_csv(path)
    if not items:
        raise DatasetError(f"dataset {str(path)!r} holds no images "
                           f"(looked for {', '.join(IMAGE_SUFFIXES)} files)")
    return items


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def _read_folder(root: Path) -> list[Item]:
    folders = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not folders:
        loose = [n for n in os.listdir(root) if _is_image(n)]
        what = (f"{len(loose)} images but no class folders: put each image in a folder named "
                f"by its class" if loose else "no class folders")
        raise DatasetError(f"dataset folder {str(root)!r} has {what} (n01440764/ ... or 0/ ... 999/, "
                           f"as torchvision's ImageFolder reads them), or give a CSV of path,label")
    unknown = [f for f in folders if class_index(f) is None]
    if unknown:
        shown = ", ".join(repr(f) for f in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise DatasetError(
            f"dataset folder {str(root)!r}: {len(unknown)} class folder(s) named neither by an "
            f"ImageNet-1k WordNet id (n01440764 ...) nor by a class index 0..999: {shown}")
    items = []
    for folder in folders:
        label = class_index(folder)
        for dirpath, dirnames, filenames in os.walk(root / folder, followlinks=True):
            dirnames.sort()
            for name in sorted(filter(_is_image, filenames)):
                file = Path(dirpath) / name
                items.append(Item(file.relative_to(root).as_posix(), str(file), label))
    return items


def _read_csv(path: Path) -> list[Item]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"cannot read dataset CSV {str(path)!r} ({type(e).__name__}: {e}); "
                           f"it must be a UTF-8 text file of path,label rows") from None
    if rows and [c.strip().lower() for c in rows[0]] == ["path", "label"]:
        rows = [None] + rows[1:]   # keep line numbers: row i is line i + 1
    items, bad, seen = [], [], set()
    for line, row in enumerate(rows, start=1):
        if row is None or not any(c.strip() for c in row):
            continue                # the header, blank lines
        problem = None
        if len(row) != 2:
            problem = f"{len(row)} fields, expected 2 (path,label)"
        elif class_index(row[1]) is None:
            problem = f"label {row[1].strip()!r} is neither a class index 0..999 nor an ImageNet-1k WordNet id"
        elif row[0].strip() in seen:
            problem = f"{row[0].strip()!r} is listed twice"
        if problem:
            bad.append(f"line {line}: {problem}")
            continue
        key = row[0].strip()
        seen.add(key)
        items.append(Item(key, str(path.parent / key), class_index(row[1])))
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DatasetError(f"dataset CSV {str(path)!r} has {len(bad)} bad row(s): {shown}. "
                           f"Each row must be path,label")
    return items
