"""FilterSelect-v0: per-filter keep/drop decisions (the VCIP 2019 and try-and-learn settings)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np

from prune_gym.envs.base import PruningEnv


class FilterSelectEnv(PruningEnv):
    """One step per prunable group; the action keeps or drops each of its filters.

    ## Action space
    Fixed across groups (``max_filters`` = widest group):
    ``action_type="binary"`` (default): ``MultiBinary(max_filters)``, 1 = keep;
    ``action_type="continuous"``: ``Box(0, 1, (max_filters,))``, scores kept
    when >= 0.5 (for DDPG-like agents; out-of-range scores are clipped and
    counted in ``info["clipped_values"]``). Entries past the current group's
    width are ignored; ``info["action_mask"]`` marks the live ones for the next
    decision. A decision that drops every filter keeps the most important one.

    ## Observation space
    ``filters`` (per-filter importance features + the layer embedding) by default.

    ## Rewards
    The registered reward named by ``reward`` (try-and-learn's ``try-and-learn``, VCIP's ``shaped``, ...).

    ## Episode end
    After the last group; never truncated.

    ## Rendering
    ``render_mode="ansi"``: a text table of the decisions so far. ``"rgb_array"``: a
    (360, 640, 3) uint8 image, one bar per group of the fraction of its filters
    the action kept (after budget enforcement; grey at 1 while undecided, the
    group decided next outlined in orange) and the MACs kept so far against the
    budget (dashed line); ``metadata["render_fps"]`` = 4 decisions per second of
    video. With ``gym.make(..., render_mode="human")`` gymnasium's
    ``HumanRendering`` shows the images in a pygame window.

    ## Arguments
    Those of :class:`PruningEnv`.
    """

    default_observation = "filters"
    action_types: ClassVar[dict[str, type[gym.spaces.Space]]] = {"binary": gym.spaces.MultiBinary, "continuous": gym.spaces.Box}

    def __init__(self, action_type: Literal["binary", "continuous"] = "binary", **kwargs: Any) -> None:
        super().__init__(action_type=action_type, **kwargs)

    def _action_space(self) -> gym.spaces.Space:
        if self.action_type == "binary":
            return gym.spaces.MultiBinary(self.max_filters)
        return gym.spaces.Box(0.0, 1.0, (self.max_filters,), dtype=np.float32)

    def _decide(self, action: Any) -> tuple[np.ndarray, dict[str, Any]]:
        values, clipped = self._validate(action)
        width = self.network.groups[self.state.group_index].num_channels
        keep = values[:width] >= 0.5 if self.action_type == "continuous" else values[:width].astype(bool)
        return keep.copy(), {"clipped_values": clipped}

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        mask = np.zeros(self.max_filters, dtype=np.int8)
        if not self.state.done:
            mask[: self.network.groups[self.state.group_index].num_channels] = 1
        info["action_mask"] = mask
        return info

