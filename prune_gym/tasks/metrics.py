"""Task metrics: the score a task's network is judged by (higher is better, in [0, 1]).

A metric is computed over batches in two parts, so that scoring 1000 images
never holds all their outputs at once: ``statistics(logits, targets)`` returns
a tensor of sufficient statistics that add up across batches, and
``final(total)`` turns their sum into the score. Built-ins:

* ``accuracy``: top-1 accuracy of classification logits ``(N, C)`` against labels ``(N,)``;
* ``mean-iou``: mean intersection-over-union over the classes present in
  prediction or target, for segmentation logits ``(N, C, H, W)`` against
  per-pixel labels ``(N, H, W)`` (the background class counts like any other).

Register your own with :func:`register_metric` (``Task(metric="name")``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prune_gym.registry import Registry

if TYPE_CHECKING:  # torch is imported where it runs: `prune-gym list` starts without it
    import torch

Statistics = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
Final = Callable[["torch.Tensor"], float]


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: per-batch additive statistics and the score of their sum."""

    name: str
    statistics: Statistics
    final: Final


_METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(name: str, statistics: Statistics, final: Final, *, overwrite: bool = False) -> MetricSpec:
    """Register a metric: ``statistics(logits, targets) -> tensor`` (summed over batches), ``final(sum) -> float``.

    Raises:
        ValueError: the name is taken and ``overwrite`` is False.
    """
    if not callable(statistics) or not callable(final):
        raise TypeError(f"metric {name!r} needs two functions, statistics(logits, targets) and final(total)")
    return _METRICS.register(name, MetricSpec(name, statistics, final), overwrite)


def get_metric(name: str) -> MetricSpec:
    """The metric registered as ``name``; unknown names list the registered ones."""
    return _METRICS.get(name)


def list_metrics() -> list[str]:
    """Names of the registered metrics."""
    return _METRICS.names()


def _accuracy_statistics(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.stack([(logits.argmax(dim=1) == targets).sum(), torch.tensor(targets.numel(), device=targets.device)])


def _ratio(total: torch.Tensor) -> float:
    return float(total[0]) / max(float(total[1]), 1.0)


def _confusion(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    import torch

    classes = logits.shape[1]
    pairs = targets.reshape(-1) * classes + logits.argmax(dim=1).reshape(-1)
    return torch.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


def _mean_iou(confusion: torch.Tensor) -> float:
    confusion = confusion.double()
    intersection = confusion.diagonal()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - intersection
    present = union > 0
    return float((intersection[present] / union[present]).mean()) if bool(present.any()) else 0.0


register_metric("accuracy", _accuracy_statistics, _ratio)
register_metric("mean-iou", _confusion, _mean_iou)


def evaluate(model: Any, x: torch.Tensor, y: torch.Tensor, metric: str | MetricSpec = "accuracy", batch_size: int = 100) -> float:
    """The metric of ``model`` on ``(x, y)``, in eval mode and ``inference_mode``, batch by batch (inputs moved to the model's device)."""
    import torch

    spec = metric if isinstance(metric, MetricSpec) else get_metric(metric)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total: torch.Tensor | None = None
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            batch = spec.statistics(model(x[start:start + batch_size].to(device)), y[start:start + batch_size].to(device))
            total = batch if total is None else total + batch
    model.train(was_training)
    return spec.final(total) if total is not None else 0.0


def sample_correctness(model: Any, x: torch.Tensor, y: torch.Tensor, batch_size: int = 100) -> Any:
    """Per sample of ``(x, y)``, whether the top-1 prediction of ``model`` is right (a bool numpy array): the terms of
    the ``accuracy`` metric, whose mean is exactly :func:`evaluate`'s accuracy. What a bootstrap over test images
    resamples (paired: every network scored on the same images)."""
    import numpy as np
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            logits = model(x[start:start + batch_size].to(device))
            parts.append((logits.argmax(dim=1) == y[start:start + batch_size].to(device)).cpu().numpy())
    model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
