"""Reports (tinyinfer/analysis/report.py), the measured profile, the machine's roofline numbers
(tinyinfer/analysis/machine.py) and their command lines. Counts themselves are checked against
papers and tools in test_counts / test_conventions / test_paper_tables; here: that the
report's columns, totals and exports say what they claim."""
import csv
import io

import numpy as np
import pytest
from PIL import Image

import tinyinfer
from tinyinfer.analysis import machine
from tinyinfer.bench.__main__ import main as bench
from tinyinfer.cli import main as cli
from tinyinfer.errors import InputError


@pytest.fixture(scope="module")
def small():
    return tinyinfer.load("mobilenet_v2", weights=None, width_mult=0.35)


@pytest.fixture(scope="module")
def profiled(small):
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96), dtype=np.float32)
    return small.profile(x, runs=2)


def test_profile_rows_have_time_and_rates(profiled):
    rep = profiled
    assert rep.profiled and rep.columns[-3:] == ("ms", "GFLOP/s", "% peak")
    assert all(r.time > 0 for r in rep.rows)
    assert rep.time == pytest.approx(sum(r.time for r in rep.rows))
    peak = machine.peak_flops()
    for r, row in zip(rep.rows, rep.table()):
        ms, gflops, share = row[-3:]
        assert ms == round(r.time * 1e3, 3)
        assert gflops == round(r.cost.flops / r.time / 1e9, 2)
        assert share == round(100 * r.cost.flops / r.time / peak, 1)
    total = rep.table()[-1]
    assert total[0] == "TOTAL" and total[-2] == round(rep.flops / rep.time / 1e9, 2)
    shares = [t[-1] for t in rep.type_table()]
    assert sum(shares) == pytest.approx(100, abs=0.1)       # % of time by layer type


def test_exports_carry_every_column(profiled):
    rows = list(csv.reader(io.StringIO(profiled.to_csv())))
    assert tuple(rows[0]) == profiled.columns and len(rows) == len(profiled.rows) + 2
    assert rows[-1][0] == "TOTAL"
    md = profiled.to_markdown().splitlines()
    assert md[0].startswith("| layer | type | output | MACs") and md[0].endswith("% peak |")
    html = profiled._repr_html_()
    assert "<th>% peak</th>" in html and "By layer type" in html
    text = str(profiled)
    assert "ms measured" in text and "By layer type:" in text and "% time" in text


def test_static_summary_columns_and_itemsize(small):
    rep4, rep2 = small.summary(resolution=96), small.summary(resolution=96, itemsize=2)
    assert not rep4.profiled and rep4.columns == rep4.BASE
    assert rep4.peak_memory == 2 * rep2.peak_memory
    assert [r.cost.bytes_moved(4) for r in rep4.rows] == \
        [2 * r.cost.bytes_moved(2) for r in rep2.rows]
    assert rep4.table()[-1][6] == 2 * rep2.table()[-1][6]
    # Table 2 style breakdown: shares add up to 100%
    types = rep4.type_table()
    assert sum(t[2] for t in types) == pytest.approx(100, abs=0.05)
    assert sum(t[1] for t in types) == len(rep4.rows)


def test_profile_from_an_image_file(small, tmp_path):
    path = tmp_path / "cat.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 120, 3), np.uint8)).save(path)
    rep = small.profile(path, runs=1, warmup=0)
    assert rep.input_shape == (1, 3, 224, 224)        # preprocessed to the model's crop
    with pytest.raises(InputError, match="runs must be at least 1"):
        small.profile(path, runs=0)


def test_fma_loop_and_triad_compute_what_they_claim():
    """The peak loop really does its FMAs (x <- a x + b, closed form
    x_n = 1 + a^n (x_0 - 1) for a = 0.999, b = 0.001), and the triad really streams."""
    acc = np.full((2, machine._LANES), 3.0, np.float32)
    machine._fma_loop(1000, acc)
    np.testing.assert_allclose(acc, 1 + 0.999 ** 1000 * 2.0, rtol=1e-4)
    a, b = np.zeros(1000, np.float32), np.arange(1000, dtype=np.float32)
    c = np.ones(1000, np.float32)
    machine._triad(a, b, c, np.float32(2.0))
    np.testing.assert_array_equal(a, b + 2.0)


def test_machine_is_measured_once_and_makes_a_roofline():
    m = machine.machine()
    assert m.peak_flops > 1e9 and m.bandwidth > 1e8       # any machine this runs on
    assert machine.machine() == m                         # cached, not re-measured
    assert m.attainable(1e-3) == pytest.approx(1e-3 * m.bandwidth)
    assert m.attainable(1e6) == m.peak_flops
    assert m.attainable(m.ridge) == pytest.approx(m.peak_flops)


def test_cli_profile_summary_convention_and_bench_machine(tmp_path, capsys):
    path = tmp_path / "dog.jpg"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    assert cli(["profile", "mobilenetv1_100", str(path), "--runs", "1", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("ms,GFLOP/s,% peak") and "TOTAL" in out
    assert cli(["summary", "mobilenet_v2", "--convention", "fvcore", "--itemsize", "2"]) == 0
    out = capsys.readouterr().out
    assert "fvcore convention: 314.2M fvcore flops" in out and "2-byte elements" in out
    with pytest.raises(SystemExit):
        cli(["summary", "mobilenet_v2", "--convention", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert cli(["profile", "mobilenet_v2", str(tmp_path / "missing.jpg")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert bench(["machine"]) == 0
    assert "GFLOP/s" in capsys.readouterr().out
