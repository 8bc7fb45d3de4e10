"""The model benchmark builds each network's registered reference (torchvision, timm or
pytorchcv), loads the same weights into tinyinfer, and times all engines on one input.
(pytorchcv's ShuffleNet pools a fixed 7x7 at the end, hence 224 px below.)"""
import pytest

from tinyinfer.bench.models import bench_model, main, torch_reference


@pytest.mark.parametrize("name,cls", [("mobilenet_v3_small", "MobileNetV3"),
                                      ("shufflenet_g1_wd4", "ShuffleNet")])
def test_reference_comes_from_the_registered_package(name, cls):
    assert type(torch_reference(name)).__name__ == cls


def test_a_test_side_reference_gives_tinyinfer_alone():
    assert torch_reference("edgevit_xxs") is None


def test_row_has_every_engine_and_both_ratios(capsys):
    assert main(["shufflenet_g1_wd4"], batch=1, resolution=224, runs=1, rounds=1) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split("|")[1:-1]
    cells = [c.strip() for c in row]
    assert cells[0] == "shufflenet_g1_wd4" and cells[2] == "224"
    tinyinfer_ms, torch_ms, ratio, ort_ms, ort_ratio = map(float, cells[4:9])
    # the ratios come from unrounded times, the ms cells are rounded to 0.05 either way
    for r, other in ((ratio, torch_ms), (ort_ratio, ort_ms)):
        low = (tinyinfer_ms - 0.05) / (other + 0.05)
        high = (tinyinfer_ms + 0.05) / max(other - 0.05, 1e-9)
        assert low - 0.005 <= r <= high + 0.005, (r, tinyinfer_ms, other)


def test_engines_agree_on_the_work_they_time():
    r = bench_model("mobilenet_v3_small", batch=2, resolution=64, runs=1, rounds=1)
    assert {"tinyinfer", "torch", "onnxruntime"} <= set(r) and r["batch"] == 2


def test_ratio_is_the_median_of_per_round_ratios(monkeypatch):
    """The ms cells are each engine's lowest round median; the ratios pair the rounds (the
    host's speed drifts between them), so they are not the ratio of those minimums."""
    import tinyinfer.bench.models as B
    # per round, in the engines' order: tinyinfer, torch, onnxruntime
    script = iter([2.0, 4.0, 0.5,    4.0, 4.0, 2.0,    9.0, 6.0, 9.0])
    monkeypatch.setattr(B, "_median_ms", lambda fn, runs: next(script))
    monkeypatch.setattr(B, "SETTLE_S", 0.0)
    r = bench_model("mobilenet_v3_small", batch=1, resolution=64, runs=1, rounds=3)
    assert (r["tinyinfer"], r["torch"], r["onnxruntime"]) == (2.0, 4.0, 0.5)
    assert r["ratio"]["torch"] == 1.0          # median of 0.5, 1.0, 1.5 (min / min: 0.5)
    assert r["ratio"]["onnxruntime"] == 2.0    # median of 4.0, 2.0, 1.0 (min / min: 4.0)
