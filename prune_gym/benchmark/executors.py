"""Where benchmark jobs run: one interface, a local back-end here (Ray's lives in :mod:`prune_gym.benchmark.ray_executor`).

An executor runs ``function(job)`` for every job and yields ``(job, result)``
as each finishes. A job that raises is reported by ``function`` itself (it
returns a failed result), so an executor only has to run things and survive.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Protocol


class Executor(Protocol):
    """Runs jobs; yields (job, result) pairs in completion order."""

    def run(self, function: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        """Run ``function`` on every job."""
        ...


def _limit_threads(threads: int) -> None:
    """Worker initialiser: this many torch threads, so workers do not thrash the cores they share."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


class LocalExecutor:
    """``workers`` processes on this machine, each with ``cores // workers`` torch threads (1 worker: in this process)."""

    def __init__(self, workers: int = 1, cores: int | None = None) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"invalid workers={workers!r}: expected a positive number of processes")
        self.workers = workers
        self.threads = max(1, (cores or os.cpu_count() or 1) // workers)

    def run(self, function: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        if self.workers == 1:
            for job in jobs:
                yield job, function(job)
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_limit_threads, initargs=(self.threads,)) as pool:
            futures = {pool.submit(function, job): job for job in jobs}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
