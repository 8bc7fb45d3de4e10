"""Reading checkpoints into plain NumPy arrays, safely, without torch.

    from tinyinfer.io.checkpoint import read_checkpoint
    state = read_checkpoint("mobilenet_v2-b0353104.pth")   # {name: np.ndarray}

``read_checkpoint(path)`` tells the format from the file's bytes (the extension is never
trusted) and reads:

* PyTorch ``torch.save`` files, both the zip format (PyTorch >= 1.6) and the legacy
  format before it (torch_pickle.py explains both on-disk layouts). The pickle inside is
  read with an Unpickler that refuses every global except a few inert stand-ins, so a
  hostile file raises CheckpointError instead of running code.
* safetensors files (safetensors_format.py explains the layout).
* NumPy ``.npz`` archives, never unpickling anything (npz_format.py).

What you get: a flat dict name -> C-contiguous ndarray that owns its memory, in the file's
order, in the stored dtype (float32, float16, float64, int64, int32, int16, int8, uint8,
bool), except that **bfloat16 is widened to float32** (exactly; NumPy has no bfloat16).
Integer buffers such as BatchNorm's ``num_batches_tracked`` (a 0-d int64) are tensors
and are kept.

Which dict, for torch files (``torch_pickle.select_state_dict``): if the saved object is a
dict with tensor values it is the state dict; otherwise it is a wrapper like timm's or a
training script's ``{'state_dict': ..., 'epoch': 3, 'optimizer': ...}``, and the first of
the keys 'state_dict', 'model_state_dict', 'model', 'module', 'net', 'network', 'params',
'weights' whose value is a dict is unwrapped (repeatedly, up to 4 levels). Entries that are
not tensors (python metadata such as 'epoch', nested dicts, optimizer state) are dropped.
If every name starts with 'module.' (an ``nn.DataParallel`` save) that prefix is removed.

Every malformed, truncated, unsafe or unknown file raises ``CheckpointError`` (a
ValueError) saying what was wrong; a missing path raises ``CheckpointNotFoundError``, which
is also a FileNotFoundError.

Limits
======
Only a regular file is read (a FIFO or device is refused without blocking), and a file
can make the readers allocate only so much: the file and its arrays may each take at most
4 GiB, a pickle 1/1024 of that, all checked before anything is read, inflated or copied.
limits.py has the details. To read a bigger checkpoint you trust::

    read_checkpoint(path, max_bytes=20 * 2**30)          # one call
    TINYINFER_MAX_CHECKPOINT_BYTES=21474836480 tinyinfer run ...   # the whole process
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ...errors import CheckpointError, CheckpointNotFoundError, InputError
from . import limits, torch_pickle
from .npz_format import read_npz_bytes
from .safetensors_format import looks_like_safetensors, read_safetensors_bytes

__all__ = ["read_checkpoint", "read_torch", "read_safetensors", "read_npz", "detect_format",
           "CheckpointError", "CheckpointNotFoundError"]

FORMATS = "torch.save .pth/.pt (zip or legacy), .safetensors, .npz"


def read_checkpoint(path, *, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Read any supported checkpoint (a path, or the file's bytes) -> {name: ndarray}.
    ``max_bytes``: how much the file and its arrays may each take (see "Limits" above;
    default: $TINYINFER_MAX_CHECKPOINT_BYTES, else 4 GiB)."""
    max_bytes = limits.resolve_max_bytes(max_bytes)
    data, label = _read_source(path, max_bytes)
    kind = detect_format(data, label)
    reader = {"torch-zip": torch_pickle.read_torch_bytes,
              "torch-legacy": torch_pickle.read_torch_bytes,
              "safetensors": read_safetensors_bytes, "npz": read_npz_bytes}[kind]
    with _as_checkpoint_error(label, kind):
        return reader(data, max_bytes)


def read_torch(path_or_bytes, *, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Read a torch.save file (zip or legacy format) -> {name: ndarray}."""
    max_bytes = limits.resolve_max_bytes(max_bytes)
    data, label = _read_source(path_or_bytes, max_bytes)
    kind = detect_format(data, label)
    if kind not in ("torch-zip", "torch-legacy"):
        raise CheckpointError(f"{label} is a {kind} file, not a torch.save file; "
                              "use read_checkpoint to read any format")
    with _as_checkpoint_error(label, kind):
        return torch_pickle.read_torch_bytes(data, max_bytes)


def read_safetensors(path_or_bytes, *, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Read a .safetensors file -> {name: ndarray}; ``__metadata__`` is ignored."""
    max_bytes = limits.resolve_max_bytes(max_bytes)
    data, label = _read_source(path_or_bytes, max_bytes)
    with _as_checkpoint_error(label, "safetensors"):
        return read_safetensors_bytes(data, max_bytes)


def read_npz(path_or_bytes, *, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Read a NumPy .npz archive (no pickled object arrays) -> {name: ndarray}."""
    max_bytes = limits.resolve_max_bytes(max_bytes)
    data, label = _read_source(path_or_bytes, max_bytes)
    with _as_checkpoint_error(label, "npz"):
        return read_npz_bytes(data, max_bytes)


def detect_format(data: bytes, label: str = "the checkpoint") -> str:
    """'torch-zip', 'torch-legacy', 'safetensors' or 'npz', from the leading bytes (and,
    for a zip, its member names). Raises CheckpointError for anything else."""
    if not data:
        raise CheckpointError(f"{label} is empty (0 bytes): an interrupted download or copy? "
                              "Fetch the checkpoint again.")
    if data[:4] == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except _PARSE_ERRORS as e:
            raise CheckpointError(f"{label} is a damaged or truncated zip archive ({e}); "
                                  "fetch or save it again") from None
        if torch_pickle.find_torch_prefix(names) is not None:
            return "torch-zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise CheckpointError(f"{label} is a zip archive but neither a torch.save file (no "
                              "<folder>/data.pkl) nor an .npz (members not all .npy)")
    # safetensors before pickle: a safetensors header length may start with any byte,
    # 0x80 (pickle's PROTO opcode) included, while a torch pickle never looks like a length
    # followed by "{".
    if looks_like_safetensors(data):
        return "safetensors"
    if data[:1] == b"\x80":      # pickle protocol 2+ starts with the PROTO opcode
        return "torch-legacy"
    raise CheckpointError(f"{label} is not a checkpoint tinyinfer can read "
                          f"({_what_is_it(data)}); supported: {FORMATS}")


def _what_is_it(data: bytes) -> str:
    head = data[:512]
    if head.startswith(b"version https://git-lfs"):
        return "it is a Git LFS pointer, not the weights: run `git lfs pull`"
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "it is an HTML page: probably a failed download"
    if len(data) > 262 and data[257:262] == b"ustar":
        return "it is a tar archive; PyTorch < 0.4 tar checkpoints are not supported, " \
               "re-save with a newer torch"
    if head.startswith(b"\x93NUMPY"):
        return "it is a single .npy array, not a dict of arrays: use np.load"
    if head.startswith(b"PK"):
        return "it is a zip archive with an unusual first record"
    try:
        head.decode("utf-8")
        return f"it is text starting {head[:40].decode('utf-8', 'replace')!r}"
    except UnicodeDecodeError:
        return f"unknown leading bytes {head[:8].hex(' ')}"


def _read_source(path_or_bytes, max_bytes):
    """A path or the file's bytes -> (bytes, label for messages). Only a regular file is
    read, and only if it fits the limit: its type and size are checked before reading, so a
    FIFO or device never blocks and a 50 GB sparse file is never read."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        label = "the checkpoint (given as bytes)"
        if memoryview(path_or_bytes).nbytes > max_bytes:
            raise limits.over_limit(f"{label} is {memoryview(path_or_bytes).nbytes:,} bytes",
                                    max_bytes)
        return bytes(path_or_bytes), label
    try:
        path = Path(os.fspath(path_or_bytes))
    except TypeError:
        raise InputError(f"a checkpoint is given as a path or bytes, not "
                         f"{type(path_or_bytes).__name__}") from None
    try:
        _check_regular_file(path, os.stat(path), max_bytes)
        # O_NONBLOCK: if the path was swapped for a FIFO since stat, opening must not wait
        # for a writer; fstat then sees what was really opened.
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
            size = _check_regular_file(path, os.fstat(f.fileno()), max_bytes)
            data = f.read(size)    # read(n) allocates n bytes first: never more than the file
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint at {path}: the file does not exist. "
                                      "Check the path (and the working directory).") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    except MemoryError:
        raise CheckpointError(f"not enough memory to read {path}") from None
    return data, str(path)


def _check_regular_file(path, st, max_bytes):
    if stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{path} is a directory, not a checkpoint file; pass the path "
                              f"of the file inside it ({FORMATS})")
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path} is not a regular file (a device or pipe?); pass the "
                              "path of a checkpoint file")
    if st.st_size > max_bytes:
        raise limits.over_limit(f"{path} is {st.st_size:,} bytes", max_bytes)
    return st.st_size


# What a corrupted file can make the standard library or NumPy raise while we parse it.
# Our own checks raise CheckpointError first wherever they can; this is the backstop.
_PARSE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
                 IndexError, AttributeError, OverflowError, struct.error, zipfile.BadZipFile,
                 zlib.error, RuntimeError, MemoryError, NotImplementedError, OSError)


@contextlib.contextmanager
def _as_checkpoint_error(label, kind):
    try:
        yield
    except CheckpointError as e:
        if label not in str(e):
            raise CheckpointError(f"{label}: {e}") from None
        raise
    except _PARSE_ERRORS as e:
        raise CheckpointError(f"{label} is a damaged or truncated {kind} file "
                              f"({type(e).__name__}: {str(e)[:200]}); fetch or save it "
                              "again") from None
