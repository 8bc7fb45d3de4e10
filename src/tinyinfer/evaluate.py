"""Evaluate a network over a labelled dataset: accuracy, and agreement with PyTorch.

    import tinyinfer
    ev = tinyinfer.evaluate("mobilenet_v2", "imagenet/val", output="results.jsonl")
    ev.top1, ev.top5, ev.n, ev.images_per_second, ev.rows
    print(ev.summary())

    tinyinfer eval mobilenet_v2 imagenet/val --output results.jsonl --scheduler local:2

The dataset is a folder of class folders or a CSV of path,label rows (evaluation/dataset.py).
Each image gives one row, appended to ``output`` as soon as its batch is done; rerunning
with the same output resumes (evaluation/results.py). In process, a pool of threads decodes
and preprocesses the next batches while the network runs on this one; with ``scheduler``
the batches are Dask tasks (evaluation/dask_runner.py). Either way every image goes through
the same code (evaluation/scoring.py), so the rows are identical.

Accuracy counts the images that could be read (``n``); an unreadable image gets a row with
its error, is counted in ``errors`` and does not stop the run.
"""
from __future__ import annotations

import collections
import importlib.util
import numbers
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .errors import InputError, TinyInferError
from .evaluation.dataset import read_dataset
from .evaluation.reference import REFERENCES
from .evaluation.results import ResultsFile
from .evaluation.scoring import Scorer, read_weights

DECODE_THREADS = 2   # enough to keep one network busy: decoding is ~10x cheaper (README)


@dataclass
class Evaluation:
    """The result of ``evaluate``: every row of the dataset (from this run or an earlier one
    resumed from the output file) and this run's timings."""
    model: str
    dataset: str
    rows: list[dict]              # one per image, in dataset order
    evaluated: int                # images evaluated by this run (the others were resumed)
    seconds: float                # this run's wall time
    decode_seconds: float = 0.0   # summed over batches (overlapping the network in process)
    inference_seconds: float = 0.0
    workers: str = "in process"
    scored: list[dict] = field(init=False, repr=False)

    def __post_init__(self):
        self.scored = [r for r in self.rows if "error" not in r]

    @property
    def n(self) -> int:
        """Images scored (readable); accuracy is over these."""
        return len(self.scored)

    @property
    def errors(self) -> int:
        return len(self.rows) - self.n

    def _accuracy(self, k: int) -> float:
        hits = sum(r["label"] in r["top5"][:k] for r in self.scored)
        return hits / self.n if self.n else float("nan")

    @property
    def top1(self) -> float:
        return self._accuracy(1)

    @property
    def top5(self) -> float:
        return self._accuracy(5)

    @property
    def images_per_second(self) -> float:
        return self.evaluated / self.seconds if self.seconds > 0 else float("nan")

    @property
    def agreement(self) -> float | None:
        """--compare-with: the share of images whose top-5 equals the reference's."""
        compared = [r for r in self.scored if "top5_agree" in r]
        return sum(r["top5_agree"] for r in compared) / len(compared) if compared else None

    @property
    def max_prob_diff(self) -> float | None:
        diffs = [r["max_prob_diff"] for r in self.scored if "max_prob_diff" in r]
        return max(diffs) if diffs else None

    def summary(self) -> str:
        accuracy = (f"top-1 {self.top1:.2%}  top-5 {self.top5:.2%}" if self.n
                    else "no readable image")
        lines = [f"{self.model} on {self.dataset}: {accuracy}  n {self.n}"
                 + (f"  unreadable {self.errors}" if self.errors else "")]
        run = (f"this run: {self.evaluated} images in {self.seconds:.1f} s, "
               f"{self.images_per_second:.1f} images/s ({self.workers})")
        if self.evaluated:
            run += (f"; per image: decode {1e3 * self.decode_seconds / self.evaluated:.1f} ms, "
                    f"network {1e3 * self.inference_seconds / self.evaluated:.1f} ms")
        lines.append(run)
        if self.agreement is not None:
            lines.append(f"vs torch: top-5 identical for {self.agreement:.2%} of images, "
                         f"largest probability difference {self.max_prob_diff:.2e}")
        return "\n".join(lines)


def evaluate(name: str, dataset, output=None, batch_size: int = 16, scheduler=None,
             limit: int | None = None, weights="pretrained", compare_with: str | None = None,
             progress: bool = True, send_images: bool = False) -> Evaluation:
    """Evaluate model ``name`` on ``dataset`` (a folder of class folders or a CSV file).

    output:       a JSON-lines file, one row per image, appended as images are done; an
                  existing file is resumed (its images are not evaluated again)
    batch_size:   images per decoding batch / Dask task (the network always sees one
                  image at a time, see evaluation/scoring.py)
    scheduler:    None (in process), "local:N" (a LocalCluster of N worker processes),
                  "tcp://HOST:PORT" (an existing Dask cluster) or a distributed.Client
    limit:        evaluate only the dataset's first N images
    weights:      "pretrained", a checkpoint path or a state dict
    compare_with: "torch" to also run the PyTorch reference on every image
    progress:     a tqdm progress bar on stderr (only when stderr is a terminal)
    send_images:  with a scheduler, send each image's bytes with its task instead of
                  letting workers read the dataset path

    A script that starts a LocalCluster (scheduler="local:N") must call evaluate under
    ``if __name__ == "__main__":``: Dask spawns its workers, which import the script again.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    if limit is not None:
        limit = _positive_int(limit, "limit")
    if compare_with not in (None, *REFERENCES):
        raise InputError(f"compare_with must be None or one of {', '.join(REFERENCES)}; "
                         f"got {compare_with!r}")
    if scheduler is not None:
        dask_runner = _dask_runner()
        dask_runner.check_scheduler(scheduler)
    items = read_dataset(dataset)[:limit]
    with ResultsFile(output, name) if output is not None else _NoFile() as results:
        keys = {item.key for item in items}
        done = {k: r for k, r in results.read_done().items() if k in keys}
        pending = [item for item in items if item.key not in done]
        state = read_weights(name, weights)
        totals = {"decode": 0.0, "inference": 0.0}
        bar = _progress_bar(len(items), len(done), progress)

        def on_done(rows, decode_s, inference_s):
            results.append(rows)
            done.update((r["path"], r) for r in rows)
            totals["decode"] += decode_s
            totals["inference"] += inference_s
            bar.update(len(rows))

        batches = [pending[i:i + batch_size] for i in range(0, len(pending), batch_size)]
        start = time.perf_counter()
        try:
            if not batches:   # everything was resumed from the output file
                pass
            elif scheduler is None:
                _run_in_process(Scorer(name, state, compare_with), batches, on_done)
            else:
                dask_runner.run_on_dask(scheduler, name, state, compare_with, batches,
                                        on_done, send_images)
        finally:
            bar.close()
        seconds = time.perf_counter() - start
    return Evaluation(name, str(dataset), [done[item.key] for item in items], len(pending),
                      seconds, totals["decode"], totals["inference"],
                      "in process" if scheduler is None else f"Dask {_describe(scheduler)}")


def _run_in_process(scorer: Scorer, batches, on_done, threads: int = DECODE_THREADS) -> None:
    """Decode up to ``threads + 1`` batches ahead in a thread pool while the network runs.
    PIL decodes and resizes without the GIL, so the threads overlap with the network; the
    network runs in this thread on Numba's own threads."""
    batches = iter(batches)
    ahead = collections.deque()

    def decode(batch):
        t0 = time.perf_counter()
        return scorer.decode(batch), time.perf_counter() - t0

    with ThreadPoolExecutor(threads, thread_name_prefix="tinyinfer-decode") as pool:
        try:
            for batch in batches:
                ahead.append(pool.submit(decode, batch))
                if len(ahead) > threads:
                    break
            while ahead:
                decoded, decode_s = ahead.popleft().result()
                batch = next(batches, None)
                if batch is not None:
                    ahead.append(pool.submit(decode, batch))
                t0 = time.perf_counter()
                rows = scorer.score(decoded)
                on_done(rows, decode_s, time.perf_counter() - t0)
        finally:
            pool.shutdown(cancel_futures=True)


def _dask_runner():
    if importlib.util.find_spec("distributed") is None:
        raise TinyInferError("--scheduler needs Dask: pip install 'tinyinfer[dask]' "
                             "(dask[distributed] and tqdm)")
    from .evaluation import dask_runner
    return dask_runner


def _describe(scheduler) -> str:
    return scheduler if isinstance(scheduler, str) else "client"


def _progress_bar(total: int, initial: int, wanted: bool):
    """tqdm on stderr with images/s and ETA; a silent stand-in when not wanted, when stderr
    is not a terminal (a log file would fill with bar redraws) or without tqdm."""
    if wanted and sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None:
        from tqdm import tqdm
        return tqdm(total=total, initial=initial, unit="img", file=sys.stderr,
                    smoothing=0.1, dynamic_ncols=True)
    return _NoBar()


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


class _NoFile:
    """The output file's stand-in when none is given: nothing to resume, nothing kept."""

    def read_done(self):
        return {}

    def append(self, rows):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name} must be a positive integer; got {value!r}")
    return int(value)

