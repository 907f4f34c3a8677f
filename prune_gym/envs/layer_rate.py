"""LayerRate-v0: AMC-style search, one pruning rate per group."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np

from prune_gym.envs.base import PruningEnv
from prune_gym.validation import check_int


class LayerRateEnv(PruningEnv):
    """One step per prunable group (network order); the action is the fraction of its filters to prune.

    ## Action space
    ``action_type="continuous"`` (default): ``Box(0, 1, (1,))``, the pruned
    fraction (not the kept one); values outside [0, 1] are clipped and counted
    in ``info["clipped_values"]``. ``action_type="discrete"``:
    ``Discrete(rate_levels)``, level ``i`` prunes ``i / (rate_levels - 1)``
    (for DQN-family agents). The group keeps its ``round(C x (1 - rate))`` most
    important filters under ``criterion`` (at least one).

    ## Observation space
    ``layer`` (AMC's 11-value embedding in [0, 1]) by default; any registered observation.

    ## Rewards
    The registered reward named by ``reward`` (default ``error``: -(1 - score) at the end).

    ## Episode end
    After the last group; never truncated. With ``enforce_budget`` the rate is
    raised as in AMC when the budget would otherwise become unreachable; the
    applied rate is ``info["rate_pruned"]``.

    ## Rendering
    ``render_mode="ansi"``: a text table of the decisions so far. ``"rgb_array"``: a
    (360, 640, 3) uint8 image, one bar per group of its kept fraction of filters
    (1 - the applied rate; grey at 1 while undecided, the group decided next
    outlined in orange) and the MACs kept so far against the budget (dashed
    line); ``metadata["render_fps"]`` = 4 decisions per second of video. With
    ``gym.make(..., render_mode="human")`` gymnasium's ``HumanRendering`` shows
    the images in a pygame window.

    ## Arguments
    ``rate_levels`` (discrete only, default 11: 0, 0.1, ..., 1) and those of :class:`PruningEnv`.
    """

    action_types: ClassVar[dict[str, type[gym.spaces.Space]]] = {"continuous": gym.spaces.Box, "discrete": gym.spaces.Discrete}

    def __init__(self, action_type: Literal["continuous", "discrete"] = "continuous", rate_levels: int = 11, **kwargs: Any) -> None:
        self.rate_levels = check_int("rate_levels", rate_levels, 2, "a number of discrete rate levels >= 2")
        super().__init__(action_type=action_type, **kwargs)

    def _action_space(self) -> gym.spaces.Space:
        if self.action_type == "discrete":
            return gym.spaces.Discrete(self.rate_levels)
        return gym.spaces.Box(0.0, 1.0, (1,), dtype=np.float32)

    def _decide(self, action: Any) -> tuple[np.ndarray, dict[str, Any]]:
        values, clipped = self._validate(action)
        if self.action_type == "discrete":
            rate = float(values) / (self.rate_levels - 1)
        else:
            rate = float(values[0])
        t = self.state.group_index
        n_keep = int(round(self.network.groups[t].num_channels * (1.0 - rate)))
        keep = self.ranking.keep_most_important(t, n_keep, self.criterion)
        return keep, {"action_rate": rate, "clipped_values": clipped}

