"""Reading NumPy .npz archives (``np.savez`` / ``np.savez_compressed``) without pickle, and
without inflating more than the arrays need.

The format
==========
An .npz is a zip archive with one member per array, named ``<name>.npy``: stored by
``np.savez``, deflated by ``np.savez_compressed``. Each member is an .npy file::

    6 bytes   the magic string b"\\x93NUMPY"
    2 bytes   the format version: 1.0 (then a 2-byte header length) or 2.0 (a 4-byte one)
    the header, a Python dict literal padded with spaces:
              {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
    the rest  the array's bytes: prod(shape) * itemsize of them, in C or Fortran order

How it is read
==============
A member's header comes first, so it is read (and inflated) alone; it says how many bytes
the array needs, and the member's declared size must be exactly header + array before a
byte of the array is inflated: a member that declares 1 GiB for a 4-byte array, or an
array the member cannot hold, is refused without work. The arrays together may take at
most ``max_bytes`` (limits.py). Object arrays, which hold pickles, are refused. A corrupt
compressed stream (deflate, bzip2 or lzma) raises CheckpointError, not the codec's error.
"""
from __future__ import annotations

import contextlib
import io
import lzma
import zipfile
import zlib

import numpy as np

from ...errors import CheckpointError
from . import limits
from .torch_pickle import check_zip_member

MAX_HEADER_BYTES = 10_000           # NumPy's own limit for np.load
READERS = {(1, 0): np.lib.format.read_array_header_1_0,
           (2, 0): np.lib.format.read_array_header_2_0}

# What zipfile and the codecs raise for a damaged compressed member (bz2 raises OSError).
_DECOMPRESSION_ERRORS = (zlib.error, lzma.LZMAError, OSError, EOFError, zipfile.BadZipFile,
                         NotImplementedError, RuntimeError)


@contextlib.contextmanager
def _decompression_errors(name):
    try:
        yield
    except CheckpointError:
        raise
    except _DECOMPRESSION_ERRORS as e:
        raise CheckpointError(f"the .npz member for {name[:60]!r} cannot be read "
                              f"({type(e).__name__}: {str(e)[:120]}); the archive is damaged: "
                              "fetch or save it again") from None


def _read_header(member, name):
    """Read the magic string and header of an .npy member -> (header bytes, dtype, shape,
    fortran order)."""
    start = member.read(8)
    if start[:6] != b"\x93NUMPY":
        raise CheckpointError(f"the .npz member for {name[:60]!r} is not a .npy array")
    version = tuple(start[6:8])
    if version not in READERS:
        raise CheckpointError(f".npy format version {version} of {name[:60]!r} is not "
                              f"supported (tinyinfer reads {', '.join(map(str, READERS))})")
    length_bytes = member.read(2 if version == (1, 0) else 4)
    length = int.from_bytes(length_bytes, "little")
    if length > MAX_HEADER_BYTES:
        raise CheckpointError(f"the .npy header of {name[:60]!r} claims {length} bytes; "
                              f"NumPy writes at most {MAX_HEADER_BYTES}: the file is damaged")
    header = start + length_bytes + member.read(length)
    f = io.BytesIO(header)
    np.lib.format.read_magic(f)
    shape, fortran, dtype = READERS[version](f)
    return header, dtype, shape, fortran


def read_npz_bytes(data: bytes, max_bytes: int) -> dict:
    """The bytes of an .npz archive -> {name: C-contiguous native-endian ndarray}, in the
    archive's order."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    out, total = {}, 0
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            raise CheckpointError(f"an .npz member {info.filename[:60]!r} is not a .npy array")
        name = info.filename[:-len(".npy")]
        if name in out:
            raise CheckpointError(f"corrupted .npz: array {name[:60]!r} appears twice")
        check_zip_member(info, len(data), stored_only=False)
        with _decompression_errors(name), zf.open(info) as member:
            header, dtype, shape, fortran = _read_header(member, name)
            if dtype.kind not in "biuf" or dtype.fields is not None:
                raise CheckpointError(f"array {name[:60]!r} has dtype {dtype}; tinyinfer reads "
                                      "numeric arrays only (never pickled objects)")
            count = int(np.prod(shape, dtype=object))
            nbytes = count * dtype.itemsize
            if len(header) + nbytes != info.file_size:
                raise CheckpointError(f"corrupted .npz: array {name[:60]!r} of shape {shape} "
                                      f"needs {len(header) + nbytes} bytes with its header, its "
                                      f"member declares {info.file_size}")
            total += nbytes
            if total > max_bytes:
                raise limits.over_limit(f"the arrays would take more than {total:,} bytes",
                                        max_bytes)
            raw = member.read(nbytes)
        if len(raw) != nbytes or zlib.crc32(raw, zlib.crc32(header)) != info.CRC:
            raise CheckpointError(f"corrupted .npz: array {name[:60]!r} is truncated or its "
                                  "checksum does not match; fetch or save it again")
        array = np.frombuffer(raw, dtype=dtype, count=count)
        array = array.reshape(shape, order="F" if fortran else "C")
        out[name] = np.array(array, order="C").astype(dtype.newbyteorder("="), copy=False)
    return out
