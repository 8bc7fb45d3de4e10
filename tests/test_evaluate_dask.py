"""tinyinfer.evaluate on Dask: a LocalCluster's rows equal the in-process rows bit for bit,
and a worker killed mid-run costs no image and duplicates none.

Every cluster here listens on 127.0.0.1 only and is closed by its context manager, also
when a test fails, so nothing is left running."""
import json
import multiprocessing
import os
import signal
import threading
import time

import distributed
import pytest

from tinyinfer.evaluate import evaluate
from tinyinfer.errors import SchedulerError

from eval_photos import build_dataset


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return root, build_dataset(root)


# The first N images: enough tasks (one image each) for a kill to land mid-run, few enough
# to keep a loaded 2-core machine's test time down.
N = 8


@pytest.fixture(scope="module")
def in_process_rows(photos):
    rows = evaluate("mobilenet_v2", photos[0], batch_size=3, limit=N, progress=False).rows
    assert len(rows) == N
    return rows


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def dask_worker_processes():
    """The worker processes of a LocalCluster started in this process (its nannies run in
    this process and spawn the workers as children)."""
    return [p for p in multiprocessing.active_children() if p.name.startswith("Dask Worker")]


def test_local2_rows_identical_and_a_killed_worker_costs_nothing(photos, in_process_rows,
                                                                   tmp_path):
    """One LocalCluster (they take seconds to start): tinyinfer eval --scheduler local:2,
    one of whose two workers is killed (SIGKILL) as soon as the first row is written."""
    out = tmp_path / "killed.jsonl"
    killed = {}

    def kill_a_worker_after_the_first_row():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "pid" not in killed:
            workers = dask_worker_processes()
            if len(workers) == 2 and out.exists() and out.read_text().count("\n") >= 1:
                killed["rows before"] = out.read_text().count("\n")
                killed["pid"] = workers[0].pid
                os.kill(workers[0].pid, signal.SIGKILL)
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_worker_after_the_first_row)
    killer.start()
    try:
        # one image per task: many tasks, so the kill lands while most are still to do
        ev = evaluate("mobilenet_v2", photos[0], output=out, batch_size=1, limit=N,
                      scheduler="local:2", progress=False)
    finally:
        killed.setdefault("pid", None)   # stop the killer if the run failed early
        killer.join()
    assert killed["pid"] and killed["rows before"] < len(in_process_rows), "killed too late"
    assert ev.workers == "Dask local:2" and ev.top1 == 1.0
    assert ev.rows == in_process_rows      # same top-5, bit-identical probabilities
    rows = read_rows(out)                  # in the order batches finished: compare as sets
    assert len(rows) == len({r["path"] for r in rows}) == len(in_process_rows)
    assert sorted(rows, key=lambda r: r["path"]) == sorted(in_process_rows,
                                                           key=lambda r: r["path"])
    assert dask_worker_processes() == []   # the cluster evaluate started is gone


def test_existing_cluster_by_address_with_image_bytes_sent(photos, in_process_rows):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        ev = evaluate("mobilenet_v2", photos[0], limit=4, batch_size=2, progress=False,
                      scheduler=cluster.scheduler_address, send_images=True)
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert ev.rows == in_process_rows[:4]


def test_bad_scheduler():
    for bad in ("local:0", "local:x", "http://host:8786", "localhost"):
        with pytest.raises(SchedulerError, match="local:N"):
            evaluate("mobilenet_v2", ".", scheduler=bad)
