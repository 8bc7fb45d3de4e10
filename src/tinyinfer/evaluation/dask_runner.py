"""The evaluation's batches as Dask tasks: on a ``distributed.LocalCluster`` (``local:N``)
or on an existing cluster (``tcp://HOST:PORT``, started with ``dask scheduler`` and
``dask worker tcp://HOST:PORT --nthreads 1`` on each machine).

* The weights go to each worker once: they travel inside a worker plugin, which loads the
  model (and warms its kernels up) when the worker starts, also on a worker that the nanny
  restarts after a crash. Tasks carry only a batch of items (paths and labels).
* Workers read the images themselves, so the dataset must be at the same path on every
  machine (a shared or copied folder), unless ``send_images``: then the client reads each
  file and the bytes travel with the task.
* A worker that dies mid-run loses nothing: the scheduler runs its batches again elsewhere,
  and the client receives each batch's result exactly once (``as_completed``), so every
  image is written once.
* Workers run one task at a time (one thread each); on a LocalCluster each worker's Numba
  gets cores / N threads (numba.set_num_threads in every task: NUMBA_NUM_THREADS in the
  cluster's env= arrives after the worker has imported Numba), so N workers do not
  oversubscribe the machine's cores. On other machines set NUMBA_NUM_THREADS in the
  worker's environment the same way.
"""
from __future__ import annotations

import contextlib
import logging
import os

import distributed

from ..errors import SchedulerError

PLUGIN = "tinyinfer-evaluate"
LOCALHOST = "127.0.0.1"      # a LocalCluster listens on this machine only
CONNECT_TIMEOUT = "10s"


def check_scheduler(scheduler) -> None:
    """Refuse a malformed --scheduler before any work is done."""
    if isinstance(scheduler, str):
        if scheduler.startswith("local:"):
            _local_workers(scheduler)
            return
        if scheduler.startswith("tcp://"):
            return
    elif isinstance(scheduler, distributed.Client):
        return
    raise SchedulerError(f"--scheduler must be local:N (N workers on this machine) or "
                         f"tcp://HOST:PORT (an existing Dask scheduler); got {scheduler!r}")


def numba_threads(scheduler) -> int | None:
    """Numba threads per worker: cores / N for local:N; None (the worker's own setting)
    for other clusters, whose machines this process cannot see."""
    if isinstance(scheduler, str) and scheduler.startswith("local:"):
        return max(1, (os.cpu_count() or 1) // _local_workers(scheduler))
    return None


def _local_workers(scheduler: str) -> int:
    n = scheduler.partition(":")[2]
    if not n.isdigit() or not 1 <= int(n) <= 256:
        raise SchedulerError(f"--scheduler local:N needs a number of workers N in 1..256; "
                             f"got {scheduler!r}")
    return int(n)


@contextlib.contextmanager
def connect(scheduler):
    """A distributed.Client for --scheduler; a LocalCluster it starts is closed on exit."""
    check_scheduler(scheduler)
    if not isinstance(scheduler, str):          # a Client the caller made and will close
        yield scheduler
        return
    if scheduler.startswith("local:"):
        with distributed.LocalCluster(
                n_workers=_local_workers(scheduler), threads_per_worker=1, processes=True,
                host=LOCALHOST, dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler} ({e}); start "
                             f"one with `dask scheduler` and workers with `dask worker "
                             f"{scheduler} --nthreads 1`") from None
    with client:
        yield client


class ModelPlugin(distributed.WorkerPlugin):
    """Holds the model name and weights; builds the Scorer once per worker."""

    name = PLUGIN

    def __init__(self, model: str, state: dict, compare_with: str | None,
                 threads: int | None):
        self.model, self.state, self.compare_with = model, state, compare_with
        self.threads = threads
        self.scorer = None

    def set_numba_threads(self):
        """Numba's thread count is per calling thread: set it in each thread that runs
        the network."""
        if self.threads is not None:
            import numba
            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))

    def setup(self, worker):
        import numpy as np

        from .scoring import Scorer
        self.set_numba_threads()
        self.scorer = Scorer(self.model, self.state, self.compare_with)
        size = self.scorer.model.spec.input_size
        self.scorer.model(np.zeros((1, 3, size, size), np.float32))  # load the kernels now

    def teardown(self, worker):
        self.scorer = None


def score_on_worker(items):
    """The task: one batch of items -> (rows, decode seconds, inference seconds)."""
    plugin = distributed.get_worker().plugins[PLUGIN]
    plugin.set_numba_threads()
    return plugin.scorer.run(items)


def _with_bytes(batch):
    """Items paired with their file's bytes (--send-images). A file the client cannot read
    travels without bytes: the worker then reports it as it would any unreadable image."""
    out = []
    for item in batch:
        try:
            with open(item.file, "rb") as f:
                out.append((item, f.read()))
        except OSError:
            out.append(item)
    return out


def run_on_dask(scheduler, model: str, state: dict, compare_with, batches, on_done,
                send_images: bool = False) -> None:
    """Run every batch as a task; on_done(rows, decode_s, inference_s) once per batch, in
    the order batches finish."""
    with connect(scheduler) as client:
        plugin = ModelPlugin(model, state, compare_with, numba_threads(scheduler))
        client.register_plugin(plugin, name=PLUGIN)
        futures = [client.submit(score_on_worker, _with_bytes(b) if send_images else b,
                                 pure=False) for b in batches]
        try:
            for future in distributed.as_completed(futures):
                on_done(*future.result())
                future.release()
        finally:
            client.cancel(futures)
