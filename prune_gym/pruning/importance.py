"""Per-filter importance criteria: higher score = more important = pruned last.

A criterion is a function of one :class:`~prune_gym.pruning.network.ChannelGroup`
returning a score per channel of the group (aggregated over the group's coupled
layers), registered by name like rewards (:func:`register_importance`). The
network knows nothing of importance (as in Torch-Pruning's ``MetaPruner``): an
:class:`ImportanceRanking`, owned by the environment, scores a network's groups
under any registered criterion and caches the scores for the current weights.

torch-pruning's importance classes are used where they exist:

* ``l1`` / ``l2``: L1 / L2 norm of each filter of the group's root conv (Li et al. 2017; ``tp.importance.GroupMagnitudeImportance``),
* ``bn-scale``: |gamma| of the group's BatchNorms (``tp.importance.BNScaleImportance``; network slimming),
* ``fpgm``: distance to the geometric median of the layer's filters (``tp.importance.FPGMImportance``),

and three are prune_gym's own:

* ``std``: standard deviation of each filter's weights (Zhejiang Univ. 2019),
* ``cluster`` (CISAI 2022): keeping n filters of a group clusters its filters
  into n sets by k-means and keeps the filter nearest each set's centroid, so
  the RL rate chooses the cluster dimension; as a score (the ``filters``
  observation), a filter's mean distance to the rest of its cluster at a fixed
  quarter of the width (redundant filters score low),
* ``random``: a fixed random ranking (seeded by the group's index and width, the
  same in every run): the control that a criterion has to beat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from prune_gym.registry import Registry, first_line

if TYPE_CHECKING:
    from prune_gym.pruning.network import ChannelGroup, PrunableNetwork

Criterion = Callable[["ChannelGroup"], np.ndarray]
ENTRY_POINT_GROUP = "prune_gym.criteria"


class UndefinedImportanceError(ValueError):
    """A criterion cannot score a group (e.g. ``bn-scale`` on a group without BatchNorm)."""


def _torch_pruning(importance: tp.importance.Importance, label: str, description: str) -> Criterion:
    def criterion(group: ChannelGroup) -> np.ndarray:
        with torch.no_grad():
            scores = importance(group.tp_group)
        if scores is None:
            raise UndefinedImportanceError(f"importance '{label}' is undefined for group {group.index} ({group.name}): "
                                           "it has no layer it can score")
        return scores.detach().double().cpu().numpy()

    criterion.__doc__ = description

    return criterion


def _member_convs(group: ChannelGroup) -> list[tuple[nn.Conv2d, np.ndarray, np.ndarray]]:
    """(conv, output-channel idxs, group-channel idxs) of every conv whose outputs the group owns."""
    result = []
    for item in group.tp_group:
        module = item.dep.target.module
        if isinstance(module, nn.Conv2d) and item.dep.handler in (tp.prune_conv_out_channels, tp.prune_depthwise_conv_out_channels):
            result.append((module, np.asarray(item.idxs), np.asarray(item.root_idxs)))
    return result


def filter_std(group: ChannelGroup) -> np.ndarray:
    """Standard deviation of each filter's weights, averaged over the group's convs."""
    total = np.zeros(group.num_channels)
    count = np.zeros(group.num_channels)
    for conv, idxs, root_idxs in _member_convs(group):
        weights = conv.weight.detach().flatten(1).double().cpu().numpy()[idxs]
        np.add.at(total, root_idxs, weights.std(axis=1))
        np.add.at(count, root_idxs, 1.0)
    return total / np.maximum(count, 1.0)


def group_filters(group: ChannelGroup) -> np.ndarray:
    """One row per channel of the group: the flattened filters of every conv whose outputs the group owns, side by side."""
    parts = []
    for conv, idxs, root_idxs in _member_convs(group):
        weights = conv.weight.detach().flatten(1).double().cpu().numpy()
        part = np.zeros((group.num_channels, weights.shape[1]))
        part[root_idxs] = weights[idxs]
        parts.append(part)
    return np.concatenate(parts, axis=1)


def cluster_redundancy(group: ChannelGroup, cluster_fraction: float = 0.25, seed: int = 0) -> np.ndarray:
    """CISAI 2022: keeping n filters keeps one per k-means cluster (k = n); as a score, distance within its cluster.

    Low scores mark redundant filters (inside a set of similar filters); a
    filter alone in its cluster gets the largest distance found in the layer.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances

    filters = group_filters(group)
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


def cluster_selection(group: ChannelGroup, n_keep: int, among: np.ndarray, seed: int = 0) -> np.ndarray:
    """CISAI 2022's rate-aware selection: k-means of the candidate filters into ``n_keep`` sets, keep each set's
    most representative filter (the one nearest its centroid); filters inside a set are redundant."""
    from sklearn.cluster import KMeans

    candidates = np.flatnonzero(among)
    filters = group_filters(group)[candidates]
    keep = np.zeros(group.num_channels, dtype=bool)
    if n_keep >= len(candidates):
        keep[candidates] = True
        return keep
    model = KMeans(n_clusters=n_keep, n_init=3, random_state=seed).fit(filters)
    for label in range(n_keep):
        members = np.flatnonzero(model.labels_ == label)
        distances = np.linalg.norm(filters[members] - model.cluster_centers_[label], axis=1)
        keep[candidates[members[np.argmin(distances)]]] = True
    return keep


def random_ranking(group: ChannelGroup) -> np.ndarray:
    """Uniform random scores, reproducible: seeded by the group's index and number of channels."""
    return np.random.default_rng([group.index, group.num_channels]).random(group.num_channels)


Selector = Callable[["ChannelGroup", int, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ImportanceSpec:
    """A registered criterion: its scoring function, whether observations use it as a feature, its description,
    and optionally a selector that chooses the channels to keep for a given count directly (instead of the top scores)."""

    name: str
    function: Criterion
    feature: bool
    description: str
    select: Selector | None = None


def _adapt(name: str, function: Any) -> ImportanceSpec:
    if isinstance(function, ImportanceSpec):
        return function
    if not callable(function):
        raise ValueError(f"criterion {name!r} is a {type(function).__name__}, not a function of a ChannelGroup")
    return ImportanceSpec(name, function, True, first_line(function))


_CRITERIA: Registry[ImportanceSpec] = Registry("importance criterion", ENTRY_POINT_GROUP, _adapt, plural="criteria")


def register_importance(name: str, function: Criterion | None = None, *, feature: bool = True, select: Selector | None = None,
                        overwrite: bool = False) -> Any:
    """Register a filter criterion under ``name``; usable as ``@register_importance("name")`` or directly.

    Args:
        name: the name passed as ``criterion=`` at ``gymnasium.make`` (and listed by ``prune-gym list criteria``).
        function: ``f(group: ChannelGroup) -> np.ndarray`` of one score per channel; higher = kept longer.
        feature: whether the ``filters`` observation includes it as a per-filter feature (a random ranking is not one).
        select: ``f(group, n_keep, among) -> keep-mask``: keeping ``n_keep`` channels chooses them with it (among the
            candidate channels ``among``) instead of taking the ``n_keep`` highest scores.
        overwrite: allow replacing an existing registration.

    Raises:
        ValueError: the name is taken and ``overwrite`` is False.
    """
    return _CRITERIA.decorator(name, function, lambda fn: ImportanceSpec(name, fn, feature, first_line(fn), select), overwrite)


def list_importance_criteria() -> list[str]:
    """Names of all registered criteria (entry points included)."""
    return _CRITERIA.names()


def get_importance(name: str) -> ImportanceSpec:
    """The criterion registered as ``name`` (or ``module:function``); unknown names list the registered ones."""
    return _CRITERIA.get(name)


def filter_importance(group: ChannelGroup, criterion: str = "l1") -> np.ndarray:
    """Importance score of every channel of ``group`` under a named criterion (float64, length = channels)."""
    scores = np.asarray(get_importance(criterion).function(group), dtype=np.float64)
    if scores.shape != (group.num_channels,):
        raise RuntimeError(f"criterion {criterion!r} returned shape {scores.shape} for a group of {group.num_channels} channels")
    return scores


class ImportanceRanking:
    """Per-channel importance of a network's groups under registered criteria, for its current weights.

    Scores are computed on first use and cached; build a new ranking after the
    weights change (the environment does so after ``recover``).
    """

    def __init__(self, network: PrunableNetwork) -> None:
        self.network = network
        self._scores: dict[str, list[np.ndarray]] = {}
        self._selections: dict[tuple[str, int, int, bytes], np.ndarray] = {}

    def scores(self, criterion: str) -> list[np.ndarray]:
        """One score array per group (higher = more important)."""
        if criterion not in self._scores:
            self._scores[criterion] = [filter_importance(group, criterion) for group in self.network.groups]
        return self._scores[criterion]

    def keep_most_important(self, group_index: int, n_keep: int, criterion: str, among: np.ndarray | None = None) -> np.ndarray:
        """Keep-mask of one group keeping its ``n_keep`` most important channels (at least one).

        With ``among`` (a boolean mask), only those channels are candidates. A
        criterion with a selector (``cluster``) chooses the channels for that count itself (cached).
        """
        spec = get_importance(criterion)
        if spec.select is not None:
            group = self.network.groups[group_index]
            candidates = np.ones(group.num_channels, dtype=bool) if among is None else np.asarray(among, dtype=bool)
            count = min(max(int(n_keep), 1), int(np.count_nonzero(candidates)))
            key = (criterion, group_index, count, np.packbits(candidates).tobytes())
            if key not in self._selections:
                self._selections[key] = spec.select(group, count, candidates)
            return self._selections[key].copy()
        scores = self.scores(criterion)[group_index]
        if among is not None:
            scores = np.where(among, scores, -np.inf)
            n_keep = min(n_keep, int(np.count_nonzero(among)))
        n_keep = int(min(max(n_keep, 1), len(scores)))
        keep = np.zeros(len(scores), dtype=bool)
        keep[np.argsort(-scores, kind="stable")[:n_keep]] = True
        return keep


register_importance("l1", _torch_pruning(tp.importance.GroupMagnitudeImportance(p=1, group_reduction="first", normalizer=None), "l1",
                                         "L1 norm of each filter of the group's root conv (Li et al. 2017)"))
register_importance("l2", _torch_pruning(tp.importance.GroupMagnitudeImportance(p=2, group_reduction="first", normalizer=None), "l2",
                                         "L2 norm of each filter of the group's root conv"))
register_importance("std", filter_std)
register_importance("bn-scale", _torch_pruning(tp.importance.BNScaleImportance(normalizer=None), "bn-scale",
                                               "|gamma| of the group's BatchNorms (network slimming)"))
register_importance("fpgm", _torch_pruning(tp.importance.FPGMImportance(normalizer=None), "fpgm",
                                           "distance to the geometric median of the layer's filters (FPGM)"))
register_importance("cluster", cluster_redundancy, select=cluster_selection)
register_importance("random", random_ranking, feature=False)
