"""Convert a checkpoint (.pth / .safetensors) into a plain NumPy .npz of its state dict.

    python -m tinyinfer.io.convert mobilenet_v2-b0353104.pth mobilenet_v2-b0353104.npz

The .npz keeps the checkpoint's own keys (the model's key map reads it like the original),
stores float32 arrays (other float dtypes are converted; integer buffers such as
num_batches_tracked are dropped, inference does not use them), and is byte-for-byte
reproducible: entries are written in key order with a fixed timestamp, so the sha256 in
tinyinfer/data/weights/MANIFEST.txt can be re-derived by anyone from the original file.

A checkpoint that cannot be read, or a destination that cannot be written, is reported in
one line on stderr (exit status 2). Checkpoints over 4 GiB are refused unless the
environment variable TINYINFER_MAX_CHECKPOINT_BYTES allows more (see
tinyinfer/io/checkpoint/limits.py).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile

import numpy as np

from .checkpoint import read_checkpoint
from ..errors import TinyInferError


def state_to_npz_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for key in state:
            a = np.asarray(state[key])
            if not np.issubdtype(a.dtype, np.floating):
                continue
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            arr = io.BytesIO()
            np.lib.format.write_array(arr, np.ascontiguousarray(a, dtype=np.float32),
                                      allow_pickle=False)
            z.writestr(info, arr.getvalue())
    return buf.getvalue()


def convert(src, dest) -> str:
    """Write ``dest``; return its sha256."""
    data = state_to_npz_bytes(read_checkpoint(src))
    with open(dest, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyinfer.io.convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dest")
    args = p.parse_args(argv)
    try:
        digest = convert(args.src, args.dest)
    except TinyInferError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{p.prog}: error: cannot write {args.dest}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"{digest}  {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
