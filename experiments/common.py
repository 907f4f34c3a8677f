"""What the paper reproductions share: search with an agent, recover and measure a mask, report mean +- std.

Every script prints a table that puts the paper's claim beside what prune_gym
measures, and writes its numbers to ``experiments/results/<name>.json`` with the
machine and the command. Scores are the task's test metric after the same
recovery fine-tune (the benchmark's :class:`~prune_gym.benchmark.scoring.RecoveryScorer`),
MACs are multiply-accumulates, latency is the median CPU time of a forward pass
over 100 test images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import prune_gym
from prune_gym.agent_api import make_agent
from prune_gym.benchmark import Recovery
from prune_gym.benchmark.runner import machine
from prune_gym.benchmark.scoring import RecoveryCache, RecoveryScorer
from prune_gym.pruning import PrunableNetwork, recalibrate_batchnorm
from prune_gym.recovery import latency_ms
from prune_gym.runs import RunSpec, best_episode
from prune_gym.storage import write_atomic
from prune_gym.tasks.checkpoints import task_checkpoint_sha256
from prune_gym.wrappers import EpisodeRecorder

RESULTS = Path(__file__).resolve().parent / "results"
STARTED = time.perf_counter()


def arguments(description: str, seeds: int = 3) -> argparse.Namespace:
    """The options every reproduction takes: ``--quick`` (a smoke run the tests use), ``--seeds``, ``--out``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a tiny version of the experiment (tests, smoke runs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(seeds)))
    parser.add_argument("--out", default=str(RESULTS), help="folder for the results JSON and the recovery cache")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def uniform_keep(task: str, macs_budget: float, criterion: str = "l1", device: str = "cpu") -> list[np.ndarray]:
    """The uniform-rate keep-mask at ``macs_budget`` with filters ranked by ``criterion``."""
    spec = RunSpec(task=task, env="LayerRate-v0", env_kwargs={"macs_budget": macs_budget, "criterion": criterion, "reward_samples": 1,
                                                              "device": device})
    env = spec.make_env().unwrapped
    budget = env.rate_budget()
    return budget.keep_masks(budget.uniform_counts())


def search(agent: str, env_id: str, task: str, seed: int, episodes: int, agent_kwargs: dict[str, Any] | None = None,
           device: str = "cpu", **env_kwargs: Any) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Run ``agent`` for ``episodes`` episodes (in memory, no run folder); the best budget-meeting keep-mask and the
    search's numbers."""
    spec = RunSpec(task=task, env=env_id, env_kwargs={**env_kwargs, "device": device}, agent=agent, agent_kwargs=agent_kwargs or {},
                   episodes=episodes, seed=seed)
    env = EpisodeRecorder(spec.make_env())
    started = time.perf_counter()
    make_agent(spec.agent, env, seed=spec.seed, **spec.agent_kwargs).learn(spec.episodes)
    best = best_episode(env.episodes)
    assert best is not None and best.budget_met, f"{agent} met the budget in none of its {len(env.episodes)} episodes"
    return list(best.keep_mask), {"seconds": time.perf_counter() - started, "proxy_score": best.score, "episodes": len(env.episodes)}


class Measurer:
    """Recovers and measures keep-masks of one task with one recovery protocol (cached in ``out``)."""

    def __init__(self, task: str, recovery: Recovery, out: str | Path, device: str = "cpu", bn_recalibration: int = 0) -> None:
        self.task = prune_gym.get_task(task)
        self.scorer = RecoveryScorer(task, recovery, RecoveryCache(Path(out) / "cache"), device)
        self.bn_recalibration = bn_recalibration
        self.splits = self.task.splits(device)
        self.network = PrunableNetwork(self.scorer.model, self.splits.reward_x[:1])
        self.unpruned_latency = latency_ms(self.scorer.model, self.splits.test_x[:100])

    def unpruned_test_score(self) -> float:
        return self.scorer.unpruned_test_score()

    def measure(self, keep: list[np.ndarray], weights: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
        """Test score after recovery (mean over the recovery seeds), MACs ratio, acceleration and CPU speed-up."""
        recovered = self.scorer.score(keep, bn_recalibration=self.bn_recalibration, weights=weights)
        pruned = self.network.export(keep)
        if self.bn_recalibration:
            recalibrate_batchnorm(pruned, self.splits.train_x[: self.bn_recalibration])
        macs = self.network.macs_params(keep)[0]
        return {"test_score": recovered.test_score, "test_scores": list(recovered.test_scores),
                "macs_ratio": macs / self.network.original_macs,
                "acceleration": self.network.original_macs / macs,
                "speed_up": self.unpruned_latency / latency_ms(pruned, self.splits.test_x[:100])}


def mean_std(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """``mean +- std`` (sample std; 0 for one value)."""
    array = np.asarray(values, dtype=float) * scale
    spread = array.std(ddof=1) if len(array) > 1 else 0.0
    return f"{array.mean():.{digits}f} +- {spread:.{digits}f}"


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> str:
    """Print and return a markdown table."""
    lines = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def save(name: str, out: str | Path, payload: dict[str, Any], tables: list[str], tasks: list[str]) -> Path:
    """Write the results (with machine, date, command, the load average and the SHA-256 of the checkpoint of each of
    ``tasks``, on which every number depends) as JSON and the tables as markdown.

    The load average (1, 5 and 15 minutes, ``os.getloadavg``) at the end tells whether other jobs shared the cores,
    which makes wall times and latencies pessimistic (accuracies do not depend on it).
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    command = " ".join([".venv/bin/python", *sys.argv])
    record = {"experiment": name, "command": command, "machine": machine(), "seconds": time.perf_counter() - STARTED,
              "threads": torch.get_num_threads(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "load_average": os.getloadavg(),
              "checkpoints": {task: task_checkpoint_sha256(task) for task in sorted(tasks)},
              **payload}
    path = folder / f"{name}.json"
    write_atomic(path, json.dumps(record, indent=2, default=float))
    write_atomic(folder / f"{name}.md", "\n".join(tables) + f"\nCommand: `{command}`; machine: {record['machine']['cpu']}, "
                 f"{record['machine']['cores']} cores, torch {record['machine']['torch']}; {record['machine']['date']}.\n")
    return path
