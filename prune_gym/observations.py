"""Observations, registered by name and chosen at ``gymnasium.make(..., observation=NAME)``.

An observation is built once per environment from the network's static
description (``cls(network)``), declares its ``space`` and maps each
:class:`~prune_gym.state.EpisodeState` to an array (``observe(state)``: the
state before deciding group ``state.group_index``), the twin of a reward. A
plain function of the state is enough for most::

    import prune_gym

    @prune_gym.register_observation("progress", size=2)
    def progress(state: prune_gym.EpisodeState) -> np.ndarray:
        return np.array([state.group_index / state.num_groups, state.macs_ratio])

Values are clipped into the declared ``Box(low, high)`` (default [0, 1]).
Like rewards, observations are also found as ``package.module:name`` and
through the ``prune_gym.observations`` entry-point group. Built-ins:

* ``layer``: AMC's normalised layer embedding (default of LayerRate-v0), 11
  values in [0, 1]: group index, depthwise flag, input channels, output
  channels, input feature-map size (H x W), stride, kernel size (kh x kw),
  the group's MACs, MACs removed so far, MACs of the later groups (all ratios
  to the original MACs for the last three), and the previous decision's pruned fraction.
* ``layer-budget``: ``layer`` and the episode's budgets (fractions of the
  original MACs and parameters the pruned network may keep), 13 values: a
  policy that meets networks and budgets it never saw (the transfer track)
  needs the budget, and every value is a ratio within one network.
* ``filters``: per-filter importance under every registered criterion marked as a
  feature (``l1``, ``l2``, ``std``, ``bn-scale``, ``fpgm``, ``cluster`` and users'),
  each divided by its maximum over the group (zero where a criterion cannot score
  the group), zero-padded to the widest group and flattened, then the ``layer`` embedding
  (default of FilterSelect-v0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from prune_gym.pruning.importance import UndefinedImportanceError, get_importance, list_importance_criteria
from prune_gym.registry import Registry
from prune_gym.state import EpisodeState
from prune_gym.validation import check_int, check_real

if TYPE_CHECKING:
    from prune_gym.pruning import PrunableNetwork

ENTRY_POINT_GROUP = "prune_gym.observations"


class Observation:
    """Base class of a named observation: set ``space`` in ``__init__`` and implement ``observe``."""

    space: gym.spaces.Box

    def __init__(self, network: PrunableNetwork) -> None:
        self.network = network

    def observe(self, state: EpisodeState) -> np.ndarray:
        """The observation before deciding group ``state.group_index``, inside ``space``."""
        raise NotImplementedError


def _from_function(name: str, function: Callable[[EpisodeState], np.ndarray], size: int | Callable[[PrunableNetwork], int],
                   low: float, high: float) -> type[Observation]:
    """An :class:`Observation` class around a function of the state (values clipped into [low, high])."""

    class FunctionObservation(Observation):
        __doc__ = function.__doc__

        def __init__(self, network: PrunableNetwork) -> None:
            super().__init__(network)
            length = size(network) if callable(size) else size
            length = check_int(f"size of observation {name!r}", length, 1, "a positive number of values")
            self.space = gym.spaces.Box(low, high, (length,), dtype=np.float32)

        def observe(self, state: EpisodeState) -> np.ndarray:
            values = np.asarray(function(state), dtype=np.float32).reshape(-1)
            if values.shape != self.space.shape:
                raise ValueError(f"observation {name!r} returned {values.shape[0]} values, its space declares {self.space.shape[0]}")
            return np.clip(values, low, high)

    FunctionObservation.__name__ = FunctionObservation.__qualname__ = f"{getattr(function, '__name__', name)}_observation"
    return FunctionObservation


def _adapt(name: str, value: Any) -> type[Observation]:
    if isinstance(value, type) and issubclass(value, Observation):
        return value
    raise ValueError(f"observation {name!r} is a {type(value).__name__}: expected an Observation subclass "
                     "(decorate a function with @register_observation(name, size=...) to register it)")


_OBSERVATIONS: Registry[type[Observation]] = Registry("observation", ENTRY_POINT_GROUP, _adapt)


def register_observation(name: str, target: Any = None, *, size: int | Callable[[PrunableNetwork], int] | None = None,
                         low: float = 0.0, high: float = 1.0, overwrite: bool = False) -> Any:
    """Register an observation under ``name``; usable as a decorator or directly.

    ``target`` is an :class:`Observation` subclass, or a function ``f(state) -> array``
    together with ``size`` (its length, or a function of the network giving it) and
    the bounds ``low``/``high`` its values are clipped into.

    Raises:
        ValueError: the name is taken and ``overwrite`` is False, a function comes without ``size``, ``size`` is not a
            positive integer, or ``low``/``high`` are not finite with ``low < high``.
    """

    if size is not None and not callable(size):
        check_int("size", size, 1, "a positive number of values (or a function of the network giving it)")
    low = check_real("low", low, -math.inf, math.inf, low_open=True, high_open=True, expected="a finite lower bound")
    high = check_real("high", high, low, math.inf, low_open=True, high_open=True, expected=f"a finite upper bound > low={low:g}")

    def decorate(item: Any) -> Any:
        if isinstance(item, type) and issubclass(item, Observation):
            _OBSERVATIONS.register(name, item, overwrite)
        elif callable(item):
            if size is None:
                raise ValueError(f"observation {name!r} is a function: give its length, register_observation({name!r}, size=N)")
            _OBSERVATIONS.register(name, _from_function(name, item, size, low, high), overwrite)
        else:
            raise TypeError(f"observation {name!r} must be an Observation subclass or a function, got {type(item).__name__}")
        return item

    return decorate if target is None else decorate(target)


def list_observations() -> list[str]:
    """Names of all registered observations (entry points included)."""
    return _OBSERVATIONS.names()


def get_observation(name: str) -> type[Observation]:
    """The observation class registered as ``name``; unknown names list the registered ones."""
    return _OBSERVATIONS.get(name)


def _normalise_columns(table: np.ndarray) -> np.ndarray:
    peak = table.max(axis=0)
    return table / np.where(peak > 0, peak, 1.0)


@register_observation("layer")
class LayerEmbedding(Observation):
    """AMC's layer embedding (see the module docstring)."""

    size = 11

    def __init__(self, network: PrunableNetwork) -> None:
        super().__init__(network)
        position = {layer.name: i for i, layer in enumerate(network.layers)}
        static = []
        for group in network.groups:
            layer = group.layer
            input_size = network.layers[position[layer.name]].spatial * layer.stride ** 2
            static.append([group.index, layer.kind == "depthwise", layer.in_channels, layer.out_channels,
                           input_size, layer.stride, layer.kernel])
        self._static = _normalise_columns(np.asarray(static, dtype=np.float64))
        self._owner = np.zeros((network.num_groups, len(network.layers)))
        for row, layer in enumerate(network.layers):
            for channel_map in layer.out_maps:
                self._owner[channel_map.group, row] = 1.0
        self._original_group_macs = self._owner @ network.layer_macs(network.full_mask())
        self._peak_group_macs = max(self._original_group_macs.max(), 1.0)
        self.space = gym.spaces.Box(0.0, 1.0, (self.size,), dtype=np.float32)

    def observe(self, state: EpisodeState) -> np.ndarray:
        network = self.network
        t = min(state.group_index, network.num_groups - 1)
        group_macs = self._owner @ network.layer_macs(state.keep)
        dynamic = [
            self._original_group_macs[t] / self._peak_group_macs,
            (network.original_macs - state.macs) / network.original_macs,
            group_macs[t + 1:].sum() / network.original_macs,
            state.previous_rate,
        ]
        return np.clip(np.concatenate([self._static[t], dynamic]), 0.0, 1.0).astype(np.float32)


@register_observation("layer-budget")
class BudgetedLayerEmbedding(LayerEmbedding):
    """The ``layer`` embedding, then the MACs and parameter budgets (fractions kept; 1.0: no parameter budget)."""

    size = LayerEmbedding.size + 2

    def observe(self, state: EpisodeState) -> np.ndarray:
        budgets = np.array([state.macs_budget, state.params_budget], dtype=np.float32)
        return np.concatenate([super().observe(state), budgets])


def feature_criteria() -> list[str]:
    """The registered importance criteria marked as per-filter features (what ``filters`` observes; agents may read them too)."""
    return [name for name in list_importance_criteria() if get_importance(name).feature]


@register_observation("filters")
class FilterFeatures(Observation):
    """Per-filter importance features of the group to decide, plus the layer embedding."""

    def __init__(self, network: PrunableNetwork) -> None:
        super().__init__(network)
        self.criteria = feature_criteria()
        self._layer = LayerEmbedding(network)
        self._width = max(group.num_channels for group in network.groups)
        self._cache: dict[int, np.ndarray] = {}
        self._ranking: object = None  # the ranking the cache was filled from
        self.space = gym.spaces.Box(0.0, 1.0, (self._width * len(self.criteria) + LayerEmbedding.size,), dtype=np.float32)

    def _features(self, state: EpisodeState, t: int) -> np.ndarray:
        if state.importance is not self._ranking:  # new weights, new ranking
            self._cache.clear()
            self._ranking = state.importance
        if t not in self._cache:
            table = np.zeros((self._width, len(self.criteria)))
            for column, criterion in enumerate(self.criteria):
                try:
                    scores = state.importance.scores(criterion)[t]
                except UndefinedImportanceError:
                    continue
                table[: len(scores), column] = np.abs(scores)
            self._cache[t] = _normalise_columns(table).astype(np.float32).ravel()
        return self._cache[t]

    def observe(self, state: EpisodeState) -> np.ndarray:
        t = min(state.group_index, self.network.num_groups - 1)
        return np.concatenate([self._features(state, t), self._layer.observe(state)])
