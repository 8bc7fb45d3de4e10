"""The latency table's checks (`tinyinfer latency-table --check`, latency_table.check): each
network timed whole as the entries are timed (one warm-up, fastest of ``runs``), recorded
beside the table's prediction; a network whose nodes the table lacks lists them and predicts
nothing; a rerun replaces its record; bad input is one line on stderr.

The record tests use a made-up table and a fixed whole-network time (monkeypatched), so
every expected value is known in advance; the CLI tests time real kernels on tiny inputs."""
import json

import numba
import pytest

import tinyinfer
from tinyinfer.analysis import latency_table as lt
from tinyinfer.analysis import machine
from tinyinfer.analysis.latency_table import LatencyTable, check, graph_keys
from tinyinfer.cli import main as cli
from tinyinfer.errors import InputError

SHAPE = (1, 3, 64, 64)


@pytest.fixture(autouse=True)
def _quiet_machine(monkeypatch):
    """No load warning on stderr (the busy CI machine would add one): stderr is the error."""
    monkeypatch.setattr(machine, "busy_note", lambda: None)


def _made_up_table(name):
    keys = sorted({k for _, _, k in graph_keys(tinyinfer.build(name).plan, SHAPE)})
    return LatencyTable({k: 0.5 + i / 9 for i, k in enumerate(keys)})


def _fixed_time(monkeypatch, seconds):
    monkeypatch.setattr(lt, "time_network", lambda model, shape, runs: seconds)


def test_a_record_holds_prediction_measurement_and_conditions(monkeypatch):
    table = _made_up_table("squeezenet1_1")
    _fixed_time(monkeypatch, 0.0125)
    [rec] = check(table, ["squeezenet1_1"], runs=3, resolution=64, log=lambda m: None)
    want = sum(table.entries[k] for _, _, k in
               graph_keys(tinyinfer.load("squeezenet1_1", weights=None).plan, SHAPE))
    assert rec["predicted_ms"] == pytest.approx(want, abs=5e-4)
    assert rec["measured_ms"] == 12.5 and rec["missing"] == [] and rec["input"] == list(SHAPE)
    # error_pct follows from the record's own fields (to its rounding, 0.05)
    assert rec["error_pct"] == pytest.approx(
        100 * (rec["predicted_ms"] - rec["measured_ms"]) / rec["measured_ms"], abs=0.051)
    assert rec["numba_threads"] == numba.get_num_threads() and rec["runs"] == 3
    assert {"load_average", "date", "machine", "measured"} <= set(rec)
    assert table.checks == [rec]


def test_missing_nodes_are_listed_and_nothing_is_predicted(monkeypatch):
    table = _made_up_table("squeezenet1_1")
    nodes = graph_keys(tinyinfer.load("squeezenet1_1", weights=None).plan, SHAPE)
    dropped = nodes[3][2]
    del table.entries[dropped]
    _fixed_time(monkeypatch, 0.010)
    [rec] = check(table, ["squeezenet1_1"], resolution=64, log=lambda m: None)
    assert rec["missing"] == [n.name for n, _, k in nodes if k == dropped] != []
    assert rec["predicted_ms"] is None and rec["error_pct"] is None
    assert rec["measured_ms"] == 10.0


def test_a_second_check_replaces_the_record_of_the_same_network_and_input(monkeypatch):
    table = _made_up_table("squeezenet1_1")
    _fixed_time(monkeypatch, 0.010)
    check(table, ["squeezenet1_1"], resolution=64, log=lambda m: None)
    _fixed_time(monkeypatch, 0.020)
    check(table, ["squeezenet1_1"], resolution=64, log=lambda m: None)
    check(table, ["squeezenet1_1"], resolution=32, log=lambda m: None)   # another input
    assert [(c["input"][2], c["measured_ms"]) for c in table.checks] == [(64, 20.0), (32, 20.0)]


def test_the_network_is_timed_as_an_entry_is_one_warm_up_then_the_fastest(monkeypatch):
    calls = []
    monkeypatch.setattr(lt, "execute", lambda plan, x: calls.append(x.shape))
    model = tinyinfer.load("squeezenet1_1", weights=None)
    assert lt.time_network(model, (1, 3, 32, 32), runs=4) >= 0
    assert calls == [(1, 3, 32, 32)] * 5


def test_the_cli_writes_checks_for_a_measured_and_an_unmeasured_network(tmp_path, capsys):
    path = tmp_path / "t.json"
    common = ["--runs", "1", "--resolution", "32", "-o", str(path)]
    assert cli(["latency-table", "--models", "squeezenet1_1"] + common) == 0
    entries = json.loads(path.read_text())["entries"]
    assert cli(["latency-table", "--models", "squeezenet1_1,mnasnet0_5", "--check"]
               + common) == 0
    data = json.loads(path.read_text())
    assert data["entries"] == entries                   # --check measures no entries
    checks = {c["model"]: c for c in data["checks"]}
    assert set(checks) == {"squeezenet1_1", "mnasnet0_5"}
    sq, mn = checks["squeezenet1_1"], checks["mnasnet0_5"]
    assert sq["missing"] == [] and sq["predicted_ms"] > 0 and sq["measured_ms"] > 0
    assert mn["predicted_ms"] is None and mn["measured_ms"] > 0 and len(mn["missing"]) > 0
    out = capsys.readouterr().out
    assert "squeezenet1_1: predicted" in out and "mnasnet0_5:" in out and "not in the table" in out


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tinyinfer: error:"), err
    assert all(w in err for w in words), err


def test_bad_input_is_one_line_on_stderr(tmp_path, capsys):
    path = tmp_path / "t.json"
    LatencyTable({"k": 1.0}, [{"model": "m", "numba_threads": numba.get_num_threads()}]).save(path)
    assert cli(["latency-table", "--models", "no_such_net", "--check", "-o", str(path)]) == 2
    _one_error_line(capsys, "no_such_net", "tinyinfer list")
    assert cli(["latency-table", "--models", "squeezenet1_1", "--check",
                "-o", str(tmp_path / "none.json")]) == 2
    _one_error_line(capsys, "no table", "without --check")
    assert cli(["latency-table", "--models", "squeezenet1_1", "--check",
                "-o", str(tmp_path)]) == 2                     # a folder
    _one_error_line(capsys, "cannot read")
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe not json")
    assert cli(["latency-table", "--models", "squeezenet1_1", "--check",
                "-o", str(tmp_path / "bad.json")]) == 2
    _one_error_line(capsys, "not a latency table")
    assert cli(["latency-table", "--models", "squeezenet1_1", "--check", "--runs", "0",
                "-o", str(path)]) == 2
    _one_error_line(capsys, "--runs")
    assert json.loads(path.read_text())["checks"] == []     # nothing written on any error


def test_a_table_measured_on_another_thread_count_is_refused(tmp_path, capsys):
    path = tmp_path / "t.json"
    other = numba.get_num_threads() + 1
    LatencyTable({"k": 1.0}, [{"model": "m", "numba_threads": other}]).save(path)
    assert cli(["latency-table", "--models", "squeezenet1_1", "--check", "-o", str(path)]) == 2
    _one_error_line(capsys, f"NUMBA_NUM_THREADS={other}")
    with pytest.raises(InputError, match="mixes"):
        lt.check_threads(LatencyTable({}, [{"numba_threads": 1}, {"numba_threads": 2}]))
