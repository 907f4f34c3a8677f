"""FilterSelect-v0: per-filter keep/drop decisions (the VCIP 2019 and try-and-learn settings)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from prune_gym.envs.base import PruningEnv

ACTION_TYPES = ("binary", "continuous")


class FilterSelectEnv(PruningEnv):
    """One step per prunable group; the action keeps or drops each of its filters.

    Action space, fixed across groups (``max_filters`` = widest group):
    ``MultiBinary(max_filters)`` (1 = keep) with ``action_type="binary"``, or
    ``Box(0, 1, (max_filters,))`` scores kept when >= 0.5 with
    ``action_type="continuous"`` (for DDPG-like agents; out-of-range scores are
    clipped and counted in ``info["clipped_values"]``). Entries past the
    current group's width are ignored; ``info["action_mask"]`` marks the live
    ones for the next decision. A decision that drops every filter keeps the
    most important one. Observation: ``filters`` by default. Other keyword
    arguments are those of :class:`PruningEnv`.
    """

    default_observation = "filters"

    def __init__(self, action_type: str = "binary", **kwargs: Any) -> None:
        if action_type not in ACTION_TYPES:
            raise ValueError(f"invalid action_type={action_type!r}: expected one of {list(ACTION_TYPES)}")
        self.action_type = action_type
        super().__init__(**kwargs)

    def _action_space(self) -> gym.spaces.Space:
        if self.action_type == "binary":
            return gym.spaces.MultiBinary(self.max_filters)
        return gym.spaces.Box(0.0, 1.0, (self.max_filters,), dtype=np.float32)

    def _decide(self, action: Any) -> tuple[np.ndarray, dict[str, Any]]:
        values, clipped = self._validate(action)
        width = self.network.groups[self.step_index].num_channels
        keep = values[:width] >= 0.5 if self.action_type == "continuous" else values[:width].astype(bool)
        return keep.copy(), {"clipped_values": clipped}

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        mask = np.zeros(self.max_filters, dtype=np.int8)
        if self.step_index < self.network.num_groups:
            mask[: self.network.groups[self.step_index].num_channels] = 1
        info["action_mask"] = mask
        return info
