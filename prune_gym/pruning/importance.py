"""Per-filter importance criteria: higher score = more important = pruned last.

Every criterion maps one :class:`~prune_gym.pruning.network.ChannelGroup` to a
score per channel of the group (aggregated over the group's coupled layers).
torch-pruning's importance classes are used where they exist:

* ``l1`` / ``l2``: L1 / L2 norm of each filter of the group's root conv (Li et al. 2017; ``tp.importance.GroupMagnitudeImportance``),
* ``bn-scale``: |gamma| of the group's BatchNorms (``tp.importance.BNScaleImportance``; network slimming),
* ``fpgm``: distance to the geometric median of the layer's filters (``tp.importance.FPGMImportance``),

and three are prune_gym's own:

* ``std``: standard deviation of each filter's weights (Zhejiang Univ. 2019),
* ``cluster``: k-means on the first conv's filters; a filter's score is its mean
  distance to the other members of its cluster, so filters inside tight
  clusters (redundant, CISAI 2022) score low and singletons score highest,
* ``random``: a fixed random ranking (seeded by the group's index and width, the
  same in every run): the control that a criterion has to beat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
import torch_pruning as tp
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances
from torch import nn

if TYPE_CHECKING:
    from prune_gym.pruning.network import ChannelGroup

Criterion = Callable[["ChannelGroup"], np.ndarray]


def _torch_pruning(importance: tp.importance.Importance, label: str) -> Criterion:
    def criterion(group: "ChannelGroup") -> np.ndarray:
        with torch.no_grad():
            scores = importance(group.tp_group)
        if scores is None:
            raise ValueError(f"importance '{label}' is undefined for group {group.index} ({group.name}): it has no layer it can score")
        return scores.detach().double().cpu().numpy()

    return criterion


def _member_convs(group: "ChannelGroup") -> list[tuple[nn.Conv2d, np.ndarray, np.ndarray]]:
    """(conv, output-channel idxs, group-channel idxs) of every conv whose outputs the group owns."""
    result = []
    for item in group.tp_group:
        module = item.dep.target.module
        if isinstance(module, nn.Conv2d) and item.dep.handler in (tp.prune_conv_out_channels, tp.prune_depthwise_conv_out_channels):
            result.append((module, np.asarray(item.idxs), np.asarray(item.root_idxs)))
    return result


def filter_std(group: "ChannelGroup") -> np.ndarray:
    """Standard deviation of each filter's weights, averaged over the group's convs."""
    total = np.zeros(group.num_channels)
    count = np.zeros(group.num_channels)
    for conv, idxs, root_idxs in _member_convs(group):
        weights = conv.weight.detach().flatten(1).double().cpu().numpy()[idxs]
        np.add.at(total, root_idxs, weights.std(axis=1))
        np.add.at(count, root_idxs, 1.0)
    return total / np.maximum(count, 1.0)


def cluster_redundancy(group: "ChannelGroup", cluster_fraction: float = 0.25, seed: int = 0) -> np.ndarray:
    """Mean distance of each filter to the rest of its k-means cluster (k = fraction x channels).

    Low scores mark redundant filters (inside a set of similar filters); a
    filter alone in its cluster gets the largest distance found in the layer.
    """
    filters = group.layer.module.weight.detach().flatten(1).double().cpu().numpy()
    n = len(filters)
    n_clusters = max(1, min(n, int(round(n * cluster_fraction))))
    labels = KMeans(n_clusters=n_clusters, n_init=1, random_state=seed).fit_predict(filters)
    scores = np.full(n, np.nan)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) > 1:
            block = pairwise_distances(filters[members])
            scores[members] = block.sum(axis=1) / (len(members) - 1)
    fallback = np.nanmax(scores) if np.isfinite(scores).any() else 1.0
    return np.where(np.isnan(scores), fallback, scores)


def random_ranking(group: "ChannelGroup") -> np.ndarray:
    """Uniform random scores, reproducible: seeded by the group's index and number of channels."""
    return np.random.default_rng([group.index, group.num_channels]).random(group.num_channels)


IMPORTANCE_CRITERIA: dict[str, Criterion] = {
    "l1": _torch_pruning(tp.importance.GroupMagnitudeImportance(p=1, group_reduction="first", normalizer=None), "l1"),
    "l2": _torch_pruning(tp.importance.GroupMagnitudeImportance(p=2, group_reduction="first", normalizer=None), "l2"),
    "std": filter_std,
    "bn-scale": _torch_pruning(tp.importance.BNScaleImportance(normalizer=None), "bn-scale"),
    "fpgm": _torch_pruning(tp.importance.FPGMImportance(normalizer=None), "fpgm"),
    "cluster": cluster_redundancy,
    "random": random_ranking,
}


def list_importance_criteria() -> list[str]:
    """Names accepted by :func:`filter_importance`."""
    return sorted(IMPORTANCE_CRITERIA)


def filter_importance(group: "ChannelGroup", criterion: str = "l1") -> np.ndarray:
    """Importance score of every channel of ``group`` under a named criterion (float64, length = channels)."""
    try:
        scorer = IMPORTANCE_CRITERIA[criterion]
    except KeyError:
        raise ValueError(f"unknown importance criterion {criterion!r}; choose one of {list_importance_criteria()}") from None
    scores = np.asarray(scorer(group), dtype=np.float64)
    if scores.shape != (group.num_channels,):
        raise RuntimeError(f"criterion {criterion!r} returned shape {scores.shape} for a group of {group.num_channels} channels")
    return scores
