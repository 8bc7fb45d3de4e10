"""Reading .safetensors files (Hugging Face's format, used by timm) without the safetensors
package. (This module is not called ``safetensors.py`` so it never shadows that package.)

The format
==========
::

    8 bytes   N: the header's length, unsigned little-endian 64-bit integer
    N bytes   the header: a JSON object, UTF-8, possibly padded with trailing spaces
    the rest  the data buffer: every tensor's bytes, C order, little-endian, back to back

The header maps each tensor name to where and what it is; the optional ``__metadata__``
entry (a str -> str dict, e.g. {"format": "pt"}) is ignored here::

    {"__metadata__": {"format": "pt"},
     "features.0.0.weight": {"dtype": "F32", "shape": [32, 3, 3, 3],
                             "data_offsets": [0, 3456]},
     ...}

``data_offsets`` = [begin, end) in bytes, relative to the start of the data buffer
(file offset 8 + N); end - begin must equal prod(shape) * itemsize. The tensors tile the
buffer exactly: no gaps, no overlaps, nothing left over. There is no pickle, so there is
no code to refuse: the dangers are only lengths and offsets, and every one is checked
here before NumPy looks at the bytes.
"""
from __future__ import annotations

import json
import struct

import numpy as np

from ...errors import CheckpointError
from . import limits
from .torch_pickle import STORED_DTYPES, decode_elements

# safetensors dtype code -> dtype name (see torch_pickle.STORED_DTYPES for the layouts)
DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
          "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
          "BOOL": "bool"}
MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit too


def looks_like_safetensors(data: bytes) -> bool:
    """A plausible 8-byte header length followed by a JSON object. (The length may exceed
    the file: read_safetensors_bytes then says the file is truncated.)"""
    if len(data) < 10:
        return False
    (n,) = struct.unpack("<Q", data[:8])
    return 2 <= n <= MAX_HEADER_BYTES and data[8:9] == b"{"


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise CheckpointError(f"corrupted safetensors header: {key[:60]!r} appears twice")
        out[key] = value
    return out


def _entry(name, info, buffer_len):
    """Check one header entry -> (dtype name, shape, begin, end)."""
    bad = f"corrupted safetensors header: tensor {name[:60]!r}"
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise CheckpointError(f"{bad} must have exactly dtype, shape and data_offsets")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in DTYPES:
        raise CheckpointError(f"unsupported safetensors dtype {str(code)[:20]!r} for tensor "
                              f"{name[:60]!r}; tinyinfer reads {', '.join(DTYPES)}")

    def is_count(v):
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2 ** 62

    if not isinstance(shape, list) or len(shape) > 64 or not all(map(is_count, shape)):
        raise CheckpointError(f"{bad} has shape {str(shape)[:60]}, not a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(map(is_count, offsets))
            or not offsets[0] <= offsets[1] <= buffer_len):
        raise CheckpointError(f"{bad} has data_offsets {str(offsets)[:60]} outside the "
                              f"{buffer_len}-byte data buffer (truncated file?)")
    dtype = DTYPES[code]
    nbytes = int(np.prod(shape, dtype=object)) * np.dtype(STORED_DTYPES[dtype]).itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise CheckpointError(f"{bad}: shape {shape} of {code} needs {nbytes} bytes, "
                              f"data_offsets give {offsets[1] - offsets[0]}")
    return dtype, tuple(shape), offsets[0], offsets[1]


def read_safetensors_bytes(data: bytes, max_bytes: int) -> dict:
    """The bytes of a .safetensors file -> {name: np.ndarray}, in the header's order
    (which is the order of the data). BF16 is widened to float32; the arrays may take at
    most max_bytes in total (see limits.py)."""
    if len(data) < 8:
        raise CheckpointError(f"truncated safetensors file: {len(data)} bytes, the header "
                              "length alone takes 8")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(f"corrupted safetensors file: header length {n} is over the "
                              f"{MAX_HEADER_BYTES}-byte limit")
    if 8 + n > len(data):
        raise CheckpointError(f"truncated safetensors file: the header needs {n} bytes, the "
                              f"file has {len(data) - 8} after the length")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"corrupted safetensors header: not valid JSON "
                              f"({str(e)[:120]})") from None
    if not isinstance(header, dict):
        raise CheckpointError("corrupted safetensors header: not a JSON object")
    start, buffer_len = 8 + n, len(data) - 8 - n
    entries = {name: _entry(name, info, buffer_len)
               for name, info in header.items() if name != "__metadata__"}

    # The tensors must tile the buffer: sorted by begin, each starts where the last ended.
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: e[1][2:]):
        if begin != position:
            raise CheckpointError(f"corrupted safetensors file: tensor {name[:60]!r} starts at "
                                  f"byte {begin} of the data, expected {position} (tensors "
                                  "overlap or leave a gap)")
        position = end
    if position != buffer_len:
        raise CheckpointError(f"corrupted safetensors file: the tensors cover {position} bytes "
                              f"of a {buffer_len}-byte data buffer")
    widened = sum(end - begin for dtype, _, begin, end in entries.values() if dtype == "bfloat16")
    if buffer_len + widened > max_bytes:     # bfloat16 doubles in size as float32
        raise limits.over_limit(f"the tensors would take {buffer_len + widened:,} bytes",
                                max_bytes)

    out = {}
    for name, (dtype, shape, begin, end) in entries.items():
        stored = np.dtype(STORED_DTYPES[dtype])
        raw = np.frombuffer(data, dtype=stored, count=(end - begin) // stored.itemsize,
                            offset=start + begin)
        out[name] = decode_elements(raw.reshape(shape).copy(), dtype)
    return out
