"""Checkpoint files that a fuzzing run (issue 12) found refused though valid, crashing or
hanging the process, or making it allocate gigabytes; each must now be read, or refused
with one clear CheckpointError, quickly and in bounded memory. The hostile files are
crafted from lying headers or small compressed streams: no test allocates more than a few
tens of MB."""
import io
import os
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
import torchvision

import tinyinfer
from test_checkpoint import (assert_exact, legacy_header, make_tensor, replace_zip_members,
                             small_state, torch_bytes)
from tinyinfer.io import convert
from tinyinfer.io.checkpoint import (CheckpointError, detect_format, limits, read_checkpoint,
                                  read_npz)
from tinyinfer.errors import InputError, WeightsMismatchError

ENV = limits.ENV_VAR
MiB = 2 ** 20


def refused_quickly(data, match, max_seconds=5.0, max_peak=16 * MiB, **kwargs):
    """read_checkpoint(data) must raise CheckpointError matching ``match`` within
    max_seconds, with at most max_peak bytes allocated (as tracemalloc counts them) on the
    way: nothing was inflated or copied wholesale."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(CheckpointError, match=match) as e:
            read_checkpoint(data, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < max_seconds
    assert peak < max_peak, f"{peak / MiB:.0f} MiB allocated"
    return str(e.value)


def repack(data, compression):
    """The same zip archive with every member compressed with ``compression``."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()


def garble_member(data, name):
    """Overwrite 16 bytes of a member's compressed stream (just past an LZMA member's
    9-byte properties header), leaving the zip's records intact."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    at = info.header_offset
    start = at + 30 + int.from_bytes(data[at + 26:at + 28], "little") \
        + int.from_bytes(data[at + 28:at + 30], "little")
    return data[:start + 9] + b"\xff" * 16 + data[start + 25:]


def npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def zip_with_streamed_member(members, big_name, compression, chunks):
    """A zip archive of ``members`` (name -> bytes, stored) in which member ``big_name`` is
    written from the ``chunks`` iterable, compressed as it streams: a member that inflates
    to many MB is built without ever holding it whole."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in members.items():
            if name != big_name:
                z.writestr(name, content)
                continue
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            with z.open(info, "w", force_zip64=True) as f:
                for chunk in chunks:
                    f.write(chunk)
    return out.getvalue()


# ------------------------------------------------------------------ 1. format detection

def test_safetensors_of_every_header_length_is_recognised():
    """The header length's low byte was taken for pickle's PROTO opcode when it was 0x80."""
    first_bytes = set()
    for n in range(1, 300):    # safetensors pads its header to a multiple of 8: 32 low bytes
        name = "w" * n
        data = safetensors.numpy.save({name: np.full(2, n, np.float32)})
        first_bytes.add(data[0])
        assert detect_format(data) == "safetensors", n
        got = read_checkpoint(data)
        assert list(got) == [name] and np.array_equal(got[name], [n, n])
    assert first_bytes == set(range(0, 256, 8))
    assert detect_format(torch_bytes(small_state(), "legacy")) == "torch-legacy"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_mobilenet_v2_saved_in_half_precision(dtype, tmp_path):
    torch.manual_seed(0)
    sd = {k: v.to(dtype) if v.is_floating_point() else v
          for k, v in torchvision.models.mobilenet_v2().state_dict().items()}
    path = tmp_path / "mobilenet_v2.safetensors"
    safetensors.torch.save_file(sd, path)
    assert path.read_bytes()[0] == 0x80        # the real file that was refused
    got = read_checkpoint(path)
    assert sorted(got) == sorted(sd)
    for k, v in sd.items():
        assert_exact(got[k], v, k)
    assert tinyinfer.load("mobilenet_v2", weights=path).graph is not None


# ------------------------------------------------------------------ 4. pickles CPython
# cannot hash: a crash (C stack overflow) or an exponential hang. Read in a subprocess, so
# that a regression kills the subprocess, not pytest.

DEEP = b"N" + b"\x85" * 150_000       # None inside 150,000 nested 1-tuples (TUPLE1)


def shared_tuples(levels=40):
    """t[i+1] = (t[i], t[i]) through the memo: 8 bytes per level, 2**levels to hash."""
    code = b"N\x85q\x000"                                  # t0 = (None,); BINPUT 0; POP
    for i in range(levels):
        code += b"h%ch%c\x86q%c0" % (i, i, i + 1)          # BINGET i twice, TUPLE2, BINPUT
    return code + b"h%c" % levels


HASHED = {  # pickle (protocol 2 or 4) -> where CPython hashes the tuples
    "dict_key": b"\x80\x02}" + DEEP + b"K\x01s.",                       # {t: 1}
    "set_member": b"\x80\x04\x8f(" + DEEP + b"\x90.",                    # {t}
    "frozenset": b"\x80\x04(" + DEEP + b"\x91.",                         # frozenset({t})
    "ordereddict_pair": (b"\x80\x02ccollections\nOrderedDict\n]" + DEEP  # OrderedDict([(t, 1)])
                         + b"K\x01\x86a\x85R."),
    "shared_dict_key": b"\x80\x02}" + shared_tuples() + b"K\x01s.",
    # t = (torch.Size(()),) * 2000, then {t: 1} set 2000 times: 4 million steps (or, at
    # the 4 MiB a pickle may take, 10**11)
    "shared_sizes_dict_key": (b"\x80\x02ctorch\nSize\nq\x000(" + b"h\x00)\x85R" * 2000
                              + b"tq\x010}" + b"h\x01K\x01s" * 2000 + b"."),
}


def hostile_file(pickle_bytes, container):
    if container == "zip":
        return replace_zip_members(torch_bytes(small_state(), "zip"),
                                   {"archive/data.pkl": pickle_bytes})
    return legacy_header() + pickle_bytes + b"\x80\x02]."


def test_pickles_that_crash_or_hang_when_hashed_are_refused(tmp_path):
    paths = []
    for container in ["zip", "legacy"]:
        for name, code in HASHED.items():
            paths.append(tmp_path / f"{name}.{container}.pth")
            paths[-1].write_bytes(hostile_file(code, container))
    script = ("import sys\nfrom tinyinfer.io.checkpoint import CheckpointError, read_checkpoint\n"
              "for path in sys.argv[1:]:\n"
              "    try:\n        read_checkpoint(path)\n        print(path, 'read')\n"
              "    except CheckpointError as e:\n        print(path, e, flush=True)\n")
    run = subprocess.run([sys.executable, "-c", script, *map(str, paths)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])   # -11: segfault
    lines = run.stdout.splitlines()
    assert len(lines) == len(paths)
    for path, line in zip(paths, lines):
        why = ("refers back to the same tuples" if path.name.startswith("shared")
               else "nests tuples more than 100 deep")
        assert line.startswith(str(path)) and why in line and "malicious" in line, line


def test_deep_tuple_key_on_the_command_line(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(hostile_file(HASHED["dict_key"], "zip"))
    run = subprocess.run([sys.executable, "-m", "tinyinfer.io.convert", str(path),
                          str(tmp_path / "out.npz")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert run.stderr.count("\n") == 1 and "nests tuples more than 100 deep" in run.stderr
    assert not (tmp_path / "out.npz").exists()


def test_state_dict_pickles_pass_the_tuple_bounds():
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2()
    optimizer = torch.optim.Adam(model.parameters())
    for p in model.parameters():       # a training step's worth of optimizer state
        p.grad = torch.ones_like(p)
    optimizer.step()
    checkpoint = {"epoch": 3, "state_dict": model.state_dict(), "optimizer":
                  optimizer.state_dict(), "config": {"sizes": ((1, 2), ((3,), (4, 5)))}}
    for fmt in ["zip", "legacy"]:
        assert len(read_checkpoint(torch_bytes(checkpoint, fmt))) == len(model.state_dict())


# ------------------------------------------------------------------ 5. compressed members

@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                         zipfile.ZIP_LZMA])
def test_torch_zip_with_compressed_members_is_refused(compression):
    data = repack(torch_bytes(small_state(), "zip"), compression)
    method = zipfile.compressor_names[compression]
    with pytest.raises(CheckpointError, match=rf"is compressed \({method}\).*torch\.save"):
        read_checkpoint(data)
    with pytest.raises(CheckpointError, match="is compressed"):   # before any decompression
        read_checkpoint(garble_member(data, "archive/data.pkl"))


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                         zipfile.ZIP_LZMA])
def test_npz_with_compressed_members(compression):
    arrays = {"w": np.arange(1000, dtype=np.float32), "b": np.ones((2, 3))}
    data = repack(npz_bytes(**arrays), compression)
    got = read_checkpoint(data)
    assert list(got) == list(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and np.array_equal(got[k], a)
    with pytest.raises(CheckpointError, match="member for 'w' cannot be read.*damaged"):
        read_checkpoint(garble_member(data, "w.npy"))


# ------------------------------------------------------------------ 6. decompression bombs
# and the limit: the files inflated to 1 GB; these inflate to 64 MiB (enough to see
# in tracemalloc's peak) from streams of ~64 KB.

def zeros(total, chunk=MiB):
    return (bytes(chunk) for _ in range(total // chunk))


def test_torch_zip_bomb_members_are_refused_before_inflating():
    files = zipfile.ZipFile(io.BytesIO(torch_bytes({"w": torch.zeros(1)}, "zip")))
    members = {info.filename: files.read(info) for info in files.infolist()}
    no_ops = [b"\x80\x02"] + [b"N0" * (MiB // 2)] * 64 + [b"}."]   # 64 MiB pickle of no-ops
    pickle_bomb = zip_with_streamed_member(members, "archive/data.pkl", zipfile.ZIP_DEFLATED,
                                           no_ops)
    storage_bomb = zip_with_streamed_member(members, "archive/data/0", zipfile.ZIP_DEFLATED,
                                            zeros(64 * MiB))
    for bomb in (pickle_bomb, storage_bomb):
        assert len(bomb) < MiB
        refused_quickly(bomb, r"is compressed \(deflate\)")


def test_npz_member_declaring_more_than_its_array_is_not_inflated():
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (1,)})
    tail = zeros(64 * MiB)          # the member goes on 64 MiB past its 4-byte array
    bomb = zip_with_streamed_member({"w.npy": None}, "w.npy", zipfile.ZIP_DEFLATED,
                                    [header.getvalue() + bytes(4), *tail])
    assert len(bomb) < MiB
    refused_quickly(bomb, "needs 132 bytes with its header, its member declares 67108996")


def test_npz_arrays_over_the_limit_are_not_inflated(monkeypatch):
    buf = io.BytesIO()
    np.savez_compressed(buf, w=np.zeros(2 ** 20, np.float32))      # 4 MiB in ~4 KB
    data = buf.getvalue()
    message = refused_quickly(data, "the arrays would take more than 4,194,304 bytes; the "
                              "limit is 1,048,576 bytes", max_bytes=MiB, max_peak=2 * MiB)
    assert "max_bytes=N" in message and ENV in message
    monkeypatch.setenv(ENV, str(MiB))
    refused_quickly(data, "limit is 1,048,576 bytes", max_peak=2 * MiB)
    monkeypatch.setenv(ENV, str(8 * MiB))
    assert read_checkpoint(data)["w"].shape == (2 ** 20,)
    assert read_npz(data, max_bytes=8 * MiB)["w"].shape == (2 ** 20,)


@pytest.mark.parametrize("fmt", ["zip", "legacy", "safetensors"])
def test_bfloat16_widened_over_the_limit(fmt):
    sd = {"w": make_tensor(torch.bfloat16, (2 ** 16,))}        # 128 KiB, 256 KiB as float32
    data = safetensors.torch.save(sd) if fmt == "safetensors" else torch_bytes(sd, fmt)
    with pytest.raises(CheckpointError, match="the tensors would take 262,144 bytes"):
        read_checkpoint(data, max_bytes=200_000)
    assert_exact(read_checkpoint(data, max_bytes=300_000)["w"], sd["w"])


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_pickle_over_its_share_of_the_limit(fmt, monkeypatch):
    """A pickle may take 1/1024 of the limit: 4 MiB by default, 16 KiB here."""
    no_ops = b"\x80\x02" + b"N0" * 2 ** 17 + b"}."            # 256 KiB doing nothing
    if fmt == "zip":
        data = replace_zip_members(torch_bytes({"w": torch.zeros(1)}, "zip"),
                                   {"archive/data.pkl": no_ops})
    else:
        data = legacy_header() + no_ops + b"\x80\x02]."
    why = r"is a pickle of more than 16,384 bytes \(a pickle may take 1/1024 of the limit\)"
    refused_quickly(data, why, max_seconds=2, max_bytes=16 * MiB)
    monkeypatch.setenv(ENV, str(16 * MiB))
    refused_quickly(data, why, max_seconds=2)
    monkeypatch.delenv(ENV)
    with pytest.raises(CheckpointError, match="no tensors"):    # within the default limit
        read_checkpoint(data)


# ------------------------------------------------------------------ 9. what is read at all

def test_huge_sparse_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.pth"
    with open(path, "wb") as f:
        f.truncate(50 * 10 ** 9)       # 50 GB that take no disk space
    message = refused_quickly(path, "is 50,000,000,000 bytes; the limit is 4,294,967,296",
                              max_seconds=1, max_peak=MiB)
    assert ENV in message


def test_a_file_is_read_without_allocating_the_limit(tmp_path):
    path = tmp_path / "small.pth"
    path.write_bytes(torch_bytes(small_state(), "zip"))
    tracemalloc.start()
    try:
        assert len(read_checkpoint(path)) == 6
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MiB        # not read(4 GiB): that allocates 4 GiB before reading


def test_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.pth"
    os.mkfifo(path)
    outcome = []

    def read():
        try:
            read_checkpoint(path)
        except CheckpointError as e:
            outcome.append(str(e))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(30)
    if reader.is_alive():       # blocked waiting for a writer: be one, so the thread ends
        open(path, "wb").close()
        reader.join(30)
        pytest.fail("reading a FIFO blocked")
    assert outcome and "not a regular file" in outcome[0]


def test_bytes_over_the_limit_and_bad_limits(monkeypatch):
    with pytest.raises(CheckpointError, match="given as bytes.* is 100 bytes; the limit is 10"):
        read_checkpoint(b"x" * 100, max_bytes=10)
    for bad in (0, -5, 1.5, True, "1000"):
        with pytest.raises(InputError, match="not a positive integer"):
            read_checkpoint(b"x", max_bytes=bad)
    monkeypatch.setenv(ENV, "lots")
    with pytest.raises(InputError, match=f"{ENV}='lots' is not a number of bytes"):
        read_checkpoint(b"x")


# ------------------------------------------------------------------ 11. state dicts given
# as dicts, and key names in errors

def test_state_dict_entries_must_be_str_keys_and_arrays():
    state = {1: np.zeros(3), "features.0.0.weight": [1.0, 2.0], "name": "text",
             "ok": np.zeros(2), (2, 3): np.ones(1)}
    with pytest.raises(InputError) as e:
        tinyinfer.load("mobilenet_v3_small", weights=state)
    text = str(e.value)
    assert "keys that are not str (2):\n    1\n    (2, 3)" in text
    assert "values that are not arrays (2):\n    features.0.0.weight: list\n    name: str" in text
    torch.manual_seed(0)       # torch tensors are arrays too; ones that need grad are explained
    model = torchvision.models.mobilenet_v3_small()
    assert tinyinfer.load("mobilenet_v3_small", weights=model.state_dict()).graph is not None
    with pytest.raises(InputError, match=r"cannot be read as an array.*detach\(\)\.numpy\(\)"):
        tinyinfer.load("mobilenet_v3_small", weights=dict(model.named_parameters(), **{
            k: v for k, v in model.state_dict().items() if "running" in k}))


def test_mismatch_error_escapes_and_cuts_key_names():
    evil = "\x1b[2J\x1b[31mgotcha" + "x" * 100_000
    state = {evil: np.zeros(1), **{f"extra.{i}\n": np.zeros(1) for i in range(50)}}
    with pytest.raises(WeightsMismatchError) as e:
        tinyinfer.load("mobilenet_v3_small", weights=state)
    text = str(e.value)
    assert "\\x1b[2J\\x1b[31mgotcha" in text and f"... ({len(evil):,} characters)" in text
    assert "extra.0\\n" in text and "... and 39 more" in text
    assert all(line.isprintable() for line in text.splitlines()) and len(text) < 5000


def test_convert_reports_an_unreadable_checkpoint_in_one_line(tmp_path, capsys):
    path = tmp_path / "repacked.pth"
    path.write_bytes(repack(torch_bytes(small_state(), "zip"), zipfile.ZIP_DEFLATED))
    assert convert.main([str(path), str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m tinyinfer.io.convert: error: ") and err.count("\n") == 1
    assert "is compressed (deflate)" in err
