"""Wrappers for prune_gym environments."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from prune_gym.runs import EpisodeRecord


class EpisodeBudgetExhausted(Exception):
    """Raised by :class:`EpisodeRecorder` when an agent steps past its episode or evaluation budget (before anything is evaluated)."""


class EpisodeRecorder(gym.Wrapper):
    """Calls ``callback(record)`` with an :class:`~prune_gym.runs.EpisodeRecord` at the end of every episode.

    Compose it outermost-but-one (inside vectorisation) so any agent, SB3,
    tianshou or hand-rolled, reports its episodes without knowing about it.
    ``episodes`` keeps every record of this wrapper's lifetime. Records count
    reward evaluations and wall seconds from ``evaluations_offset`` and
    ``seconds_offset`` (what a resumed search had already spent). With
    ``max_episodes`` (counted from episode 0), the first ``step`` of an episode past
    the budget raises :class:`EpisodeBudgetExhausted`: agents that collect
    several episodes at a time (on-policy rollouts) get no extra evaluation, while
    an agent that stops at the budget finishes its last episode normally. With
    ``max_evaluations`` (counted like ``evaluations``), any ``step`` once that many
    reward evaluations are spent raises it too, so an agent with a dense reward,
    which evaluates within episodes, spends no more than one rewarded per episode;
    the episode it interrupts is not recorded.
    """

    def __init__(self, env: gym.Env, callback: Callable[[EpisodeRecord], None] | None = None, start_episode: int = 0,
                 evaluations_offset: int = 0, seconds_offset: float = 0.0, max_episodes: int | None = None,
                 max_evaluations: int | None = None) -> None:
        super().__init__(env)
        self.callback = callback
        self.max_episodes = max_episodes
        self.max_evaluations = max_evaluations
        self.episodes: list[EpisodeRecord] = []
        self._next_episode = start_episode
        self._evaluations_offset = evaluations_offset
        self._evaluations = evaluations_offset  # spent so far, as of the last step
        self._started = time.perf_counter() - seconds_offset
        self._return = 0.0
        self._rates: list[float] = []

    def reset(self, **kwargs: Any):
        self._return = 0.0
        self._rates = []
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        if self.max_episodes is not None and self._next_episode >= self.max_episodes:
            raise EpisodeBudgetExhausted(f"the budget of {self.max_episodes} episodes is spent")
        if self.max_evaluations is not None and self._evaluations >= self.max_evaluations:
            raise EpisodeBudgetExhausted(f"the budget of {self.max_evaluations} reward evaluations is spent")
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._evaluations = self._evaluations_offset + int(info["evaluations"])
        self._return += float(reward)
        self._rates.append(float(info["rate_pruned"]))
        if terminated or truncated:
            record = EpisodeRecord(
                episode=self._next_episode,
                episode_return=self._return,
                score=float(info["score"]),
                macs=int(info["macs"]),
                params=int(info["params"]),
                macs_ratio=float(info["macs_ratio"]),
                params_ratio=float(info["params_ratio"]),
                budget_met=bool(info["budget_met"]),
                rates=tuple(self._rates),
                kept_channels=tuple(info["kept_channels"]),
                evaluations=self._evaluations,
                seconds=time.perf_counter() - self._started,
                keep_mask=tuple(info["keep_mask"]),
            )
            self._next_episode += 1
            self.episodes.append(record)
            if self.callback is not None:
                self.callback(record)
        return observation, reward, terminated, truncated, info
