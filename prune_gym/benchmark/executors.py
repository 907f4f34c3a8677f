"""Where benchmark jobs run: one interface, a local back-end here (Ray's lives in :mod:`prune_gym.benchmark.ray_executor`).

An executor runs ``function(job)`` for every job and yields ``(job, result)``
as each finishes. A job that raises is reported by ``function`` itself (it
returns a failed result), so an executor only has to run things and survive
the loss of a worker: a job whose worker process dies (killed, out of memory,
node lost) is run again up to ``max_retries`` times (it resumes from its
crash-safe run folder), then reported by :func:`lost_result`, never silently
dropped. Jobs are frozen dataclasses with an ``on_device(device)`` method, so a
back-end can place them on the accelerator it grants.

Both back-ends run two kinds of jobs: a benchmark's
(:class:`prune_gym.benchmark.runner.Job`, run by ``runner.run_job``) and one seed
of a multi-seed search (:class:`SearchJob`, run by :func:`run_search_job`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prune_gym.runs import RunSpec
from prune_gym.validation import check_int

MAX_RETRIES = 3


class Executor(Protocol):
    """Runs jobs; yields (job, result) pairs in completion order."""

    def run(self, function: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        """Run ``function`` on every job."""
        ...


def limit_threads(threads: int) -> None:
    """Give this worker process ``threads`` torch threads, so runs sharing a machine do not thrash its cores."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def check_retries(max_retries: int) -> int:
    """``max_retries`` if it is a number of retries >= 0, else a one-line ValueError."""
    return check_int("max_retries", max_retries, 0, "how often a lost worker's run is retried (>= 0)")


@dataclass(frozen=True)
class SearchJob:
    """One seed of a multi-seed search (``prune-gym search --seeds``): ``spec`` run in ``run_dir``."""

    spec: RunSpec
    run_dir: Path

    def on_device(self, device: str) -> SearchJob:
        """This job computing on ``device`` (what an executor grants)."""
        return dataclasses.replace(self, spec=self.spec.with_env(device=device))

    def failure(self, error: str) -> dict[str, Any]:
        """The failed result of this seed, with ``error``."""
        return {"seed": self.spec.seed, "run_dir": str(self.run_dir), "status": "failed", "error": error}


def run_search_job(job: SearchJob) -> dict[str, Any]:
    """Run one seed's search (:func:`~prune_gym.search.run_search` resumes an interrupted one and skips a finished one).

    Returns the run's summary with ``status`` ``ok``, or a ``failed`` result with
    the error; never raises but KeyboardInterrupt.
    """
    from prune_gym.search import run_search

    try:
        summary = run_search(job.spec, job.run_dir, progress=False)
    except KeyboardInterrupt:
        raise
    except Exception as error:
        return job.failure(f"{type(error).__name__}: {error}")
    if summary["interrupted"]:
        raise KeyboardInterrupt
    return {**summary, "status": "ok"}


def lost_result(job: Any, error: BaseException) -> dict[str, Any]:
    """The failed result of a job whose worker died on every try, with the error.

    A job with a ``failure(message)`` method reports it (a benchmark job also
    writes it to its run folder as ``failed.json``, like a run that raised, so
    ``results.json`` lists it and a re-run retries it).
    """
    message = f"worker lost: {type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
    report = getattr(job, "failure", None)
    return report(message) if callable(report) else {"status": "failed", "error": message}


class LocalExecutor:
    """``workers`` processes on this machine, each with ``cores // workers`` torch threads (1 worker: in this process).

    A job whose worker process dies is run again in a fresh pool, up to
    ``max_retries`` times (the jobs running beside it in the broken pool too).
    """

    def __init__(self, workers: int = 1, cores: int | None = None, max_retries: int = MAX_RETRIES) -> None:
        self.workers = check_int("workers", workers, 1, "a positive number of processes")
        self.threads = max(1, (cores or os.cpu_count() or 1) // workers)
        self.max_retries = check_retries(max_retries)

    def run(self, function: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        if self.workers == 1:
            for job in jobs:
                yield job, function(job)
            return
        queue = deque(enumerate(jobs))
        tries = [0] * len(queue)
        context = multiprocessing.get_context("spawn")
        while queue:  # one pool until a worker dies, then a fresh one for the jobs left
            with ProcessPoolExecutor(self.workers, mp_context=context, initializer=limit_threads, initargs=(self.threads,)) as pool:
                running: dict[Future, tuple[int, Any]] = {}
                broken = False
                try:
                    while running or (queue and not broken):
                        while queue and not broken and len(running) < self.workers:
                            index, job = queue.popleft()
                            tries[index] += 1
                            running[pool.submit(function, job)] = (index, job)
                        done, _ = wait(running, return_when=FIRST_COMPLETED)
                        for future in done:
                            index, job = running.pop(future)
                            try:
                                result = future.result()
                            except BrokenProcessPool as error:
                                broken = True
                                if tries[index] <= self.max_retries:
                                    queue.append((index, job))
                                    continue
                                result = lost_result(job, error)
                            yield job, result
                except BaseException:
                    for future in running:
                        future.cancel()
                    raise

