"""RegNet's FLOPs-vs-activations question (tinyinfer/analysis/flops_vs_activations.py): the
rank correlation's arithmetic against scipy.stats.spearmanr and a case worked by hand, the
counts it correlates, and the measurement record the notebook reads."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyinfer
from tinyinfer.analysis import flops_vs_activations as F
from tinyinfer.analysis.activations import activations
from tinyinfer.errors import TinyInferError


def test_ranks_share_ties():
    assert F.ranks([10, 20, 20, 5]).tolist() == [2, 3.5, 3.5, 1]
    assert F.ranks([3, 3, 3]).tolist() == [2, 2, 2]


def test_spearman_by_hand():
    """x = 1 2 3 4 5, y = 2 1 4 3 5: rank differences d = -1 1 -1 1 0, no ties, so
    rho = 1 - 6 sum d^2 / (n (n^2 - 1)) = 1 - 6 * 4 / 120 = 0.8."""
    assert F.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8, abs=1e-12)
    assert F.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    # any increasing map of x keeps rho = 1: ranks, not values
    assert F.spearman([1, 10, 100, 1000], [0.1, 0.2, 0.3, 9.0]) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.floats(-1e3, 1e3, allow_nan=False)),
                min_size=3, max_size=25))
def test_spearman_equals_scipy_with_ties(pairs):
    """Small integers in x force ties; rho equals scipy's to 1e-9."""
    scipy_stats = pytest.importorskip("scipy.stats")
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    if len(set(x)) < 2 or len(set(y)) < 2:
        with pytest.raises(TinyInferError, match="constant"):
            F.spearman(x, y)
        return
    assert F.spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y)[0], abs=1e-9)


def test_spearman_refuses_unequal_or_short_input():
    with pytest.raises(TinyInferError, match="equal length"):
        F.spearman([1, 2, 3], [1, 2])
    with pytest.raises(TinyInferError, match="equal length"):
        F.spearman([1], [1])


def test_measure_counts_and_times_each_network_and_correlations_read_the_record(tmp_path):
    """Two small networks, one round: the counts are the summary's MACs and params and
    activations.py's count; the record round-trips through the file the notebook reads."""
    rec = F.measure(["mobilenetv3_small_075", "mobilenet_v2"], runs=1, rounds=1,
                    log=lambda *_: None)
    for row in rec["networks"]:
        m = tinyinfer.load(row["model"], weights=None)
        rep = m.summary(224)
        assert (row["MACs"], row["params"]) == (rep.macs, rep.params)
        assert row["activations"] == activations(m.graph, 224)
        assert row["ms"] == min(row["ms_per_round"]) > 0 and row["attention"] is False
    assert rec["numba_threads"] == 1 and len(rec["load_average_per_round"]) == 1
    path = tmp_path / "m.json"
    F.save(rec, path)
    data = F.load_measurements(path)
    # two networks: each predictor ranks them the same way (MobileNetV2 larger) or not
    rho = F.correlations(data)
    assert set(rho) == set(F.PREDICTORS) and all(abs(v) == pytest.approx(1) for v in rho.values())


def test_measure_refuses_an_unknown_name_before_timing_anything():
    with pytest.raises(TinyInferError, match="no_such_net"):
        F.measure(["mobilenet_v2", "no_such_net"], runs=1, rounds=1)


def test_load_measurements_refuses_another_file(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"entries": {}}))
    with pytest.raises(TinyInferError, match="not a file written by"):
        F.load_measurements(p)


def test_committed_measurements_cover_thirty_networks_and_state_their_load():
    """The notebook's data: at least 30 networks, each with its counts and time, and the
    machine, date, thread count and load average it was measured under."""
    from pathlib import Path
    data = F.load_measurements(Path(__file__).parent.parent / "notebooks" /
                               "flops_activations_time.json")
    assert len(data["networks"]) >= 30
    assert data["machine"] and data["date"] and data["numba_threads"] == 1
    assert all(v is not None for v in data["load_average_per_round"])
    for row in data["networks"]:
        assert row["MACs"] > 0 and row["activations"] > 0 and row["ms"] > 0
    assert np.isfinite(list(F.correlations(data).values())).all()


@pytest.mark.parametrize("argv, message", [
    (["--models", "no_such_net"], "unknown model 'no_such_net'"),
    (["--models", "mobilenet_v2", "--rounds", "0"], "rounds must be a whole number from 1"),
    (["--models", "mobilenet_v2", "--threads", "999"], "threads must be a whole number"),
])
def test_cli_says_what_was_wrong_in_one_line(argv, message, tmp_path, capsys):
    assert F.main(argv + ["-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "x.json").exists()


def test_cli_refuses_an_output_folder_that_does_not_exist_before_measuring(tmp_path, capsys):
    assert F.main(["--models", "mobilenet_v2", "-o", str(tmp_path / "no" / "x.json")]) == 2
    err = capsys.readouterr()
    assert "folder does not exist" in err.err and "round" not in err.out
