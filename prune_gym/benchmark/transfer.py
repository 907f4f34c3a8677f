"""The training half of a transfer suite: an agent that transfers learns on the train pairs, once per seed.

``<trained>/seed-<n>/`` holds the agent's saved state (``agent*``, what its
``save`` wrote) and ``trained.json`` (suite, agent, hyper-parameters, seed, the
episodes and seconds spent, and the training curve: per episode its pair,
return, reward-split score and MACs kept). The folder appears whole (written
beside it, then renamed) or not at all: a killed training starts again; a
finished one is reused by the zero-shot and the few-shot benchmark alike.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from prune_gym.agent_api import make_agent
from prune_gym.benchmark.suites import get_suite
from prune_gym.envs.sampler import PairSampler
from prune_gym.errors import RunError
from prune_gym.runs import EpisodeRecord
from prune_gym.search import resolve_spec
from prune_gym.storage import write_atomic
from prune_gym.wrappers import EpisodeBudgetExhausted, EpisodeRecorder

TRAINED = "trained.json"
AGENT_STATE = "agent"


@dataclass(frozen=True)
class TrainJob:
    """``agent`` (with ``agent_kwargs``) learning on ``suite``'s train pairs with ``seed``, saved in ``folder``."""

    suite: str
    agent: str
    agent_kwargs: dict[str, Any]
    seed: int
    folder: Path
    device: str = "cpu"

    @property
    def agent_state(self) -> Path:
        """The prefix the trained agent was saved under (``RunSpec.agent_state`` of the held-out runs)."""
        return self.folder / AGENT_STATE

    def on_device(self, device: str) -> TrainJob:
        """This job computing on ``device`` (what an executor grants)."""
        return dataclasses.replace(self, device=device)

    def failure(self, error: str, **details: Any) -> dict[str, Any]:
        """The failed result of this training (nothing is written: the next benchmark trains again)."""
        return {**self.identity(), "status": "failed", "error": error, **details}

    def identity(self) -> dict[str, Any]:
        return {"suite": self.suite, "agent": self.agent, "agent_kwargs": self.agent_kwargs, "seed": self.seed}


def train_on_pairs(job: TrainJob) -> dict[str, Any]:
    """Train (or reuse the finished training of) ``job``; returns ``trained.json``'s record, ``status`` ok or failed
    (never raises, like a benchmark's run).

    Raises nothing; a folder holding another agent's or suite's training is a failed result naming it.
    """
    try:
        return _train(job)
    except Exception as error:
        return job.failure(f"{type(error).__name__}: {error}", traceback=traceback.format_exc(limit=8))


def _train(job: TrainJob) -> dict[str, Any]:
    job.folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(job.folder) + ".lock"):  # two benchmarks (zero- and few-shot) may want the same training
        record_path = job.folder / TRAINED
        if record_path.exists():
            record = json.loads(record_path.read_text())
            if {key: record.get(key) for key in job.identity()} != job.identity():
                raise RunError(f"{job.folder} holds the training of {record.get('agent')!r} {record.get('agent_kwargs')} on "
                               f"{record.get('suite')!r}: give another --trained folder")
            return record
        transfer = get_suite(job.suite).transfer
        if transfer is None:
            raise ValueError(f"suite {job.suite!r} has no transfer track (no train pairs)")
        envs = [resolve_spec(entry.run_spec(job.agent, job.agent_kwargs, seed=job.seed, device=job.device)).make_env()
                for entry in transfer.train]  # each on the environment and action type the agent declares
        sampler = PairSampler(envs, [entry.name for entry in transfer.train], seed=job.seed)
        curve: list[dict[str, Any]] = []

        def on_episode(record: EpisodeRecord) -> None:
            curve.append({"pair": sampler.names[sampler.pair], "episode_return": record.episode_return, "score": record.score,
                          "macs_ratio": record.macs_ratio, "budget_met": record.budget_met})

        recorder = EpisodeRecorder(sampler, on_episode, max_episodes=transfer.episodes)
        started = time.perf_counter()
        try:
            agent = make_agent(job.agent, recorder, seed=job.seed, **job.agent_kwargs)
            try:
                while len(curve) < transfer.episodes:
                    agent.learn(1)
            except EpisodeBudgetExhausted:
                pass
            staging = job.folder.with_name(job.folder.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            agent.save(staging / AGENT_STATE)
            record = {**job.identity(), "status": "ok", "episodes": len(curve), "seconds": time.perf_counter() - started,
                      "pairs": sampler.names, "curve": curve}
            write_atomic(staging / TRAINED, json.dumps(record, indent=2))
            staging.rename(job.folder)
        finally:
            sampler.close()
        return record
