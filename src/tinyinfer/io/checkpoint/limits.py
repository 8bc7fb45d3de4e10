"""How much memory and time a checkpoint file may make the readers spend, and how to allow more.

A checkpoint is read into memory, and a file can claim far more than it holds: a sparse file
that reports 50 GB, a zip member that inflates a thousandfold, a pickle that is nothing but
no-op instructions. Every such claim is checked against one limit *before* anything is
allocated or inflated:

* the file itself, and the arrays read from it in total, may each take at most ``max_bytes``
  (default 4 GiB: ample for every network here, VGG-16 in float64 is 1.1 GB);
* a pickle (a torch file's data.pkl, or the object in a legacy torch file) may take at most
  ``max_bytes // 1024`` (4 MiB by default; a state dict's pickle takes ~100 bytes per tensor:
  ResNet-50's with its Adam state, 80 KB), because checking it takes about a second per MB;
* a torch file's zip members must be stored, not compressed (torch.save never compresses),
  and an .npz member is inflated only as far as its array needs;
* pickled tuples may nest at most ``MAX_NESTING`` deep, and the tuples a pickle reaches
  again through its memo may add up to at most ``MAX_SHARED_TUPLES`` (not adjustable: a
  state dict's tuples nest 2 deep and are never shared; torch_pickle._TupleTracker explains
  why CPython needs these bounds).

To read a bigger file you trust, raise the limit for one call,
``read_checkpoint(path, max_bytes=20 * 2**30)``, or for the whole process (and for
``tinyinfer.load`` and the command line), ``TINYINFER_MAX_CHECKPOINT_BYTES=21474836480``.
"""
from __future__ import annotations

import os

from ...errors import CheckpointError, InputError

ENV_VAR = "TINYINFER_MAX_CHECKPOINT_BYTES"
DEFAULT_MAX_BYTES = 4 * 2 ** 30
PICKLE_SHARE = 1024      # a pickle may take max_bytes // PICKLE_SHARE bytes
MAX_NESTING = 100        # tuples in tuples (torch_pickle._TupleTracker explains both)
MAX_SHARED_TUPLES = 1_000_000


def resolve_max_bytes(max_bytes=None) -> int:
    """The limit in force: the argument if given, else the environment variable, else the
    default."""
    if max_bytes is None:
        text = os.environ.get(ENV_VAR, "").strip()
        if not text:
            return DEFAULT_MAX_BYTES
        try:
            max_bytes = int(text)
        except ValueError:
            raise InputError(f"{ENV_VAR}={text[:40]!r} is not a number of bytes; set it to a "
                             f"positive integer, e.g. {ENV_VAR}={2 * DEFAULT_MAX_BYTES}") from None
        where = f"{ENV_VAR}={max_bytes}"
    else:
        where = f"max_bytes={max_bytes!r}"
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0:
        raise InputError(f"{where} is not a positive integer number of bytes")
    return max_bytes


def pickle_limit(max_bytes: int) -> int:
    return max(1, max_bytes // PICKLE_SHARE)


def over_limit(what: str, max_bytes: int) -> CheckpointError:
    """The error for a file that goes over the limit (``what``, e.g. "the arrays would take
    5,000,000,000 bytes"); it says how to allow it."""
    return CheckpointError(
        f"refusing to read: {what}; the limit is {max_bytes:,} bytes (a damaged or malicious "
        f"file can claim any size). If you trust the file, raise the limit: "
        f"read_checkpoint(..., max_bytes=N) or the environment variable {ENV_VAR}=N")
