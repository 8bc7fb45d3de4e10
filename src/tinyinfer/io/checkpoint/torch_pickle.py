"""Reading PyTorch checkpoints (``torch.save`` files: .pth, .pt, .bin) without torch and
without running any code the file names.

What ``torch.save`` writes
==========================
``torch.save(obj, f)`` pickles ``obj`` -- for a checkpoint, a state dict: an OrderedDict
from parameter name to tensor -- but keeps tensor *data* out of the pickle. A tensor is
pickled as a call that rebuilds it::

    torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
                                    requires_grad, backward_hooks[, metadata])

``storage`` is a flat, 1-D buffer of one dtype. The tensor is a strided view into it:
``storage_offset``, ``size`` and ``stride`` count *elements*, not bytes, so element
``[i, j]`` lives at ``storage[offset + i*stride[0] + j*stride[1]]``. Several tensors may
share one storage (``{'a': t, 'b': t[1:, ::2]}`` saves one storage and two views of it).
``metadata`` is a dict of flags, e.g. ``{'neg': True}`` for a lazily negated view whose
storage holds the values *before* negation. A ``torch.nn.Parameter`` adds a wrapper call,
``torch._utils._rebuild_parameter(tensor, requires_grad, hooks)``. Dtypes that have no
legacy storage class (uint16, float8, ...) use ``_rebuild_tensor_v3(..., dtype)`` on an
untyped (byte) storage. tinyinfer reads the dtypes in ``STORED_DTYPES`` and refuses the
rest (complex, quantized, sparse, float8, uint16+) with a message saying so.

The storage itself is not in the pickle: the pickler writes a *persistent id* (a tuple)
in its place, and the loader's ``persistent_load`` turns that tuple back into a storage.
Its ``storage_type`` is a class that names the dtype: torch.FloatStorage (float32),
HalfStorage (float16), BFloat16Storage, DoubleStorage (float64), LongStorage (int64),
IntStorage (int32), ShortStorage (int16), CharStorage (int8), ByteStorage (uint8),
BoolStorage, or torch.storage.UntypedStorage (bytes). Where the bytes are depends on the
container, of which there are two:

1. **zip** (the default since PyTorch 1.6). A zip archive whose members (stored, not
   compressed, and 64-byte aligned) all sit under one folder named after the file::

       archive/data.pkl             the pickle
       archive/byteorder            b"little" or b"big" (absent in old files: little)
       archive/data/0, data/1, ...  one member per storage, its raw bytes
       archive/version, .format_version, .storage_alignment, .data/serialization_id

   persistent id: ``('storage', storage_type, key, location, numel)``; the bytes are the
   member ``data/<key>``, numel elements of storage_type's dtype (``location`` is the
   device, e.g. 'cpu' or 'cuda:0'; we read everything onto the CPU).

2. **legacy** (before 1.6, or ``_use_new_zipfile_serialization=False``). One stream of
   five pickles followed by the raw storages::

       pickle  magic number 0x1950a86a20f9469cfc6c
       pickle  protocol version 1001
       pickle  sys_info {'protocol_version': 1001, 'little_endian': True, 'type_sizes': ..}
       pickle  the object itself
       pickle  list of storage keys, in the order their bytes follow
       then, for each key: int64 little-endian element count, then count*itemsize bytes

   persistent id: ``('storage', storage_type, root_key, location, numel, view_metadata)``
   where view_metadata is None or, in files from very old versions, ``(view_key, offset,
   size)``: a storage that is elements [offset, offset+size) of root_key's storage.
   torch writes the raw bytes little-endian whatever the machine (sys_info is ignored).

Safety
======
Unpickling is running a small program: ``GLOBAL module name`` imports anything and
``REDUCE`` calls it, so ``pickle.load`` on a hostile .pth runs ``os.system``. Here the
``pickle.Unpickler`` subclass's ``find_class`` only ever returns tinyinfer's own inert
stand-ins for the handful of globals a plain state dict needs (``ALLOWED_GLOBALS``);
every other name raises CheckpointError before anything is called. The stand-ins only
build descriptions (``StorageRef``, ``TensorRef``); arrays are cut out after the whole
pickle has been read, and every size, offset and stride is checked against the bytes that
are really there before ``np.lib.stride_tricks.as_strided`` looks at them. Before unpickling,
``pickletools.genops`` walks the opcodes once to find where the pickle ends and to refuse
what would make CPython's unpickler allocate gigabytes or crash (``_scan_pickle``). A zip's
members must be stored, as torch.save writes them, so nothing is inflated; limits.py bounds
the rest.
"""
from __future__ import annotations

import collections
import io
import pickle
import pickletools
import re
import zipfile

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...errors import CheckpointError
from . import limits

# dtype name -> how its elements are stored (little-endian). bfloat16 is read as its raw
# 16 bits and widened to float32; bool is read as bytes and compared with 0.
STORED_DTYPES = {
    "float32": "<f4", "float16": "<f2", "bfloat16": "<u2", "float64": "<f8",
    "int64": "<i8", "int32": "<i4", "int16": "<i2", "int8": "i1", "uint8": "u1",
    "bool": "u1",
}
SUPPORTED_DTYPES = ", ".join(STORED_DTYPES)

# torch storage class name -> dtype name
STORAGE_TYPES = {
    "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "DoubleStorage": "float64", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool",
}

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_DIMS = 64                 # NumPy's limit
MAX_INDEX = 2 ** 62           # sizes, strides, offsets and numels beyond this are corrupt
MAX_AMPLIFICATION = 4         # output bytes <= 4 x storage bytes + 256 MiB (aliases, bf16)
DEFLATE_MAX_RATIO = 1032      # deflate cannot expand data more than this


def decode_elements(raw: np.ndarray, dtype: str) -> np.ndarray:
    """A C-contiguous array of stored elements (either byte order) -> the native array
    the caller gets: bfloat16 widened to float32 (exactly: its 16 bits are the high half of
    a float32), bool from bytes, everything else in native byte order."""
    if dtype == "bfloat16":
        wide = raw.astype(np.uint32)
        wide <<= 16            # in place: a ufunc on a 0-d array would return a scalar
        return wide.view(np.float32)
    if dtype == "bool":
        return np.asarray(raw != 0)
    return raw.astype(raw.dtype.newbyteorder("="), copy=False)


# ---------------------------------------------------------------------------------------
# What the stand-ins build. Pickle's BUILD opcode would set attributes on any object it is
# handed; every class here refuses, so a file cannot tamper with them.

class _Inert:
    __slots__ = ()

    def __setstate__(self, state):
        raise CheckpointError("refusing to load: the pickle tries to set attributes on "
                              f"a {type(self).__name__}, which torch.save never does; "
                              "this file may be malicious")


class StandIn(_Inert):
    """What find_class returns for an allowed global: a callable of our own."""
    __slots__ = ("qualname", "function")

    def __init__(self, qualname, function):
        self.qualname, self.function = qualname, function

    def __call__(self, *args):
        return self.function(*args)

    def __repr__(self):
        return f"<tinyinfer stand-in for {self.qualname}>"


class StorageType(_Inert):
    """Stand-in for torch.FloatStorage & co: only names a dtype."""
    __slots__ = ("qualname", "dtype")

    def __init__(self, qualname, dtype):
        self.qualname, self.dtype = qualname, dtype


class DType(_Inert):
    """Stand-in for torch.float32 & co."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


class StorageRef(_Inert):
    """A storage named by a persistent id: numel elements of dtype. ``data`` (bytes) is
    filled in when the container's bytes are read; a legacy view has a ``base`` storage
    and covers base elements [view_offset, view_offset + numel)."""
    __slots__ = ("key", "dtype", "numel", "data", "base", "view_offset")

    def __init__(self, key, dtype, numel, data=None, base=None, view_offset=0):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.data, self.base, self.view_offset = data, base, view_offset


class TensorRef(_Inert):
    """A tensor to be cut out of a storage: offset, size, stride in elements of dtype."""
    __slots__ = ("storage", "offset", "size", "stride", "dtype", "neg")

    def __init__(self, storage, offset, size, stride, dtype, neg=False):
        self.storage, self.offset, self.size = storage, offset, size
        self.stride, self.dtype, self.neg = stride, dtype, neg


def _index(value, what):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INDEX:
        raise CheckpointError(f"corrupted checkpoint: a tensor's {what} is {_short(value)}, "
                              "not an integer in [0, 2**62]")
    return value


def _dims(values, what):
    if not isinstance(values, (tuple, list)) or len(values) > MAX_DIMS:
        raise CheckpointError(f"corrupted checkpoint: a tensor's {what} is {_short(values)}, "
                              f"not a tuple of at most {MAX_DIMS} integers")
    return tuple(_index(v, what) for v in values)


def _short(value):
    """Describe an untrusted value without repr()-ing something huge or deeply nested."""
    if isinstance(value, (float, bool, type(None))):
        return repr(value)
    if isinstance(value, int):   # str() of a 5000-digit int raises; do not go near it
        return repr(value) if value.bit_length() <= 128 else "a huge integer"
    if isinstance(value, str):
        return repr(value[:60])
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------
# The stand-in functions, with torch._utils's signatures.

def _rebuild_tensor(storage, storage_offset, size, stride):
    if not isinstance(storage, StorageRef):
        raise CheckpointError("corrupted checkpoint: a tensor is rebuilt from "
                              f"{_short(storage)} instead of a storage")
    size, stride = _dims(size, "size"), _dims(stride, "stride")
    if len(size) != len(stride):
        raise CheckpointError(f"corrupted checkpoint: a tensor has {len(size)} sizes but "
                              f"{len(stride)} strides")
    return TensorRef(storage, _index(storage_offset, "storage offset"), size, stride,
                     storage.dtype)


def _with_metadata(tensor, metadata):
    if metadata is None:
        return tensor
    if not isinstance(metadata, dict):
        raise CheckpointError(f"corrupted checkpoint: tensor metadata is {_short(metadata)}")
    for key, value in metadata.items():
        if key == "neg" and value:
            if tensor.dtype == "bool":
                raise CheckpointError("corrupted checkpoint: a bool tensor marked negated")
            tensor.neg = not tensor.neg
        elif value:  # 'conj' (complex only) and flags we do not know would change values
            raise CheckpointError(f"unsupported tensor flag {_short(key)} in the checkpoint; "
                                  "save tensor.resolve_conj().resolve_neg() instead")
    return tensor


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _with_metadata(_rebuild_tensor(storage, storage_offset, size, stride), metadata)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    tensor = _rebuild_tensor(storage, storage_offset, size, stride)
    if not isinstance(dtype, DType):
        raise CheckpointError(f"corrupted checkpoint: tensor dtype is {_short(dtype)}")
    if dtype.name != storage.dtype and storage.dtype != "uint8":
        raise CheckpointError(f"corrupted checkpoint: a {dtype.name} tensor on a "
                              f"{storage.dtype} storage")
    tensor.dtype = dtype.name
    return _with_metadata(tensor, metadata)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, TensorRef):
        raise CheckpointError(f"corrupted checkpoint: a Parameter wraps {_short(data)}")
    return data


def _torch_size(dims=()):
    return _dims(dims, "size")


def _allowed_globals():
    table = {("collections", "OrderedDict"):
             StandIn("collections.OrderedDict", collections.OrderedDict),
             ("torch", "Size"): StandIn("torch.Size", _torch_size)}
    for fn in (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter):
        table[("torch._utils", fn.__name__)] = StandIn(f"torch._utils.{fn.__name__}", fn)
    table[("torch._utils", "_rebuild_parameter_with_state")] = StandIn(
        "torch._utils._rebuild_parameter_with_state", _rebuild_parameter)
    for name, dtype in STORAGE_TYPES.items():
        for module in ("torch", "torch.cuda"):  # very old files name the CUDA class
            table[(module, name)] = StorageType(f"{module}.{name}", dtype)
    table[("torch.storage", "UntypedStorage")] = StorageType(   # bytes, for _rebuild_tensor_v3
        "torch.storage.UntypedStorage", "uint8")
    for dtype in STORED_DTYPES:
        table[("torch", dtype)] = DType(dtype)
    return table


ALLOWED_GLOBALS = _allowed_globals()


def _refusal(module, name):
    """Why a global is refused. Nothing refused is ever imported or called."""
    qualname = f"{module}.{name}"
    dtype_like = re.match(r"(u?int|float|complex|qu?int|bits)\d", name)
    tensor_type = (module in ("torch", "torch.cuda")
                   and (name.endswith(("Storage", "Tensor")) or dtype_like)
                   or module == "torch._utils" and name.startswith("_rebuild_"))
    if tensor_type:
        return (f"unsupported checkpoint content: it references {qualname}, a tensor type "
                f"tinyinfer does not read (it reads dense tensors of dtype {SUPPORTED_DTYPES}, "
                "not complex, quantized, sparse, float8 or unsigned >8-bit ones); convert "
                "those tensors (e.g. .float()) and save the state dict again")
    if module.startswith("torch."):
        return (f"refusing to load: the checkpoint references {qualname}, which a plain "
                "state_dict never needs: it pickles whole objects (torch.save(model)?), and "
                "loading those runs code. Save model.state_dict() instead; if the file is not "
                "yours, it may be malicious")
    return (f"refusing to load: the checkpoint references {qualname}, which a plain "
            "state_dict never needs; this file may be malicious")


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves globals only from ALLOWED_GLOBALS and storages only
    through the ``persistent_load`` function it is given."""

    def __init__(self, file, persistent_load=None):
        super().__init__(file, encoding="utf-8")
        self._persistent_load = persistent_load

    def find_class(self, module, name):
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise CheckpointError(_refusal(module, name))
        return found

    def persistent_load(self, pid):
        if self._persistent_load is None:
            raise CheckpointError("corrupted checkpoint: a storage reference where none "
                                  "belongs")
        return self._persistent_load(pid)


# Hashing is where a pickle can hurt CPython: a dict key, set member or frozenset item is
# hashed on insertion, and hashing a tuple hashes its items by recursing in C, with no depth
# check and no caching. So a key of 150,000 nested 1-tuples overflows the C stack and kills
# the process, and a key t40 where t[i+1] = (t[i], t[i]) (shared through the memo: a few
# bytes per level) takes 2**40 steps. Lists and dicts cannot be hashed, so only chains of
# tuples (and frozensets) matter. _TupleTracker follows the unpickler's stack without
# building anything, and bounds their depth and how much of them is reached again through
# the memo (or DUP).
_TUPLE_OPS = {"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "FROZENSET"}
# Calls of a stand-in: torch.Size returns a flat tuple of ints, so each result counts as one.
_CALL_OPS = {"REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_KINDS = {"MEMOIZE": "memoize", "GET": "get", "BINGET": "get", "LONG_BINGET": "get",
          "DUP": "dup", "MARK": "mark", "POP": "pop", **dict.fromkeys(_PUT_OPS, "put"),
          **dict.fromkeys(_TUPLE_OPS, "tuple"), **dict.fromkeys(_CALL_OPS, "call")}


def _stack_effect(op):
    """-> (kind, pops down to the last MARK first?, entries it pops (below that MARK if
    any), entries it pushes), from pickletools' description of the opcode."""
    to_mark = pickletools.markobject in op.stack_before
    below = op.stack_before.index(pickletools.markobject) if to_mark else len(op.stack_before)
    return _KINDS.get(op.name, "other"), to_mark, below, len(op.stack_after)


_STACK_EFFECT = {op: _stack_effect(op) for op in pickletools.opcodes}


class _TupleTracker:
    """The unpickler's stack, simulated: each entry is None, or (depth, nodes) for a tuple:
    how deeply tuples nest in it and how many tuples hashing it visits. MARKs are kept apart,
    as CPython does."""

    def __init__(self, what):
        self.what, self.stack, self.marks, self.memo, self.shared = what, [], [], {}, 0

    def step(self, opcode, arg):
        kind, to_mark, below, pushes = _STACK_EFFECT[opcode]
        stack, marks = self.stack, self.marks
        if kind == "other" and not to_mark:     # most opcodes: nothing to follow but the stack
            if below:
                del stack[-below:]
            if pushes:
                stack.append(None)
            return
        if kind in ("put", "memoize"):
            self.memo[arg if kind == "put" else len(self.memo)] = stack[-1] if stack else None
            return
        if kind == "mark":
            marks.append(len(stack))
            return
        if kind == "pop" and marks and marks[-1] == len(stack):
            marks.pop()        # POP right after a MARK removes the MARK
            return
        if to_mark:
            cut = marks.pop() if marks else 0
            items = stack[cut:]
            cut -= below
        else:
            cut = len(stack) - below
            items = stack[cut:]
        del stack[max(cut, 0):]
        if kind == "tuple":
            parts = [item for item in items if item]
            depth = 1 + max((d for d, _ in parts), default=0)
            if depth > limits.MAX_NESTING:
                raise CheckpointError(f"refusing to load: {self.what} nests tuples more than "
                                      f"{limits.MAX_NESTING} deep (a state dict's tuples "
                                      "nest 2 deep); this file is damaged or malicious")
            stack.append((depth, 1 + sum(n for _, n in parts)))
        elif kind in ("get", "dup"):
            entry = self.memo.get(arg) if kind == "get" else (items[-1] if items else None)
            if entry:
                self.shared += entry[1]
                if self.shared > limits.MAX_SHARED_TUPLES:
                    raise CheckpointError(
                        f"refusing to load: {self.what} refers back to the same tuples so "
                        f"often that hashing them would visit over {limits.MAX_SHARED_TUPLES:,}"
                        " tuples (a state dict shares none); this file is damaged or malicious")
            stack.extend([entry] * pushes)
        elif kind == "call":
            stack.append((1, 1))
        elif pushes:
            stack.append(None)


def _scan_pickle(data, start, what, max_bytes):
    """Walk the opcodes of the pickle at data[start:] without building anything; return
    the offset just past its STOP opcode. What no real pickle does is refused here, before
    CPython's unpickler (which would obey it) sees the bytes:

    * a memo index beyond the number of opcodes so far (a pickler numbers its memo 0, 1,
      2, ...): ``LONG_BINPUT 2**30`` would make CPython allocate gigabytes;
    * more than ``limits.pickle_limit(max_bytes)`` bytes: even opcodes that do nothing take
      time (a few seconds per million here);
    * tuples nested too deep or shared too often (_TupleTracker above)."""
    cap = limits.pickle_limit(max_bytes)
    window = data[start:start + cap]
    stream = io.BytesIO(window)
    tracker = _TupleTracker(what)
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(stream), 1):
            if opcode.name in _PUT_OPS and arg > count:
                raise CheckpointError(f"corrupted {what}: memo index {arg} at opcode "
                                      f"{count}; a real pickle numbers its memo from 0")
            tracker.step(opcode, arg)
    except (ValueError, TypeError, OverflowError) as e:
        if isinstance(e, CheckpointError):
            raise
        if stream.tell() >= len(window) and len(data) - start > cap:
            raise _pickle_too_long(what, max_bytes) from None
        raise CheckpointError(f"corrupted or truncated {what} ({str(e)[:200]}); fetch or "
                              "save the file again") from None
    return start + stream.tell()


def _pickle_too_long(what, max_bytes):
    return limits.over_limit(f"{what} is a pickle of more than {limits.pickle_limit(max_bytes):,}"
                             f" bytes (a pickle may take 1/{limits.PICKLE_SHARE} of the limit)",
                             max_bytes)


def unpickle(data, start, what, max_bytes, persistent_load=None):
    """Unpickle data[start:] safely; return (object, offset just past the pickle)."""
    end = _scan_pickle(data, start, what, max_bytes)
    unpickler = RestrictedUnpickler(io.BytesIO(data[start:end]), persistent_load)
    return unpickler.load(), end


def _storage_type_and_key(pid, length):
    if not isinstance(pid, tuple) or len(pid) != length:
        raise CheckpointError(f"corrupted checkpoint: storage reference {_short(pid)} is not a "
                              f"tuple of {length}")
    kind, storage_type, key = (_text(pid[0]), pid[1], _text(pid[2]))
    if (kind != "storage" or not isinstance(storage_type, StorageType)
            or not isinstance(key, str) or len(key) > 256):
        raise CheckpointError("corrupted checkpoint: malformed storage reference")
    return storage_type, key, _index(pid[4], "storage size")


def _text(value):
    return value.decode("ascii") if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------------------
# The zip format

def check_zip_member(info: zipfile.ZipInfo, archive_size: int, stored_only: bool) -> None:
    """Refuse a member whose flags or declared sizes are impossible, before reading it: an
    encrypted one, a stored one larger than the archive, a deflated one that claims more than
    deflate's maximum expansion (zip bombs declare absurd sizes). With ``stored_only``, any
    compression is refused: torch.save never compresses, and a compressed member could
    inflate to any size."""
    if info.flag_bits & 0x1:
        raise CheckpointError(f"zip member {info.filename[:60]!r} is encrypted; neither "
                              "torch.save nor NumPy encrypts, so the file is damaged")
    if stored_only and info.compress_type != zipfile.ZIP_STORED:
        method = zipfile.compressor_names.get(info.compress_type,
                                              f"method {info.compress_type}")
        raise CheckpointError(f"zip member {info.filename[:60]!r} is compressed ({method}); "
                              "torch.save never compresses, so another tool re-packed this "
                              "file, and tinyinfer reads torch files with stored members only. "
                              "Load it with torch and save the state dict again with "
                              "torch.save")
    ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: DEFLATE_MAX_RATIO}.get(
        info.compress_type)
    if (info.compress_size > archive_size
            or ratio is not None and info.file_size > ratio * info.compress_size + 1024):
        raise CheckpointError(f"corrupted zip: member {info.filename[:60]!r} declares "
                              f"{info.file_size} bytes in {info.compress_size}")


def find_torch_prefix(names):
    """The folder holding data.pkl in a torch zip, or None."""
    prefixes = [n[:-len("/data.pkl")] for n in names
                if n.endswith("/data.pkl") and n.count("/") == 1]
    return prefixes[0] if len(prefixes) == 1 else None


def read_torch_zip(data: bytes, max_bytes: int):
    """A zip-format torch.save file -> (unpickled object with TensorRefs in it, total
    storage bytes, whether the storages are big-endian). Members must be stored (not
    compressed), so nothing read is larger than the file."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = set(zf.namelist())
    prefix = find_torch_prefix(names)
    if prefix is None:
        raise CheckpointError("not a torch checkpoint: the zip archive has no single "
                              "<folder>/data.pkl member")
    if f"{prefix}/constants.pkl" in names or any(n.startswith(f"{prefix}/code/") for n in names):
        raise CheckpointError("this is a TorchScript archive (torch.jit.save), not a state dict; "
                              "save model.state_dict() with torch.save and load that")
    for info in zf.infolist():
        check_zip_member(info, len(data), stored_only=True)
    if zf.getinfo(f"{prefix}/data.pkl").file_size > limits.pickle_limit(max_bytes):
        raise _pickle_too_long("data.pkl", max_bytes)

    def member(name):
        try:
            info = zf.getinfo(f"{prefix}/{name}")
        except KeyError:
            raise CheckpointError(f"corrupted checkpoint: the zip has no member {prefix}/{name}"
                                  " (truncated or incomplete file?)") from None
        return info, zf.read(info)     # zipfile checks the CRC

    big_endian = False
    if f"{prefix}/byteorder" in names:
        order = member("byteorder")[1]
        if order not in (b"little", b"big"):
            raise CheckpointError(f"corrupted checkpoint: byteorder record {order[:20]!r}")
        big_endian = order == b"big"

    storages, read = {}, [0, 0]   # read: compressed bytes, storage bytes

    def persistent_load(pid):
        storage_type, key, numel = _storage_type_and_key(pid, 5)
        if key in storages:
            if storages[key].dtype != storage_type.dtype:
                raise CheckpointError(f"corrupted checkpoint: storage {key} is referenced as "
                                      "two different dtypes")
            return storages[key]
        info, raw = member(f"data/{key}")
        read[0] += info.compress_size
        if read[0] > len(data):
            raise CheckpointError("corrupted zip: its storage members overlap")
        nbytes = numel * np.dtype(STORED_DTYPES[storage_type.dtype]).itemsize
        if len(raw) < nbytes:
            raise CheckpointError(f"corrupted checkpoint: storage {key} should hold {nbytes} "
                                  f"bytes, its zip member has {len(raw)}")
        read[1] += nbytes
        storages[key] = StorageRef(key, storage_type.dtype, numel, raw[:nbytes])
        return storages[key]

    obj, _ = unpickle(member("data.pkl")[1], 0, "data.pkl", max_bytes, persistent_load)
    return obj, read[1], big_endian


# ---------------------------------------------------------------------------------------
# The legacy format

def read_torch_legacy(data: bytes, max_bytes: int):
    """A legacy torch.save stream -> (unpickled object with TensorRefs in it, total storage
    bytes, False: legacy storages are always little-endian)."""
    magic, pos = unpickle(data, 0, "checkpoint header", max_bytes)
    if magic != LEGACY_MAGIC or isinstance(magic, bool):
        raise CheckpointError("not a torch checkpoint: the file is a pickle but does not start "
                              "with torch.save's magic number; tinyinfer reads only torch.save "
                              "files, never arbitrary pickles")
    protocol, pos = unpickle(data, pos, "checkpoint header", max_bytes)
    if protocol != LEGACY_PROTOCOL or isinstance(protocol, bool):
        raise CheckpointError(f"unsupported legacy torch protocol {_short(protocol)} "
                              f"(expected {LEGACY_PROTOCOL})")
    sys_info, pos = unpickle(data, pos, "checkpoint header", max_bytes)
    if not isinstance(sys_info, dict):
        raise CheckpointError("corrupted checkpoint: bad sys_info record")

    roots, views = {}, {}

    def persistent_load(pid):
        storage_type, key, numel = _storage_type_and_key(pid, 6)
        if key not in roots:
            roots[key] = StorageRef(key, storage_type.dtype, numel)
        root = roots[key]
        if root.dtype != storage_type.dtype or root.numel != numel:
            raise CheckpointError(f"corrupted checkpoint: storage {key} is referenced with "
                                  "different dtypes or sizes")
        if pid[5] is None:
            return root
        view = pid[5]
        if (not isinstance(view, tuple) or len(view) != 3 or not isinstance(_text(view[0]), str)
                or len(view[0]) > 256):
            raise CheckpointError("corrupted checkpoint: malformed storage view")
        view_key = _text(view[0])
        if view_key not in views:
            offset, size = _index(view[1], "view offset"), _index(view[2], "view size")
            if offset + size > numel:
                raise CheckpointError(f"corrupted checkpoint: storage view {view_key} runs past "
                                      f"the end of storage {key}")
            views[view_key] = StorageRef(view_key, root.dtype, size, base=root, view_offset=offset)
        return views[view_key]

    obj, pos = unpickle(data, pos, "checkpoint", max_bytes, persistent_load)
    keys, pos = unpickle(data, pos, "storage key list", max_bytes)
    if not isinstance(keys, list) or not all(isinstance(_text(k), str) and len(k) <= 256
                                             for k in keys):
        raise CheckpointError("corrupted checkpoint: the storage key list is malformed")
    total = 0
    for key in map(_text, keys):
        root = roots.get(key)
        if root is None or root.data is not None:
            raise CheckpointError(f"corrupted checkpoint: storage key {key} is unknown "
                                  "or listed twice")
        if pos + 8 > len(data):
            raise CheckpointError(f"truncated checkpoint: the file ends before storage {key}")
        count = int.from_bytes(data[pos:pos + 8], "little", signed=True)
        if count != root.numel:
            raise CheckpointError(f"corrupted checkpoint: storage {key} should hold "
                                  f"{root.numel} elements, the file says {count}")
        nbytes = count * np.dtype(STORED_DTYPES[root.dtype]).itemsize
        if pos + 8 + nbytes > len(data):
            raise CheckpointError(f"truncated checkpoint: storage {key} needs {nbytes} bytes, "
                                  f"the file has {len(data) - pos - 8} left; re-download it")
        root.data = memoryview(data)[pos + 8:pos + 8 + nbytes]
        pos += 8 + nbytes
        total += nbytes
    missing = [k for k, r in roots.items() if r.data is None]
    if missing:
        raise CheckpointError(f"corrupted checkpoint: storage {missing[0]} has no data")
    return obj, total, False


# ---------------------------------------------------------------------------------------
# From the unpickled object to arrays

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network",
                "params", "weights")


def select_state_dict(obj):
    """The state dict inside what torch.save saved -> [(name, TensorRef)].

    A dict with at least one tensor value is the state dict. Otherwise, if it has one of
    WRAPPER_KEYS (tried in that order) whose value is a dict, that dict is looked at the
    same way (up to 4 levels: {'model': {'state_dict': ...}}). Only entries with a str key
    and a tensor value are kept; metadata ('epoch', 'arch', optimizer state...) is dropped.
    If every name starts with 'module.' (nn.DataParallel), that prefix is removed."""
    for _ in range(4):
        if not isinstance(obj, dict):
            what = "a single tensor" if isinstance(obj, TensorRef) else _short(obj)
            raise CheckpointError(f"the checkpoint holds {what}, not a state dict "
                                  "(a dict of name -> tensor); save model.state_dict()")
        if any(isinstance(v, TensorRef) for v in obj.values()):
            break
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            keys = ", ".join(_short(k) for k in list(obj)[:10])
            raise CheckpointError(f"the checkpoint has no tensors: it is a dict with keys "
                                  f"[{keys}] and none of them is a state dict (tried "
                                  f"{', '.join(WRAPPER_KEYS)})")
        obj = inner
    else:
        raise CheckpointError("the checkpoint has no state dict within 4 levels of nesting")
    items = [(k, v) for k, v in obj.items() if isinstance(k, str) and isinstance(v, TensorRef)]
    if items and all(k.startswith("module.") for k, _ in items):
        items = [(k[len("module."):], v) for k, v in items]
    return items


def _storage_bytes(storage):
    if storage.base is None:
        return storage.data
    item = np.dtype(STORED_DTYPES[storage.dtype]).itemsize
    start = storage.view_offset * item
    return storage.base.data[start:start + storage.numel * item]


def materialize(name, ref: TensorRef, big_endian=False) -> np.ndarray:
    """Cut the tensor out of its storage bytes (bounds checked) into a new C-contiguous,
    native-endian array."""
    stored = np.dtype(STORED_DTYPES[ref.dtype])
    if big_endian:
        stored = stored.newbyteorder(">")
    raw = _storage_bytes(ref.storage)
    elements = np.frombuffer(raw, dtype=stored, count=len(raw) // stored.itemsize)
    if 0 in ref.size:
        out = np.empty(ref.size, dtype=stored)
    else:
        extent = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride)) + 1
        if extent > elements.size:
            raise CheckpointError(f"corrupted checkpoint: tensor {name!r} needs elements up to "
                                  f"{extent} of its storage, which holds {elements.size}")
        view = as_strided(elements[ref.offset:], shape=ref.size,
                          strides=[s * stored.itemsize for s in ref.stride], writeable=False)
        out = np.array(view, order="C")
    out = decode_elements(out, ref.dtype)
    if ref.neg:
        np.negative(out, out=out)
    return out


def read_torch_bytes(data: bytes, max_bytes: int) -> dict:
    """The bytes of a torch.save file (either format) -> {name: np.ndarray}; the arrays may
    take at most max_bytes in total (see limits.py)."""
    if data[:4] == b"PK\x03\x04":
        obj, storage_bytes, big_endian = read_torch_zip(data, max_bytes)
    else:
        obj, storage_bytes, big_endian = read_torch_legacy(data, max_bytes)
    items = select_state_dict(obj)
    out_bytes = sum(int(np.prod(ref.size, dtype=object)) * (4 if ref.dtype == "bfloat16" else
                    np.dtype(STORED_DTYPES[ref.dtype]).itemsize) for _, ref in items)
    if out_bytes > MAX_AMPLIFICATION * storage_bytes + 2 ** 28:
        raise CheckpointError(f"refusing to load: the tensors would take {out_bytes} bytes from "
                              f"{storage_bytes} bytes of storage (broadcast or aliased views "
                              "repeated many times); this file may be malicious")
    if out_bytes > max_bytes:
        raise limits.over_limit(f"the tensors would take {out_bytes:,} bytes", max_bytes)
    return {name: materialize(name, ref, big_endian) for name, ref in items}
