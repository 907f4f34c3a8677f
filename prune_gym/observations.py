"""Observation spaces, registered by name and chosen at ``gymnasium.make(..., observation=NAME)``.

An observation is a class built once per environment (``cls(env)``) that
declares its ``space`` and returns ``observe()`` for the group about to be
decided (``env.unwrapped.step_index``). Built-ins:

* ``layer``: AMC's normalised layer embedding (default of LayerRate-v0), 11
  values in [0, 1]: group index, depthwise flag, input channels, output
  channels, input feature-map size (H x W), stride, kernel size (kh x kw),
  the group's MACs, MACs removed so far, MACs of the later groups (all ratios
  to the original MACs for the last three), and the previous action's pruned fraction.
* ``filters``: per-filter importance (L1, std, FPGM, cluster distance, each
  divided by its maximum over the group), zero-padded to ``max_filters`` and
  flattened, followed by the ``layer`` embedding (default of FilterSelect-v0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    from prune_gym.envs.base import PruningEnv

_REGISTRY: dict[str, type["Observation"]] = {}


class Observation:
    """Base class of a named observation: subclasses set ``space`` in ``__init__`` and implement ``observe``."""

    space: gym.spaces.Box

    def __init__(self, env: "PruningEnv") -> None:
        self.env = env

    def observe(self) -> np.ndarray:
        """The observation for the group at ``env.step_index`` (clipped into ``space``)."""
        raise NotImplementedError


def register_observation(name: str, overwrite: bool = False) -> Any:
    """Class decorator registering an :class:`Observation` subclass under ``name``."""

    def decorate(cls: type[Observation]) -> type[Observation]:
        if name in _REGISTRY and not overwrite:
            raise ValueError(f"an observation named {name!r} is already registered; pass overwrite=True to replace it")
        _REGISTRY[name] = cls
        return cls

    return decorate


def list_observations() -> list[str]:
    """Names of all registered observations."""
    return sorted(_REGISTRY)


def get_observation(name: str) -> type[Observation]:
    """The observation class registered as ``name``; unknown names list the registered ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown observation {name!r}; registered observations: {list_observations()}") from None


def _normalise_columns(table: np.ndarray) -> np.ndarray:
    peak = table.max(axis=0)
    return table / np.where(peak > 0, peak, 1.0)


@register_observation("layer")
class LayerEmbedding(Observation):
    """AMC's layer embedding (see the module docstring)."""

    size = 11

    def __init__(self, env: "PruningEnv") -> None:
        super().__init__(env)
        network = env.network
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

    def observe(self) -> np.ndarray:
        env, network = self.env, self.env.network
        t = min(env.step_index, network.num_groups - 1)
        group_macs = self._owner @ network.layer_macs(env.keep)
        dynamic = [
            self._original_group_macs[t] / self._peak_group_macs,
            (network.original_macs - env.current_macs) / network.original_macs,
            group_macs[t + 1:].sum() / network.original_macs,
            env.previous_rate,
        ]
        return np.clip(np.concatenate([self._static[t], dynamic]), 0.0, 1.0).astype(np.float32)


@register_observation("filters")
class FilterFeatures(Observation):
    """Per-filter importance features of the current group plus the layer embedding."""

    criteria = ("l1", "std", "fpgm", "cluster")

    def __init__(self, env: "PruningEnv") -> None:
        super().__init__(env)
        self._layer = LayerEmbedding(env)
        width = env.max_filters
        self._features = []
        for index in range(env.network.num_groups):
            table = np.zeros((width, len(self.criteria)), dtype=np.float64)
            scores = np.stack([env.network.importance(c)[index] for c in self.criteria], axis=1)
            table[: len(scores)] = _normalise_columns(np.abs(scores))
            self._features.append(table.ravel())
        self.space = gym.spaces.Box(0.0, 1.0, (width * len(self.criteria) + LayerEmbedding.size,), dtype=np.float32)

    def observe(self) -> np.ndarray:
        t = min(self.env.step_index, self.env.network.num_groups - 1)
        return np.concatenate([self._features[t].astype(np.float32), self._layer.observe()])
