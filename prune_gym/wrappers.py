"""Wrappers for prune_gym environments."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np


@dataclass
class EpisodeRecord:
    """One finished episode: its return and the pruned network it produced.

    ``macs_ratio``/``params_ratio`` are kept / original; ``rates`` are the
    applied pruned fractions per group; ``keep_mask`` is one boolean array per group.
    """

    episode: int
    episode_return: float
    accuracy: float
    accuracy_before: float
    macs: int
    params: int
    macs_ratio: float
    params_ratio: float
    budget_met: bool
    rates: list[float]
    kept_channels: list[int]
    keep_mask: list[np.ndarray] = field(repr=False)

    def row(self) -> dict[str, Any]:
        """A flat dict for CSV and trackers (the mask left out)."""
        data = asdict(self)
        data.pop("keep_mask")
        return data


class EpisodeRecorder(gym.Wrapper):
    """Calls ``callback(record)`` with an :class:`EpisodeRecord` at the end of every episode.

    Compose it outermost-but-one (inside vectorisation) so any agent, SB3,
    tianshou or hand-rolled, reports its episodes without knowing about it.
    ``episodes`` keeps every record of this wrapper's lifetime.
    """

    def __init__(self, env: gym.Env, callback: Callable[[EpisodeRecord], None] | None = None, start_episode: int = 0) -> None:
        super().__init__(env)
        self.callback = callback
        self.episodes: list[EpisodeRecord] = []
        self._next_episode = start_episode
        self._return = 0.0
        self._rates: list[float] = []

    def reset(self, **kwargs: Any):
        self._return = 0.0
        self._rates = []
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._rates.append(float(info["rate_pruned"]))
        if terminated or truncated:
            record = EpisodeRecord(
                episode=self._next_episode,
                episode_return=self._return,
                accuracy=float(info["accuracy"]),
                accuracy_before=float(info["accuracy_before"]),
                macs=int(info["macs"]),
                params=int(info["params"]),
                macs_ratio=float(info["macs_ratio"]),
                params_ratio=float(info["params_ratio"]),
                budget_met=bool(info["budget_met"]),
                rates=self._rates,
                kept_channels=list(info["kept_channels"]),
                keep_mask=info["keep_mask"],
            )
            self._next_episode += 1
            self.episodes.append(record)
            if self.callback is not None:
                self.callback(record)
        return observation, reward, terminated, truncated, info
