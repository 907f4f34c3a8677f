"""Scoring a search the way papers do: the selected network, recovered by the suite's fine-tune, on the test split.

For each run the best budget-meeting mask of the search (selected on the
reward split, so it is re-scored on data it was not selected on) is exported,
fine-tuned with the suite's :class:`~prune_gym.benchmark.suites.Recovery` once
per recovery seed, and scored on the task's test split. Its **normalised
score** puts entries on one scale:

    normalised = (test score - uniform test score) / (unpruned test score - uniform test score)

0 is uniform pruning with the suite's baseline criterion at the same budget
after the same recovery (what a user gets without any search), 1 the unpruned
network. Recovered scores are cached by (task, checkpoint, weights, mask,
steps, seed), so identical networks (deterministic baselines over seeds) are
fine-tuned once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prune_gym.benchmark.suites import Entry, Recovery
from prune_gym.pruning import PrunableNetwork, recalibrate_batchnorm
from prune_gym.storage import file_sha256, write_atomic
from prune_gym.tasks import Task, evaluate, fine_tune, get_task


def mask_digest(keep: list[np.ndarray] | tuple[np.ndarray, ...]) -> str:
    """A short stable name of a keep-mask."""
    bits = np.packbits(np.concatenate([np.asarray(m, dtype=bool) for m in keep]))
    return hashlib.sha256(bits.tobytes() + str([len(m) for m in keep]).encode()).hexdigest()[:16]


def standard_error(score: float, samples: int) -> float:
    """Binomial standard error of an accuracy measured on ``samples`` images (an approximation for other metrics)."""
    return math.sqrt(max(score * (1.0 - score), 0.0) / max(samples, 1))


@dataclass(frozen=True)
class Recovered:
    """A pruned network's test scores after the suite's recovery, one per recovery seed."""

    test_scores: tuple[float, ...]
    test_samples: int
    macs: int
    params: int

    @property
    def test_score(self) -> float:
        """Mean test score over the recovery seeds."""
        return float(np.mean(self.test_scores))


class RecoveryScorer:
    """Recovers keep-masks of one task with one :class:`Recovery` and scores them on the test split (cached on disk)."""

    def __init__(self, task: str | Task, recovery: Recovery, cache: Path, device: str = "cpu") -> None:
        self.task = get_task(task)
        self.recovery = recovery
        self.cache = Path(cache)
        self.device = device
        self.model = self.task.load_model(device=device, progress=False)
        self.checkpoint = file_sha256(self.task.checkpoint_path())
        self.splits = self.task.splits(device)

    def score(self, keep: list[np.ndarray] | tuple[np.ndarray, ...], bn_recalibration: int = 0,
              weights: dict[str, torch.Tensor] | None = None) -> Recovered:
        """Test scores of ``keep`` recovered from the pretrained weights (or ``weights``, a search's fine-tuned ones)."""
        source = self.model if weights is None else self._with(weights)
        weights_tag = "pretrained" if weights is None else hashlib.sha256(
            b"".join(t.detach().cpu().numpy().tobytes() for t in weights.values())).hexdigest()[:16]
        scores = []
        for seed in self.recovery.seeds:
            key = f"{self.task.name}-{self.checkpoint[:16]}-{weights_tag}-{mask_digest(keep)}-bn{bn_recalibration}-" \
                  f"{self.recovery.steps}steps-seed{seed}"
            path = self.cache / f"{key}.json"
            if path.exists():
                cached = json.loads(path.read_text())
            else:
                cached = self._recover(source, keep, bn_recalibration, seed)
                self.cache.mkdir(parents=True, exist_ok=True)
                write_atomic(path, json.dumps(cached))
            scores.append(cached["test_score"])
        return Recovered(tuple(scores), len(self.splits.test_y), cached["macs"], cached["params"])

    def unpruned_test_score(self) -> float:
        """The unpruned network's test score (no recovery)."""
        return evaluate(self.model, self.splits.test_x, self.splits.test_y, self.task.metric)

    def _with(self, weights: dict[str, torch.Tensor]) -> nn.Module:
        model = copy.deepcopy(self.model)
        model.load_state_dict(weights)
        return model

    def _recover(self, source: nn.Module, keep: Any, bn_recalibration: int, seed: int) -> dict[str, Any]:
        network = PrunableNetwork(source, self.splits.reward_x[:1])
        pruned = network.export(keep)
        if bn_recalibration:
            recalibrate_batchnorm(pruned, self.splits.train_x[:bn_recalibration])
        macs, params = network.macs_params(keep)
        fine_tune(pruned, self.splits, self.task.training, steps=self.recovery.steps, seed=seed, progress=False,
                  metric=self.task.metric)
        return {"test_score": evaluate(pruned, self.splits.test_x, self.splits.test_y, self.task.metric), "macs": macs, "params": params}


@dataclass(frozen=True)
class EntryReferences:
    """An entry's two fixed points of the normalised score, on the test split after recovery and on the reward
    split as the entry's environment scores (for best-so-far curves), and the checkpoint they were measured on."""

    entry: str
    unpruned_test_score: float
    uniform_test_score: float
    unpruned_proxy_score: float
    uniform_proxy_score: float
    uniform_macs_ratio: float
    test_samples: int
    checkpoint_sha256: str

    def normalise(self, test_score: float) -> float:
        """0 = uniform pruning after the same recovery, 1 = the unpruned network."""
        gap = self.unpruned_test_score - self.uniform_test_score
        return (test_score - self.uniform_test_score) / gap if gap > 0 else 0.0


def entry_references(entry: Entry, recovery: Recovery, baseline_criterion: str, cache: Path, device: str = "cpu") -> EntryReferences:
    """Measure (or read from ``cache``) the unpruned and the uniform-``baseline_criterion`` test scores of an entry."""
    import gymnasium as gym

    scorer = RecoveryScorer(entry.task, recovery, cache / "recovered", device)
    path = cache / f"references-{entry.slug}-{scorer.checkpoint[:16]}-{baseline_criterion}-{recovery.steps}-{recovery.seeds}.json"
    if path.exists():
        return EntryReferences(**json.loads(path.read_text()))
    protocol = {key: value for key, value in entry.env_kwargs.items() if key in ("reward_samples", "bn_recalibration", "batch_size")}
    env: Any = gym.make("LayerRate-v0", task=entry.task, macs_budget=entry.macs_budget, device=device, criterion=baseline_criterion,
                        **protocol).unwrapped
    budget = env.rate_budget()
    keep = budget.keep_masks(budget.kept_counts(budget.uniform_rates()))
    recovered = scorer.score(keep, bn_recalibration=int(entry.env_kwargs.get("bn_recalibration", 0)))
    references = EntryReferences(entry.name, scorer.unpruned_test_score(), recovered.test_score, env.score_before,
                                 env.evaluator.score(keep), env.network.macs_params(keep)[0] / env.network.original_macs,
                                 recovered.test_samples, scorer.checkpoint)
    cache.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(references)))
    return references
