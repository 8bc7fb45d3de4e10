"""The latency lookup table: every node of a network has a key, the predictor is exactly the
sum of the table's entries over the network's nodes, missing entries are reported (not
guessed), identical layers share one entry, and measuring resumes without re-timing.

The consistency tests use a table with made-up, distinct values (so a node summed twice or
skipped changes the total); only the last test times real kernels, on a tiny network."""
import json

import pytest

import tinyinfer
from tinyinfer.analysis import latency_table as lt
from tinyinfer.analysis.latency_table import LatencyTable, graph_keys
from tinyinfer.cli import main as cli
from tinyinfer.errors import InputError

NETWORKS = [("mobilenet_v2", {"width_mult": 0.35}), ("squeezenet1_1", {}),
            ("mnasnet0_5", {})]


def _made_up_table(models, shape):
    keys = sorted({k for m in models for _, _, k in graph_keys(m.plan, shape)})
    return LatencyTable({k: 1.0 + i / 7 for i, k in enumerate(keys)})


@pytest.mark.parametrize("name,options", NETWORKS)
def test_prediction_is_the_sum_of_the_entries_of_the_nodes(name, options):
    model = tinyinfer.build(name, **options)
    shape = (1, 3, 64, 64)
    table = _made_up_table([model], shape)
    nodes = graph_keys(model.plan, shape)
    assert len(nodes) == len(model.plan) and all(k for _, _, k in nodes)
    pred = table.predict(model, shape)
    assert pred.missing == []
    assert pred.ms == pytest.approx(sum(table.entries[k] for _, _, k in nodes), rel=1e-12)
    assert set(pred.per_node) == {n.name for n in model.plan}


def test_identical_layers_share_an_entry_and_different_ones_do_not():
    model = tinyinfer.build("mobilenet_v2")
    nodes = graph_keys(model.plan, (1, 3, 224, 224))
    keys = [k for _, _, k in nodes]
    assert len(set(keys)) < len(keys)          # e.g. the repeated 14x14 blocks
    # two nodes share a key only if they do the same work: same kind, shapes and attrs
    by_key = {}
    for node, ins, k in nodes:
        sig = (node.kind, tuple(map(tuple, ins)), tuple(sorted(node.param_shapes.items())),
               repr(sorted(node.attrs.items())))
        assert by_key.setdefault(k, sig) == sig


def test_missing_entries_are_reported_not_guessed():
    model = tinyinfer.build("squeezenet1_1")
    shape = (1, 3, 64, 64)
    table = _made_up_table([model], shape)
    dropped = graph_keys(model.plan, shape)[3][2]
    full = table.predict(model, shape).ms
    del table.entries[dropped]
    pred = table.predict(model, shape)
    users = [n.name for n, _, k in graph_keys(model.plan, shape) if k == dropped]
    assert [name for name, _ in pred.missing] == users
    assert pred.ms < full and set(pred.per_node).isdisjoint(users)


def test_measuring_is_resumable_and_records_the_load(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(lt, "time_node", lambda node, ins, runs: calls.append(1) or 0.001)
    path = tmp_path / "t.json"
    lt.measure(["squeezenet1_1"], path, runs=1, resolution=64, log=lambda m: None)
    first = len(calls)
    assert first == len(json.loads(path.read_text())["entries"]) > 0
    lt.measure(["squeezenet1_1"], path, runs=1, resolution=64, log=lambda m: None)
    assert len(calls) == first                 # nothing timed twice
    runs = json.loads(path.read_text())["runs"]
    assert [r["new_entries"] for r in runs] == [first, 0]
    assert {"date", "load_average", "machine", "numba_threads"} <= set(runs[0])


def test_bad_table_file_and_bad_model_names_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="not a latency table"):
        LatencyTable.load(bad)
    assert cli(["latency-table", "--models", "no_such_net", "-o", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no_such_net" in err


def test_real_measurement_of_a_small_network(tmp_path, capsys):
    path = tmp_path / "t.json"
    assert cli(["latency-table", "--models", "squeezenet1_1", "--runs", "1",
                "--resolution", "32", "-o", str(path)]) == 0
    table = LatencyTable.load(path)
    model = tinyinfer.load("squeezenet1_1", weights=None)
    pred = table.predict(model, (1, 3, 32, 32))
    assert pred.missing == [] and pred.ms > 0
    assert all(v > 0 for v in table.entries.values())


def test_a_node_of_a_graph_without_weights_is_timed_with_random_ones():
    model = tinyinfer.build("squeezenet1_1")           # shapes only, no params
    node, ins, _ = graph_keys(model.plan, (1, 3, 32, 32))[0]
    assert not node.params and lt.time_node(node, ins, runs=1) > 0
