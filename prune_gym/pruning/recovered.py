"""Scoring candidates after a few recovery steps: a slower, closer proxy of the score after fine-tuning.

With ``recovery_steps=k`` an environment scores every candidate network after
exporting it (torch-pruning), recalibrating its BatchNorm statistics when the
environment does, and fine-tuning it for ``k`` batches of the task's optimiser
at a tenth of its learning rate with a fixed seed, all on a copy: the
network the agent sees stays the pretrained one. The cache and counters work as
in :class:`~prune_gym.pruning.evaluation.MaskEvaluator`.
"""

from __future__ import annotations

from typing import Any

import torch

from prune_gym.pruning.batchnorm import recalibrate_batchnorm
from prune_gym.pruning.evaluation import MaskEvaluator
from prune_gym.pruning.network import KeepMask
from prune_gym.tasks import Splits, TrainingConfig, evaluate, recover


class RecoveringEvaluator(MaskEvaluator):
    """A :class:`MaskEvaluator` whose every score follows ``recovery_steps`` fine-tuning batches on ``splits``' train split."""

    def __init__(self, *args: Any, splits: Splits, training: TrainingConfig, recovery_steps: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.splits = splits
        self.training = training
        self.recovery_steps = recovery_steps

    def _evaluate(self, keep: KeepMask) -> float:
        pruned = self.network.export(keep)
        if self.recalibration_x is not None:
            recalibrate_batchnorm(pruned, self.recalibration_x)
        with torch.enable_grad():
            recover(pruned, self.splits, self.training, steps=self.recovery_steps, seed=0, progress=False, metric=self.metric.name)
        return evaluate(pruned, self.x, self.y, self.metric, self.batch_size)
