"""LayerRate-v0: AMC-style search, one continuous pruning rate per group."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from prune_gym.envs.base import PruningEnv


class LayerRateEnv(PruningEnv):
    """One step per prunable group (network order); the action is the fraction of its filters to prune.

    Action space: ``Box(0, 1, (1,))``, the pruned fraction (not the kept one).
    The group keeps its ``round(C x (1 - rate))`` most important filters under
    ``criterion`` (at least one); values outside [0, 1] are clipped and counted
    in ``info["clipped_values"]``. With ``enforce_budget`` the rate is raised
    as in AMC when the budget would otherwise become unreachable; the applied
    rate is ``info["rate_pruned"]``. Observation: ``layer`` (AMC's embedding)
    by default. All keyword arguments are those of :class:`PruningEnv`.
    """

    def _action_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(0.0, 1.0, (1,), dtype=np.float32)

    def _decide(self, action: Any) -> tuple[np.ndarray, dict[str, Any]]:
        values, clipped = self._validate(action)
        rate = float(values[0])
        t = self.step_index
        n_keep = int(round(self.network.groups[t].num_channels * (1.0 - rate)))
        keep = self.network.keep_most_important(t, n_keep, self.criterion)
        return keep, {"action_rate": rate, "clipped_values": clipped}
