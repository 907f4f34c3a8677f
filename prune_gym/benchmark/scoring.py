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

import base64
import copy
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from torch import nn

from prune_gym.benchmark.suites import Entry, Recovery
from prune_gym.pruning import PrunableNetwork, recalibrate_batchnorm
from prune_gym.runs import RunSpec
from prune_gym.storage import file_sha256, write_atomic
from prune_gym.tasks import Task, evaluate, get_task, recover, sample_correctness


def mask_digest(keep: list[np.ndarray] | tuple[np.ndarray, ...]) -> str:
    """A short stable name of a keep-mask."""
    bits = np.packbits(np.concatenate([np.asarray(m, dtype=bool) for m in keep]))
    return hashlib.sha256(bits.tobytes() + str([len(m) for m in keep]).encode()).hexdigest()[:16]


def pack_correctness(correct: np.ndarray) -> str:
    """Per-sample correctness (bools) as compact text: base64 of the packed bits (1,668 characters for 10,000 images)."""
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def unpack_correctness(text: str, samples: int) -> np.ndarray:
    """The bools :func:`pack_correctness` packed, ``samples`` of them."""
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:samples].astype(bool)


def standard_error(score: float, samples: int) -> float:
    """Binomial standard error of an accuracy measured on ``samples`` images (an approximation for other metrics)."""
    return math.sqrt(max(score * (1.0 - score), 0.0) / max(samples, 1))


@dataclass(frozen=True)
class RecoveryCache:
    """Where recovered networks' test scores (``recovered/<key>.json``) and entries' references
    (``references-<key>.json``) are kept. Benchmarks, tuning, fidelity studies and experiments may share one: every
    key carries the task's checkpoint, the mask or entry, and the recovery protocol."""

    root: Path

    def recovered(self, key: str) -> Path:
        """The file of one recovered network's scores."""
        return self.root / "recovered" / f"{key}.json"

    def references(self, key: str) -> Path:
        """The file of one entry's references."""
        return self.root / f"references-{key}.json"

    def read(self, path: Path) -> dict[str, Any] | None:
        """A cached record, or None when it is not cached yet."""
        return json.loads(path.read_text()) if path.exists() else None

    def write(self, path: Path, record: dict[str, Any]) -> None:
        """Cache a record atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(record))


@dataclass(frozen=True)
class Recovered:
    """A pruned network's test scores after the suite's recovery, one per recovery seed."""

    test_scores: tuple[float, ...]
    test_samples: int
    macs: int
    params: int
    test_correct: tuple[str, ...] | None = None
    """Per recovery seed, which test images it got right (:func:`pack_correctness`); None for metrics other than
    accuracy, and for records cached before per-image results were kept."""

    @property
    def test_score(self) -> float:
        """Mean test score over the recovery seeds."""
        return float(np.mean(self.test_scores))


class RecoveryScorer:
    """Recovers keep-masks of one task with one :class:`Recovery` and scores them on the test split (cached on disk)."""

    def __init__(self, task: str | Task, recovery: Recovery, cache: RecoveryCache, device: str = "cpu") -> None:
        self.task = get_task(task)
        self.recovery = recovery
        self.cache = cache
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
        scores: list[float] = []
        correct: list[str | None] = []
        cached: dict[str, Any] = {}
        for seed in self.recovery.seeds:
            key = f"{self.task.name}-{self.checkpoint[:16]}-{weights_tag}-{mask_digest(keep)}-bn{bn_recalibration}-" \
                  f"{self.recovery.steps}steps-seed{seed}"
            path = self.cache.recovered(key)
            record = self.cache.read(path)
            if record is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with FileLock(f"{path}.lock"):  # workers wanting one network (a uniform mask, say) recover it once
                    record = self.cache.read(path)
                    if record is None:
                        record = self._recover(source, keep, bn_recalibration, seed)
                        self.cache.write(path, record)
            cached = record
            scores.append(cached["test_score"])
            correct.append(cached.get("test_correct"))
        kept = [text for text in correct if text is not None]
        return Recovered(tuple(scores), len(self.splits.test_y), cached["macs"], cached["params"],
                         tuple(kept) if len(kept) == len(correct) else None)

    def unpruned_test_score(self) -> float:
        """The unpruned network's test score (no recovery)."""
        return evaluate(self.model, self.splits.test_x, self.splits.test_y, self.task.metric)

    def unpruned_test_correct(self) -> str | None:
        """Which test images the unpruned network gets right (:func:`pack_correctness`); None unless the metric is
        accuracy."""
        if self.task.metric != "accuracy":
            return None
        return pack_correctness(sample_correctness(self.model, self.splits.test_x, self.splits.test_y))

    def _test_record(self, network: nn.Module) -> dict[str, Any]:
        """The test score of ``network``, with its per-image correctness when the metric is accuracy."""
        if self.task.metric != "accuracy":
            return {"test_score": evaluate(network, self.splits.test_x, self.splits.test_y, self.task.metric)}
        correct = sample_correctness(network, self.splits.test_x, self.splits.test_y)
        return {"test_score": float(correct.mean()), "test_correct": pack_correctness(correct)}

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
        if self.recovery.steps:
            recover(pruned, self.splits, self.task.training, steps=self.recovery.steps, seed=seed, progress=False,
                    metric=self.task.metric)
        return {**self._test_record(pruned), "macs": macs, "params": params}


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
    unpruned_test_correct: str | None = None
    uniform_test_correct: tuple[str, ...] | None = None
    """Which test images the unpruned network and the recovered uniform pruning (per recovery seed) get right
    (:func:`pack_correctness`): the paired bootstrap over test images (:mod:`prune_gym.benchmark.aggregate`) resamples
    them with every run's. None for metrics other than accuracy and for references cached before they were kept."""

    def normalise(self, test_score: float) -> float:
        """0 = uniform pruning after the same recovery, 1 = the unpruned network."""
        gap = self.unpruned_test_score - self.uniform_test_score
        return (test_score - self.uniform_test_score) / gap if gap > 0 else 0.0

    def normalise_proxy(self, proxy_score: float) -> float:
        """A reward-split score on the same scale (0 = uniform, 1 = unpruned); 0 for NaN (no budget-meeting episode yet)."""
        gap = self.unpruned_proxy_score - self.uniform_proxy_score
        return (proxy_score - self.uniform_proxy_score) / gap if gap > 0 and math.isfinite(proxy_score) else 0.0


REFERENCE_PROTOCOL_IGNORES = ("reward", "reward_kwargs", "observation", "action_type", "rate_levels", "criterion", "device")


def protocol_spec(entry: Entry, device: str = "cpu", **overrides: Any) -> RunSpec:
    """An entry's reward protocol on ``LayerRate-v0``, what uniform references and fidelity candidates are scored with:
    the entry's environment keywords (``macs_budget``, ``reward_samples``, ``bn_recalibration``, ``recovery_steps``,
    ``batch_size``, ``max_rate``, ...) but those only an agent's episode uses (reward, observation, action type,
    criterion), then ``overrides``."""
    kept = {key: value for key, value in entry.run_spec("uniform").env_kwargs.items() if key not in REFERENCE_PROTOCOL_IGNORES}
    return RunSpec(task=entry.task, env="LayerRate-v0", env_kwargs={**kept, **overrides, "device": device})


def entry_references(entry: Entry, recovery: Recovery, baseline_criterion: str, cache: RecoveryCache,
                     device: str = "cpu", filled_uniform: bool = False) -> EntryReferences:
    """Measure (or read from ``cache``) the unpruned and the uniform-``baseline_criterion`` test scores of an entry
    (uniform pruning that uses the whole budget with ``filled_uniform``: :meth:`RateBudget.uniform_counts`)."""
    scorer = RecoveryScorer(entry.task, recovery, cache, device)
    spec = protocol_spec(entry, device, criterion=baseline_criterion)
    protocol = {key: value for key, value in spec.env_kwargs.items() if key != "device"}
    digest = hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:12]
    filled = "-filled" if filled_uniform else ""
    path = cache.references(f"{entry.slug}-{scorer.checkpoint[:16]}-{recovery.steps}-{recovery.seeds}-{digest}{filled}")
    cached = cache.read(path)
    if cached is not None:
        return EntryReferences(**cached)
    env: Any = spec.make_env().unwrapped
    budget = env.rate_budget()
    keep = budget.keep_masks(budget.uniform_counts(filled_uniform))
    recovered = scorer.score(keep, bn_recalibration=int(protocol.get("bn_recalibration", 0)))
    references = EntryReferences(entry.name, scorer.unpruned_test_score(), recovered.test_score, env.score_before,
                                 env.evaluator.score(keep), env.network.macs_params(keep)[0] / env.network.original_macs,
                                 recovered.test_samples, scorer.checkpoint, scorer.unpruned_test_correct(),
                                 recovered.test_correct)
    cache.write(path, asdict(references))
    return references
